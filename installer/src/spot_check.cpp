#include "leo/installer/spot_check.hpp"

#include "leo/common/error.hpp"
#include "leo/installer/paths.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/rpm/transaction.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

namespace leo::installer {
using namespace std::chrono_literals;

namespace {

bool was_started(const StoppedComponents& s, Component c) {
    return std::find(s.were_running.begin(), s.were_running.end(), c) != s.were_running.end();
}

/// Retry `probe` (which returns "" when it passes, else what it saw) until it passes or
/// `timeout` has gone by; throws with the last thing it saw.
void until_passes(const std::string& what, std::chrono::seconds timeout, const std::function<std::string()>& probe) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        std::string seen;
        try {
            seen = probe();
        } catch (const Error& e) {
            seen = e.what();
        }
        if (seen.empty()) return;
        if (std::chrono::steady_clock::now() >= deadline)
            throw InstallError(fmt::format("spot-check: {}: {} (for {} s, [spot_check] timeout)", what, seen,
                                           timeout.count()));
        std::this_thread::sleep_for(200ms);
    }
}

} // namespace

void spot_check(migrations::Connection& conn, const SpotCheckInputs& in,
                const std::function<void(const std::string&)>& on_step) {
    const auto say = [&](const std::string& s) {
        if (on_step) on_step(s);
    };
    const auto now = rpm::query_installed(in.root, k_broker_package);
    if (now.size() != 1 || now.front().nevra() != in.target.nevra()) {
        std::string all;
        for (const auto& p : now) all += (all.empty() ? "" : ", ") + p.nevra();
        throw InstallError(fmt::format("spot-check: the rpmdb holds [{}], not exactly {}", all, in.target.nevra()));
    }
    const auto state = migrations::read_schema_state(conn);
    if (in.expected_schema && state.schema_version != in.expected_schema)
        throw InstallError(fmt::format("spot-check: the schema version is {}, but {} ships {}",
                                       state.schema_version.value_or("none"), in.target.nevra(), *in.expected_schema));
    say(fmt::format("spot-check: rpmdb holds {}; schema version {}", in.target.nevra(),
                    state.schema_version.value_or("none")));
    if (was_started(in.started, Component::httpd)) {
        until_passes("the health endpoint " + health_url(in.root), in.timeout, [&]() -> std::string {
            const auto h = probe_health(in.root, std::chrono::duration_cast<std::chrono::milliseconds>(in.timeout));
            if (h.version != in.target.version)
                return fmt::format("it answers version {}, expected {}", h.version, in.target.version);
            if (in.expected_schema && h.schema_version != in.expected_schema)
                return fmt::format("it answers schema version {}, expected {}", h.schema_version.value_or("none"),
                                   *in.expected_schema);
            return "";
        });
        say(fmt::format("spot-check: the health endpoint answers version {}", in.target.version));
    }
    if (was_started(in.started, Component::queue)) {
        const auto manager = service_manager(in.root);
        until_passes("the work-queue worker", in.timeout, [&]() -> std::string {
            if (manager->status(Component::queue).state != ComponentStatus::State::running) return "it is not running";
            const auto age = queue_heartbeat_age(in.root);
            if (!age) return "it has written no heartbeat";
            if (*age > 5.0) return fmt::format("its heartbeat is {:.0f} s old", *age);
            return "";
        });
        say("spot-check: the work-queue worker is alive");
    }
    if (in.started.stopped_by_administrator)
        say("spot-check: the components were stopped by the administrator (--components-stopped): start them and "
            "check them yourself");
}

} // namespace leo::installer
