// The broker's health endpoint and the worker's heartbeat (services.hpp): what "ready"
// and the spot-check read.
#include "leo/installer/services.hpp"

#include "leo/common/error.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/system_root.hpp"
#include "leo/repo/probe.hpp"

#include <fmt/format.h>
#include <ini.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <ctime>

namespace leo::installer {
namespace stdfs = std::filesystem;

std::string health_url(const stdfs::path& root) {
    const fs::SystemRoot sys(root);
    const std::string file = "/home/leo/etc/broker.conf";
    long port = 8080;
    if (const auto text = sys.try_read(file, 1 << 20)) {
        struct State {
            std::string value;
        } st;
        ini_parse_string(
            text->c_str(),
            [](void* user, const char* section, const char* name, const char* value) {
                if (std::string_view(section) == "broker" && std::string_view(name) == "health_port")
                    static_cast<State*>(user)->value = value;
                return 1;
            },
            &st);
        if (!st.value.empty()) {
            char* end = nullptr;
            port = std::strtol(st.value.c_str(), &end, 10);
            if (end == st.value.c_str() || *end != '\0' || port < 1 || port > 65535)
                throw UsageError(fmt::format("{}: [broker] health_port = {}: expected a port from 1 to 65535",
                                             sys.host(file).string(), st.value));
        }
    }
    return fmt::format("http://127.0.0.1:{}/health", port);
}

HealthReport probe_health(const stdfs::path& root, std::chrono::milliseconds timeout) {
    const std::string url = health_url(root);
    repo::HttpResponse r;
    try {
        r = repo::http_get(url, timeout);
    } catch (const Error& e) {
        throw SystemError(fmt::format("the health endpoint does not answer: {}", e.what()));
    }
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(r.body);
    } catch (const nlohmann::json::exception&) {
        throw SystemError(fmt::format("the health endpoint {} answered HTTP {} with a body that is not JSON", url,
                                      r.status));
    }
    if (r.status != 200)
        throw SystemError(fmt::format("the health endpoint {} answered HTTP {}{}", url, r.status,
                                      j.is_object() && j.contains("error") && j["error"].is_string()
                                          ? ": " + printable(j["error"].get<std::string>())
                                          : std::string()));
    if (!j.is_object() || !j.contains("version") || !j["version"].is_string())
        throw SystemError(fmt::format("the health endpoint {} answered without a version", url));
    HealthReport h;
    h.version = j["version"].get<std::string>();
    if (j.contains("home") && j["home"].is_string()) h.home = j["home"].get<std::string>();
    // Another broker on the same port (two roots given one health_port) must not pass for
    // this one: the answer names its home directory.
    const std::string ours = fs::SystemRoot(root).host("/home/leo").string();
    if (h.home != ours)
        throw SystemError(fmt::format("the health endpoint {} is answered by another broker (home {}, not {}): is "
                                      "[broker] health_port shared with another broker?",
                                      url, h.home.empty() ? std::string("not given") : printable(h.home), ours));
    if (j.contains("database") && j["database"].is_string()) h.database = j["database"].get<std::string>();
    if (j.contains("schema_version") && j["schema_version"].is_string())
        h.schema_version = j["schema_version"].get<std::string>();
    return h;
}

std::optional<double> queue_heartbeat_age(const stdfs::path& root) {
    const auto st = fs::SystemRoot(root).stat(stdfs::path(k_broker_run_dir) / "queue.heartbeat");
    if (!st) return std::nullopt;
    struct timespec now {};
    ::clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<double>(now.tv_sec - st->st_mtim.tv_sec) +
           static_cast<double>(now.tv_nsec - st->st_mtim.tv_nsec) / 1e9;
}

} // namespace leo::installer
