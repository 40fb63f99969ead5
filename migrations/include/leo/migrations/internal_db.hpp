#pragma once
/// The internal PostgreSQL instance under ROOT/home/leo/pgsql, run as the root's `leo` user.
///
/// Layout: data directory ROOT/home/leo/pgsql/data (0700, owner leo), unix socket in
/// ROOT/home/leo/pgsql (no TCP listener), server log ROOT/home/leo/pgsql/postgresql.log,
/// database "leo" owned by role "leo". The server and initdb run as leo's uid/gid from
/// ROOT/etc/passwd; when `root` is not "/" they run under nss_wrapper (Debian
/// libnss-wrapper) so the uid resolves (PITFALLS: initdb looks up its own uid).
///
/// Access: the server listens on no TCP address (listen_addresses = '') and its socket
/// directory ROOT/home/leo/pgsql is 0700 and owned by leo, so only leo and root can reach
/// the socket; that is why local connections may use "trust" authentication (host
/// connections, should TCP ever be enabled, need scram-sha-256, or md5 before PG 10).
/// The settings are appended to data/postgresql.conf by init(), so start() needs no -o.
///
/// Safety as root (docs/security.md): every file under the root is reached through
/// leo::fs::SystemRoot (a symbolic link in /home/leo, which leo owns, is refused, naming
/// it); what is done inside /home/leo/pgsql (postgresql.conf, the staging directory) runs
/// as leo in a child (subprocess::run_as); the server is started as `postgres -D DATA`
/// from an argument vector (no pg_ctl, no shell) and stopped by signalling the postmaster
/// only after checking that the pid of postmaster.pid is leo's postgres working in this
/// data directory, started when the file says (status()). initdb still starts `postgres
/// --boot` through popen(), so every operation first refuses a root (or server directory)
/// whose path holds a character a shell would interpret (check_root_for_postgres).

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "leo/common/subprocess.hpp"

namespace leo::migrations {

/// The first character of `path` that a POSIX shell would interpret inside or outside
/// double quotes: $ ` " \ ' ; & | < > ( ) * ? [ ] { } ~ ! # space, tab, newline and every
/// other control character; nullopt when there is none.
[[nodiscard]] std::optional<char> shell_special_char(std::string_view path);

/// Refuse a path that PostgreSQL's programs would put in a shell command line (initdb
/// runs `"BINDIR/postgres" --boot ... -D "DATA"` through popen()): throws
/// leo::DatabaseError (exit 1), one line: "`what` PATH contains 'C', which a shell would
/// interpret: ...; `fix` (letters, digits and / . _ - + , : @ = % only)".
void check_path_for_postgres(const std::filesystem::path& path, const std::string& what, const std::string& fix);

/// The one rule for `--root` of everything that reaches the internal database (`db
/// init|start|stop|status`, install, upgrade, switch_database.pl): check_path_for_postgres
/// of the absolute root path. InternalDatabase's operations call it first.
void check_root_for_postgres(const std::filesystem::path& root);

/// Where PostgreSQL's server binaries are (initdb, postgres).
/// Search order: $LEO_PG_BINDIR when set (only that), `pg_config --bindir`,
/// /usr/lib/postgresql/<newest>/bin, /usr/pgsql-<newest>/bin.
/// Throws leo::DatabaseError naming the places looked at and the package to install.
[[nodiscard]] std::filesystem::path find_pg_bindir();

enum class DbState {
    not_initialised, ///< no PostgreSQL data directory (no DATA/PG_VERSION): `db init` makes one
    stopped,         ///< a data directory, and no server of it running
    running,         ///< its postmaster runs (a believed postmaster.pid)
};

struct DbStatus {
    DbState state = DbState::not_initialised;
    std::optional<long> pid;        ///< postmaster pid when running
    std::string data_dir;
    std::string server_version;     ///< PG_VERSION of the data directory ("" when none)
    /// More than the state says, for people: not initialised, "DATA does not exist" or
    /// "DATA exists but holds no PG_VERSION"; stopped with a postmaster.pid that is not
    /// believed, "stale postmaster.pid names pid N, which is not running" (or "which is a
    /// process of uid U (NAME) running PROGRAM", "which is not this data directory's
    /// server (WHY)"); empty otherwise.
    std::string detail;
    /// Stopped with a stale postmaster.pid: the pid it names (0 when it holds none).
    std::optional<long> stale_pid;
    /// The data directory is not leo's: "DATA is owned by uid X (NAME), expected leo (uid
    /// Y)" (PostgreSQL refuses to start on it); empty when it is leo's.
    std::string ownership_problem;
};

class InternalDatabase {
public:
    explicit InternalDatabase(std::filesystem::path root);

    [[nodiscard]] std::filesystem::path pgsql_dir() const;   ///< ROOT/home/leo/pgsql
    [[nodiscard]] std::filesystem::path data_dir() const;    ///< ROOT/home/leo/pgsql/data
    [[nodiscard]] std::filesystem::path socket_dir() const;  ///< ROOT/home/leo/pgsql
    [[nodiscard]] std::filesystem::path log_file() const;
    /// libpq conninfo for the "leo" database over the unix socket.
    [[nodiscard]] std::string conninfo(const std::string& dbname = "leo") const;

    /// Check, changing nothing, that init() can work: the binaries exist, user leo exists
    /// in ROOT/etc/passwd, the uid can traverse every parent of pgsql_dir(), and the
    /// socket path is short enough. Throws leo::DatabaseError saying what to fix.
    void check_prerequisites() const;
    /// initdb (as leo, UTF8, local trust auth behind a 0700 socket directory) then
    /// create database "leo". Idempotent: an initialised data directory is left alone.
    /// Returns false when it was already initialised. Throws leo::DatabaseError with
    /// initdb's last line of output.
    ///
    /// Runs check_prerequisites() first. initdb works in pgsql/data.init, which is
    /// started temporarily for CREATE DATABASE, stopped, and renamed to data/ only when
    /// complete: data/ is either absent or whole, and an interrupted init is redone (a
    /// left-over data.init is stopped and removed). init() therefore always returns with
    /// the server stopped (it was not running before: there was no data directory);
    /// call start() next.
    bool init();
    /// `postgres -D DATA` as leo (argument vector, new session, stdin /dev/null, output
    /// appended to log_file(), no inherited descriptors), then waits until it accepts
    /// connections (PQping on the socket). Returns false when already running.
    ///
    /// A stale postmaster.pid (status().detail) is moved aside first, as leo, to
    /// DATA/postmaster.pid.stale-YYYYMMDDTHHMMSSZ (PostgreSQL itself refuses to start while
    /// the pid in that file is alive and leo's: the crash case where the pid was reused);
    /// a stale socket lock file (PGSQL/.s.PGSQL.PORT.lock) likewise. `notice` (optional)
    /// gets one line for the administrator saying so; the log gets it too. Refused
    /// (nothing moved) while a postgres of leo still works in the data directory (the
    /// backends of a killed postmaster: it waits up to 10 s for them to end first).
    ///
    /// Throws leo::DatabaseError when not initialised, when the data directory is not leo's
    /// (status().ownership_problem), when a stale file names a live postgres working in
    /// this data directory, or when the server ends or does not accept connections within
    /// 60 s (the message quotes the server log lines this start wrote, and only those).
    bool start(const std::function<void(const std::string&)>& notice = {});
    /// Fast shutdown: SIGINT to the postmaster (only when status() believes its
    /// postmaster.pid, checked again right before the signal), then waits up to 60 s for
    /// it to end; longer is an error that says what to do. Returns false when it was not
    /// running (a stale postmaster.pid's process is never signalled).
    bool stop();
    /// From data/PG_VERSION and data/postmaster.pid: running only when postmaster.pid is
    /// believed: its pid (line 1) is a live process of leo's uid running postgres with this
    /// data directory as its current directory, its line 2 names this data directory and
    /// its line 3 is that process's start time (within 3 s). Otherwise stopped, with the
    /// stale file described in `detail`. Never throws for a missing or stopped instance;
    /// throws leo::DatabaseError for a root with shell characters and leo::SystemError for
    /// an unsafe link (/home/leo/pgsql -> elsewhere).
    [[nodiscard]] DbStatus status() const;

private:
    std::filesystem::path m_root;
};

/// How to run a program of the broker as the root's `leo` user, as the internal server
/// runs: leo's uid and gid, HOME, LANG=C, and nss_wrapper over ROOT/etc/passwd in a
/// sandbox root (so that a program looking up its uid, psql among them, finds leo), the
/// working directory ROOT/home/leo. Throws leo::DatabaseError when leo is missing or the
/// root needs nss_wrapper and it is not installed.
[[nodiscard]] subprocess::Options leo_program_options(const std::filesystem::path& root);

} // namespace leo::migrations
