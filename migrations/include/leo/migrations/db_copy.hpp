#pragma once
/// Restore points inside the PostgreSQL instance: a frozen template copy of the broker
/// database (`CREATE DATABASE ... TEMPLATE`), a rollback by renames, and the
/// database-level state that neither a copy nor a dump carries.
///
/// Why: a copy and a rename cost what the file copy and a catalog update cost, not a dump
/// and a restore of every row (bench/restore_point.sh measures both side by side). The
/// copy needs every other session of the source database ended first; PostgreSQL refuses
/// otherwise, and so do we, naming the sessions, rather than end sessions we did not open.
///
/// Every function takes an admin connection to another database of the same server (the
/// `postgres` maintenance database) with the rights to create, rename and drop databases.
/// Identifiers are quoted by libpq (PQescapeIdentifier), values passed as parameters or
/// quoted by PQescapeLiteral.

#include "leo/migrations/connection.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace leo::migrations {

/// A session connected to a database (pg_stat_activity).
struct Client {
    int pid = 0;
    std::string user;              ///< usename
    std::string application_name;  ///< "" when the client set none
    std::string address;           ///< client_addr, or "local socket"
    std::string since;             ///< backend_start, ISO 8601
    /// "pid 4242 (user leo, application \"broker-web\", from 10.0.0.5, since 2026-...)".
    [[nodiscard]] std::string describe() const;
};

/// Sessions connected to `dbname`, other than this process's own (its application_name:
/// they are closing; the server waits for them).
[[nodiscard]] std::vector<Client> database_clients(Connection& admin, const std::string& dbname);

/// One privilege of a database's ACL (aclexplode of pg_database.datacl).
struct DatabaseGrant {
    std::string grantee;    ///< a role name, or "PUBLIC"
    std::string privilege;  ///< "CONNECT", "CREATE" or "TEMPORARY"
    bool grantable = false;
    bool operator==(const DatabaseGrant&) const = default;
};

/// One per-database setting (pg_db_role_setting): `ALTER DATABASE d SET name = value`, or
/// `ALTER ROLE r IN DATABASE d SET ...` when `role` is not empty.
struct DatabaseSetting {
    std::string role;   ///< "" for every role
    std::string name;   ///< "search_path", "app.mode"
    std::string value;  ///< as the catalog keeps it ("\"$user\", public" for a list)
    bool operator==(const DatabaseSetting&) const = default;
};

/// What a database carries beside its contents, which `CREATE DATABASE ... TEMPLATE` and
/// `pg_dump` (without --create) leave behind: owner, ACL, settings, comment, connection
/// limit, and whether connections are allowed.
struct DatabaseState {
    std::string owner;
    /// nullopt: the default ACL (datacl NULL: PUBLIC may CONNECT and TEMPORARY).
    std::optional<std::vector<DatabaseGrant>> acl;
    std::vector<DatabaseSetting> settings;
    std::optional<std::string> comment;
    int connection_limit = -1;
    bool allow_connections = true;
    bool operator==(const DatabaseState&) const = default;
};

/// The state of `dbname`. Throws leo::DatabaseError (no such database: its message says so).
[[nodiscard]] DatabaseState read_database_state(Connection& admin, const std::string& dbname);

/// Make `dbname`'s state exactly `state` (every current grant and setting is revoked or
/// reset first). Throws leo::DatabaseError.
void apply_database_state(Connection& admin, const std::string& dbname, const DatabaseState& state);

/// A database by name: its OID and size in bytes (pg_database_size).
struct DatabaseInfo {
    std::string name;
    std::uint32_t oid = 0;
    std::uint64_t size_bytes = 0;
};
[[nodiscard]] std::optional<DatabaseInfo> find_database(Connection& admin, const std::string& dbname);
[[nodiscard]] std::optional<DatabaseInfo> find_database(Connection& admin, std::uint32_t oid);
/// Databases whose name starts with `prefix` (restore-point copies: "leo_rp_").
[[nodiscard]] std::vector<DatabaseInfo> databases_with_prefix(Connection& admin, const std::string& prefix);

/// A template copy refused because other sessions use the source database (exit 3).
/// `clients()` is who was connected when the refusal was found out; it may be empty when a
/// short-lived session (another broker polling the cluster's lease) has already ended.
class DatabaseInUseError : public leo::RefusedError {
public:
    DatabaseInUseError(const std::string& what, std::vector<Client> clients)
        : leo::RefusedError(what), m_clients(std::move(clients)) {}
    [[nodiscard]] const std::vector<Client>& clients() const noexcept { return m_clients; }

private:
    std::vector<Client> m_clients;
};

/// `CREATE DATABASE copy TEMPLATE source` (STRATEGY FILE_COPY on PostgreSQL 15 and later:
/// a file copy after a checkpoint, not every block through the WAL), then the copy is
/// frozen: ALLOW_CONNECTIONS false, not a template, `comment` as its comment. Returns the
/// copy's OID and size. Throws DatabaseInUseError naming every other session of `source`
/// (nothing is created): seen before the copy, or a session that connected between that
/// check and the copy (the server's SQLSTATE 55006, "source database is being accessed by
/// other users"); leo::DatabaseError when the copy fails otherwise (disk full: the server
/// removes what it wrote; `source` is untouched, and the message says so).
DatabaseInfo copy_database(Connection& admin, const std::string& source, const std::string& copy,
                           const std::string& comment);

/// ALTER DATABASE ... ALLOW_CONNECTIONS.
void set_allow_connections(Connection& admin, const std::string& dbname, bool allow);
/// ALTER DATABASE from RENAME TO to (the database must have no sessions).
void rename_database(Connection& admin, const std::string& from, const std::string& to);
/// DROP DATABASE IF EXISTS (WITH (FORCE) is never used: a session we did not open is
/// reported, not ended).
void drop_database(Connection& admin, const std::string& dbname);

/// "pid 1 (...), pid 2 (...)" of `clients`, for refusals.
[[nodiscard]] std::string describe_clients(const std::vector<Client>& clients);

} // namespace leo::migrations
