// The supervisor (services.hpp): the broker's components of a sandbox root, or of a host
// without systemd, started as the root's leo user in a session of their own, with a pid
// file each in ROOT/run/leostream.
#include "services_internal.hpp"

#include "leo/common/error.hpp"
#include "leo/common/accounts.hpp"
#include "leo/common/log.hpp"
#include "leo/common/process_handle.hpp"
#include "leo/common/process_info.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/cluster.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/trust.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"

#include <fmt/format.h>

#include <csignal>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include <sys/wait.h>

namespace leo::installer::detail {
namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// What a pid file of the supervisor says: "PID START_TIME UID\n" (the process's start
/// time in epoch seconds, and its real uid: the root's leo). Files of an older installer
/// hold "PID START_TIME" (the uid is then the root's leo uid).
struct PidRecord {
    pid_t pid = 0;
    std::int64_t start_time = 0;
    std::optional<uid_t> uid;
};

/// The process a pid file means, held by a handle opened before its identity was checked.
struct LiveProcess {
    PidRecord record;
    proc::ProcessHandle handle;
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
        // Our child, not reaped yet: its pid is its own until we reap it, so this handle is
        // on the process just spawned.
        auto handle = proc::ProcessHandle::open(pid);
        // The start time from /proc and the uid: with the pid, they tell this process from
        // a later one that reuses its pid.
        std::int64_t start_time = 0;
        if (const auto info = proc::read_process(pid); info && info->start_time) start_time = *info->start_time;
        m_sys.write_atomic(pid_file(c), fmt::format("{} {} {}\n", pid, start_time, *options.uid), 0644,
                           fs::Owner{0, 0});
        log::info("supervisor: started {} (pid {}): {} {}", to_string(c), pid, program, to_string(c));
        try {
            wait_ready(c, pid, started, log_file);
        } catch (const Error& e) {
            if (!handle || handle->ended()) throw;
            // Not ready in time: what this start spawned does not go on running half-started.
            const std::string how = terminate(c, *handle, [] { return true; });
            m_sys.remove(pid_file(c));
            throw SystemError(fmt::format("{}; stopped it ({})", e.what(), how));
        }
        return true;
    }

    bool stop(Component c) override {
        if (c == Component::db) return db_stop(m_root);
        auto live = live_process(c);
        if (!live) {
            m_sys.remove(pid_file(c));  // a stale one (or one naming another process: never signalled)
            return false;
        }
        const auto still_ours = [&] { return identity_matches(live->record); };
        const std::string how = terminate(c, live->handle, still_ours);
        m_sys.remove(pid_file(c));
        log::info("supervisor: stopped {} (pid {}, {})", to_string(c), live->record.pid, how);
        return true;
    }

    ComponentStatus status(Component c) override {
        if (c == Component::db) return db_status(m_root);
        if (const auto live = live_process(c)) {
            const auto& rec = live->record;
            return {c, ComponentStatus::State::running,
                    fmt::format("pid {}{}", rec.pid, rec.start_time ? " since " + utc(rec.start_time) : "")};
        }
        return {c, ComponentStatus::State::stopped, ""};
    }

private:
    bool running(Component c) { return live_process(c).has_value(); }

    static stdfs::path pid_file(Component c) {
        return stdfs::path(k_supervisor_run_dir) / (std::string(to_string(c)) + ".pid");
    }

    /// Reap `pid` when it is our child that ended; then whether it still runs.
    static bool alive(pid_t pid) {
        int status = 0;
        ::waitpid(pid, &status, WNOHANG);
        return proc::process_running(pid);
    }

    /// SIGTERM, then SIGKILL after `[services] timeout`, through `handle`; waits until the
    /// process has ended (and reaps it when it is our child). `still_ours` is asked before
    /// each signal and while waiting when the handle has no pidfd (kill(2) goes by pid: once
    /// the process has ended another may hold it). Returns how it ended, for messages:
    /// "SIGTERM" or "SIGKILL after N s".
    std::string terminate(Component c, const proc::ProcessHandle& handle, const std::function<bool()>& still_ours) {
        const pid_t pid = handle.pid();
        const auto gone = [&] {
            int status = 0;
            ::waitpid(pid, &status, WNOHANG);  // our child (a failed start): reaped here
            return handle.has_pidfd() ? handle.ended() : !still_ours();
        };
        const auto wait = [&](std::chrono::milliseconds limit) {
            const auto deadline = std::chrono::steady_clock::now() + limit;
            while (!gone()) {
                if (std::chrono::steady_clock::now() > deadline) return false;
                std::this_thread::sleep_for(20ms);
            }
            return true;
        };
        if (!handle.has_pidfd() && !still_ours()) return "it had ended";
        if (!handle.signal(SIGTERM) || wait(m_config.services_timeout)) return "SIGTERM";
        log::warning("supervisor: {} (pid {}) did not end within {} s of SIGTERM: SIGKILL", to_string(c), pid,
                     m_config.services_timeout.count());
        if (handle.has_pidfd() || still_ours()) (void)handle.signal(SIGKILL);
        (void)wait(std::chrono::minutes(1));
        return fmt::format("SIGKILL after {} s", m_config.services_timeout.count());
    }

    /// The uid the broker's processes run as: the root's leo (nullopt when it has none).
    std::optional<uid_t> leo_uid() const {
        if (const auto u = accounts::find_user(m_root, "leo")) return u->uid;
        return std::nullopt;
    }

    /// Whether the process now at `rec.pid` is the one `rec` means: running, the same start
    /// time, its real uid the recorded one and the root's leo. A record without a start
    /// time proves nothing, and is never taken as a match.
    bool identity_matches(const PidRecord& rec) const {
        const auto info = proc::read_process(rec.pid);
        if (!info || !info->running() || !info->start_time || rec.start_time == 0) return false;
        if (*info->start_time != rec.start_time) return false;
        const auto leo = leo_uid();
        if (!leo || info->real_uid != *leo) return false;
        return !rec.uid || *rec.uid == info->real_uid;
    }

    /// The pid file's process when it is still the process the file means, with a handle
    /// opened on it before the identity check (so the check and a signal through the
    /// handle are about the same process).
    std::optional<LiveProcess> live_process(Component c) {
        const auto text = m_sys.try_read(pid_file(c), 256);
        if (!text) return std::nullopt;
        PidRecord rec;
        std::istringstream in(*text);
        if (!(in >> rec.pid >> rec.start_time) || rec.pid <= 1) return std::nullopt;
        if (long uid = 0; in >> uid) {
            if (uid < 0) return std::nullopt;
            rec.uid = static_cast<uid_t>(uid);
        }
        auto handle = proc::ProcessHandle::open(rec.pid);
        if (!handle || !identity_matches(rec)) return std::nullopt;
        return LiveProcess{rec, std::move(*handle)};
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

} // namespace

std::unique_ptr<ServiceManager> make_supervisor(stdfs::path root, InstallerConfig config) {
    return std::make_unique<Supervisor>(std::move(root), std::move(config));
}

} // namespace leo::installer::detail
