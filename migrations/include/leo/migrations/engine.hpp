#pragma once
/// The migration engine (DESIGN.md "Migrations: allow_remote_upgrade semantics").
///
/// Files are named as Flyway names them, `V<version>__<description>.sql`, the version
/// dot-separated non-negative integers, applied in version order, each in its own
/// transaction unless it carries the line `-- leo:no-transaction` (for statements such as
/// CREATE INDEX CONCURRENTLY; its statements are then sent one at a time, outside a
/// transaction). History lives in table `leo_schema_history` (one row per applied
/// migration: installed_rank, version, description, script, checksum, checksum_algorithm,
/// broker_version, installed_by (database user), installed_host, installed_site_id,
/// min_broker_version, type ('SQL' or 'BASELINE'), installed_on, execution_time_ms,
/// success, failure). A history table of an earlier format (the first without
/// installed_host, installed_site_id, min_broker_version, type; the second without
/// failure) is read as it is and upgraded in place, under the migration lock, by the first
/// migrate() that changes the database; brokers of earlier formats go on working with it
/// (the new columns are nullable or defaulted). A row with success = false is a
/// no-transaction migration that did not finish (FailedMigration): its `failure` says
/// where it stopped.
///
/// The schema version is the highest successfully applied version; the broker version
/// that wrote it is the broker_version of that row; the oldest broker that can run it is
/// the highest min_broker_version of the history: the broker part (first three numbers)
/// of each migration's version, as the broker package ships V9.1.0.2 from broker 9.1.0 on
/// (rpm/specs/leostream-broker.spec).

#include "leo/migrations/connection.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace leo::migrations {

/// Checksum algorithm id stored with every history row. v1: SHA-256 of the file with a
/// leading UTF-8 byte-order mark removed and CRLF/CR line endings turned into LF.
inline constexpr const char* k_checksum_algorithm = "sha256-normalized-v1";

/// The line that makes a migration run outside a transaction (exactly this text, alone on
/// a line, surrounding blanks ignored).
inline constexpr const char* k_no_transaction_marker = "-- leo:no-transaction";

/// The history table's format this engine writes (see the file comment).
inline constexpr int k_history_format = 3;

/// A statement of a migration that ends, starts or prepares a transaction itself.
struct TransactionControl {
    /// Its command, upper case: "COMMIT", "END", "ROLLBACK", "ABORT", "BEGIN",
    /// "START TRANSACTION", "PREPARE TRANSACTION", "COMMIT PREPARED" or "ROLLBACK PREPARED".
    std::string command;
    long line = 0; ///< 1-based line of the file where the statement starts
};

struct Migration {
    std::string version;             ///< "9.0.0.1"
    std::vector<long> version_parts; ///< {9,0,0,1}
    std::string description;         ///< "baseline" (underscores become spaces)
    std::string script;              ///< file name, "V9.0.0.1__baseline.sql"
    std::filesystem::path path;
    std::string checksum;        ///< per k_checksum_algorithm
    bool transactional = true;   ///< false when the file has the k_no_transaction_marker line
    /// Its transaction control statements (find_transaction_control), filled by
    /// load_migrations: a transactional migration with any is refused before it runs.
    std::vector<TransactionControl> transaction_control;
};

/// Compare two dotted-integer versions ("9.0.10" > "9.0.9"; "9.1" == "9.1.0").
/// Returns <0, 0, >0. Throws leo::MigrationError when either is not dotted integers.
[[nodiscard]] int compare_versions(const std::string& a, const std::string& b);

/// The broker part of a migration version: its first three numbers ("9.1.0.2" -> "9.1.0",
/// "9.1" -> "9.1.0"). Throws leo::MigrationError when it is not dotted integers.
[[nodiscard]] std::string broker_part(const std::string& version);

/// The checksum of a migration's text per k_checksum_algorithm.
[[nodiscard]] std::string migration_checksum(const std::string& text);

/// Whether `text` has the k_no_transaction_marker line.
[[nodiscard]] bool has_no_transaction_marker(const std::string& text);

/// Split SQL text into statements at top-level semicolons, respecting '...' and E'...'
/// strings, "identifiers", $tag$ dollar quotes, -- and nested /* */ comments, as psql does
/// (psqlscan.l): a semicolon inside parentheses, or inside the BEGIN ... END body of a
/// CREATE [OR REPLACE] FUNCTION|PROCEDURE (BEGIN ATOMIC), does not end a statement, and
/// `$` inside a word is part of it (`a$b$` is no dollar quote). Statements that are only
/// blanks and comments are dropped. Used for no-transaction migrations,
/// whose statements must each be sent alone (a multi-statement query string is one
/// implicit transaction).
[[nodiscard]] std::vector<std::string> split_statements(const std::string& sql);

/// The transaction control command `statement` (one statement as split_statements returns
/// it) is, judged by its first keywords as PostgreSQL's grammar reads them (blanks and
/// comments between them skipped, any case): BEGIN, START TRANSACTION, COMMIT, END,
/// ROLLBACK, ABORT (each with WORK/TRANSACTION/AND CHAIN), PREPARE TRANSACTION, COMMIT
/// PREPARED, ROLLBACK PREPARED. nullopt for every other statement, SAVEPOINT, RELEASE
/// [SAVEPOINT] and ROLLBACK [WORK|TRANSACTION] TO [SAVEPOINT] included (they stay inside
/// the transaction). An END or BEGIN inside a statement (CASE ... END, a DO or function
/// body in quotes or dollar quotes) is not at its start and is never one. Pure.
[[nodiscard]] std::optional<std::string> transaction_control_command(std::string_view statement);

/// Every transaction control statement of a migration's text, in order, with the line it
/// starts on (a leading byte-order mark ignored; LF, CRLF or CR line ends). A transactional
/// migration runs between the engine's BEGIN and the COMMIT that also writes its history
/// row: a COMMIT of its own would leave its first part committed without that row (and
/// what follows outside any transaction). Pure.
[[nodiscard]] std::vector<TransactionControl> find_transaction_control(const std::string& sql);

/// The migration file name `name` stands for, without reading the file (version,
/// version_parts, description and script filled): nullopt when it is not a migration
/// (does not start with V and end in .sql). Throws leo::MigrationError naming `dir` for a
/// V*.sql name that is not V<version>__<description>.sql. What load_migrations runs on each name.
[[nodiscard]] std::optional<Migration> parse_migration_name(const std::string& name, const std::filesystem::path& dir);

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
    std::string type = "SQL";       ///< "SQL", or "BASELINE" for the row of an adopted database
    std::string installed_by;       ///< database user
    std::string installed_host;     ///< host of the broker that applied it ("" in format 1)
    std::optional<int> installed_site_id;
    std::string min_broker_version; ///< oldest broker that can run the schema after it
};

/// A history row recorded with success = false: a no-transaction migration whose earlier
/// statements had completed when a later one failed (Flyway records these the same way).
/// While one exists, migrate() refuses to go on; repair() removes it.
struct FailedMigration {
    long long installed_rank = 0; ///< the row's key
    std::string version;
    std::string description;
    std::string script;
    std::string broker_version; ///< the broker that ran it
    std::string installed_by;   ///< database user
    std::string installed_host; ///< "" in history format 1
    std::string installed_on;   ///< when it failed, by the server's clock: "2026-11-30T23:46:33Z" (UTC)
    /// Where and why, as the engine recorded it: "at statement 2 of 3 (line 5): ERROR: ...;
    /// 1 statement(s) before it had completed", or "did not finish: ..." when the migrator
    /// stopped or lost its connection. "" before history format 3.
    std::string failure;
};

/// What the database says about its schema.
struct SchemaState {
    bool has_history = false;                  ///< leo_schema_history exists
    int history_format = 0;                    ///< 0 no table, else 1 .. k_history_format
    std::optional<std::string> schema_version; ///< highest applied version
    std::optional<std::string> broker_version; ///< broker version that applied it
    /// The oldest broker version that can run this schema (see the file comment).
    std::optional<std::string> min_broker_version;
    std::optional<std::string> baseline;       ///< version of the BASELINE row, when adopted
    std::vector<AppliedMigration> applied;     ///< in version order (successful rows only)
    std::vector<FailedMigration> failed;       ///< rows recorded with success = false, in installed_rank order
    /// Number of tables in the current schema other than leo_schema_history (a database
    /// with tables but no history was made before the engine: see MigrateOptions::baseline).
    long other_tables = 0;
};

/// Read leo_schema_history (in the connection's current schema), changing nothing.
/// A database without the table has has_history false and no schema version.
/// Works on PostgreSQL 9.1+ (the table is looked up in pg_catalog, not with to_regclass)
/// and with both history formats.
[[nodiscard]] SchemaState read_schema_state(Connection& conn);

/// One problem validate() found; every kind is a refusal.
struct ValidationProblem {
    enum class Kind {
        failed_migration,    ///< a history row with success = false (one problem per row)
        database_newer,      ///< an applied version newer than every file (unknown to the code)
        missing_file,        ///< an applied version with no file (not newer than the newest)
        changed_file,        ///< the file's checksum differs from the recorded one
        unknown_algorithm,   ///< recorded with a checksum algorithm this engine does not know
        out_of_order,        ///< a file older than the schema version that was never applied
        transaction_control, ///< a pending transactional migration that ends or starts a transaction
    };
    Kind kind;
    std::string version;
    std::string message; ///< one line naming the script, and both checksums for changed_file
};

/// The outcome of validate(): a value (a refusal is `!ok()`), never an exception.
struct Validation {
    std::vector<ValidationProblem> problems;
    std::vector<const Migration*> pending; ///< files to apply, in version order
    [[nodiscard]] bool ok() const { return problems.empty(); }
    /// The problems joined in one message ("" when ok).
    [[nodiscard]] std::string message() const;
};

/// Check the history against the files, in time linear in their number (hash maps keyed
/// by the normalised version). Files not newer than a BASELINE row are neither required
/// nor applied. A pending transactional migration with transaction control statements
/// (Migration::transaction_control) is a problem too, so that it is refused before any
/// migration runs. `migrations` must be sorted by version (as load_migrations returns
/// them); the result points into it. `broker_version` only words the messages.
[[nodiscard]] Validation validate(const SchemaState& state, const std::vector<Migration>& migrations,
                                  const std::string& broker_version);

/// Where the database is (DESIGN.md): the installer's own under /home/leo/pgsql is
/// internal; one given with --db CONNINFO or configured as external is external.
enum class DatabaseKind { internal, external };
enum class AllowRemoteUpgrade { no, yes };

/// What DESIGN.md's allow_remote_upgrade rules decide for a schema and this code.
struct UpgradeDecision {
    enum class Action {
        none,           ///< schema equal to the code's newest migration: nothing to do
        initialise,     ///< empty database (no history, no tables): create the schema
        upgrade,        ///< schema older: migrate
        refuse_newer,   ///< schema newer than the code knows: always refused
        refuse_remote,  ///< older external schema without --allow-remote-upgrade
    };
    Action action = Action::none;
    std::string message; ///< the refusal, naming both versions (and the flag for refuse_remote)
    [[nodiscard]] bool refused() const { return action == Action::refuse_newer || action == Action::refuse_remote; }
};

/// DESIGN.md "Migrations: allow_remote_upgrade semantics": equal schema, nothing to do;
/// older schema: internal migrated, external only with AllowRemoteUpgrade::yes (otherwise
/// refused naming both versions and `allow_flag`, the caller's spelling of the flag:
/// switch_database.pl's is --allow_remote_upgrade); newer: always refused. An empty
/// database is initialised whatever its kind. Pure: no database access.
/// `migrations` sorted by version.
[[nodiscard]] UpgradeDecision decide_upgrade(const SchemaState& state, const std::vector<Migration>& migrations,
                                             const std::string& broker_version, DatabaseKind kind,
                                             AllowRemoteUpgrade allow,
                                             std::string_view allow_flag = "--allow-remote-upgrade");

enum class DryRun { no, yes };

/// Server-side limits set for each migration (SET LOCAL, or SET/RESET around a
/// no-transaction migration). lock_timeout needs PostgreSQL 9.3+ (skipped before).
/// Zero means no limit.
struct Timeouts {
    std::chrono::milliseconds lock_timeout{std::chrono::seconds(30)};
    std::chrono::milliseconds statement_timeout{std::chrono::minutes(15)};
};

/// The cluster lock: retried try-locks with growing, jittered pauses up to `retry_max`,
/// until `wait` has passed.
struct LockOptions {
    std::chrono::milliseconds wait{std::chrono::seconds(120)};
    std::chrono::milliseconds retry_max{std::chrono::milliseconds(500)};
};

struct MigrateOptions {
    DryRun dry_run = DryRun::no;
    DatabaseKind kind = DatabaseKind::internal;
    AllowRemoteUpgrade allow_remote_upgrade = AllowRemoteUpgrade::no;
    /// How the caller's user gives the consent, named by the refusal of an older external
    /// schema ("run again with ALLOW_FLAG to upgrade it"): see decide_upgrade().
    std::string allow_flag = "--allow-remote-upgrade";
    /// Adopt a database made before the engine: record a BASELINE row at this version and
    /// apply only later migrations. Refused when the database already has a history.
    std::optional<std::string> baseline;
    std::string host;                ///< recorded as installed_host; "" = this host's name
    std::optional<int> site_id;      ///< recorded as installed_site_id
    Timeouts timeouts;
    LockOptions lock;
    /// A check of the caller's right to write (a cluster's upgrade lease: its fencing
    /// token), run before each migration and, for one in a transaction, inside it just
    /// before COMMIT (so the commit happens only while the check holds). It throws to
    /// refuse; the migration then fails and its transaction is rolled back.
    std::function<void(Connection&)> fence;
};

/// A migration in the plan (what a dry run prints).
struct PlannedMigration {
    std::string version;
    std::string script;
    bool transactional = true;
    std::string sql; ///< the file's text as it will be sent (byte-order mark removed)
};

struct MigrateResult {
    std::optional<std::string> schema_before;
    std::optional<std::string> schema_after;
    std::vector<std::string> applied; ///< scripts applied (or that would be, on a dry run)
    UpgradeDecision::Action action = UpgradeDecision::Action::none;
    std::optional<std::string> baseline; ///< baseline recorded (or that would be)
    std::vector<PlannedMigration> plan;  ///< the migrations applied / to apply, with their SQL
};

/// The advisory lock key that serialises migrations of one database ("leo_mig" in ASCII).
inline constexpr long long k_migration_lock_key = 0x6C656F5F6D6967LL;

/// Validate and apply every pending migration of `migrations` in order, recording
/// `broker_version`, the host and the site id in each history row.
///
/// Order: take the cluster lock (a session-level advisory lock, key k_migration_lock_key,
/// on a dedicated second connection opened from conn.conninfo(), taken with retried
/// try-locks until options.lock.wait; the refusal names the holder's application_name,
/// host and pid); refuse when a connection pooler in transaction mode stands between us
/// and the server (the lock would not be held); wait for an orphaned session of a killed
/// migrator to end; read the state; decide_upgrade() (refusals are leo::MigrationError
/// with ExitCode::refused); validate() (idem); create or upgrade the history table;
/// record the baseline; apply each pending migration: BEGIN; SET LOCAL lock_timeout and
/// statement_timeout; the file; the history row; COMMIT. A no-transaction migration sends
/// its statements one at a time with SET/RESET of the timeouts, its history row written
/// first with success = false and failure "did not finish: K of its N statement(s) had
/// completed ..." (K kept current as statements complete outside a transaction block of
/// its own), and set to success at the end: a migrator killed half-way, or a lost
/// connection, leaves a failed entry, not a migration that would run its first
/// statements again. When a statement fails, a transaction block the migration had opened
/// itself (BEGIN ... COMMIT among its statements) is rolled back, the INVALID indexes it
/// left (CREATE INDEX CONCURRENTLY) are dropped, and the row is removed when nothing of it
/// stays, or else keeps the failure ("at statement 2 of 3 (line 5): ERROR: ...; its first
/// 1 statement(s) had completed"): the schema is then partly changed, and later runs
/// refuse until the administrator has put it right by hand and removed the row with
/// repair(). A migration that ends inside a transaction block it opened fails the same way. A failing migration is rolled
/// back and the error names its script, line and the server's message; earlier
/// migrations stay applied. Nothing changes when nothing is pending.
///
/// DryRun::yes takes no lock, changes nothing, refuses as a real run would, and returns
/// the plan with each migration's SQL.
MigrateResult migrate(Connection& conn, const std::vector<Migration>& migrations, const std::string& broker_version,
                      const MigrateOptions& options);

/// migrate() with default options on an internal database (the installer's own).
MigrateResult migrate(Connection& conn, const std::vector<Migration>& migrations, const std::string& broker_version,
                      DryRun dry_run = DryRun::no);

/// What repair() did.
struct RepairResult {
    std::vector<FailedMigration> removed;      ///< the failed entries removed from the history
    /// Entries of `confirmed` no longer failed entries (another run removed them, or the
    /// migrator that was still running them finished).
    std::vector<FailedMigration> already_gone;
};

/// Flyway's `repair`, for failed entries: remove the history rows of `confirmed` (failed
/// entries as read_schema_state() listed them and the administrator confirmed), matched by
/// installed_rank and version and only while still recorded with success = false, in one
/// transaction under the cluster lock (taken as migrate() takes it, `lock` its options),
/// so that those migrations run again from their first statement at the next migrate().
/// The caller has put the database right by hand first: repair() changes no schema.
/// Entries that failed after `confirmed` was read are left for the next run to report.
/// Unlike Flyway's repair it never realigns the recorded checksum of an applied migration
/// with a changed file, nor forgets an applied migration whose file is missing: for a
/// broker those mean the shipped files changed, which validate() refuses on purpose.
/// Nothing happens (and no lock is taken) when `confirmed` is empty. Throws
/// leo::MigrationError (the lock's refusals with ExitCode::refused).
RepairResult repair(Connection& conn, const std::vector<FailedMigration>& confirmed, const LockOptions& lock = {});

} // namespace leo::migrations
