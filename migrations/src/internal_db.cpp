#include "leo/migrations/internal_db.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <map>
#include <system_error>
#include <utility>
#include <vector>

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

namespace leo::migrations {
namespace {

namespace stdfs = std::filesystem;

constexpr const char* k_user = "leo";
constexpr int k_port = 5432;
/// sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
constexpr size_t k_max_socket_path = 108;
constexpr int k_pg_ctl_wait_seconds = 60;
constexpr auto k_subprocess_timeout = std::chrono::seconds(180);

std::string trim(const std::string& s) {
    const auto end = s.find_last_not_of(" \t\r\n");
    if (end == std::string::npos)
        return {};
    const auto begin = s.find_first_not_of(" \t\r\n");
    return s.substr(begin, end - begin + 1);
}

bool has_server_binaries(const stdfs::path& dir) {
    return ::access((dir / "initdb").c_str(), X_OK) == 0 && ::access((dir / "pg_ctl").c_str(), X_OK) == 0;
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

bool is_host_root(const stdfs::path& root) {
    std::error_code ec;
    auto canon = stdfs::weakly_canonical(root, ec);
    return (ec ? root.lexically_normal() : canon) == "/";
}

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

/// The pid in the first line of DATA/postmaster.pid.
std::optional<long> postmaster_pid(const stdfs::path& data) {
    auto text = fs::try_read_file(data / "postmaster.pid");
    if (!text)
        return std::nullopt;
    const auto line = text->substr(0, text->find('\n'));
    char* end = nullptr;
    const long pid = std::strtol(line.c_str(), &end, 10);
    if (end == line.c_str() || pid <= 0)
        return std::nullopt;
    return pid;
}

bool process_alive(long pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

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

} // namespace

stdfs::path find_pg_bindir() {
    if (const char* env = std::getenv("LEO_PG_BINDIR"); env != nullptr && *env != '\0') {
        if (has_server_binaries(env))
            return env;
        throw DatabaseError(
            fmt::format("PostgreSQL server binaries (initdb, pg_ctl) not found in LEO_PG_BINDIR={}; install the "
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
        fmt::format("PostgreSQL server binaries (initdb, pg_ctl) not found in {}; install the postgresql server "
                    "package (Debian: postgresql, RHEL: postgresql-server) or set LEO_PG_BINDIR",
                    list));
}

InternalDatabase::InternalDatabase(stdfs::path root) : m_root(std::move(root)) {
    m_root = stdfs::absolute(m_root).lexically_normal();
    // "/tmp/r/" normalises to "/tmp/r/": drop the trailing separator so paths compare.
    if (m_root.has_relative_path() && m_root.filename().empty())
        m_root = m_root.parent_path();
}

stdfs::path InternalDatabase::pgsql_dir() const { return fs::under_root(m_root, "/home/leo/pgsql"); }
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
                                        k_user, fs::under_root(root, "/etc/passwd").string(), k_user, root.string()));
    if (user->uid == 0)
        throw DatabaseError(fmt::format("user {} has uid 0; PostgreSQL refuses to run as root", k_user));
    return *user;
}

Runner make_runner(const stdfs::path& root, const stdfs::path& pgsql, const stdfs::path& data) {
    Runner r;
    r.bindir = find_pg_bindir();
    r.user = leo_user(root);
    r.options.uid = r.user.uid;
    r.options.gid = r.user.gid;
    r.options.timeout = k_subprocess_timeout;
    r.options.env["HOME"] = fs::under_root(root, r.user.home.empty() ? "/home/leo" : r.user.home).string();
    r.options.env["PGDATA"] = data.string();
    r.options.env["PGPORT"] = std::to_string(k_port);
    r.options.env["LC_ALL"] = "C";
    r.options.env["LANG"] = "C";
    if (!is_host_root(root)) {
        auto nss = find_nss_wrapper();
        if (!nss)
            throw DatabaseError(
                fmt::format("libnss_wrapper.so not found in /usr/lib/x86_64-linux-gnu, /usr/lib64 or /usr/lib; a root "
                            "other than / needs it so PostgreSQL can resolve {}'s uid from {}: install libnss-wrapper",
                            k_user, fs::under_root(root, "/etc/passwd").string()));
        r.options.env["LD_PRELOAD"] = nss->string();
        r.options.env["NSS_WRAPPER_PASSWD"] = fs::under_root(root, "/etc/passwd").string();
        r.options.env["NSS_WRAPPER_GROUP"] = fs::under_root(root, "/etc/group").string();
    }
    std::error_code ec;
    if (stdfs::is_directory(pgsql, ec))
        r.options.cwd = pgsql;
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

/// Size of the log before a start, so the error quotes only what this start wrote.
uintmax_t file_size_or_zero(const stdfs::path& p) {
    std::error_code ec;
    auto n = stdfs::file_size(p, ec);
    return ec ? 0 : n;
}

std::string log_tail_since(const stdfs::path& log, uintmax_t offset) {
    auto text = fs::try_read_file(log);
    if (!text)
        return "(no server log at " + log.string() + ")";
    std::string tail = offset < text->size() ? text->substr(offset) : std::string();
    auto lines = last_lines(tail, 10);
    if (lines.empty())
        lines = last_lines(*text, 10);
    return lines.empty() ? "(server log is empty)" : lines;
}

void pg_ctl_start(const Runner& runner, const stdfs::path& data, const stdfs::path& log) {
    const auto before = file_size_or_zero(log);
    auto r = runner.run("pg_ctl", {"-D", data.string(), "-l", log.string(), "-w", "-t",
                                   std::to_string(k_pg_ctl_wait_seconds), "start"});
    if (!r.ok()) {
        // pg_ctl ends with "Examine the log output.": quote its reason and the log instead.
        std::string reason = output_of(r);
        if (reason.starts_with("Examine the log")) {
            auto err = trim(r.err);
            err = trim(err.substr(0, err.rfind('\n') == std::string::npos ? 0 : err.rfind('\n')));
            reason = err.empty() ? "pg_ctl failed" : subprocess::last_line(err);
        }
        throw DatabaseError(fmt::format("starting PostgreSQL in {} failed: {}; server log {}: {}", data.string(),
                                        reason, log.string(), log_tail_since(log, before)));
    }
}

void pg_ctl_stop(const Runner& runner, const stdfs::path& data, const std::string& mode) {
    auto r = runner.run("pg_ctl",
                        {"-D", data.string(), "-m", mode, "-w", "-t", std::to_string(k_pg_ctl_wait_seconds), "stop"});
    if (!r.ok())
        throw DatabaseError(fmt::format("stopping PostgreSQL in {} failed: {}", data.string(), output_of(r)));
}

bool running_in(const stdfs::path& data) {
    auto pid = postmaster_pid(data);
    return pid && process_alive(*pid);
}

/// mkdir `dir` and its missing parents; parents we create get 0755 (root-owned, traversable).
void create_parents(const stdfs::path& dir) {
    std::vector<stdfs::path> missing;
    std::error_code ec;
    for (auto p = dir; !p.empty() && !stdfs::exists(p, ec); p = p.parent_path()) {
        missing.push_back(p);
        if (p == p.parent_path())
            break;
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST)
            throw system_error("cannot create " + it->string(), errno);
        ::chmod(it->c_str(), 0755);
    }
}

} // namespace

void InternalDatabase::check_prerequisites() const {
    (void)find_pg_bindir();
    const auto user = leo_user(m_root);
    if (!is_host_root(m_root) && !find_nss_wrapper())
        throw DatabaseError(fmt::format(
            "libnss_wrapper.so not found in /usr/lib/x86_64-linux-gnu, /usr/lib64 or /usr/lib; a root other "
            "than / needs it so PostgreSQL can resolve {}'s uid from {}: install libnss-wrapper",
            k_user, fs::under_root(m_root, "/etc/passwd").string()));

    // Every existing directory from pgsql_dir()'s parent up to / must be searchable.
    for (auto dir = pgsql_dir().parent_path();; dir = dir.parent_path()) {
        struct stat st {};
        if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && !searchable_by(st, user))
            throw DatabaseError(fmt::format(
                "PostgreSQL runs as {} (uid {}) and cannot traverse {} (mode {} owner {}); make it searchable: "
                "chmod o+x {}",
                k_user, user.uid, dir.string(), mode_string(st.st_mode), owner_name(st.st_uid, user), dir.string()));
        if (dir == dir.parent_path())
            break;
    }

    const auto socket = (socket_dir() / fmt::format(".s.PGSQL.{}", k_port)).string();
    if (socket.size() >= k_max_socket_path)
        throw DatabaseError(fmt::format("the PostgreSQL socket path {} is {} bytes; a unix socket path must be "
                                        "shorter than {} bytes: use a shorter root directory",
                                        socket, socket.size(), k_max_socket_path));
}

bool InternalDatabase::init() {
    check_prerequisites();
    std::error_code ec;
    if (stdfs::exists(data_dir() / "PG_VERSION", ec))
        return false;
    if (stdfs::exists(data_dir(), ec))
        throw DatabaseError(fmt::format("{} exists but is not a PostgreSQL data directory (no PG_VERSION); "
                                        "move it away and run init again",
                                        data_dir().string()));

    // The socket directory is pgsql_dir(): 0700 and owned by leo, so only leo and root can
    // reach the socket at all; that is what makes local "trust" authentication safe.
    const auto pgsql = pgsql_dir();
    create_parents(pgsql.parent_path());
    if (::mkdir(pgsql.c_str(), 0700) != 0 && errno != EEXIST)
        throw system_error("cannot create " + pgsql.string(), errno);
    const auto user = leo_user(m_root);
    if (::chown(pgsql.c_str(), user.uid, user.gid) != 0)
        throw system_error("cannot chown " + pgsql.string(), errno);
    if (::chmod(pgsql.c_str(), 0700) != 0)
        throw system_error("cannot chmod " + pgsql.string(), errno);

    const auto runner = make_runner(m_root, pgsql, data_dir());
    // initdb works in a staging directory renamed to data/ only when the database "leo"
    // exists: a data directory is complete or absent, so init() can always be re-run.
    const auto staging = pgsql / "data.init";
    if (stdfs::exists(staging, ec)) {
        if (running_in(staging)) {
            try {
                pg_ctl_stop(runner, staging, "immediate");
            } catch (const DatabaseError&) {
            }
        }
        stdfs::remove_all(staging, ec);
        if (ec)
            throw DatabaseError(fmt::format("cannot remove the unfinished {}: {}", staging.string(), ec.message()));
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
    if (!r.ok()) {
        stdfs::remove_all(staging, ec);
        throw DatabaseError(fmt::format("initdb {} failed: {}", staging.string(), output_of(r)));
    }

    try {
        {
            std::ofstream conf(staging / "postgresql.conf", std::ios::app);
            conf << "\n# Added by leo-installer: no TCP listener; the socket directory is 0700 and owned by " << k_user
                 << ",\n# so only " << k_user << " and root can connect (local connections use trust authentication).\n"
                 << "listen_addresses = ''\n"
                 << (major >= 903 ? "unix_socket_directories" : "unix_socket_directory") << " = "
                 << conf_string(socket_dir().string()) << "\n"
                 << "port = " << k_port << "\n";
            conf.flush();
            if (!conf)
                throw DatabaseError("cannot write " + (staging / "postgresql.conf").string());
        }
        pg_ctl_start(runner, staging, log_file());
        try {
            auto conn = Connection::open(conninfo("postgres"));
            conn.exec("CREATE DATABASE leo");
        } catch (...) {
            try {
                pg_ctl_stop(runner, staging, "fast");
            } catch (const DatabaseError&) {
            }
            throw;
        }
        pg_ctl_stop(runner, staging, "fast");
    } catch (const DatabaseError& e) {
        if (!running_in(staging))
            stdfs::remove_all(staging, ec);
        throw DatabaseError(
            fmt::format("initialising the internal database in {} failed: {}", pgsql.string(), e.what()));
    }
    stdfs::rename(staging, data_dir(), ec);
    if (ec)
        throw DatabaseError(
            fmt::format("cannot rename {} to {}: {}", staging.string(), data_dir().string(), ec.message()));
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
    const auto runner = make_runner(m_root, pgsql_dir(), data_dir());
    pg_ctl_start(runner, data_dir(), log_file());
    return true;
}

bool InternalDatabase::stop() {
    if (status().state != DbState::running)
        return false;
    const auto runner = make_runner(m_root, pgsql_dir(), data_dir());
    pg_ctl_stop(runner, data_dir(), "fast");
    return true;
}

DbStatus InternalDatabase::status() const {
    DbStatus st;
    st.data_dir = data_dir().string();
    auto version = fs::try_read_file(data_dir() / "PG_VERSION");
    if (!version)
        return st;
    st.server_version = trim(*version);
    st.state = DbState::stopped;
    auto pid = postmaster_pid(data_dir());
    if (!pid || !process_alive(*pid))
        return st;
    // The pid is alive: let pg_ctl confirm it is this data directory's postmaster (exit 0
    // running, 3 not running). Without the binaries, the pid check stands.
    try {
        const auto runner = make_runner(m_root, pgsql_dir(), data_dir());
        auto r = runner.run("pg_ctl", {"-D", data_dir().string(), "status"});
        if (r.exit_code == 3)
            return st;
    } catch (const Error&) {
    }
    st.state = DbState::running;
    st.pid = *pid;
    return st;
}

} // namespace leo::migrations
