#pragma once
/// The migration engine (DESIGN.md "Migrations: allow_remote_upgrade semantics").
///
/// Files are named as Flyway names them, `V<version>__<description>.sql`, the version
/// dot-separated non-negative integers, applied in version order, each in its own
/// transaction. History lives in table `leo_schema_history` (one row per applied
/// migration: version, description, script, checksum, checksum_algorithm, broker_version,
/// installed_by, installed_on, execution_time_ms, success). The schema version is the
/// highest successfully applied version; the broker version that wrote it is the
/// broker_version of that row.

#include "leo/migrations/connection.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace leo::migrations {

/// Checksum algorithm id stored with every history row. v1: SHA-256 of the file with a
/// leading UTF-8 byte-order mark removed and CRLF/CR line endings turned into LF.
inline constexpr const char* k_checksum_algorithm = "sha256-normalized-v1";

struct Migration {
    std::string version;             ///< "9.0.0.1"
    std::vector<long> version_parts; ///< {9,0,0,1}
    std::string description;         ///< "baseline" (underscores become spaces)
    std::string script;              ///< file name, "V9.0.0.1__baseline.sql"
    std::filesystem::path path;
    std::string checksum; ///< per k_checksum_algorithm
};

/// Compare two dotted-integer versions ("9.0.10" > "9.0.9"; "9.1" == "9.1.0").
/// Returns <0, 0, >0. Throws leo::MigrationError when either is not dotted integers.
[[nodiscard]] int compare_versions(const std::string& a, const std::string& b);

/// The checksum of a migration's text per k_checksum_algorithm.
[[nodiscard]] std::string migration_checksum(const std::string& text);

/// Every `V*.sql` in `dir`, sorted by version. Throws leo::MigrationError for a file
/// that starts with V and ends in .sql but is not a valid name, two files with the same
/// version, or an unreadable directory. Other files are ignored.
[[nodiscard]] std::vector<Migration> load_migrations(const std::filesystem::path& dir);

struct AppliedMigration {
    std::string version;
    std::string description;
    std::string checksum;
    std::string broker_version;
    std::string script;             ///< file name recorded when it was applied
    std::string checksum_algorithm; ///< k_checksum_algorithm of the broker that applied it
};

/// What the database says about its schema.
struct SchemaState {
    bool has_history = false;                  ///< leo_schema_history exists
    std::optional<std::string> schema_version; ///< highest applied version
    std::optional<std::string> broker_version; ///< broker version that applied it
    std::vector<AppliedMigration> applied;     ///< in version order (successful rows only)
    std::vector<std::string> failed;           ///< versions recorded with success = false
};

/// Read leo_schema_history (in the connection's current schema), changing nothing.
/// A database without the table has has_history false and no schema version.
/// Works on PostgreSQL 9.1+ (the table is looked up in pg_catalog, not with to_regclass).
[[nodiscard]] SchemaState read_schema_state(Connection& conn);

struct MigrateResult {
    std::optional<std::string> schema_before;
    std::optional<std::string> schema_after;
    std::vector<std::string> applied; ///< scripts applied (or that would be, on a dry run)
};

enum class DryRun { no, yes };

/// The advisory lock key that serialises migrations of one database ("leo_mig" in ASCII).
inline constexpr long long k_migration_lock_key = 0x6C656F5F6D6967LL;

/// Apply every pending migration of `migrations` in order, each in its own
/// transaction, recording `broker_version` in each history row. Creates the history
/// table when missing. Refuses (leo::MigrationError, nothing changed) when the schema is
/// newer than the newest migration, when an applied migration's checksum differs from
/// its file, or when a file older than the schema version was never applied (out of
/// order, as Flyway refuses by default). An applied version with no file is fine when
/// it is not newer than the newest file. A failing migration is rolled back and the
/// error names its script and the server's message; earlier migrations stay applied.
/// A session-level advisory lock taken with retried try-locks (key k_migration_lock_key)
/// around the validation and the apply loop; DryRun::yes takes no lock, creates nothing
/// and returns the scripts that would be applied. Each migration runs as: BEGIN;
/// SET LOCAL lock_timeout = '30s' (9.3+); SET LOCAL statement_timeout = '15min'; the file;
/// the history row; COMMIT.
MigrateResult migrate(Connection& conn, const std::vector<Migration>& migrations, const std::string& broker_version,
                      DryRun dry_run = DryRun::no);

} // namespace leo::migrations
