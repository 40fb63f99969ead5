// The running server: starting `postgres` and waiting with PQping, stopping it, judging its lock files against /proc, the log tail.
#include "internal.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/process_handle.hpp"
#include "leo/common/process_info.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/common/system_root.hpp"
#include "leo/migrations/connection.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace leo::migrations::detail {
namespace {

namespace stdfs = std::filesystem;

// ---- the server log (leo's file: read with SystemRoot, never through a link) ----

/// The last `n` non-empty lines of `text`, joined with " | ".
std::string last_lines(const std::string& text, size_t n) {
    std::vector<std::string> lines;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos)
            nl = text.size();
        auto line = trim(text.substr(pos, nl - pos));
        if (!line.empty())
            lines.push_back(std::move(line));
        pos = nl + 1;
    }
    std::string out;
    for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i)
        out += (out.empty() ? "" : " | ") + lines[i];
    return out;
}

/// Size of the log before a start, so the error quotes only what this start wrote.
off_t log_size(const fs::SystemRoot& sys) {
    try {
        const auto st = sys.lstat(k_log_in);
        return st && S_ISREG(st->st_mode) ? st->st_size : 0;
    } catch (const Error&) {
        return 0;
    }
}

/// Bytes [from, to) of the log, at most k_log_tail_bytes (the last ones).
std::string read_log_range(int fd, off_t from, off_t to) {
    if (to - from > k_log_tail_bytes)
        from = to - k_log_tail_bytes;
    std::string out;
    if (from >= to)
        return out;
    out.resize(static_cast<size_t>(to - from));
    size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, from + static_cast<off_t>(done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += static_cast<size_t>(n);
    }
    out.resize(done);
    return out;
}

std::string log_tail_since(const fs::SystemRoot& sys, off_t offset) {
    const auto shown = sys.host(k_log_in).string();
    try {
        if (!sys.exists(k_log_in))
            return "(no server log at " + shown + ")";
        const auto fd = sys.open_read(k_log_in);
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0)
            return "(cannot read the server log " + shown + ")";
        // Only what this start wrote: older lines are an earlier server's, not this failure's
        // (a log smaller than before was replaced, and all of it is this start's).
        if (st.st_size < offset)
            offset = 0;
        const auto lines = last_lines(read_log_range(fd.get(), offset, st.st_size), 10);
        return lines.empty() ? "(the server wrote nothing to its log)" : lines;
    } catch (const Error& e) {
        return fmt::format("(cannot read the server log: {})", e.what());
    }
}


// ---- which process is this data directory's postmaster ----

/// The lines of a lock file's text, trimmed.
std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    size_t pos = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string::npos)
            nl = text.size();
        lines.push_back(trim(text.substr(pos, nl - pos)));
        pos = nl + 1;
    }
    return lines;
}

/// The lines of DATA/postmaster.pid (pid, data directory, start time, port, socket
/// directory, listen address, shared memory key, status), or empty.
std::vector<std::string> postmaster_pid_lines(const fs::SystemRoot& sys, const stdfs::path& data_in) {
    const auto text = sys.try_read(data_in / "postmaster.pid", 64 * 1024);
    return text ? split_lines(*text) : std::vector<std::string>{};
}

std::optional<long> parse_long(const std::string& line) {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(line.c_str(), &end, 10);
    if (line.empty() || end == line.c_str() || *end != '\0' || errno == ERANGE)
        return std::nullopt;
    return v;
}

std::optional<pid_t> parse_pid(const std::string& line) {
    const auto v = parse_long(line);
    if (!v || *v <= 0 || *v > std::numeric_limits<pid_t>::max())
        return std::nullopt;
    return static_cast<pid_t>(*v);
}

std::string utc_time(std::int64_t epoch) {
    const auto t = static_cast<std::time_t>(epoch);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(buf, n);
}

/// "uid 999 (leo)": the name from the root's passwd, which names the sandbox's users.
std::string uid_text(const fs::SystemRoot& sys, uid_t uid) {
    const auto user = accounts::find_user_by_uid(sys.path(), uid);
    return user ? fmt::format("uid {} ({})", uid, printable(user->name)) : fmt::format("uid {}", uid);
}

/// stat() of /proc/PID/cwd (the process's current directory), and its path for messages;
/// nullopt when it cannot be read (not root: EACCES; the process ended).
struct Cwd {
    struct stat st {};
    std::string shown;
};
std::optional<Cwd> cwd_of(pid_t pid) {
    const auto link = fmt::format("/proc/{}/cwd", pid);
    Cwd cwd;
    if (::stat(link.c_str(), &cwd.st) != 0)
        return std::nullopt;
    std::error_code ec;
    cwd.shown = printable(stdfs::read_symlink(link, ec).string());
    return cwd;
}

bool same_file(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

bool is_postgres_program(const proc::ProcessInfo& p) {
    const auto program = p.program();
    return program == "postgres" || program == "postmaster";
}

/// Reap `pid` when it is a child of ours that ended; then proc::process_running().
bool still_running(pid_t pid) {
    int status = 0;
    (void)::waitpid(pid, &status, WNOHANG);
    return proc::process_running(pid);
}

/// PQping the server of `data_in` once it has written its postmaster.pid: the port comes
/// from there (a test server may use its own), the socket directory is ours.
bool accepts_connections(const fs::SystemRoot& sys, const stdfs::path& data_in, pid_t pid) {
    std::vector<std::string> lines;
    try {
        lines = postmaster_pid_lines(sys, data_in);
    } catch (const Error&) {
        return false; // being written
    }
    if (lines.size() < 4 || parse_pid(lines[0]) != pid)
        return false;
    const auto port = parse_pid(lines[3]);
    if (!port)
        return false;
    const auto info = fmt::format("host={} port={} dbname=postgres user={} connect_timeout=5",
                                  conninfo_value(sys.host(k_pgsql_in).string()), *port, k_user);
    return ::PQping(info.c_str()) == PQPING_OK;
}

} // namespace

LockFileVerdict examine_lock_file(const fs::SystemRoot& sys, const stdfs::path& file_in, const stdfs::path& data_in,
                                  const accounts::User& leo) {
    LockFileVerdict v;
    const auto text = sys.try_read(file_in, 64 * 1024);
    if (!text)
        return v;
    v.content = *text;
    v.kind = LockFileVerdict::Kind::stale;
    const std::string name = file_in.filename().string();
    const auto lines = split_lines(*text);
    const auto first = lines.empty() ? std::optional<long>() : parse_long(lines.front());
    if (!first || *first == 0 || *first > std::numeric_limits<pid_t>::max() ||
        *first < -static_cast<long>(std::numeric_limits<pid_t>::max())) {
        v.reason = fmt::format("stale {} holds no pid ({})", name,
                               lines.empty() || lines.front().empty()
                                   ? "it is empty"
                                   : fmt::format("its first line is '{}'", printable(lines.front().substr(0, 40))));
        return v;
    }
    // A standalone backend (postgres --single) writes its pid negated.
    const bool standalone = *first < 0;
    v.pid = static_cast<pid_t>(standalone ? -*first : *first);
    const auto stale = [&](const std::string& what) {
        v.reason = fmt::format("stale {} names pid {}, which is {}", name, v.pid, what);
        return v;
    };

    const auto info = proc::read_process(v.pid);
    if (!info && !proc::proc_mounted() && proc::process_running(v.pid)) {
        // No /proc to identify it (a chroot rpm made for scriptlets): a process with that
        // pid exists, so it is taken for the server, as postgres itself judges its lock
        // files (kill(pid, 0)); the file is never moved aside on a guess.
        v.kind = LockFileVerdict::Kind::ours;
        v.reason.clear();
        return v;
    }
    if (!info || !info->running() || !proc::process_running(v.pid))
        return stale("not running");
    if (info->real_uid != leo.uid || info->effective_uid != leo.uid || !is_postgres_program(*info)) {
        const auto uid = info->real_uid == info->effective_uid
                             ? uid_text(sys, info->real_uid)
                             : fmt::format("{} (effective {})", uid_text(sys, info->real_uid),
                                           uid_text(sys, info->effective_uid));
        return stale(fmt::format("a process of {} running {}", uid, info->program()));
    }

    const auto data = sys.lstat(data_in);
    if (!data || !S_ISDIR(data->st_mode))
        return stale("not this data directory's server (there is no data directory)");
    const auto cwd = cwd_of(v.pid);
    if (cwd && !same_file(cwd->st, *data))
        return stale(fmt::format("not this data directory's server (a postgres of {} working in {})",
                                 printable(leo.name), cwd->shown));
    // Leo's postgres working here (or, not root, not known to work elsewhere): whatever the
    // file's other lines say, this process is never signalled and the file never moved.
    v.live_server_here = true;
    if (standalone)
        return stale("a standalone backend (postgres --single) working in this data directory, not a server");

    struct stat named {};
    if (lines.size() < 2 || lines[1].empty() || ::stat(lines[1].c_str(), &named) != 0 || !same_file(named, *data))
        return stale(fmt::format("not this data directory's server ({} names the data directory '{}')", name,
                                 lines.size() < 2 ? std::string() : printable(lines[1])));
    const auto written = lines.size() < 3 ? std::optional<long>() : parse_long(lines[2]);
    if (!written)
        return stale(fmt::format("not this data directory's server ({} holds no start time)", name));
    if (info->start_time && std::llabs(*info->start_time - *written) > k_start_time_tolerance_s)
        return stale(fmt::format("not this data directory's server (it started at {}, {} says {})",
                                 utc_time(*info->start_time), name, utc_time(*written)));
    v.kind = LockFileVerdict::Kind::ours;
    v.live_server_here = false;
    v.reason.clear();
    return v;
}

std::optional<pid_t> running_postmaster(const fs::SystemRoot& sys, const stdfs::path& data_in,
                                        const std::optional<accounts::User>& leo) {
    if (!leo)
        return std::nullopt;
    const auto v = examine_lock_file(sys, data_in / "postmaster.pid", data_in, *leo);
    if (v.kind != LockFileVerdict::Kind::ours)
        return std::nullopt;
    return v.pid;
}

std::vector<pid_t> postgres_processes_in(const struct stat& dir, uid_t uid) {
    std::vector<pid_t> found;
    std::error_code ec;
    for (stdfs::directory_iterator it("/proc", ec); !ec && it != stdfs::directory_iterator(); it.increment(ec)) {
        const auto name = it->path().filename().string();
        const auto pid = parse_pid(name);
        if (!pid)
            continue;
        const auto info = proc::read_process(*pid);
        if (!info || !info->running() || info->real_uid != uid || !is_postgres_program(*info))
            continue;
        if (const auto cwd = cwd_of(*pid); cwd && same_file(cwd->st, dir))
            found.push_back(*pid);
    }
    std::sort(found.begin(), found.end());
    return found;
}

/// Start `postgres -D DATA` as leo, detached, output appended to the log; wait until it
/// accepts connections. No shell: the arguments are a vector (pg_ctl built a /bin/sh
/// command line). The settings (socket directory, no TCP, port) are in postgresql.conf.
pid_t start_server(const Runner& runner, const fs::SystemRoot& sys, const stdfs::path& data_in) {
    const auto data = sys.host(data_in);
    const auto log = sys.host(k_log_in);
    const auto before = log_size(sys);
    const auto postgres = (runner.bindir / "postgres").string();
    const pid_t pid = subprocess::spawn_detached({postgres, "-D", data.string()}, runner.options, log);
    const auto deadline = std::chrono::steady_clock::now() + k_server_wait;
    for (;;) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            const std::string how = WIFSIGNALED(status) ? fmt::format("was killed by signal {}", WTERMSIG(status))
                                                        : fmt::format("exited with status {}", WEXITSTATUS(status));
            throw DatabaseError(fmt::format("starting PostgreSQL in {} failed: the server {}; server log {}: {}",
                                            data.string(), how, log.string(), log_tail_since(sys, before)));
        }
        if (accepts_connections(sys, data_in, pid))
            return pid;
        if (std::chrono::steady_clock::now() >= deadline)
            throw DatabaseError(fmt::format(
                "starting PostgreSQL in {} failed: the server (pid {}) did not accept connections within {} s; it "
                "may still be starting (`leo-installer db status`); server log {}: {}",
                data.string(), pid, k_server_wait.count(), log.string(), log_tail_since(sys, before)));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

/// Fast shutdown (SIGINT) of the postmaster `pid`, checked again right before the signal,
/// and wait for it to end. The postmaster removes postmaster.pid before it exits.
bool stop_server(const fs::SystemRoot& sys, const stdfs::path& data_in, pid_t pid, const accounts::User& leo) {
    const auto data = sys.host(data_in).string();
    // The handle (a pidfd) first, then the check: a pid reused after the check is another
    // process, which the pidfd does not name (the signal then fails with ESRCH). Without
    // pidfd_open (ENOSYS, EL7) the check is right before kill().
    const auto handle = proc::ProcessHandle::open(pid);
    if (!handle)
        return false;
    const auto verdict = examine_lock_file(sys, data_in / "postmaster.pid", data_in, leo);
    if (verdict.kind != LockFileVerdict::Kind::ours || verdict.pid != pid)
        return false;
    try {
        if (!handle->signal(SIGINT))
            return false;
    } catch (const SystemError&) {
        std::throw_with_nested(DatabaseError(
            fmt::format("stopping PostgreSQL in {}: cannot signal its postmaster (pid {})", data, pid)));
    }
    const auto ended = [&] {
        int status = 0;
        (void)::waitpid(pid, &status, WNOHANG);  // reaped when it is our child
        return handle->ended();
    };
    const auto deadline = std::chrono::steady_clock::now() + k_server_wait;
    while (!ended()) {
        if (std::chrono::steady_clock::now() >= deadline)
            throw DatabaseError(fmt::format(
                "stopping PostgreSQL in {} failed: its postmaster (pid {}) did not end within {} s of a fast "
                "shutdown request (SIGINT); it may be waiting for a long operation to be cancelled. Look at the "
                "server log {}, then run `leo-installer db stop` again, or end it with an immediate shutdown "
                "(kill -QUIT {}) if you accept crash recovery at the next start",
                data, pid, k_server_wait.count(), sys.host(k_log_in).string(), pid));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    (void)still_running(pid); // reap it when it is our child
    return true;
}

} // namespace leo::migrations::detail
