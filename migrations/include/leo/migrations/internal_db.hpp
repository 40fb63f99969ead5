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

#include <filesystem>
#include <optional>
#include <string>

namespace leo::migrations {

/// Where PostgreSQL's server binaries are (initdb, pg_ctl, postgres).
/// Search order: $LEO_PG_BINDIR when set (only that), `pg_config --bindir`,
/// /usr/lib/postgresql/<newest>/bin, /usr/pgsql-<newest>/bin.
/// Throws leo::DatabaseError naming the places looked at and the package to install.
[[nodiscard]] std::filesystem::path find_pg_bindir();

enum class DbState { not_initialised, stopped, running };

struct DbStatus {
    DbState state = DbState::not_initialised;
    std::optional<long> pid;        ///< postmaster pid when running
    std::string data_dir;
    std::string server_version;     ///< PG_VERSION of the data directory ("" when none)
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
    /// pg_ctl start -w, output to log_file(). Returns false when already running.
    /// Throws leo::DatabaseError when not initialised, or when the server does not start
    /// within 60 s (the message quotes the server log lines this start wrote).
    bool start();
    /// pg_ctl stop -m fast -w. Returns false when it was not running.
    bool stop();
    /// From data/PG_VERSION, data/postmaster.pid (the pid alive) and `pg_ctl status`
    /// (run as leo; skipped when the binaries are not found). Never throws for a
    /// missing or stopped instance.
    [[nodiscard]] DbStatus status() const;

private:
    std::filesystem::path m_root;
};

} // namespace leo::migrations
