// InternalDatabase: the instance's paths, its prerequisites, and init, start, stop and status.
#include "leo/migrations/internal_db.hpp"
#include "leo/common/hint.hpp"

#include "internal.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/clock.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/log.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/common/system_root.hpp"
#include "leo/migrations/connection.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace leo::migrations {
namespace stdfs = std::filesystem;
using namespace detail;

namespace {

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

} // namespace

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
    // The socket's directory is leo's: a server there is leo's to start; offer it nothing of root's.
    ignore_ambient_credentials();
    return fmt::format("host={} port={} dbname={} user={} connect_timeout=30", conninfo_value(socket_dir().string()),
                       k_port, conninfo_value(dbname), k_user);
}

namespace {

fs::Owner owner_of(const accounts::User& u) { return fs::Owner{u.uid, u.gid}; }

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
            (void)stop_server(sys, k_staging_in, *pid, user);
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
                (void)stop_server(sys, k_staging_in, pid, user);
            } catch (const Error&) {
            }
            throw;
        }
        (void)stop_server(sys, k_staging_in, pid, user);
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

namespace {

/// How long start() waits for postgres processes left in the data directory (the backends
/// of a killed postmaster end soon after it) before refusing.
constexpr auto k_leftover_wait = std::chrono::seconds(10);

/// "DATA is owned by uid X (NAME), expected leo (uid Y)"; NAME from the root's passwd.
std::string ownership_text(const fs::SystemRoot& sys, const stdfs::path& shown, uid_t owner,
                           const accounts::User& leo) {
    const auto user = accounts::find_user_by_uid(sys.path(), owner);
    return fmt::format("{} is owned by uid {} ({}), expected {} (uid {})", shown.string(), owner,
                       user ? printable(user->name) : "no user of that uid in " + sys.host("/etc/passwd").string(),
                       leo.name, leo.uid);
}

std::string pid_list(const std::vector<pid_t>& pids) {
    std::string out;
    for (const auto p : pids)
        out += (out.empty() ? "" : ", ") + std::to_string(p);
    return out;
}

/// `file_in` + `suffix`, or with ".1", ".2" ... after it when that name is taken.
stdfs::path free_name(const fs::SystemRoot& sys, const stdfs::path& file_in, const std::string& suffix) {
    stdfs::path candidate = file_in.string() + suffix;
    for (int i = 1; sys.exists(candidate); ++i)
        candidate = fmt::format("{}{}.{}", file_in.string(), suffix, i);
    return candidate;
}

/// Before a start: refuse while a postgres of leo still works in the data directory
/// (waiting up to k_leftover_wait for a killed postmaster's backends to end), then move
/// every stale lock file aside as leo (DATA/postmaster.pid, PGSQL/.s.PGSQL.PORT.lock),
/// saying so through `notice` and the log. A file that changed since it was judged is
/// left alone (a server starting meanwhile wrote it): the refusal says to run again.
void clear_stale_lock_files(const stdfs::path& root, const fs::SystemRoot& sys, const accounts::User& leo,
                            const std::function<void(const std::string&)>& notice) {
    std::vector<stdfs::path> files{k_data_in / "postmaster.pid"};
    for (const auto& name : sys.list(k_pgsql_in)) {
        if (name.starts_with(".s.PGSQL.") && name.ends_with(".lock"))
            files.push_back(k_pgsql_in / name);
    }
    std::vector<std::pair<stdfs::path, LockFileVerdict>> stale;
    for (const auto& file : files) {
        auto v = examine_lock_file(sys, file, k_data_in, leo);
        if (v.kind == LockFileVerdict::Kind::ours)
            throw DatabaseError(fmt::format(
                "cannot start the internal database: its server runs (pid {} holds {}) although {} does not name "
                "it; stop it (kill -INT {}) and run {} again",
                v.pid, sys.host(file).string(), sys.host(k_data_in / "postmaster.pid").string(), v.pid,
                command_hint("db start")));
        if (v.kind != LockFileVerdict::Kind::stale)
            continue;
        if (v.live_server_here)
            throw DatabaseError(fmt::format(
                "cannot start the internal database: {} ({}); that process is a postgres of {} working in {}, so "
                "the file is not moved aside and the process is not signalled. If it is this directory's server "
                "(a changed system clock makes its start time disagree), stop it with `kill -INT {}`; then run "
                "{} again",
                v.reason, sys.host(file).string(), leo.name, sys.host(k_data_in).string(), v.pid,
                command_hint("db start")));
        stale.emplace_back(file, std::move(v));
    }

    const auto data = sys.lstat(k_data_in);
    if (data) {
        const auto deadline = std::chrono::steady_clock::now() + k_leftover_wait;
        for (auto left = postgres_processes_in(*data, leo.uid); !left.empty();
             left = postgres_processes_in(*data, leo.uid)) {
            if (std::chrono::steady_clock::now() >= deadline)
                throw DatabaseError(fmt::format(
                    "cannot start the internal database: postgres processes of {} still work in {} (pid {}), "
                    "{} s after it was found stopped: the backends of a server that ended without shutting "
                    "down. A second server beside them could corrupt the database: wait for them to end (or end "
                    "them: kill -TERM {}), then run {} again",
                    leo.name, sys.host(k_data_in).string(), pid_list(left), k_leftover_wait.count(),
                    pid_list(left), command_hint("db start")));
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }

    const std::string suffix = ".stale-" + clock::utc_now("%Y%m%dT%H%M%SZ");
    for (const auto& entry : stale) {
        // Named copies, not structured bindings: a lambda may not capture those before C++20
        // (clang 14, the fuzz build's compiler, refuses).
        const auto& file = entry.first;
        const auto& v = entry.second;
        const auto target = free_name(sys, file, suffix);
        try {
            as_leo(leo, root, [&](const fs::SystemRoot& leo_sys) {
                const auto now = leo_sys.try_read(file, 64 * 1024);
                if (!now)
                    return; // gone meanwhile: nothing to move
                if (*now != v.content)
                    throw SystemError(fmt::format("{} changed while it was being moved aside (a server may be "
                                                  "starting): run {}",
                                                  leo_sys.host(file).string(), command_hint("db status")));
                leo_sys.rename(file, target);
            });
        } catch (const SystemError& e) {
            throw DatabaseError(fmt::format("cannot move the {} aside: {}", v.reason, e.what()));
        }
        const auto said = fmt::format("{}: moved it aside to {}", v.reason, sys.host(target).string());
        log::warning("internal database: {}", said);
        if (notice)
            notice(said);
    }
}

} // namespace

bool InternalDatabase::start(const std::function<void(const std::string&)>& notice) {
    const auto st = status();
    if (st.state == DbState::not_initialised)
        throw DatabaseError(fmt::format("the internal database in {} is not initialised: run `leo-installer db init "
                                        "--root {}`",
                                        data_dir().string(), m_root.string()));
    if (st.state == DbState::running)
        return false;
    const auto user = leo_user(m_root);
    if (!st.ownership_problem.empty())
        throw DatabaseError(fmt::format(
            "cannot start the internal database: {}; PostgreSQL runs as {} and refuses a data directory it does not "
            "own. If this is the broker's database, give it back (chown -R {}:{} {}) and run `leo-installer db "
            "start` again",
            st.ownership_problem, user.name, user.uid, user.gid, data_dir().string()));
    check_prerequisites();
    const fs::SystemRoot sys(m_root);
    clear_stale_lock_files(m_root, sys, user, notice);
    const auto runner = make_runner(m_root);
    (void)start_server(runner, sys, k_data_in);
    return true;
}

bool InternalDatabase::stop() {
    const auto st = status();
    if (st.state != DbState::running || !st.pid)
        return false;
    return stop_server(fs::SystemRoot(m_root), k_data_in, static_cast<pid_t>(*st.pid), leo_user(m_root));
}

DbStatus InternalDatabase::status() const {
    check_root_for_postgres(m_root);
    const fs::SystemRoot sys(m_root);
    DbStatus st;
    st.data_dir = data_dir().string();
    auto version = sys.try_read(k_data_in / "PG_VERSION", 4096);
    if (!version) {
        st.detail = sys.exists(k_data_in) ? fmt::format("{} exists but holds no PG_VERSION", st.data_dir)
                                          : fmt::format("{} does not exist", st.data_dir);
        return st;
    }
    st.server_version = trim(*version);
    st.state = DbState::stopped;
    const auto leo = accounts::find_user(m_root, k_user);
    if (!leo) {
        st.detail = fmt::format("there is no user {} in {}", k_user, sys.host("/etc/passwd").string());
        return st;
    }
    if (const auto data = directory_stat(sys, k_data_in); data && data->st_uid != leo->uid)
        st.ownership_problem = ownership_text(sys, data_dir(), data->st_uid, *leo);
    // postmaster.pid counts only when it is believed (examine_lock_file): a stale file
    // whose pid now belongs to another process says "stopped", and why.
    const auto v = examine_lock_file(sys, k_data_in / "postmaster.pid", k_data_in, *leo);
    if (v.kind == LockFileVerdict::Kind::ours) {
        st.state = DbState::running;
        st.pid = v.pid;
    } else if (v.kind == LockFileVerdict::Kind::stale) {
        st.detail = v.reason;
        st.stale_pid = v.pid;
    }
    return st;
}

} // namespace leo::migrations
