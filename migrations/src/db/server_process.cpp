// The running server: starting `postgres` and waiting with PQping, stopping it, believing a postmaster pid through /proc, the log tail.
#include "internal.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/common/system_root.hpp"
#include "leo/migrations/connection.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
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
        auto lines = last_lines(read_log_range(fd.get(), offset, st.st_size), 10);
        if (lines.empty())
            lines = last_lines(read_log_range(fd.get(), 0, st.st_size), 10);
        return lines.empty() ? "(server log is empty)" : lines;
    } catch (const Error& e) {
        return fmt::format("(cannot read the server log: {})", e.what());
    }
}


// ---- which process is this data directory's postmaster ----

std::optional<std::string> read_proc(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // not-under-root: /proc of the live system
    if (fd < 0)
        return std::nullopt;
    fs::UniqueFd guard(fd);
    std::string out;
    std::array<char, 4096> buf{};
    while (out.size() < 65536) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        out.append(buf.data(), static_cast<size_t>(n));
    }
    return out;
}

/// The process exists and is not a zombie (a child of ours that ended, or an orphan a
/// container's init does not reap, still answers kill(pid, 0)).
bool process_alive(pid_t pid) {
    if (::kill(pid, 0) != 0 && errno != EPERM)
        return false;
    const auto stat = read_proc(fmt::format("/proc/{}/stat", pid));
    if (!stat)
        return true; // no /proc: kill's answer stands
    const auto paren = stat->rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat->size())
        return true;
    const char state = (*stat)[paren + 2];
    return state != 'Z' && state != 'X';
}

/// Reap `pid` when it is a child of ours that ended; then process_alive().
bool still_running(pid_t pid) {
    int status = 0;
    (void)::waitpid(pid, &status, WNOHANG);
    return process_alive(pid);
}

/// Is `pid` the postmaster of the data directory `data` (stat of the directory)?
/// A live process whose real and effective uid are leo's, whose program is postgres (or
/// postmaster), and whose current directory is `data` (the postmaster changes to its data
/// directory; checked when /proc/PID/cwd can be read, which it can as root). A stale
/// postmaster.pid naming an unrelated process is therefore never believed.
bool is_postmaster_of(pid_t pid, const struct stat& data, uid_t leo_uid) {
    if (pid <= 0 || !process_alive(pid))
        return false;
    const auto status = read_proc(fmt::format("/proc/{}/status", pid));
    if (!status)
        return false;
    const auto uid_at = status->find("\nUid:");
    if (uid_at == std::string::npos)
        return false;
    unsigned long real = 0;
    unsigned long effective = 0;
    if (std::sscanf(status->c_str() + uid_at + 5, "%lu %lu", &real, &effective) != 2 || real != leo_uid ||
        effective != leo_uid)
        return false;
    const auto cmdline = read_proc(fmt::format("/proc/{}/cmdline", pid));
    if (!cmdline || cmdline->empty())
        return false;
    const std::string argv0 = cmdline->substr(0, cmdline->find('\0'));
    const std::string program = stdfs::path(argv0).filename().string();
    if (program != "postgres" && program != "postmaster")
        return false;
    struct stat cwd {};
    if (::stat(fmt::format("/proc/{}/cwd", pid).c_str(), &cwd) != 0)
        return errno == EACCES; // not root: the uid and the program must do
    return cwd.st_dev == data.st_dev && cwd.st_ino == data.st_ino;
}

/// The lines of DATA/postmaster.pid (pid, data directory, start time, port, socket
/// directory, listen address, shared memory key, status), or empty.
std::vector<std::string> postmaster_pid_lines(const fs::SystemRoot& sys, const stdfs::path& data_in) {
    std::vector<std::string> lines;
    const auto text = sys.try_read(data_in / "postmaster.pid", 64 * 1024);
    if (!text)
        return lines;
    size_t pos = 0;
    while (pos < text->size()) {
        auto nl = text->find('\n', pos);
        if (nl == std::string::npos)
            nl = text->size();
        lines.push_back(trim(text->substr(pos, nl - pos)));
        pos = nl + 1;
    }
    return lines;
}

std::optional<pid_t> parse_pid(const std::string& line) {
    char* end = nullptr;
    const long pid = std::strtol(line.c_str(), &end, 10);
    if (end == line.c_str() || *end != '\0' || pid <= 0 || pid > std::numeric_limits<pid_t>::max())
        return std::nullopt;
    return static_cast<pid_t>(pid);
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

/// The pid of the postmaster running in `data_in` (a data directory inside the root),
/// after checking that it really is (is_postmaster_of), or nullopt.
std::optional<pid_t> running_postmaster(const fs::SystemRoot& sys, const stdfs::path& data_in,
                                        const std::optional<accounts::User>& leo) {
    if (!leo)
        return std::nullopt;
    const auto data = sys.lstat(data_in);
    if (!data || !S_ISDIR(data->st_mode))
        return std::nullopt;
    const auto lines = postmaster_pid_lines(sys, data_in);
    if (lines.empty())
        return std::nullopt;
    const auto pid = parse_pid(lines.front());
    if (!pid || !is_postmaster_of(*pid, *data, leo->uid))
        return std::nullopt;
    return pid;
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

/// Fast shutdown (SIGINT) of the postmaster `pid` (checked by running_postmaster()), and
/// wait for it to end. The postmaster removes postmaster.pid before it exits.
void stop_server(const fs::SystemRoot& sys, const stdfs::path& data_in, pid_t pid) {
    const auto data = sys.host(data_in).string();
    if (::kill(pid, SIGINT) != 0) {
        if (errno == ESRCH)
            return;
        throw system_error(fmt::format("stopping PostgreSQL in {}: cannot signal its postmaster (pid {})", data, pid),
                           errno);
    }
    const auto deadline = std::chrono::steady_clock::now() + k_server_wait;
    while (still_running(pid)) {
        if (std::chrono::steady_clock::now() >= deadline)
            throw DatabaseError(fmt::format(
                "stopping PostgreSQL in {} failed: its postmaster (pid {}) did not end within {} s of a fast "
                "shutdown request (SIGINT); it may be waiting for a long operation to be cancelled. Look at the "
                "server log {}, then run `leo-installer db stop` again, or end it with an immediate shutdown "
                "(kill -QUIT {}) if you accept crash recovery at the next start",
                data, pid, k_server_wait.count(), sys.host(k_log_in).string(), pid));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

} // namespace leo::migrations::detail
