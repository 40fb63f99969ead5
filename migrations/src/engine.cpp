#include "leo/migrations/engine.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"

#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <functional>
#include <random>
#include <set>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace leo::migrations {
namespace {

/// The largest migration file read (its text is held in memory and sent to the server).
constexpr std::size_t k_max_migration_bytes = std::size_t{64} << 20;

/// load_migrations() and read_migration() get host paths without a root (the shipped
/// migrations are ROOT/home/leo/share/migrations, a directory leo owns): they read them
/// through a SystemRoot of "/", which walks every component and never follows a link in
/// a directory a user other than root can write (a link leo made to /etc/shadow, or to a
/// FIFO, is refused, not read), opens the last component with O_NOFOLLOW, reads regular
/// files only and at most k_max_migration_bytes.
const fs::SystemRoot& host_files() {
    static const fs::SystemRoot host("/");
    return host;
}

std::filesystem::path absolute_host_path(const std::filesystem::path& p) {
    auto abs = std::filesystem::absolute(p).lexically_normal();
    if (abs != "/" && abs.filename().empty())
        abs = abs.parent_path();
    return abs;
}

std::string read_migration_file(const std::filesystem::path& path) {
    return host_files().read(absolute_host_path(path), k_max_migration_bytes);
}


namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::string_view k_history_table = "leo_schema_history";
constexpr std::string_view k_utf8_bom = "\xEF\xBB\xBF";
/// application_name prefixes: the migrating session and the lock session.
constexpr std::string_view k_app_migrate = "leo-migrate";
constexpr std::string_view k_app_lock = "leo-migrate-lock";

std::optional<std::vector<long>> parse_version(std::string_view text) {
    std::vector<long> parts;
    if (text.empty())
        return std::nullopt;
    size_t pos = 0;
    for (;;) {
        const size_t dot = text.find('.', pos);
        const std::string_view part = text.substr(pos, dot == std::string_view::npos ? dot : dot - pos);
        if (part.empty() || part.size() > 18)
            return std::nullopt;
        long value = 0;
        const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
        if (ec != std::errc{} || end != part.data() + part.size() || value < 0)
            return std::nullopt;
        parts.push_back(value);
        if (dot == std::string_view::npos)
            break;
        pos = dot + 1;
    }
    return parts;
}

std::vector<long> version_parts_or_throw(const std::string& text) {
    auto parts = parse_version(text);
    if (!parts)
        throw MigrationError(
            fmt::format("invalid version '{}': expected dot-separated non-negative integers such as 9.1.0.2", text));
    return *parts;
}

int compare_parts(const std::vector<long>& a, const std::vector<long>& b) {
    const size_t n = std::max(a.size(), b.size());
    for (size_t i = 0; i < n; ++i) {
        const long x = i < a.size() ? a[i] : 0;
        const long y = i < b.size() ? b[i] : 0;
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

/// A version's identity: "9.1.0" and "9.1" are the same version, key "9.1".
std::string version_key(const std::string& version) {
    auto parts = version_parts_or_throw(version);
    while (parts.size() > 1 && parts.back() == 0)
        parts.pop_back();
    std::string key;
    for (size_t i = 0; i < parts.size(); ++i)
        key += (i == 0 ? "" : ".") + std::to_string(parts[i]);
    return key;
}

/// The text sent to the server: without a leading byte-order mark (PostgreSQL would read
/// it as part of the first token).
std::string strip_bom(std::string text) {
    if (text.starts_with(k_utf8_bom))
        text.erase(0, k_utf8_bom.size());
    return text;
}

/// 1-based line of a 1-based character position in `text` (UTF-8 aware: the server
/// counts characters, not bytes).
long line_of_position(const std::string& text, long position) {
    long line = 1;
    long chars = 0;
    for (char c : text) {
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80)
            ++chars;
        if (chars >= position)
            break;
        if (c == '\n')
            ++line;
    }
    return line;
}

std::string ms_setting(std::chrono::milliseconds ms) { return fmt::format("'{}ms'", ms.count()); }

/// SQL text of a statement that sets the migration's timeouts (`local`: SET LOCAL).
std::string timeout_sql(const Connection& conn, const Timeouts& t, bool local) {
    const char* set = local ? "SET LOCAL" : "SET";
    std::string sql;
    // lock_timeout exists from 9.3; statement_timeout in every supported version.
    if (conn.server_version_num() >= 90300)
        sql += fmt::format("{} lock_timeout = {}; ", set, ms_setting(t.lock_timeout));
    sql += fmt::format("{} statement_timeout = {}", set, ms_setting(t.statement_timeout));
    return sql;
}

std::string pid_column(const Connection& conn) { return conn.server_version_num() >= 90200 ? "pid" : "procpid"; }

/// Split `sql` into (offset, statement) pairs; see split_statements().
std::vector<std::pair<size_t, std::string>> split_with_offsets(const std::string& sql) {
    std::vector<std::pair<size_t, std::string>> out;
    size_t start = 0;
    bool meaningful = false; // the current statement has more than blanks and comments
    size_t first = 0;        // offset of its first meaningful character
    const size_t n = sql.size();
    auto finish = [&](size_t end) {
        if (meaningful)
            out.emplace_back(first, sql.substr(first, end - first));
        meaningful = false;
        start = end + 1;
    };
    auto mark = [&](size_t i) {
        if (!meaningful) {
            meaningful = true;
            first = i;
        }
    };
    size_t i = 0;
    while (i < n) {
        const char c = sql[i];
        if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
            while (i < n && sql[i] != '\n')
                ++i;
            continue;
        }
        if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
            int depth = 1;
            i += 2;
            while (i < n && depth > 0) {
                if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
                    ++depth;
                    i += 2;
                } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
                    --depth;
                    i += 2;
                } else {
                    ++i;
                }
            }
            continue;
        }
        if (c == ';') {
            finish(i);
            ++i;
            continue;
        }
        if (std::isspace(static_cast<unsigned char>(c)) != 0) {
            ++i;
            continue;
        }
        mark(i);
        if (c == '\'' || c == '"') {
            // E'...' strings take backslash escapes.
            const bool escapes = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                                 (i < 2 || (std::isalnum(static_cast<unsigned char>(sql[i - 2])) == 0 && sql[i - 2] != '_'));
            ++i;
            while (i < n) {
                if (escapes && sql[i] == '\\') {
                    i += 2;
                    continue;
                }
                if (sql[i] == c) {
                    if (i + 1 < n && sql[i + 1] == c) {
                        i += 2;
                        continue;
                    }
                    break;
                }
                ++i;
            }
            ++i;
            continue;
        }
        if (c == '$') {
            // $tag$ ... $tag$ (a tag is empty or an identifier not starting with a digit)
            size_t j = i + 1;
            while (j < n && (std::isalnum(static_cast<unsigned char>(sql[j])) != 0 || sql[j] == '_'))
                ++j;
            const bool tag_ok = j < n && sql[j] == '$' &&
                                (j == i + 1 || std::isdigit(static_cast<unsigned char>(sql[i + 1])) == 0);
            if (tag_ok) {
                const std::string tag = sql.substr(i, j - i + 1);
                const size_t close = sql.find(tag, j + 1);
                i = close == std::string::npos ? n : close + tag.size();
                continue;
            }
        }
        ++i;
    }
    finish(n);
    return out;
}

/// The columns of leo_schema_history in the current schema (empty: no such table).
std::set<std::string> history_columns(Connection& conn) {
    const auto rows = conn.query("SELECT a.attname FROM pg_catalog.pg_attribute a "
                                 "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
                                 "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                 "WHERE c.relname = $1 AND n.nspname = current_schema() AND c.relkind = 'r' "
                                 "AND a.attnum > 0 AND NOT a.attisdropped",
                                 {std::string(k_history_table)});
    std::set<std::string> out;
    for (size_t r = 0; r < rows.rows.size(); ++r)
        out.insert(rows.at(r, 0));
    return out;
}

/// The columns format 2 added, with their definitions (nullable or defaulted, so a broker
/// of format 1 keeps inserting rows).
struct AddedColumn {
    const char* name;
    const char* definition;
};
constexpr AddedColumn k_format2_columns[] = {
    {"installed_host", "varchar(255)"},
    {"installed_site_id", "integer"},
    {"min_broker_version", "varchar(64)"},
    {"type", "varchar(20) NOT NULL DEFAULT 'SQL'"},
};

void in_transaction(Connection& conn, const std::function<void()>& body) {
    conn.exec("BEGIN");
    try {
        body();
        conn.exec("COMMIT");
    } catch (...) {
        try {
            conn.exec("ROLLBACK");
        } catch (const std::exception&) {
        }
        throw;
    }
}

/// Create the history table (format 2), or add the columns format 2 added to a format-1
/// table. Runs under the migration lock.
void ensure_history(Connection& conn, const SchemaState& state) {
    if (state.history_format == k_history_format)
        return;
    try {
        if (!state.has_history) {
            // PostgreSQL 9.1+: serial, no identity column, no IF NOT EXISTS (checked first,
            // under the migration lock).
            in_transaction(conn, [&] {
                conn.exec(fmt::format("CREATE TABLE {} ("
                                      " installed_rank serial PRIMARY KEY,"
                                      " version varchar(50) NOT NULL UNIQUE,"
                                      " description text NOT NULL,"
                                      " script text NOT NULL,"
                                      " checksum varchar(128) NOT NULL,"
                                      " checksum_algorithm varchar(64) NOT NULL,"
                                      " broker_version varchar(64) NOT NULL,"
                                      " installed_by varchar(128) NOT NULL DEFAULT current_user,"
                                      " installed_on timestamp with time zone NOT NULL DEFAULT now(),"
                                      " execution_time_ms integer NOT NULL,"
                                      " success boolean NOT NULL,"
                                      " installed_host varchar(255),"
                                      " installed_site_id integer,"
                                      " min_broker_version varchar(64),"
                                      " type varchar(20) NOT NULL DEFAULT 'SQL')",
                                      k_history_table));
            });
            return;
        }
        const auto columns = history_columns(conn);
        in_transaction(conn, [&] {
            for (const auto& col : k_format2_columns)
                if (columns.count(col.name) == 0)
                    conn.exec(fmt::format("ALTER TABLE {} ADD COLUMN {} {}", k_history_table, col.name,
                                          col.definition));
        });
    } catch (const DatabaseError& e) {
        throw MigrationError(fmt::format("cannot {} {}: {}", state.has_history ? "upgrade" : "create",
                                         k_history_table, e.what()));
    }
}

struct RowContext {
    std::string broker_version;
    std::string host;
    std::optional<int> site_id;
};

void insert_history(Connection& conn, const std::string& version, const std::string& description,
                    const std::string& script, const std::string& checksum, const std::string& algorithm,
                    const std::string& type, long long ms, bool success, const RowContext& ctx) {
    conn.query(fmt::format("INSERT INTO {} (version, description, script, checksum, checksum_algorithm, "
                           "broker_version, installed_host, installed_site_id, min_broker_version, type, "
                           "execution_time_ms, success) "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::integer, $9, $10, $11::integer, $12::boolean)",
                           k_history_table),
               {version, description, script, checksum, algorithm, ctx.broker_version, ctx.host,
                ctx.site_id ? std::optional<std::string>(std::to_string(*ctx.site_id)) : std::nullopt,
                broker_part(version), type, std::to_string(std::min<long long>(ms, 2147483647LL)),
                std::string(success ? "true" : "false")});
}

/// The cluster lock: a session-level advisory lock on a dedicated connection, released
/// on destruction (and by the server when the session ends, a crashed holder included).
class ClusterLock {
public:
    ClusterLock(Connection& main, const LockOptions& options) : m_main(main), m_lock(open_lock_connection(main)) {
        refuse_transaction_pooler();
        const std::string key = std::to_string(k_migration_lock_key);
        const auto deadline = Clock::now() + options.wait;
        std::minstd_rand rng(static_cast<unsigned>(::getpid()) ^
                             static_cast<unsigned>(Clock::now().time_since_epoch().count()));
        auto pause = std::chrono::milliseconds(20);
        for (;;) {
            const auto rows = m_lock.query("SELECT pg_try_advisory_lock($1::bigint), pg_backend_pid()", {key});
            if (rows.at(0, 0) == "t") {
                m_server_pid = rows.at(0, 1);
                break;
            }
            if (Clock::now() >= deadline)
                throw MigrationError(
                    fmt::format("another migration of this database is running ({}); waited {} s for it: try again "
                                "when it has finished",
                                holder(), std::chrono::duration_cast<std::chrono::seconds>(options.wait).count()),
                    ExitCode::refused);
            // Growing pauses with jitter, so that waiting brokers do not retry in step.
            const auto max = std::min(pause, options.retry_max);
            std::uniform_int_distribution<long> dist(max.count() / 2, std::max<long>(max.count(), 1));
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            std::this_thread::sleep_for(std::min(std::chrono::milliseconds(dist(rng)), std::max(left, std::chrono::milliseconds::zero())));
            pause = std::min(pause * 2, options.retry_max);
        }
        verify();
    }
    ~ClusterLock() {
        try {
            m_lock.query("SELECT pg_advisory_unlock($1::bigint)", {std::to_string(k_migration_lock_key)});
        } catch (const std::exception&) {
            // The lock ends with the session anyway (the connection closes next).
        }
    }
    ClusterLock(const ClusterLock&) = delete;
    ClusterLock& operator=(const ClusterLock&) = delete;

    /// Throw when the lock is no longer held by our session (its connection was lost, or
    /// statements reach another server session).
    void verify() {
        Rows rows;
        try {
            rows = m_lock.query(held_sql(), lock_params());
        } catch (const DatabaseError& e) {
            throw MigrationError(
                fmt::format("the migration lock's connection failed ({}): stopping before the next migration",
                            e.what()));
        }
        if (rows.at(0, 0) != m_server_pid || rows.at(0, 1) != "t")
            throw MigrationError(fmt::format(
                "the migration lock taken in server session {} is not held by the session that answers now ({}): "
                "{}",
                m_server_pid, rows.at(0, 0), k_pooler_advice));
    }

    /// Wait until no session of an earlier, killed migrator is still in a transaction (its
    /// lock session ended at once; its migrating session ends when the server notices).
    void wait_for_orphans(const std::chrono::milliseconds wait) {
        const std::string pid = pid_column(m_main);
        const std::string sql = fmt::format(
            "SELECT {0}::text, coalesce(application_name, '') FROM pg_catalog.pg_stat_activity "
            "WHERE datname = current_database() AND {0} <> pg_backend_pid() AND xact_start IS NOT NULL "
            "AND application_name LIKE $1",
            pid);
        const auto deadline = Clock::now() + wait;
        for (;;) {
            const auto rows = m_main.query(sql, {std::string(k_app_migrate) + " %"});
            if (rows.empty())
                return;
            if (Clock::now() >= deadline)
                throw MigrationError(
                    fmt::format("a migrating session of an earlier run (server pid {}, {}) is still in a "
                                "transaction although no migrator holds the lock: its process was stopped; "
                                "PostgreSQL ends it when it notices, or end it with SELECT pg_terminate_backend({})",
                                rows.at(0, 0), rows.at(0, 1), rows.at(0, 0)),
                    ExitCode::refused);
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }

private:
    static constexpr const char* k_pooler_advice =
        "a connection pooler in transaction mode (for example pgbouncer with pool_mode = transaction) stands "
        "between leo-installer and PostgreSQL, so a session-level advisory lock cannot keep the brokers of the "
        "cluster from migrating at once; run the migration with a connection to PostgreSQL itself (its own port), "
        "or through a pool in session mode";

    static Connection open_lock_connection(Connection& main) {
        try {
            auto c = Connection::open(main.conninfo());
            c.query("SELECT set_config('application_name', $1, false)",
                    {application_name(std::string(k_app_lock))});
            return c;
        } catch (const DatabaseError& e) {
            throw MigrationError(fmt::format("cannot open the connection for the migration lock: {}", e.what()));
        }
    }

    std::vector<std::optional<std::string>> lock_params() const {
        const auto key = static_cast<unsigned long long>(k_migration_lock_key);
        return {std::to_string(key >> 32), std::to_string(key & 0xFFFFFFFFULL)};
    }
    static std::string held_sql() {
        return "SELECT pg_backend_pid()::text, EXISTS (SELECT 1 FROM pg_catalog.pg_locks l "
               "WHERE l.locktype = 'advisory' AND l.granted AND l.pid = pg_backend_pid() "
               "AND l.classid = $1::oid AND l.objid = $2::oid AND l.objsubid = 1)";
    }

    /// Before locking: statements of one connection must reach one server session, and the
    /// two connections two different sessions. A pooler in transaction mode hands each
    /// transaction (each statement, outside BEGIN) to any idle server session.
    void refuse_transaction_pooler() {
        std::set<std::string> lock_pids;
        std::set<std::string> main_pids;
        for (int i = 0; i < 4; ++i) {
            lock_pids.insert(m_lock.query("SELECT pg_backend_pid()::text").at(0, 0));
            main_pids.insert(m_main.query("SELECT pg_backend_pid()::text").at(0, 0));
        }
        const bool shared = std::any_of(lock_pids.begin(), lock_pids.end(),
                                        [&](const std::string& p) { return main_pids.count(p) != 0; });
        if (lock_pids.size() == 1 && main_pids.size() == 1 && !shared)
            return;
        std::string seen;
        for (const auto& p : lock_pids)
            seen += (seen.empty() ? "" : ", ") + p;
        for (const auto& p : main_pids)
            if (lock_pids.count(p) == 0)
                seen += (seen.empty() ? "" : ", ") + p;
        const bool announced = m_main.backend_pid() == std::stoi(*main_pids.begin());
        throw MigrationError(
            fmt::format("refusing to migrate: the statements of two connections ran in server sessions {} "
                        "(one connection's statements must stay in one session{}): {}",
                        seen, announced ? "" : "; the pid announced at connect is not the server's", k_pooler_advice),
            ExitCode::refused);
    }

    /// "held by server pid 123 (leo-migrate-lock host1 pid 456) from 10.0.0.5", best effort.
    std::string holder() {
        try {
            const auto rows =
                m_lock.query(fmt::format("SELECT a.{0}::text, coalesce(a.application_name, ''), "
                                         "coalesce(host(a.client_addr), 'local socket') "
                                         "FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.{0} = l.pid "
                                         "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid "
                                         "AND l.objid = $2::oid AND l.objsubid = 1",
                                         pid_column(m_lock)),
                             lock_params());
            if (rows.empty())
                return "holder unknown";
            return fmt::format("held by server pid {} ({}) from {}", rows.at(0, 0),
                               rows.at(0, 1).empty() ? "no application name" : rows.at(0, 1), rows.at(0, 2));
        } catch (const std::exception&) {
            return "holder unknown";
        }
    }

    Connection& m_main;
    Connection m_lock;
    std::string m_server_pid;
};

/// Names the main connection "leo-migrate <host> pid <pid>" while it migrates (the next
/// run recognises an orphan by it), and restores the session's name afterwards.
class SessionName {
public:
    explicit SessionName(Connection& conn) : m_conn(conn) {
        m_conn.query("SELECT set_config('application_name', $1, false)", {application_name(std::string(k_app_migrate))});
        // PostgreSQL 14+ ends a query whose client has gone (a killed migrator) within a
        // second instead of at its end.
        if (m_conn.server_version_num() >= 140000)
            m_conn.exec("SET client_connection_check_interval = '1s'");
    }
    ~SessionName() {
        try {
            m_conn.exec("RESET application_name");
        } catch (const std::exception&) {
        }
    }
    SessionName(const SessionName&) = delete;
    SessionName& operator=(const SessionName&) = delete;

private:
    Connection& m_conn;
};

/// Read a migration's text, checked against the checksum it was loaded with.
std::string read_migration(const Migration& m) {
    std::string text;
    try {
        text = read_migration_file(m.path);
    } catch (const std::exception& e) {
        throw MigrationError(fmt::format("migration {} failed: {}", m.script, e.what()));
    }
    if (!m.checksum.empty() && migration_checksum(text) != m.checksum)
        throw MigrationError(fmt::format("migration {} failed: {} changed since it was read (checksum {}, now {})",
                                         m.script, m.path.string(), m.checksum, migration_checksum(text)));
    return strip_bom(std::move(text));
}

std::string reason_of(const DatabaseError& e, const std::string& sql, size_t offset, bool in_script) {
    std::string reason = e.what();
    if (const auto* q = dynamic_cast<const QueryError*>(&e)) {
        reason = q->server_message();
        if (in_script && q->position()) {
            // the position counts characters of the statement sent; add the lines before it
            const long before = std::count(sql.begin(), sql.begin() + static_cast<long>(offset), '\n');
            const long line = line_of_position(sql.substr(offset), *q->position()) + before;
            reason += fmt::format(" (line {} of the script)", line);
        }
    }
    return reason;
}

void apply_transactional(Connection& conn, const Migration& m, const std::string& sql, const Timeouts& timeouts,
                         const RowContext& ctx) {
    bool in_script = false;
    try {
        conn.exec("BEGIN; " + timeout_sql(conn, timeouts, true));
        const auto started = Clock::now();
        in_script = true;
        conn.exec(sql);
        in_script = false;
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
        insert_history(conn, m.version, m.description, m.script, m.checksum, k_checksum_algorithm, "SQL", ms, true,
                       ctx);
        fault::point("migrate.inside");  // the migration ran, its transaction is not committed
        conn.exec("COMMIT");
        fault::point("migrate.between");  // committed; the next one has not started
    } catch (const DatabaseError& e) {
        try {
            conn.exec("ROLLBACK");
        } catch (const std::exception&) {
            // The connection may be gone; the server rolls back an unfinished transaction.
        }
        throw MigrationError(fmt::format("migration {} failed: {}", m.script, reason_of(e, sql, 0, in_script)));
    }
}

/// "public.idx" of every index whose build failed (pg_index.indisvalid false).
std::set<std::string> invalid_indexes(Connection& conn) {
    const auto rows = conn.query("SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
                                 "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
                                 "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid");
    std::set<std::string> out;
    for (size_t r = 0; r < rows.rows.size(); ++r)
        out.insert(rows.at(r, 0));
    return out;
}

void apply_no_transaction(Connection& conn, const Migration& m, const std::string& sql, const Timeouts& timeouts,
                          const RowContext& ctx) {
    const auto statements = split_with_offsets(sql);
    auto reset = [&] {
        try {
            conn.exec(conn.server_version_num() >= 90300 ? "RESET lock_timeout; RESET statement_timeout"
                                                         : "RESET statement_timeout");
        } catch (const std::exception&) {
        }
    };
    std::set<std::string> invalid_before;
    size_t done = 0;
    const auto started = Clock::now();
    try {
        conn.exec(timeout_sql(conn, timeouts, false));
        invalid_before = invalid_indexes(conn);
        for (; done < statements.size(); ++done)
            conn.exec(statements[done].second);
    } catch (const DatabaseError& e) {
        std::string reason = fmt::format("migration {} (no transaction) failed", m.script);
        if (done < statements.size()) {
            const size_t offset = statements[done].first;
            reason += fmt::format(" at statement {} of {}: {}", done + 1, statements.size(),
                                  reason_of(e, sql, offset, true));
            const auto* q = dynamic_cast<const QueryError*>(&e);
            if (q == nullptr || !q->position())
                reason += fmt::format(" (the statement at line {} of the script)",
                                      1 + std::count(sql.begin(), sql.begin() + static_cast<long>(offset), '\n'));
        }
        else
            reason += ": " + std::string(e.what());
        // CREATE INDEX CONCURRENTLY leaves an INVALID index behind when it fails: drop it,
        // so that the next run can build it again.
        try {
            std::vector<std::string> dropped;
            for (const auto& index : invalid_indexes(conn)) {
                if (invalid_before.count(index) != 0)
                    continue;
                conn.exec(fmt::format("DROP INDEX {}{}", conn.server_version_num() >= 90200 ? "CONCURRENTLY " : "",
                                      index));
                dropped.push_back(index);
            }
            if (!dropped.empty()) {
                std::string list;
                for (const auto& d : dropped)
                    list += (list.empty() ? "" : ", ") + d;
                reason += fmt::format("; dropped the invalid index {} it left", list);
            }
        } catch (const DatabaseError& drop_error) {
            reason += fmt::format("; could not drop the invalid index it left: {}", drop_error.what());
        }
        if (done > 0) {
            // Earlier statements stay applied: record the failure so that later runs refuse.
            try {
                insert_history(conn, m.version, m.description, m.script, m.checksum, k_checksum_algorithm, "SQL", 0,
                               false, ctx);
            } catch (const DatabaseError&) {
            }
            reason += fmt::format("; its first {} statement(s) had completed and stay applied (recorded as a failed "
                                  "migration): restore the database from the restore point",
                                  done);
        }
        reset();
        throw MigrationError(reason);
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    try {
        insert_history(conn, m.version, m.description, m.script, m.checksum, k_checksum_algorithm, "SQL", ms, true,
                       ctx);
    } catch (const DatabaseError& e) {
        reset();
        throw MigrationError(fmt::format("migration {} (no transaction) ran but its history row could not be "
                                         "written: {}",
                                         m.script, e.what()));
    }
    reset();
}

/// `migrations` in version order (the caller's vector when it already is), duplicates
/// refused.
const std::vector<Migration>& in_order(const std::vector<Migration>& migrations, std::vector<Migration>& storage) {
    const auto less = [](const Migration& a, const Migration& b) {
        return compare_parts(version_parts_or_throw(a.version), version_parts_or_throw(b.version)) < 0;
    };
    const std::vector<Migration>* sorted = &migrations;
    if (!std::is_sorted(migrations.begin(), migrations.end(), less)) {
        storage = migrations;
        std::stable_sort(storage.begin(), storage.end(), less);
        sorted = &storage;
    }
    for (size_t i = 1; i < sorted->size(); ++i)
        if (compare_versions((*sorted)[i - 1].version, (*sorted)[i].version) == 0)
            throw MigrationError(fmt::format("two migrations have version {}: {} and {}", (*sorted)[i].version,
                                             (*sorted)[i - 1].script, (*sorted)[i].script));
    return *sorted;
}

std::string newer_message(const std::string& schema, const std::vector<Migration>& files,
                          const std::string& broker_version, const SchemaState& state) {
    return fmt::format("database schema {} is newer than this broker's newest migration {} (broker {}): a broker "
                       "cannot run an unknown schema; install broker {} or newer",
                       schema, files.empty() ? std::string("(none)") : files.back().version, broker_version,
                       state.min_broker_version.value_or(state.broker_version.value_or("(the one that wrote it)")));
}

/// What migrate() will do: the decision and the validation, refusals thrown.
struct Prepared {
    UpgradeDecision decision;
    Validation validation;
};

Prepared prepare(const SchemaState& real, const std::vector<Migration>& files, const std::string& broker_version,
                 const MigrateOptions& options) {
    SchemaState state = real;
    if (options.baseline) {
        if (real.has_history && (!real.applied.empty() || !real.failed.empty()))
            throw MigrationError(fmt::format("cannot baseline at {}: the database already has a schema history "
                                             "(schema {}); --baseline only adopts a database made before the "
                                             "migration engine",
                                             *options.baseline, real.schema_version.value_or("none")),
                                 ExitCode::refused);
        AppliedMigration row;
        row.version = *options.baseline;
        row.type = "BASELINE";
        row.broker_version = broker_version;
        row.min_broker_version = broker_part(*options.baseline);
        state.applied = {row};
        state.baseline = row.version;
        state.schema_version = row.version;
        state.broker_version = broker_version;
        state.min_broker_version = row.min_broker_version;
    } else if (!real.schema_version && real.failed.empty() && real.other_tables > 0) {
        throw MigrationError(fmt::format("the database has {} table(s) but no {}: it was made before the migration "
                                         "engine, or it is not a broker database; adopt it with --baseline VERSION "
                                         "(the schema version it is at) to apply only later migrations",
                                         real.other_tables, k_history_table),
                             ExitCode::refused);
    }
    Prepared p;
    p.decision = decide_upgrade(state, files, broker_version, options.kind, options.allow_remote_upgrade);
    if (p.decision.refused())
        throw MigrationError(p.decision.message, ExitCode::refused);
    p.validation = validate(state, files, broker_version);
    if (!p.validation.ok())
        throw MigrationError(p.validation.message(), ExitCode::refused);
    return p;
}

} // namespace

int compare_versions(const std::string& a, const std::string& b) {
    return compare_parts(version_parts_or_throw(a), version_parts_or_throw(b));
}

std::string broker_part(const std::string& version) {
    auto parts = version_parts_or_throw(version);
    parts.resize(3, 0);
    return fmt::format("{}.{}.{}", parts[0], parts[1], parts[2]);
}

std::string migration_checksum(const std::string& text) {
    std::string_view in = text;
    if (in.starts_with(k_utf8_bom))
        in.remove_prefix(k_utf8_bom.size());
    std::string normalized;
    normalized.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '\r') {
            normalized += '\n';
            if (i + 1 < in.size() && in[i + 1] == '\n')
                ++i;
        } else {
            normalized += in[i];
        }
    }
    return crypto::digest_hex("sha256", normalized);
}

bool has_no_transaction_marker(const std::string& text) {
    std::string_view in = text;
    if (in.starts_with(k_utf8_bom))
        in.remove_prefix(k_utf8_bom.size());
    const std::string_view marker = k_no_transaction_marker;
    size_t pos = 0;
    while (pos <= in.size()) {
        size_t end = in.find_first_of("\r\n", pos);
        if (end == std::string_view::npos)
            end = in.size();
        std::string_view line = in.substr(pos, end - pos);
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
            line.remove_prefix(1);
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t'))
            line.remove_suffix(1);
        if (line == marker)
            return true;
        pos = end + 1;
    }
    return false;
}

std::vector<std::string> split_statements(const std::string& sql) {
    std::vector<std::string> out;
    for (auto& [offset, text] : split_with_offsets(sql))
        out.push_back(std::move(text));
    return out;
}

std::optional<Migration> parse_migration_name(const std::string& name, const stdfs::path& dir) {
    if (!name.starts_with('V') || !name.ends_with(".sql"))
        return std::nullopt;
    const std::string_view body = std::string_view(name).substr(1, name.size() - 1 - 4);
    const size_t sep = body.find("__");
    const auto bad = [&](std::string_view why) {
        return MigrationError(fmt::format("invalid migration file name {} in {}: {}; expected "
                                          "V<version>__<description>.sql, for example V9.1.0.2__jobs_site_index.sql",
                                          name, dir.string(), why));
    };
    if (sep == std::string_view::npos)
        throw bad("no '__' between version and description");
    Migration m;
    m.version = std::string(body.substr(0, sep));
    auto parts = parse_version(m.version);
    if (!parts)
        throw bad(fmt::format("'{}' is not dot-separated non-negative integers", m.version));
    m.version_parts = std::move(*parts);
    m.description = std::string(body.substr(sep + 2));
    if (m.description.empty())
        throw bad("the description is empty");
    std::replace(m.description.begin(), m.description.end(), '_', ' ');
    m.script = name;
    return m;
}

std::vector<Migration> load_migrations(const stdfs::path& given) {
    std::vector<Migration> out;
    const stdfs::path dir = absolute_host_path(given);
    const auto& host = host_files();
    std::vector<std::string> names;
    // (SystemRoot::list opens the directory itself, following a link only where that is
    // safe; lstat first tells a missing directory from an unreadable one.)
    try {
        if (!host.lstat(dir))
            throw MigrationError(fmt::format("cannot read the migrations directory {}: {}", dir.string(),
                                             std::strerror(ENOENT)));
        names = host.list(dir);
    } catch (const SystemError& e) {
        throw MigrationError(fmt::format("cannot read the migrations directory {}: {}", dir.string(), e.what()));
    }
    for (const auto& name : names) {
        if (!name.starts_with('V') || !name.ends_with(".sql"))
            continue;
        const auto path = dir / name;
        try {
            // Regular files, and links SystemRoot may follow (reading them below refuses
            // the others and anything that is not a regular file); a directory named
            // V2__x.sql, a FIFO or a socket is not a migration.
            const auto file_st = host.lstat(path);
            if (!file_st || !(S_ISREG(file_st->st_mode) || S_ISLNK(file_st->st_mode)))
                continue;
        } catch (const SystemError& e) {
            throw MigrationError(fmt::format("cannot read migration {}: {}", name, e.what()));
        }
        Migration m = *parse_migration_name(name, dir);
        m.path = path;
        try {
            const std::string text = read_migration_file(m.path);
            m.checksum = migration_checksum(text);
            m.transactional = !has_no_transaction_marker(text);
        } catch (const SystemError& e) {
            throw MigrationError(fmt::format("cannot read migration {}: {}", name, e.what()));
        }
        out.push_back(std::move(m));
    }
    std::sort(out.begin(), out.end(), [](const Migration& a, const Migration& b) {
        const int c = compare_parts(a.version_parts, b.version_parts);
        return c != 0 ? c < 0 : a.script < b.script;
    });
    for (size_t i = 1; i < out.size(); ++i)
        if (compare_parts(out[i - 1].version_parts, out[i].version_parts) == 0)
            throw MigrationError(fmt::format("two migrations in {} have version {}: {} and {}", dir.string(),
                                             out[i].version, out[i - 1].script, out[i].script));
    return out;
}

SchemaState read_schema_state(Connection& conn) {
    SchemaState state;
    state.other_tables = std::stol(conn.query("SELECT count(*) FROM pg_catalog.pg_class c "
                                              "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                              "WHERE n.nspname = current_schema() AND c.relkind = 'r' "
                                              "AND c.relname <> $1",
                                              {std::string(k_history_table)})
                                       .at(0, 0));
    const auto columns = history_columns(conn);
    state.has_history = !columns.empty();
    if (!state.has_history)
        return state;
    const bool format2 = std::all_of(std::begin(k_format2_columns), std::end(k_format2_columns),
                                     [&](const AddedColumn& c) { return columns.count(c.name) != 0; });
    state.history_format = format2 ? k_history_format : 1;
    const auto rows = conn.query(fmt::format(
        "SELECT version, coalesce(description, ''), coalesce(checksum, ''), coalesce(broker_version, ''), "
        "coalesce(script, ''), coalesce(checksum_algorithm, ''), coalesce(success, false), "
        "coalesce(installed_by, ''), {} FROM {}",
        format2 ? "coalesce(installed_host, ''), installed_site_id::text, coalesce(min_broker_version, ''), "
                  "coalesce(type, 'SQL')"
                : "'', NULL::text, '', 'SQL'",
        k_history_table));
    std::vector<std::pair<std::vector<long>, AppliedMigration>> order;
    order.reserve(rows.rows.size());
    for (size_t r = 0; r < rows.rows.size(); ++r) {
        if (rows.at(r, 6) != "t") {
            state.failed.push_back(rows.at(r, 0));
            continue;
        }
        AppliedMigration a{rows.at(r, 0), rows.at(r, 1), rows.at(r, 2), rows.at(r, 3), rows.at(r, 4), rows.at(r, 5),
                           rows.at(r, 11), rows.at(r, 7), rows.at(r, 8), std::nullopt, rows.at(r, 10)};
        if (rows.rows[r][9])
            a.installed_site_id = std::stoi(*rows.rows[r][9]);
        auto parts = parse_version(a.version);
        if (!parts)
            throw MigrationError(fmt::format("{} holds an invalid version '{}'", k_history_table, a.version));
        if (a.min_broker_version.empty() || !parse_version(a.min_broker_version))
            a.min_broker_version = broker_part(a.version);
        order.emplace_back(std::move(*parts), std::move(a));
    }
    std::sort(order.begin(), order.end(),
              [](const auto& a, const auto& b) { return compare_parts(a.first, b.first) < 0; });
    state.applied.reserve(order.size());
    std::optional<std::vector<long>> min_broker;
    for (auto& [parts, a] : order) {
        if (a.type == "BASELINE")
            state.baseline = a.version;
        auto mb = version_parts_or_throw(a.min_broker_version);
        if (!min_broker || compare_parts(mb, *min_broker) > 0) {
            min_broker = std::move(mb);
            state.min_broker_version = a.min_broker_version;
        }
        state.applied.push_back(std::move(a));
    }
    if (!state.applied.empty()) {
        state.schema_version = state.applied.back().version;
        state.broker_version = state.applied.back().broker_version;
    }
    return state;
}

std::string Validation::message() const {
    std::string out;
    for (const auto& p : problems)
        out += (out.empty() ? "" : "; ") + p.message;
    return out;
}

Validation validate(const SchemaState& state, const std::vector<Migration>& files, const std::string& broker_version) {
    Validation v;
    using Kind = ValidationProblem::Kind;
    if (!state.failed.empty()) {
        std::string list;
        for (const auto& f : state.failed)
            list += (list.empty() ? "" : ", ") + f;
        v.problems.push_back({Kind::failed_migration, state.failed.front(),
                              fmt::format("{} records failed migration(s) {}: the schema is in an unknown state; "
                                          "restore the database from the restore point taken before the upgrade",
                                          k_history_table, list)});
    }
    const Migration* newest = files.empty() ? nullptr : &files.back();
    std::unordered_map<std::string, const Migration*> by_key;
    by_key.reserve(files.size());
    for (const auto& m : files)
        by_key.emplace(version_key(m.version), &m);

    std::unordered_set<std::string> applied;
    applied.reserve(state.applied.size());
    bool newer_reported = false;
    for (const auto& a : state.applied) {
        if (a.type == "BASELINE")
            continue;
        const auto key = version_key(a.version);
        applied.insert(key);
        const auto it = by_key.find(key);
        if (it == by_key.end()) {
            if (newest == nullptr || compare_versions(a.version, newest->version) > 0) {
                if (!newer_reported)
                    v.problems.push_back({Kind::database_newer, a.version,
                                          newer_message(state.schema_version.value_or(a.version), files,
                                                        broker_version, state)});
                newer_reported = true;
            } else {
                v.problems.push_back(
                    {Kind::missing_file, a.version,
                     fmt::format("migration {} (version {}) was applied to the database by broker {} but is missing "
                                 "from the migrations directory: an applied migration must stay shipped; restore the "
                                 "file",
                                 a.script.empty() ? a.version : a.script, a.version, a.broker_version)});
            }
            continue;
        }
        const Migration& file = *it->second;
        if (a.checksum_algorithm != k_checksum_algorithm)
            v.problems.push_back({Kind::unknown_algorithm, a.version,
                                  fmt::format("migration {} was recorded with checksum algorithm '{}', which this "
                                              "broker does not know (it uses '{}')",
                                              file.script, a.checksum_algorithm, k_checksum_algorithm)});
        else if (a.checksum != file.checksum)
            v.problems.push_back(
                {Kind::changed_file, a.version,
                 fmt::format("migration {} changed after it was applied: the database recorded checksum {} (applied "
                             "as {}), the file has {} ({}); an applied migration must not change: restore the shipped "
                             "file",
                             file.script, a.checksum, a.script.empty() ? a.version : a.script, file.checksum,
                             k_checksum_algorithm)});
    }

    std::optional<std::vector<long>> schema;
    if (state.schema_version)
        schema = version_parts_or_throw(*state.schema_version);
    std::optional<std::vector<long>> baseline;
    if (state.baseline)
        baseline = version_parts_or_throw(*state.baseline);
    for (const auto& m : files) {
        if (baseline && compare_parts(m.version_parts.empty() ? version_parts_or_throw(m.version) : m.version_parts,
                                      *baseline) <= 0)
            continue;
        if (applied.count(version_key(m.version)) != 0)
            continue;
        const auto parts = m.version_parts.empty() ? version_parts_or_throw(m.version) : m.version_parts;
        if (schema && compare_parts(parts, *schema) < 0) {
            v.problems.push_back({Kind::out_of_order, m.version,
                                  fmt::format("migration {} is older than the database schema {} but was never "
                                              "applied; migrations must be applied in version order",
                                              m.script, *state.schema_version)});
            continue;
        }
        v.pending.push_back(&m);
    }
    return v;
}

UpgradeDecision decide_upgrade(const SchemaState& state, const std::vector<Migration>& files,
                               const std::string& broker_version, DatabaseKind kind, AllowRemoteUpgrade allow,
                               std::string_view allow_flag) {
    using Action = UpgradeDecision::Action;
    UpgradeDecision d;
    if (!state.schema_version) {
        d.action = files.empty() ? Action::none : Action::initialise;
        return d;
    }
    const std::string& schema = *state.schema_version;
    if (files.empty() || compare_versions(schema, files.back().version) > 0) {
        d.action = Action::refuse_newer;
        d.message = newer_message(schema, files, broker_version, state);
        return d;
    }
    const std::string& newest = files.back().version;
    if (compare_versions(schema, newest) == 0) {
        d.action = Action::none;
        return d;
    }
    if (kind == DatabaseKind::external && allow == AllowRemoteUpgrade::no) {
        d.action = Action::refuse_remote;
        d.message = fmt::format(
            "the external database's schema {} (written by broker {}) is older than this broker's schema {} (broker "
            "{}): upgrading it changes the schema every broker sharing the database runs on; run again with "
            "{} to upgrade it",
            schema, state.broker_version.value_or("unknown"), newest, broker_version, allow_flag);
        return d;
    }
    d.action = Action::upgrade;
    return d;
}

MigrateResult migrate(Connection& conn, const std::vector<Migration>& migrations, const std::string& broker_version,
                      DryRun dry_run) {
    MigrateOptions options;
    options.dry_run = dry_run;
    return migrate(conn, migrations, broker_version, options);
}

MigrateResult migrate(Connection& conn, const std::vector<Migration>& migrations, const std::string& broker_version,
                      const MigrateOptions& options) {
    std::vector<Migration> storage;
    const auto& files = in_order(migrations, storage);
    if (options.baseline && !parse_version(*options.baseline))
        throw MigrationError(fmt::format("invalid baseline version '{}': expected dot-separated non-negative "
                                         "integers such as 9.0.0.2",
                                         *options.baseline),
                             ExitCode::usage);
    MigrateResult result;
    auto fill = [&](const SchemaState& state, const Prepared& p, bool with_sql) {
        result.schema_before = state.schema_version;
        result.schema_after = options.baseline ? options.baseline : state.schema_version;
        result.action = p.decision.action;
        result.baseline = options.baseline;
        for (const auto* m : p.validation.pending) {
            result.plan.push_back({m->version, m->script, m->transactional, with_sql ? read_migration(*m) : ""});
        }
    };

    if (options.dry_run == DryRun::yes) {
        const auto state = read_schema_state(conn);
        const auto p = prepare(state, files, broker_version, options);
        fill(state, p, true);
        for (const auto& m : result.plan) {
            result.applied.push_back(m.script);
            result.schema_after = m.version;
        }
        return result;
    }

    ClusterLock lock(conn, options.lock);
    SessionName name(conn);
    lock.wait_for_orphans(options.lock.wait);
    // Read under the lock: another broker may have migrated while we waited.
    const auto state = read_schema_state(conn);
    const auto p = prepare(state, files, broker_version, options);
    fill(state, p, false);
    if (p.validation.pending.empty() && !options.baseline)
        return result;

    ensure_history(conn, state);
    const RowContext ctx{broker_version, options.host.empty() ? host_name() : options.host, options.site_id};
    if (options.baseline) {
        try {
            insert_history(conn, *options.baseline,
                           fmt::format("baseline: database adopted at {}", *options.baseline), "<< baseline >>", "",
                           "none", "BASELINE", 0, true, ctx);
        } catch (const DatabaseError& e) {
            throw MigrationError(fmt::format("cannot record the baseline {}: {}", *options.baseline, e.what()));
        }
    }
    for (const Migration* pending : p.validation.pending) {
        const Migration& m = *pending;
        lock.verify();
        const std::string sql = read_migration(m);
        if (m.transactional)
            apply_transactional(conn, m, sql, options.timeouts, ctx);
        else
            apply_no_transaction(conn, m, sql, options.timeouts, ctx);
        result.applied.push_back(m.script);
        result.schema_after = m.version;
    }
    return result;
}

} // namespace leo::migrations
