#pragma once
/// External database vendors behind one interface (switch_database.pl's `--db_vendor`).
///
/// The broker documents three vendors: PostgreSQL (`postgres`), Microsoft SQL Server
/// (`mssqlserver`) and Azure SQL Database (`azuresql`). This build talks to PostgreSQL
/// only (through libpq): the driver of the other two says so with one clear error before
/// anything is changed (`require_supported()`), because no SQL Server client library is
/// compiled in and none could be tested here.

#include "leo/migrations/connection.hpp"
#include "leo/migrations/db_snapshot.hpp"
#include "leo/migrations/engine.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace leo::migrations {

enum class Vendor { postgres, mssqlserver, azuresql };

/// "postgres", "mssqlserver", "azuresql" (the documented `--db_vendor` values).
[[nodiscard]] std::string_view vendor_id(Vendor v);
/// "PostgreSQL", "Microsoft SQL Server", "Azure SQL Database".
[[nodiscard]] std::string_view vendor_title(Vendor v);
/// The vendor for a `--db_vendor` value (exact, lowercase), nullopt when unknown.
[[nodiscard]] std::optional<Vendor> parse_vendor(std::string_view id);
/// The vendor's default TCP port: 5432 for PostgreSQL, 1433 for SQL Server and Azure SQL.
[[nodiscard]] int default_port(Vendor v);

/// Where an external database is and who connects. `password` is plain text in memory
/// only; it is never part of display().
struct Endpoint {
    Vendor vendor = Vendor::postgres;
    std::string host;
    int port = 5432;
    std::string dbname;
    std::string username;
    std::string password;
    /// "postgres broker@db.example.com:5432/leo" (no password).
    [[nodiscard]] std::string display() const;
    /// Same server, same database (vendor, host, port, dbname).
    [[nodiscard]] bool same_database(const Endpoint& other) const;
};

/// What a database server says about one database name.
struct TargetInfo {
    bool exists = false;
    /// What objects() lists (relations, functions, types, schemas other than public,
    /// outside the system schemas, not owned by an extension) plus large objects; 0 means
    /// empty. Meaningful when `exists`.
    long objects = 0;
    /// The broker schema, when the database has leo_schema_history (see SchemaState).
    std::optional<SchemaState> schema;
    /// The user may create databases (CREATEDB or superuser); nullopt when unknown.
    std::optional<bool> can_create_database;
};

/// One vendor's operations for switching databases. Every method may throw
/// leo::DatabaseError naming the endpoint (never its password).
class VendorDriver {
public:
    virtual ~VendorDriver() = default;
    [[nodiscard]] virtual Vendor vendor() const = 0;
    /// Throws leo::DatabaseError ("... is not supported in this build ...") when this
    /// build cannot work with the vendor; call it before changing anything.
    virtual void require_supported() const = 0;
    /// Read-only: does the database exist, is it empty, does it hold a broker schema.
    [[nodiscard]] virtual TargetInfo inspect(const Endpoint& target) = 0;
    /// CREATE DATABASE (UTF8, owned by the connecting user).
    virtual void create_database(const Endpoint& target) = 0;
    /// DROP DATABASE IF EXISTS (after ending its other sessions): undoes create_database.
    virtual void drop_database(const Endpoint& target) = 0;
    /// The objects a copy can create, keyed by identity ("1 public.sites", ordered so that
    /// tables come before what may depend on them), each with the statement that drops it
    /// ("DROP TABLE IF EXISTS \"public\".\"sites\" CASCADE"). Taken before and after a
    /// copy, the difference is what the copy created: exactly what an undo may drop.
    [[nodiscard]] virtual std::map<std::string, std::string> objects(const Endpoint& target) = 0;
    /// Run `drop_statements` (from objects()) in one transaction.
    virtual void drop_objects(const Endpoint& target, const std::vector<std::string>& drop_statements) = 0;
    /// Copy the PostgreSQL database `source_conninfo` into the empty `target`, through
    /// a dump file in a private (0700) directory made in `workdir` (removed afterwards).
    virtual void copy_from_postgres(const std::string& source_conninfo, const Endpoint& target,
                                    const std::filesystem::path& workdir) = 0;
    /// Per-table row counts and checksums plus sequence values, to prove a copy.
    [[nodiscard]] virtual TableChecksums table_checksums(const Endpoint& target) = 0;
    [[nodiscard]] virtual SequenceValues sequence_values(const Endpoint& target) = 0;
    /// A libpq conninfo for the migration engine (PostgreSQL only).
    [[nodiscard]] virtual std::string conninfo(const Endpoint& target) const = 0;
};

/// The driver for `vendor` (for mssqlserver and azuresql, one whose require_supported()
/// throws: see the file comment).
[[nodiscard]] std::unique_ptr<VendorDriver> make_driver(Vendor vendor);

/// Whether this build can work with `vendor` (only PostgreSQL).
[[nodiscard]] bool vendor_supported(Vendor vendor);

} // namespace leo::migrations
