// What the migration engine's files share (private to migrations/src/engine/):
// names.cpp (versions and file names), files.cpp (reading migration files, checksums),
// statements.cpp (the SQL splitter), history.cpp (leo_schema_history), lock.cpp (the
// cluster lock), apply.cpp (running one migration), validate.cpp (history against files,
// allow_remote_upgrade) and migrate.cpp (migrate(), which puts them together).
#pragma once

#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace leo::migrations::detail {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::string_view k_history_table = "leo_schema_history";
constexpr std::string_view k_utf8_bom = "\xEF\xBB\xBF";
/// application_name prefixes: the migrating session and the lock session.
constexpr std::string_view k_app_migrate = "leo-migrate";
constexpr std::string_view k_app_lock = "leo-migrate-lock";

// ---- names.cpp ----

/// {9,1,0,2} for "9.1.0.2"; nullopt when it is not dot-separated non-negative integers.
std::optional<std::vector<long>> parse_version(std::string_view text);
/// parse_version(), or leo::MigrationError naming the text.
std::vector<long> version_parts_or_throw(const std::string& text);
/// <0, 0, >0; missing trailing parts are zero.
int compare_parts(const std::vector<long>& a, const std::vector<long>& b);
/// A version's identity: "9.1.0" and "9.1" are the same version, key "9.1".
std::string version_key(const std::string& version);

// ---- files.cpp ----

/// The text sent to the server: without a leading byte-order mark (PostgreSQL would read
/// it as part of the first token).
std::string strip_bom(std::string text);
/// Read a migration's text, checked against the checksum it was loaded with (byte-order
/// mark removed). Throws leo::MigrationError naming the script.
std::string read_migration(const Migration& m);

// ---- statements.cpp ----

/// 1-based line of a 1-based character position in `text` (UTF-8 aware: the server
/// counts characters, not bytes).
long line_of_position(const std::string& text, long position);
/// Split `sql` into (offset, statement) pairs; see split_statements().
std::vector<std::pair<size_t, std::string>> split_with_offsets(const std::string& sql);

// ---- history.cpp ----

/// What every history row of one run records besides the migration itself.
struct RowContext {
    std::string broker_version;
    std::string host;
    std::optional<int> site_id;
    std::function<void(Connection&)> fence;  ///< MigrateOptions::fence
};

/// Create the history table (format 2), or add the columns format 2 added to a format-1
/// table. Runs under the migration lock.
void ensure_history(Connection& conn, const SchemaState& state);

/// INSERT one history row (PostgreSQL 9.1+: a plain INSERT); `failure` fills the column
/// of that name (format 3). Returns its installed_rank.
long long insert_history(Connection& conn, const std::string& version, const std::string& description,
                         const std::string& script, const std::string& checksum, const std::string& algorithm,
                         const std::string& type, long long ms, bool success, const RowContext& ctx,
                         const std::optional<std::string>& failure = std::nullopt);

/// UPDATE the failure text of row `rank`.
void set_failure(Connection& conn, long long rank, const std::string& failure);

/// UPDATE row `rank` to success = true, no failure, `ms` and installed_on now().
void mark_succeeded(Connection& conn, long long rank, long long ms);

/// DELETE row `rank`.
void delete_history_row(Connection& conn, long long rank);

/// 1-based line of byte `offset` of `text` (LF, CRLF and a lone CR each end a line).
long line_at_offset(std::string_view text, size_t offset);

// ---- lock.cpp ----

/// The cluster lock: a session-level advisory lock on a dedicated connection, released
/// on destruction (and by the server when the session ends, a crashed holder included).
class ClusterLock {
  public:
    /// Open the lock connection, refuse a pooler in transaction mode, and take the lock
    /// with retried try-locks until options.wait (then leo::MigrationError, refused,
    /// naming the holder).
    ClusterLock(Connection& main, const LockOptions& options);
    ~ClusterLock();
    ClusterLock(const ClusterLock&) = delete;
    ClusterLock& operator=(const ClusterLock&) = delete;

    /// Throw when the lock is no longer held by our session (its connection was lost, or
    /// statements reach another server session).
    void verify();

    /// Wait until no session of an earlier, killed migrator is still in a transaction (its
    /// lock session ended at once; its migrating session ends when the server notices).
    void wait_for_orphans(std::chrono::milliseconds wait);

  private:
    static Connection open_lock_connection(Connection& main);
    std::vector<std::optional<std::string>> lock_params() const;
    static std::string held_sql();
    void refuse_transaction_pooler();
    std::string holder();

    Connection& m_main;
    Connection m_lock;
    std::string m_server_pid;
};

/// Names the main connection "leo-migrate <host> pid <pid>" while it migrates (the next
/// run recognises an orphan by it), and restores the session's name afterwards.
class SessionName {
  public:
    explicit SessionName(Connection& conn);
    ~SessionName();
    SessionName(const SessionName&) = delete;
    SessionName& operator=(const SessionName&) = delete;

  private:
    Connection& m_conn;
};

// ---- apply.cpp ----

/// BEGIN; SET LOCAL timeouts; the file; the history row; COMMIT. Throws
/// leo::MigrationError naming the script, the line and the server's message.
void apply_transactional(Connection& conn, const Migration& m, const std::string& sql, const Timeouts& timeouts,
                         const RowContext& ctx);

/// The statements one at a time outside a transaction, with SET/RESET of the timeouts.
void apply_no_transaction(Connection& conn, const Migration& m, const std::string& sql, const Timeouts& timeouts,
                          const RowContext& ctx);

} // namespace leo::migrations::detail
