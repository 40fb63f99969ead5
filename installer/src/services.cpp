#include "leo/installer/services.hpp"

#include "leo/common/error.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/log.hpp"
#include "leo/common/process_info.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/cluster.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/trust.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/repo/probe.hpp"

#include <fmt/format.h>
#include <ini.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <sstream>
#include <thread>

#include <sys/wait.h>

namespace leo::installer {
namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

std::string_view to_string(Component c) {
    switch (c) {
    case Component::db: return "db";
    case Component::httpd: return "httpd";
    case Component::queue: return "queue";
    }
    return "?";
}

std::string_view component_title(Component c) {
    switch (c) {
    case Component::db: return "the database";
    case Component::httpd: return "the web server";
    case Component::queue: return "the work-queue worker";
    }
    return "?";
}

std::optional<Component> parse_component(std::string_view name) {
    if (name == "db" || name == "database") return Component::db;
    if (name == "httpd" || name == "web") return Component::httpd;
    if (name == "queue" || name == "worker") return Component::queue;
    return std::nullopt;
}

std::string_view to_string(ComponentStatus::State s) {
    switch (s) {
    case ComponentStatus::State::running: return "running";
    case ComponentStatus::State::stopped: return "stopped";
    case ComponentStatus::State::not_managed: return "not managed here";
    }
    return "?";
}

namespace {

std::string utc(std::int64_t epoch) {
    const std::time_t t = epoch;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// ---- the database component: the same in every implementation ----

bool external_database(const stdfs::path& root) {
    return load_database_config(root).mode == DatabaseMode::external;
}

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

void refuse_external_db(const stdfs::path& root, const char* verb) {
    if (external_database(root))
        throw Error(fmt::format("the broker uses an external database: this tool does not {} it; its "
                                "administrator does",
                                verb));
}

bool db_start(const stdfs::path& root) {
    refuse_external_db(root, "start");
    return migrations::InternalDatabase(root).start();
}

bool db_stop(const stdfs::path& root) {
    refuse_external_db(root, "stop");
    return migrations::InternalDatabase(root).stop();
}

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
    /// Run the configured command for the whole broker ("" when not configured: false).
    bool run_whole(const char* verb) {
        const std::string& command =
            std::string_view(verb) == "stop" ? m_config.services_stop_command : m_config.services_start_command;
        if (command.empty()) return false;
        const auto r = run_hook(Hook{fmt::format("[services] {}_command", verb), command,
                                     {{"LEO_ROOT", m_root.string()}}, m_config.services_timeout});
        if (!r.ok()) {
            const std::string why = subprocess::last_line(r.err.empty() ? r.out : r.err);
            throw SystemError(fmt::format(
                "`{}` {}{}", command,
                r.timed_out ? fmt::format("did not end within {} s", m_config.services_timeout.count())
                : r.exit_code < 0 ? fmt::format("was killed by signal {}", r.signal)
                                  : fmt::format("failed (exit {})", r.exit_code),
                why.empty() ? std::string() : ": " + why));
        }
        return true;
    }
    const InstallerConfig& config() const { return m_config; }

private:
    bool act(Component c, const char* verb) {
        if (c == Component::db) return std::string_view(verb) == "stop" ? db_stop(m_root) : db_start(m_root);
        throw Error(fmt::format("{} {} alone is not supported with installer.conf [services] commands, which act "
                                "on the whole broker: run `leo-installer service {}` without a component",
                                verb, to_string(c), verb));
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

// ---- the supervisor, for sandbox roots and hosts without systemd ----

/// What a pid file of the supervisor says: "PID START_TIME\n".
struct PidRecord {
    pid_t pid = 0;
    std::int64_t start_time = 0;
};

class Supervisor final : public ServiceManager {
public:
    Supervisor(stdfs::path root, InstallerConfig config)
        : m_root(std::move(root)), m_sys(m_root), m_config(std::move(config)) {}
    std::string name() const override { return "supervisor"; }

    bool start(Component c) override {
        if (c == Component::db) return db_start(m_root);
        if (running(c)) return false;
        if (!m_sys.exists(k_broker_program))
            throw Error(fmt::format("cannot start {}: the installed broker package has no {} (is the broker "
                                    "installed?)",
                                    component_title(c), m_sys.host(k_broker_program).string()));
        auto options = migrations::leo_program_options(m_root);
        options.clean_env = true;
        options.env["PATH"] = k_safe_path;
        options.env["LEO_HOME"] = m_sys.host("/home/leo").string();
        options.env["LEO_RUN_DIR"] = m_sys.host(k_broker_run_dir).string();
        database_environment(options.env);
        const fs::Owner owner{*options.uid, *options.gid};
        m_sys.make_dirs(k_broker_logs_dir, 0755, owner, fs::ExistingDir::keep);
        m_sys.make_dirs(k_broker_run_dir, 0755, owner, fs::ExistingDir::keep);
        m_sys.make_dirs(k_supervisor_run_dir, 0755, fs::Owner{0, 0});
        const std::string program = m_sys.checked_host(k_broker_program).string();
        const auto log_file = m_sys.host(stdfs::path(k_broker_logs_dir) / (std::string(to_string(c)) + ".log"));
        const auto started = std::chrono::system_clock::now();
        const pid_t pid = subprocess::spawn_detached({program, std::string(to_string(c))}, options, log_file);
        // The start time from /proc: with the pid, it tells this process from a later one
        // that reuses its pid.
        std::int64_t start_time = 0;
        if (const auto info = proc::read_process(pid); info && info->start_time) start_time = *info->start_time;
        m_sys.write_atomic(pid_file(c), fmt::format("{} {}\n", pid, start_time), 0644, fs::Owner{0, 0});
        log::info("supervisor: started {} (pid {}): {} {}", to_string(c), pid, program, to_string(c));
        wait_ready(c, pid, started, log_file);
        return true;
    }

    bool stop(Component c) override {
        if (c == Component::db) return db_stop(m_root);
        const auto rec = live_record(c);
        if (!rec) {
            m_sys.remove(pid_file(c));  // a stale one
            return false;
        }
        ::kill(rec->pid, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + m_config.services_timeout;
        // Still the process the pid file means (same start time)? Once it has ended, a new
        // process may take its pid: never signal that one.
        const auto ours = [&] {
            if (!alive(rec->pid)) return false;
            const auto info = proc::read_process(rec->pid);
            return info && info->running() &&
                   (rec->start_time == 0 || (info->start_time && *info->start_time == rec->start_time));
        };
        while (ours()) {
            if (std::chrono::steady_clock::now() > deadline) {
                log::warning("supervisor: {} (pid {}) did not end within {} s of SIGTERM: SIGKILL", to_string(c),
                             rec->pid, m_config.services_timeout.count());
                if (ours()) ::kill(rec->pid, SIGKILL);
                while (ours()) std::this_thread::sleep_for(20ms);
                break;
            }
            std::this_thread::sleep_for(20ms);
        }
        m_sys.remove(pid_file(c));
        log::info("supervisor: stopped {} (pid {})", to_string(c), rec->pid);
        return true;
    }

    ComponentStatus status(Component c) override {
        if (c == Component::db) return db_status(m_root);
        if (const auto rec = live_record(c))
            return {c, ComponentStatus::State::running,
                    fmt::format("pid {}{}", rec->pid, rec->start_time ? " since " + utc(rec->start_time) : "")};
        return {c, ComponentStatus::State::stopped, ""};
    }

private:
    bool running(Component c) { return live_record(c).has_value(); }

    static stdfs::path pid_file(Component c) {
        return stdfs::path(k_supervisor_run_dir) / (std::string(to_string(c)) + ".pid");
    }

    /// Reap `pid` when it is our child that ended; then whether it still runs.
    static bool alive(pid_t pid) {
        int status = 0;
        ::waitpid(pid, &status, WNOHANG);
        return proc::process_running(pid);
    }

    /// The pid file's process when it is still the process the file means.
    std::optional<PidRecord> live_record(Component c) {
        const auto text = m_sys.try_read(pid_file(c), 256);
        if (!text) return std::nullopt;
        PidRecord rec;
        std::istringstream in(*text);
        if (!(in >> rec.pid >> rec.start_time) || rec.pid <= 1) return std::nullopt;
        const auto info = proc::read_process(rec.pid);
        if (!info || !info->running()) return std::nullopt;
        if (rec.start_time != 0 && info->start_time && *info->start_time != rec.start_time) return std::nullopt;
        return rec;
    }

    /// LEO_DB_CONNINFO (no password) and PGPASSWORD for the broker's programs.
    void database_environment(std::map<std::string, std::string>& env) const {
        const auto config = load_database_config(m_root);
        std::string conninfo;
        if (config.mode == DatabaseMode::external) {
            const auto split = migrations::split_password(external_conninfo(config));
            conninfo = split.without_password;
            if (split.password) env["PGPASSWORD"] = *split.password;
        } else {
            conninfo = migrations::InternalDatabase(m_root).conninfo();
        }
        env["LEO_DB_CONNINFO"] = conninfo;
        if (config.mode == DatabaseMode::external) env["LEO_CLUSTER_MEMBER"] = member_id(m_root);
    }

    void wait_ready(Component c, pid_t pid, std::chrono::system_clock::time_point started,
                    const stdfs::path& log_file) {
        const auto deadline = std::chrono::steady_clock::now() + m_config.services_ready_timeout;
        std::string last;
        for (;;) {
            if (!alive(pid)) {
                m_sys.remove(pid_file(c));
                throw SystemError(fmt::format("{} (pid {}) ended during its start; its log {} says: {}", component_title(c),
                                              pid, log_file.string(), log_tail(c)));
            }
            if (c == Component::httpd) {
                try {
                    (void)probe_health(m_root, 2s);
                    return;
                } catch (const Error& e) {
                    last = e.what();
                }
            } else {
                const auto st = m_sys.stat(stdfs::path(k_broker_run_dir) / "queue.heartbeat");
                if (st && std::chrono::system_clock::from_time_t(st->st_mtime) + 1s >= started) return;
                last = "no heartbeat yet";
            }
            if (std::chrono::steady_clock::now() > deadline)
                throw SystemError(fmt::format("{} (pid {}) was not ready within {} s ([services] ready_timeout): {}",
                                              component_title(c), pid, m_config.services_ready_timeout.count(), last));
            std::this_thread::sleep_for(100ms);
        }
    }

    std::string log_tail(Component c) const {
        try {
            const auto text =
                m_sys.try_read(stdfs::path(k_broker_logs_dir) / (std::string(to_string(c)) + ".log"), 1 << 20);
            const std::string line = text ? subprocess::last_line(*text) : std::string();
            return line.empty() ? "nothing" : printable(line);
        } catch (const Error& e) {
            return e.what();
        }
    }

    stdfs::path m_root;
    fs::SystemRoot m_sys;
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

// ---- the record of what a change stopped (rpm's try-restart, kept across a crash) ----

constexpr const char* k_stopped_marker = "/run/leostream/stopped-for-change";

std::vector<Component> read_marker(const fs::SystemRoot& sys) {
    std::vector<Component> out;
    const auto text = sys.try_read(k_stopped_marker, 4096);
    if (!text) return out;
    std::istringstream in(*text);
    std::string word;
    while (in >> word)
        if (auto c = parse_component(word); c && std::find(out.begin(), out.end(), *c) == out.end()) out.push_back(*c);
    return out;
}

void write_marker(const fs::SystemRoot& sys, const std::vector<Component>& components) {
    if (components.empty()) {
        sys.remove(k_stopped_marker);
        return;
    }
    std::string text;
    for (auto c : components) text += std::string(to_string(c)) + "\n";
    sys.make_dirs(k_supervisor_run_dir, 0755, fs::Owner{0, 0});
    sys.write_atomic(k_stopped_marker, text, 0644, fs::Owner{0, 0});
}

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
    return std::make_unique<Supervisor>(root, std::move(config));
}

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

void require_stoppable(const stdfs::path& root, bool administrator_stopped) {
    if (administrator_stopped) return;
    const auto manager = service_manager(root);
    if (!manager->can_act())
        throw RefusedError(fmt::format(
            "nothing here can stop the broker components (this system runs systemd but has no unit {} or {}, and "
            "installer.conf has no [services] commands); stop them yourself and run again with "
            "--components-stopped, or install the broker's units; nothing was changed",
            k_httpd_unit, k_queue_unit));
    if (auto* commands = dynamic_cast<CommandsManager*>(manager.get());
        commands && commands->config().services_stop_command.empty())
        throw RefusedError("installer.conf has a [services] start_command but no stop_command: nothing here can "
                           "stop the broker components; add stop_command, or stop them yourself and run again "
                           "with --components-stopped; nothing was changed");
}

StoppedComponents stop_for_change(const stdfs::path& root, bool administrator_stopped,
                                  const std::function<void(const std::string&)>& on_step) {
    require_stoppable(root, administrator_stopped);
    const auto manager = service_manager(root);
    StoppedComponents out;
    out.manager = manager->name();
    const fs::SystemRoot sys(root);
    if (administrator_stopped) {
        out.stopped_by_administrator = true;
        if (on_step) on_step("the broker components were stopped by the administrator (--components-stopped)");
        return out;
    }
    // What an interrupted run stopped is still to be started again.
    out.were_running = read_marker(sys);
    if (auto* commands = dynamic_cast<CommandsManager*>(manager.get())) {
        if (commands->run_whole("stop")) {
            for (auto c : k_broker_components)
                if (std::find(out.were_running.begin(), out.were_running.end(), c) == out.were_running.end())
                    out.were_running.push_back(c);
            write_marker(sys, out.were_running);
            if (on_step) on_step(fmt::format("stopped the broker components (`{}`)",
                                             commands->config().services_stop_command));
        }
        return out;
    }
    for (auto c : k_broker_components) {
        if (manager->status(c).state != ComponentStatus::State::running) continue;
        if (std::find(out.were_running.begin(), out.were_running.end(), c) == out.were_running.end())
            out.were_running.push_back(c);
        write_marker(sys, out.were_running);  // before the stop: a crash after it starts it again
        manager->stop(c);
        if (on_step) on_step(fmt::format("stopped {} ({})", component_title(c), manager->name()));
    }
    return out;
}

void start_after_change(const stdfs::path& root, const StoppedComponents& stopped,
                        const std::function<void(const std::string&)>& on_step) {
    const fs::SystemRoot sys(root);
    auto to_start = stopped.were_running;
    for (auto c : read_marker(sys))
        if (std::find(to_start.begin(), to_start.end(), c) == to_start.end()) to_start.push_back(c);
    if (to_start.empty()) return;
    const auto manager = service_manager(root);
    if (auto* commands = dynamic_cast<CommandsManager*>(manager.get())) {
        if (commands->run_whole("start") && on_step)
            on_step(fmt::format("started the broker components (`{}`)", commands->config().services_start_command));
        write_marker(sys, {});
        return;
    }
    // In start order (the web server before the worker), whatever order they were stopped in.
    for (auto c : k_all_components) {
        if (std::find(to_start.begin(), to_start.end(), c) == to_start.end()) continue;
        manager->start(c);
        to_start.erase(std::find(to_start.begin(), to_start.end(), c));
        write_marker(sys, to_start);
        if (on_step) on_step(fmt::format("started {} ({})", component_title(c), manager->name()));
    }
}

std::string services_plan(const stdfs::path& root) {
    const auto manager = service_manager(root);
    if (auto* commands = dynamic_cast<CommandsManager*>(manager.get()))
        return fmt::format("The broker components are stopped before (`{}`) and started after (`{}`)",
                           commands->config().services_stop_command.empty() ? "nothing"
                                                                             : commands->config().services_stop_command,
                           commands->config().services_start_command.empty()
                               ? "nothing"
                               : commands->config().services_start_command);
    if (!manager->can_act())
        return fmt::format("This tool cannot stop the broker components here (no [services] commands in "
                           "/etc/leo-installer/installer.conf, no systemd unit {}): stop them before you answer yes, "
                           "and start them when it is done",
                           k_httpd_unit);
    std::string running;
    for (auto c : k_broker_components)
        if (manager->status(c).state == ComponentStatus::State::running)
            running += (running.empty() ? "" : " and ") + std::string(component_title(c));
    if (running.empty()) return fmt::format("No broker component is running ({}): nothing is stopped", manager->name());
    return fmt::format("{} {} stopped before and started again after ({})", running,
                       running.find(" and ") != std::string::npos ? "are" : "is", manager->name());
}

ServiceOutcome stop_broker(const stdfs::path& root) {
    ServiceOutcome out;
    const auto manager = service_manager(root);
    if (!manager->can_act()) {
        out.message = fmt::format("no way to stop the broker components here (no [services] stop_command in "
                                  "/etc/leo-installer/installer.conf and no systemd unit {} on this system): stop "
                                  "them yourself",
                                  k_httpd_unit);
        return out;
    }
    if (auto* commands = dynamic_cast<CommandsManager*>(manager.get());
        commands && commands->config().services_stop_command.empty()) {
        out.message = "no [services] stop_command in /etc/leo-installer/installer.conf: stop the broker components "
                      "yourself";
        return out;
    }
    std::string said;
    const auto stopped = stop_for_change(root, false, [&](const std::string& s) { said += (said.empty() ? "" : "; ") + s; });
    out.ran = true;
    out.command = manager->name();
    out.message = said.empty() ? "broker components: none was running" : "broker components: " + said;
    return out;
}

ServiceOutcome start_broker(const stdfs::path& root) {
    ServiceOutcome out;
    const auto manager = service_manager(root);
    if (!manager->can_act()) {
        out.message = fmt::format("no way to start the broker components here (no [services] start_command in "
                                  "/etc/leo-installer/installer.conf and no systemd unit {} on this system): start "
                                  "them yourself",
                                  k_httpd_unit);
        return out;
    }
    if (auto* commands = dynamic_cast<CommandsManager*>(manager.get())) {
        // The start command runs whether or not the stop ran (an administrator's own stop).
        if (!commands->run_whole("start")) {
            out.message = "no [services] start_command in /etc/leo-installer/installer.conf: start the broker "
                          "components yourself";
            return out;
        }
        write_marker(fs::SystemRoot(root), {});
        out.ran = true;
        out.command = commands->config().services_start_command;
        out.message = fmt::format("broker components: start ran `{}`", out.command);
        return out;
    }
    std::string said;
    start_after_change(root, {}, [&](const std::string& s) { said += (said.empty() ? "" : "; ") + s; });
    out.ran = true;
    out.command = manager->name();
    out.message = said.empty() ? "broker components: none to start again" : "broker components: " + said;
    return out;
}

} // namespace leo::installer
