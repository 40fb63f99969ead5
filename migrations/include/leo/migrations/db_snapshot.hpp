#pragma once
/// Database snapshots for restore points: a pg_dump custom-format archive of the broker
/// database, its restore, and per-table checksums that prove a restore is exact.
///
/// Restore points keep a frozen template copy inside the instance for the rollback
/// (db_copy.hpp) and this dump of that copy, taken after the upgrade, which survives the
/// loss of the instance (measured side by side: bench/restore_point.sh).

#include "leo/migrations/connection.hpp"

#include <filesystem>
#include <map>
#include <string>

namespace leo::migrations {

/// Table -> "rows:digest" of its rows, for every table of every schema but the system ones
/// (pg_catalog, information_schema, pg_toast*, pg_temp_*); tables compare equal when their
/// contents do (as multisets of rows).
///
/// Methods: `row_digest_sum` (the default, manifest format 2): the sum of the first 64 bits
/// of md5(row as text) over the rows, as numeric: one pass, no sort, constant memory,
/// whatever the table's size. `sorted_rows` (format 1 manifests, kept to compare with
/// them): md5 of every row's text, sorted and joined, which sorts the table and builds one
/// string, so it fails on a table whose text passes PostgreSQL's 1 GB limit.
///
/// Keys: a table of `public` whose name reads the same unquoted (lowercase letters,
/// digits, _ and $) is keyed by its bare name, as manifests of format 1 always were
/// (restore points taken before keep comparing equal); every other table by its
/// schema-qualified name as libpq quotes it, `"public"."AuditLog"`, `"audit"."a.b"`.
/// A bare key never holds a double quote and a qualified one always does, so no two
/// tables share a key (`"public"."a.b"` is not `"a"."b"`).
using TableChecksums = std::map<std::string, std::string>;

enum class ChecksumMethod { row_digest_sum, sorted_rows };
[[nodiscard]] TableChecksums table_checksums(Connection& conn,
                                             ChecksumMethod method = ChecksumMethod::row_digest_sum);

/// `pg_dump -Fc` of the database `conninfo` names, to `file` (written as file.part, mode
/// 0600 whatever the umask, renamed when complete), then `pg_restore --list` to prove it
/// is readable.
/// A non-empty `snapshot` (the text of `SELECT pg_export_snapshot()` of a transaction the
/// caller keeps open) makes pg_dump dump exactly what that transaction sees
/// (`--snapshot`, PostgreSQL 9.2+).
/// Throws leo::DatabaseError with pg_dump's last line.
void dump_database(const std::string& conninfo, const std::filesystem::path& file, const std::string& snapshot = "");

/// `pg_dump --format=directory --jobs=JOBS` of the database `conninfo` names into `dir`
/// (written as DIR.part, checked with `pg_restore --list`, then renamed; 0700): the dump of
/// an external database, where the installer does not own the server. The password goes
/// in the environment. Throws leo::DatabaseError with pg_dump's last line (nothing is left).
/// `exclude_schemas` are left out (`--exclude-schema`): the cluster's own coordination tables,
/// which a restore must never turn back.
void dump_database_directory(const std::string& conninfo, const std::filesystem::path& dir, int jobs,
                             const std::vector<std::string>& exclude_schemas = {});

/// Throw leo::DatabaseError unless `dir` is a directory-format dump pg_restore can list.
void check_dump_readable_directory(const std::filesystem::path& dir);

/// Put the dump_database_directory() `dir` back into the database `conninfo` names, over
/// what it holds: `pg_restore --clean --if-exists --single-transaction --exit-on-error`
/// (one transaction: a failure leaves the database as it was; objects owned by the
/// connecting user). Throws leo::DatabaseError with pg_restore's last line.
void restore_database_directory(const std::filesystem::path& dir, const std::string& conninfo);

/// Restore `file` (a dump_database() archive) into the database `target_conninfo` names,
/// which must hold no objects: one transaction (`--single-transaction --exit-on-error`),
/// objects owned by the connecting user (`--no-owner --no-privileges`). The password of
/// the conninfo is passed in the environment, not on the command line. Throws
/// leo::DatabaseError with pg_restore's last line; the transaction then leaves nothing.
void restore_dump(const std::filesystem::path& file, const std::string& target_conninfo);

/// Sequence -> "last_value:is_called" for every sequence of every schema but the system
/// ones (the part of a copy that table_checksums does not see); keyed as table_checksums
/// keys tables.
using SequenceValues = std::map<std::string, std::string>;
[[nodiscard]] SequenceValues sequence_values(Connection& conn);

/// `pg_restore --list FILE` succeeds: the dump is complete and readable. Throws
/// leo::DatabaseError with pg_restore's last line.
void check_dump_readable(const std::filesystem::path& file);

/// Restore `file` into a new database `staging` (dropped first when it exists, owned by
/// `owner`) over `admin_conninfo`/`staging_conninfo`, leaving the live database alone.
/// A non-empty `comment` becomes `staging`'s COMMENT right after it is created (before
/// the restore: a process killed during the restore leaves a copy that says whose it is).
/// Throws leo::DatabaseError; a failed restore drops `staging` again.
void restore_into_staging(const std::string& admin_conninfo, const std::string& staging_conninfo,
                          const std::string& staging, const std::string& owner, const std::filesystem::path& file,
                          const std::string& comment = "");

/// Swap `staging` in for `dbname`: end `dbname`'s other sessions, rename it aside,
/// rename `staging` to `dbname`, drop the old one. Each statement is atomic in
/// PostgreSQL; the old database is dropped only after the new one has its name.
void replace_database(const std::string& admin_conninfo, const std::string& dbname, const std::string& staging);

} // namespace leo::migrations
