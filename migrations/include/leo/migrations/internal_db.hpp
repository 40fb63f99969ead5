#pragma once
/// The internal PostgreSQL instance under ROOT/home/leo/pgsql, run as the root's `leo` user.
///
/// Layout: data directory ROOT/home/leo/pgsql/data (0700, owner leo), unix socket in
/// ROOT/home/leo/pgsql (no TCP listener), server log ROOT/home/leo/pgsql/postgresql.log,
/// database "leo" owned by role "leo". The server and initdb run as leo's uid/gid from
/// ROOT/etc/passwd; when `root` is not "/" they run under nss_wrapper (Debian
/// libnss-wrapper) so the uid resolves (PITFALLS: initdb looks up its own uid).

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
    bool init();
    /// pg_ctl start -w, output to log_file(). Returns false when already running.
    bool start();
    /// pg_ctl stop -m fast -w. Returns false when it was not running.
    bool stop();
    [[nodiscard]] DbStatus status() const;

private:
    std::filesystem::path m_root;
};

} // namespace leo::migrations
