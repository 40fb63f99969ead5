#include "leo/migrations/internal_db.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/common/system_root.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace leo::migrations {
namespace {

namespace stdfs = std::filesystem;

constexpr const char* k_user = "leo";
constexpr int k_port = 5432;
/// sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
constexpr size_t k_max_socket_path = 108;
/// How long start() waits for the server to accept connections, and stop() for it to end.
constexpr auto k_server_wait = std::chrono::seconds(60);
/// How much of the server log an error quotes from (its last lines).
constexpr off_t k_log_tail_bytes = 64 * 1024;

// Paths inside the root (fs::SystemRoot names them so).
const stdfs::path k_pgsql_in{fs::SystemRoot::k_pgsql};
const stdfs::path k_data_in = k_pgsql_in / "data";
const stdfs::path k_staging_in = k_pgsql_in / "data.init";
const stdfs::path k_log_in = k_pgsql_in / "postgresql.log";
constexpr auto k_subprocess_timeout = std::chrono::seconds(180);

std::string trim(const std::string& s) {
    const auto end = s.find_last_not_of(" \t\r\n");
    if (end == std::string::npos)
        return {};
    const auto begin = s.find_first_not_of(" \t\r\n");
    return s.substr(begin, end - begin + 1);
}

bool has_server_binaries(const stdfs::path& dir) {
    return ::access((dir / "initdb").c_str(), X_OK) == 0 && ::access((dir / "postgres").c_str(), X_OK) == 0;
}

/// The newest DIR/<prefix><version>/bin with server binaries ("/usr/lib/postgresql/15/bin").
std::optional<stdfs::path> newest_versioned_bindir(const stdfs::path& parent, const std::string& prefix) {
    std::optional<stdfs::path> best;
    std::string best_version;
    std::error_code ec;
    for (stdfs::directory_iterator it(parent, ec); !ec && it != stdfs::directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.starts_with(prefix))
            continue;
        const std::string version = name.substr(prefix.size());
        try {
            (void)compare_versions(version, version); // validates
        } catch (const MigrationError&) {
            continue;
        }
        const auto bin = it->path() / "bin";
        if (!has_server_binaries(bin))
            continue;
        if (!best || compare_versions(version, best_version) > 0) {
            best = bin;
            best_version = version;
        }
    }
    return best;
}

std::optional<stdfs::path> find_nss_wrapper() {
    for (const char* dir : {"/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"}) {
        const stdfs::path p = stdfs::path(dir) / "libnss_wrapper.so";
        if (::access(p.c_str(), R_OK) == 0)
            return p;
    }
    return std::nullopt;
}

bool is_host_root(const stdfs::path& root) { return fs::SystemRoot(root).is_host(); }

/// A postgresql.conf string literal.
std::string conf_string(const std::string& v) {
    std::string out = "'";
    for (char c : v) {
        if (c == '\'')
            out += '\'';
        out += c;
    }
    return out + "'";
}

std::string mode_string(mode_t mode) { return fmt::format("{:04o}", mode & 07777); }

std::string owner_name(uid_t uid, const accounts::User& leo) {
    if (uid == leo.uid)
        return leo.name;
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::vector<char> buf(4096);
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr)
        return found->pw_name;
    return "uid " + std::to_string(uid);
}

/// Can `user` (uid, primary gid only: the server runs with no supplementary groups)
/// search directory `st`? POSIX picks the owner, group or other class first.
bool searchable_by(const struct stat& st, const accounts::User& user) {
    if (user.uid == 0)
        return true;
    if (st.st_uid == user.uid)
        return (st.st_mode & S_IXUSR) != 0;
    if (st.st_gid == user.gid)
        return (st.st_mode & S_IXGRP) != 0;
    return (st.st_mode & S_IXOTH) != 0;
}

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

/// The major version from `initdb --version` ("initdb (PostgreSQL) 15.4" -> 15,
/// "9.5.25" -> 905: 9.x majors keep their minor).
int major_from_version_text(const std::string& text) {
    const auto p = text.find_first_of("0123456789");
    if (p == std::string::npos)
        return 0;
    char* end = nullptr;
    long major = std::strtol(text.c_str() + p, &end, 10);
    if (major < 10 && end != nullptr && *end == '.') {
        const long minor = std::strtol(end + 1, nullptr, 10);
        return static_cast<int>(major * 100 + minor);
    }
    return static_cast<int>(major * 100);
}


/// The character of `path` that a POSIX shell would interpret, if any.
std::optional<char> first_shell_special(std::string_view path) {
    static constexpr std::string_view k_special = "$`\"\\';&|<>()*?[]{}~!# \t\n";
    for (char c : path) {
        if (k_special.find(c) != std::string_view::npos || static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return c;
    }
    return std::nullopt;
}

std::string shown_char(char c) {
    switch (c) {
    case ' ': return "' ' (a space)";
    case '\t': return "'\\t' (a tab)";
    case '\n': return "'\\n' (a newline)";
    default: break;
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        return fmt::format("'\\x{:02x}' (a control character)", static_cast<unsigned char>(c));
    return fmt::format("'{}'", c);
}

/// `path` with control characters escaped, for a one-line message.
std::string shown_path(std::string_view path) {
    std::string out;
    for (char c : path) {
        if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        else
            out += c;
    }
    return out;
}

} // namespace

std::optional<char> shell_special_char(std::string_view path) { return first_shell_special(path); }

void check_path_for_postgres(const stdfs::path& path, const std::string& what, const std::string& fix) {
    const std::string text = path.string();
    const auto bad = first_shell_special(text);
    if (!bad)
        return;
    throw DatabaseError(fmt::format(
        "{} {} contains {}, which a shell would interpret: PostgreSQL's initdb starts the server through /bin/sh "
        "with this path in its command line; {} (letters, digits and / . _ - + , : @ = % only)",
        what, shown_path(text), shown_char(*bad), fix));
}

void check_root_for_postgres(const stdfs::path& root) {
    check_path_for_postgres(fs::SystemRoot(root).path(), "the root path",
                            "use a root path without shell characters, for example a symbolic link to it with a "
                            "plain name");
}

stdfs::path find_pg_bindir() {
    if (const char* env = std::getenv("LEO_PG_BINDIR"); env != nullptr && *env != '\0') {
        if (has_server_binaries(env))
            return env;
        throw DatabaseError(
            fmt::format("PostgreSQL server binaries (initdb, postgres) not found in LEO_PG_BINDIR={}; install the "
                        "postgresql server package (Debian: postgresql, RHEL: postgresql-server) or set LEO_PG_BINDIR",
                        env));
    }
    std::vector<std::string> looked;
    try {
        subprocess::Options options;
        options.timeout = std::chrono::seconds(30);
        auto r = subprocess::run({"pg_config", "--bindir"}, options);
        const auto dir = trim(r.out);
        if (r.ok() && !dir.empty()) {
            if (has_server_binaries(dir))
                return dir;
            looked.push_back(dir + " (pg_config --bindir)");
        } else {
            looked.push_back("pg_config --bindir (failed)");
        }
    } catch (const SystemError&) {
        looked.push_back("pg_config --bindir (no pg_config)");
    }
    if (auto d = newest_versioned_bindir("/usr/lib/postgresql", ""))
        return *d;
    looked.push_back("/usr/lib/postgresql/*/bin");
    if (auto d = newest_versioned_bindir("/usr", "pgsql-"))
        return *d;
    looked.push_back("/usr/pgsql-*/bin");
    std::string list;
    for (const auto& l : looked)
        list += (list.empty() ? "" : ", ") + l;
    throw DatabaseError(
        fmt::format("PostgreSQL server binaries (initdb, postgres) not found in {}; install the postgresql server "
                    "package (Debian: postgresql, RHEL: postgresql-server) or set LEO_PG_BINDIR",
                    list));
}

InternalDatabase::InternalDatabase(stdfs::path root) : m_root(std::move(root)) {
    m_root = stdfs::absolute(m_root).lexically_normal();
    // "/tmp/r/" normalises to "/tmp/r/": drop the trailing separator so paths compare.
    if (m_root.has_relative_path() && m_root.filename().empty())
        m_root = m_root.parent_path();
}

stdfs::path InternalDatabase::pgsql_dir() const { return fs::SystemRoot(m_root).host(k_pgsql_in); }
stdfs::path InternalDatabase::data_dir() const { return pgsql_dir() / "data"; }
stdfs::path InternalDatabase::socket_dir() const { return pgsql_dir(); }
stdfs::path InternalDatabase::log_file() const { return pgsql_dir() / "postgresql.log"; }

std::string InternalDatabase::conninfo(const std::string& dbname) const {
    return fmt::format("host={} port={} dbname={} user={} connect_timeout=30", conninfo_value(socket_dir().string()),
                       k_port, conninfo_value(dbname), k_user);
}

namespace {

/// How to run PostgreSQL's programs for one root: as leo, with nss_wrapper in a sandbox.
struct Runner {
    stdfs::path bindir;
    accounts::User user;
    subprocess::Options options;

    subprocess::Result run(const std::string& program, std::vector<std::string> args) const {
        args.insert(args.begin(), (bindir / program).string());
        return subprocess::run(args, options);
    }
};

accounts::User leo_user(const stdfs::path& root) {
    auto user = accounts::find_user(root, k_user);
    if (!user)
        throw DatabaseError(fmt::format("user {} does not exist in {}; the internal PostgreSQL runs as {}: "
                                        "install the broker first (`leo-installer install --rpm FILE --root {}` creates the user)",
                                        k_user, fs::SystemRoot(root).host("/etc/passwd").string(), k_user, root.string()));
    if (user->uid == 0)
        throw DatabaseError(fmt::format("user {} has uid 0; PostgreSQL refuses to run as root", k_user));
    return *user;
}

fs::Owner owner_of(const accounts::User& u) { return fs::Owner{u.uid, u.gid}; }

Runner make_runner(const stdfs::path& root) {
    Runner r;
    r.bindir = find_pg_bindir();
    // initdb runs "<bindir>/postgres" --boot through popen(): the same rule as the root.
    check_path_for_postgres(r.bindir, "the PostgreSQL server directory",
                            "install PostgreSQL in a plain directory or set LEO_PG_BINDIR to one");
    r.user = leo_user(root);
    r.options.uid = r.user.uid;
    r.options.gid = r.user.gid;
    r.options.timeout = k_subprocess_timeout;
    r.options.env["HOME"] = fs::SystemRoot(root).host(r.user.home.empty() ? "/home/leo" : r.user.home).string();
    r.options.env["PGPORT"] = std::to_string(k_port);
    r.options.env["LC_ALL"] = "C";
    r.options.env["LANG"] = "C";
    if (!is_host_root(root)) {
        auto nss = find_nss_wrapper();
        if (!nss)
            throw DatabaseError(
                fmt::format("libnss_wrapper.so not found in /usr/lib/x86_64-linux-gnu, /usr/lib64 or /usr/lib; a root "
                            "other than / needs it so PostgreSQL can resolve {}'s uid from {}: install libnss-wrapper",
                            k_user, fs::SystemRoot(root).host("/etc/passwd").string()));
        r.options.env["LD_PRELOAD"] = nss->string();
        r.options.env["NSS_WRAPPER_PASSWD"] = fs::SystemRoot(root).host("/etc/passwd").string();
        r.options.env["NSS_WRAPPER_GROUP"] = fs::SystemRoot(root).host("/etc/group").string();
    }
    // The children change to it after becoming leo (so a link there gives leo nothing new).
    if (fs::SystemRoot(root).lstat(k_pgsql_in))
        r.options.cwd = fs::SystemRoot(root).host(k_pgsql_in);
    return r;
}

std::string output_of(const subprocess::Result& r) {
    std::string line = subprocess::last_line(r.err);
    if (line.empty())
        line = subprocess::last_line(r.out);
    if (r.timed_out)
        line = "timed out" + (line.empty() ? std::string() : ": " + line);
    if (line.empty())
        line = r.signal != 0 ? fmt::format("killed by signal {}", r.signal) : "no output";
    return line;
}

// ---- the server log (leo's file: read with SystemRoot, never through a link) ----

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

/// Work on leo's files inside /home/leo/pgsql, done as leo (least privilege): `work` gets
/// a SystemRoot of `root`. Errors come back as leo::SystemError.
void as_leo(const accounts::User& leo, const stdfs::path& root, const std::function<void(const fs::SystemRoot&)>& work) {
    subprocess::run_as(leo.uid, leo.gid, [&] { work(fs::SystemRoot(root)); });
}

void remove_as_leo(const accounts::User& leo, const stdfs::path& root, const stdfs::path& inside) {
    as_leo(leo, root, [&](const fs::SystemRoot& sys) { sys.remove_all(inside); });
}

/// stat() of the directory `inside` (its target, when it is a link SystemRoot may follow),
/// or nullopt when it does not exist. (Opened O_RDONLY|O_DIRECTORY rather than with
/// SystemRoot::stat, whose O_PATH|O_NOFOLLOW open gives the link itself.)
std::optional<struct stat> directory_stat(const fs::SystemRoot& sys, const stdfs::path& inside) {
    if (!sys.lstat(inside))
        return std::nullopt;
    const auto fd = sys.open_dir(inside);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        throw system_error("cannot stat " + sys.host(inside).string(), errno);
    return st;
}

void write_all(int fd, std::string_view data, const std::string& shown) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw system_error("cannot write " + shown, errno);
        data.remove_prefix(static_cast<size_t>(n));
    }
}

} // namespace

void InternalDatabase::check_prerequisites() const {
    check_root_for_postgres(m_root);
    const auto bindir = find_pg_bindir();
    check_path_for_postgres(bindir, "the PostgreSQL server directory",
                            "install PostgreSQL in a plain directory or set LEO_PG_BINDIR to one");
    const auto user = leo_user(m_root);
    if (!is_host_root(m_root) && !find_nss_wrapper())
        throw DatabaseError(fmt::format(
            "libnss_wrapper.so not found in /usr/lib/x86_64-linux-gnu, /usr/lib64 or /usr/lib; a root other "
            "than / needs it so PostgreSQL can resolve {}'s uid from {}: install libnss-wrapper",
            k_user, fs::SystemRoot(m_root).host("/etc/passwd").string()));

    // Every existing directory from pgsql_dir()'s parent up to / must be searchable:
    // inside the root through SystemRoot (no unsafe link followed), above it on the host.
    const fs::SystemRoot sys(m_root);
    const auto refuse = [&](const stdfs::path& dir, const struct stat& st) {
        throw DatabaseError(fmt::format(
            "PostgreSQL runs as {} (uid {}) and cannot traverse {} (mode {} owner {}); make it searchable: "
            "chmod o+x {}",
            k_user, user.uid, dir.string(), mode_string(st.st_mode), owner_name(st.st_uid, user), dir.string()));
    };
    for (auto inside = k_pgsql_in.parent_path();; inside = inside.parent_path()) {
        if (const auto st = directory_stat(sys, inside); st && !searchable_by(*st, user))
            refuse(sys.host(inside), *st);
        if (inside == inside.parent_path())
            break;
    }
    for (auto dir = sys.path(); dir != dir.parent_path();) {
        dir = dir.parent_path();
        struct stat st {};
        if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && !searchable_by(st, user))
            refuse(dir, st);
    }

    const auto socket = (socket_dir() / fmt::format(".s.PGSQL.{}", k_port)).string();
    if (socket.size() >= k_max_socket_path)
        throw DatabaseError(fmt::format("the PostgreSQL socket path {} is {} bytes; a unix socket path must be "
                                        "shorter than {} bytes: use a shorter root directory",
                                        socket, socket.size(), k_max_socket_path));
}

bool InternalDatabase::init() {
    check_prerequisites();
    const fs::SystemRoot sys(m_root);
    // A link at /home/leo/pgsql (or data) is refused here, naming it: /home/leo is leo's.
    if (sys.exists(k_data_in / "PG_VERSION"))
        return false;
    if (sys.exists(k_data_in))
        throw DatabaseError(fmt::format("{} exists but is not a PostgreSQL data directory (no PG_VERSION); "
                                        "move it away and run init again",
                                        data_dir().string()));

    // The socket directory is pgsql_dir(): 0700 and owned by leo, so only leo and root can
    // reach the socket at all; that is what makes local "trust" authentication safe.
    // make_dirs() refuses a symbolic link there and sets owner and mode on the descriptor.
    const auto user = leo_user(m_root);
    const auto pgsql = pgsql_dir();
    sys.make_dirs(k_pgsql_in, 0700, owner_of(user));

    const auto runner = make_runner(m_root);
    // initdb works in a staging directory renamed to data/ only when the database "leo"
    // exists: a data directory is complete or absent, so init() can always be re-run.
    const auto staging = sys.host(k_staging_in);
    if (sys.exists(k_staging_in)) {
        if (const auto pid = running_postmaster(sys, k_staging_in, user))
            stop_server(sys, k_staging_in, *pid);
        try {
            remove_as_leo(user, m_root, k_staging_in);
        } catch (const SystemError& e) {
            throw DatabaseError(fmt::format("cannot remove the unfinished {}: {}; remove it and run init again",
                                            staging.string(), e.what()));
        }
    }

    const auto version = runner.run("initdb", {"--version"});
    const int major = version.ok() ? major_from_version_text(version.out) : 0;
    if (major == 0)
        throw DatabaseError(
            fmt::format("{} --version failed: {}", (runner.bindir / "initdb").string(), output_of(version)));
    // scram-sha-256 exists from PostgreSQL 10; the field's 9.5 has md5.
    const std::string host_auth = major >= 1000 ? "scram-sha-256" : "md5";
    auto r = runner.run("initdb", {"-D", staging.string(), "-U", k_user, "-E", "UTF8", "--locale=C",
                                   "--auth-local=trust", "--auth-host=" + host_auth});
    const auto discard_staging = [&] {
        try {
            if (!running_postmaster(sys, k_staging_in, user))
                remove_as_leo(user, m_root, k_staging_in);
        } catch (const Error&) {
            // the next init() removes it
        }
    };
    if (!r.ok()) {
        discard_staging();
        throw DatabaseError(fmt::format("initdb {} failed: {}", staging.string(), output_of(r)));
    }

    try {
        const std::string settings = fmt::format(
            "\n# Added by leo-installer: no TCP listener; the socket directory is 0700 and owned by {0},\n"
            "# so only {0} and root can connect (local connections use trust authentication).\n"
            "listen_addresses = ''\n{1} = {2}\nport = {3}\n",
            k_user, major >= 903 ? "unix_socket_directories" : "unix_socket_directory",
            conf_string(socket_dir().string()), k_port);
        as_leo(user, m_root, [&](const fs::SystemRoot& leo_sys) {
            const auto conf = k_staging_in / "postgresql.conf";
            const auto fd = leo_sys.open_append(conf, 0600);
            write_all(fd.get(), settings, leo_sys.host(conf).string());
            if (::fsync(fd.get()) != 0)
                throw system_error("cannot fsync " + leo_sys.host(conf).string(), errno);
        });
        const pid_t pid = start_server(runner, sys, k_staging_in);
        try {
            auto conn = Connection::open(conninfo("postgres"));
            conn.exec("CREATE DATABASE leo");
        } catch (...) {
            try {
                stop_server(sys, k_staging_in, pid);
            } catch (const Error&) {
            }
            throw;
        }
        stop_server(sys, k_staging_in, pid);
    } catch (const Error& e) {
        discard_staging();
        throw DatabaseError(
            fmt::format("initialising the internal database in {} failed: {}", pgsql.string(), e.what()));
    }
    try {
        as_leo(user, m_root, [](const fs::SystemRoot& leo_sys) { leo_sys.rename(k_staging_in, k_data_in); });
    } catch (const SystemError& e) {
        throw DatabaseError(
            fmt::format("cannot rename {} to {}: {}", staging.string(), data_dir().string(), e.what()));
    }
    return true;
}

bool InternalDatabase::start() {
    const auto st = status();
    if (st.state == DbState::not_initialised)
        throw DatabaseError(fmt::format("the internal database in {} is not initialised: run `leo-installer db init "
                                        "--root {}`",
                                        data_dir().string(), m_root.string()));
    if (st.state == DbState::running)
        return false;
    check_prerequisites();
    const auto runner = make_runner(m_root);
    (void)start_server(runner, fs::SystemRoot(m_root), k_data_in);
    return true;
}

bool InternalDatabase::stop() {
    const auto st = status();
    if (st.state != DbState::running || !st.pid)
        return false;
    stop_server(fs::SystemRoot(m_root), k_data_in, static_cast<pid_t>(*st.pid));
    return true;
}

DbStatus InternalDatabase::status() const {
    check_root_for_postgres(m_root);
    const fs::SystemRoot sys(m_root);
    DbStatus st;
    st.data_dir = data_dir().string();
    auto version = sys.try_read(k_data_in / "PG_VERSION", 4096);
    if (!version)
        return st;
    st.server_version = trim(*version);
    st.state = DbState::stopped;
    // The pid of postmaster.pid counts only when that process is this data directory's
    // postmaster (leo's postgres, working in this directory): a stale file whose pid now
    // belongs to another process says "stopped".
    if (const auto pid = running_postmaster(sys, k_data_in, accounts::find_user(m_root, k_user))) {
        st.state = DbState::running;
        st.pid = *pid;
    }
    return st;
}

} // namespace leo::migrations
