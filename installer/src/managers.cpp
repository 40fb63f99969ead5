// The ServiceManager implementations (services.hpp): "[services] commands", systemd and
// "none" here, the supervisor in supervisor.cpp; the database component, the same in each;
// and service_manager(), the one choice between them.
#include "leo/common/clock.hpp"
#include "leo/installer/services.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/trust.hpp"
#include "leo/migrations/internal_db.hpp"

#include "services_internal.hpp"

#include <fmt/format.h>

#include <ctime>

namespace leo::installer {
namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

namespace detail {

std::string utc(std::int64_t epoch) { return clock::utc_time(epoch); }

// ---- the database component: the same in every implementation ----

namespace {
bool external_database(const stdfs::path& root) {
    return load_database_config(root).mode == DatabaseMode::external;
}

void refuse_external_db(const stdfs::path& root, const char* verb) {
    if (external_database(root))
        throw Error(fmt::format("the broker uses an external database: this tool does not {} it; its "
                                "administrator does",
                                verb));
}
} // namespace

ComponentStatus db_status(const stdfs::path& root) {
    ComponentStatus s{Component::db, ComponentStatus::State::stopped, {}};
    const auto config = load_database_config(root);
    if (config.mode == DatabaseMode::external) {
        s.state = ComponentStatus::State::not_managed;
        s.detail = "external database " + config.external.display();
        return s;
    }
    const auto st = migrations::InternalDatabase(root).status();
    s.state = st.state == migrations::DbState::running ? ComponentStatus::State::running
                                                        : ComponentStatus::State::stopped;
    s.detail = st.detail;
    return s;
}

bool db_start(const stdfs::path& root) {
    refuse_external_db(root, "start");
    return migrations::InternalDatabase(root).start();
}

bool db_stop(const stdfs::path& root) {
    refuse_external_db(root, "stop");
    return migrations::InternalDatabase(root).stop();
}

} // namespace detail

namespace {
using detail::db_start;
using detail::db_status;
using detail::db_stop;

// ---- commands ([services] stop_command / start_command) ----

class CommandsManager final : public ServiceManager {
public:
    CommandsManager(stdfs::path root, InstallerConfig config) : m_root(std::move(root)), m_config(std::move(config)) {}
    std::string name() const override { return "[services] commands"; }
    bool start(Component c) override { return act(c, "start"); }
    bool stop(Component c) override { return act(c, "stop"); }
    ComponentStatus status(Component c) override {
        if (c == Component::db) return db_status(m_root);
        return {c, ComponentStatus::State::not_managed,
                "installer.conf [services] commands act on the whole broker; they report no state"};
    }
    std::optional<std::string> whole_broker_command(Whole w) const override {
        return w == Whole::stop ? m_config.services_stop_command : m_config.services_start_command;
    }
    void run_whole_broker(Whole w) override {
        const char* verb = w == Whole::stop ? "stop" : "start";
        const std::string command = w == Whole::stop ? m_config.services_stop_command : m_config.services_start_command;
        if (command.empty()) return;
        const auto r = run_hook(Hook{fmt::format("[services] {}_command", verb), command,
                                     {{"LEO_ROOT", m_root.string()}}, m_config.services_timeout});
        log::info("[services] {}_command `{}` (exit {})", verb, command, r.exit_code);
        if (!r.ok()) {
            const std::string why = subprocess::last_line(r.err.empty() ? r.out : r.err);
            throw SystemError(fmt::format(
                "`{}` {}{}", command,
                r.timed_out ? fmt::format("did not end within {} s", m_config.services_timeout.count())
                : r.exit_code < 0 ? fmt::format("was killed by signal {}", r.signal)
                                  : fmt::format("failed (exit {})", r.exit_code),
                why.empty() ? std::string() : ": " + why));
        }
    }

private:
    bool act(Component c, const char* verb) {
        if (c == Component::db) return std::string_view(verb) == "stop" ? db_stop(m_root) : db_start(m_root);
        throw Error(fmt::format("{} {} alone is not supported with installer.conf [services] commands, which act "
                                "on the whole broker: run {} without a component",
                                verb, to_string(c), command_hint(std::string("service ") + verb)));
    }
    stdfs::path m_root;
    InstallerConfig m_config;
};

// ---- systemd ----

bool systemd_booted() {
    std::error_code ec;
    return stdfs::is_directory("/run/systemd/system", ec);
}

bool unit_installed(const char* unit) {
    std::error_code ec;
    for (const char* dir : {"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"})
        if (stdfs::exists(stdfs::path(dir) / unit, ec)) return true;
    return false;
}

class SystemdManager final : public ServiceManager {
public:
    SystemdManager(stdfs::path root, InstallerConfig config) : m_root(std::move(root)), m_config(std::move(config)) {}
    std::string name() const override { return "systemd"; }
    bool start(Component c) override {
        if (c == Component::db) return db_start(m_root);
        if (active(c)) return false;
        systemctl({"start", unit(c)});
        return true;
    }
    bool stop(Component c) override {
        if (c == Component::db) return db_stop(m_root);
        if (!active(c)) return false;
        systemctl({"stop", unit(c)});
        return true;
    }
    ComponentStatus status(Component c) override {
        if (c == Component::db) return db_status(m_root);
        const bool on = active(c);
        return {c, on ? ComponentStatus::State::running : ComponentStatus::State::stopped,
                fmt::format("systemd unit {}", unit(c))};
    }

private:
    static const char* unit(Component c) { return c == Component::httpd ? k_httpd_unit : k_queue_unit; }
    bool active(Component c) {
        subprocess::Options o;
        o.clean_env = true;
        o.env = {{"PATH", k_safe_path}, {"LANG", "C"}};
        o.timeout = 30s;
        return subprocess::run({"systemctl", "is-active", "--quiet", unit(c)}, o).ok();
    }
    void systemctl(std::vector<std::string> args) {
        args.insert(args.begin(), "systemctl");
        subprocess::Options o;
        o.clean_env = true;
        o.env = {{"PATH", k_safe_path}, {"LANG", "C"}};
        o.timeout = m_config.services_timeout;
        const auto r = subprocess::run(args, o);
        log::info("ran {} (exit {})", subprocess::command_line(args), r.exit_code);
        if (!r.ok())
            throw SystemError(fmt::format("`{}` failed{}: {}", subprocess::command_line(args),
                                          r.timed_out ? " (timed out)" : "",
                                          subprocess::last_line(r.err.empty() ? r.out : r.err)));
    }
    stdfs::path m_root;
    InstallerConfig m_config;
};

class NoManager final : public ServiceManager {
public:
    explicit NoManager(stdfs::path root) : m_root(std::move(root)) {}
    std::string name() const override { return "none"; }
    bool can_act() const override { return false; }
    bool start(Component c) override { return c == Component::db ? db_start(m_root) : refuse(c, "start"); }
    bool stop(Component c) override { return c == Component::db ? db_stop(m_root) : refuse(c, "stop"); }
    ComponentStatus status(Component c) override {
        if (c == Component::db) return db_status(m_root);
        return {c, ComponentStatus::State::not_managed,
                fmt::format("no systemd unit {} on this system and no [services] commands",
                            c == Component::httpd ? k_httpd_unit : k_queue_unit)};
    }

private:
    static bool refuse(Component c, const char* verb) {
        throw Error(fmt::format("cannot {} {} here: this system runs systemd but has no unit {} (is the broker "
                                "package installed?) and installer.conf has no [services] commands",
                                verb, component_title(c), c == Component::httpd ? k_httpd_unit : k_queue_unit));
    }
    stdfs::path m_root;
};

} // namespace

std::unique_ptr<ServiceManager> service_manager(const stdfs::path& root) {
    auto config = load_config(root);
    if (!config.services_stop_command.empty() || !config.services_start_command.empty())
        return std::make_unique<CommandsManager>(root, std::move(config));
    if (root == "/" && systemd_booted()) {
        if (unit_installed(k_httpd_unit) || unit_installed(k_queue_unit))
            return std::make_unique<SystemdManager>(root, std::move(config));
        return std::make_unique<NoManager>(root);
    }
    return detail::make_supervisor(root, std::move(config));
}

void ServiceManager::run_whole_broker(Whole) {
    throw Error(fmt::format("{} starts and stops each component: it has no command for the whole broker", name()));
}

} // namespace leo::installer
