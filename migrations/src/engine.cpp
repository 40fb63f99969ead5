#include "leo/migrations/engine.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>

namespace leo::migrations {
namespace {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::string_view k_history_table = "leo_schema_history";
constexpr std::string_view k_utf8_bom = "\xEF\xBB\xBF";
/// How long migrate() waits for another process's migration lock.
constexpr auto k_lock_wait = std::chrono::seconds(120);
constexpr auto k_lock_retry = std::chrono::milliseconds(500);

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

bool history_exists(Connection& conn) {
    const auto rows = conn.query("SELECT 1 FROM pg_catalog.pg_class c "
                                 "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                 "WHERE c.relname = $1 AND n.nspname = current_schema() AND c.relkind = 'r'",
                                 {std::string(k_history_table)});
    return !rows.empty();
}

void create_history(Connection& conn) {
    conn.exec("BEGIN");
    try {
        // PostgreSQL 9.1+: serial, no identity column, no IF NOT EXISTS (checked first,
        // under the migration lock).
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
                              " success boolean NOT NULL)",
                              k_history_table));
        conn.exec("COMMIT");
    } catch (...) {
        try {
            conn.exec("ROLLBACK");
        } catch (const std::exception&) {
        }
        throw;
    }
}

/// A session-level advisory lock, released on destruction.
class MigrationLock {
public:
    explicit MigrationLock(Connection& conn) : m_conn(conn) {
        const std::string key = std::to_string(k_migration_lock_key);
        const auto deadline = Clock::now() + k_lock_wait;
        for (;;) {
            const auto rows = m_conn.query("SELECT pg_try_advisory_lock($1::bigint)", {key});
            if (rows.at(0, 0) == "t")
                return;
            if (Clock::now() >= deadline)
                throw MigrationError(
                    fmt::format("another migration of this database is running ({}); waited {} s for it: try again "
                                "when it has finished",
                                holder(), std::chrono::duration_cast<std::chrono::seconds>(k_lock_wait).count()));
            std::this_thread::sleep_for(k_lock_retry);
        }
    }
    ~MigrationLock() {
        try {
            m_conn.query("SELECT pg_advisory_unlock($1::bigint)", {std::to_string(k_migration_lock_key)});
        } catch (const std::exception&) {
            // The lock ends with the session anyway.
        }
    }
    MigrationLock(const MigrationLock&) = delete;
    MigrationLock& operator=(const MigrationLock&) = delete;

private:
    /// "held by pid 123 (leo-installer) from 10.0.0.5", best effort.
    std::string holder() {
        try {
            const auto key = static_cast<unsigned long long>(k_migration_lock_key);
            const std::string pid_column = m_conn.server_version_num() >= 90200 ? "pid" : "procpid";
            const auto rows = m_conn.query(
                fmt::format("SELECT a.{0}::text, coalesce(a.application_name, ''), "
                            "coalesce(host(a.client_addr), 'local socket') "
                            "FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.{0} = l.pid "
                            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid "
                            "AND l.objid = $2::oid AND l.objsubid = 1",
                            pid_column),
                {std::to_string(key >> 32), std::to_string(key & 0xFFFFFFFFULL)});
            if (rows.empty())
                return "holder unknown";
            return fmt::format("held by server pid {} ({}) from {}", rows.at(0, 0),
                               rows.at(0, 1).empty() ? "no application name" : rows.at(0, 1), rows.at(0, 2));
        } catch (const std::exception&) {
            return "holder unknown";
        }
    }

    Connection& m_conn;
};

/// `migrations` sorted by version; throws on duplicates.
std::vector<const Migration*> sorted(const std::vector<Migration>& migrations) {
    std::vector<const Migration*> out;
    out.reserve(migrations.size());
    for (const auto& m : migrations)
        out.push_back(&m);
    std::stable_sort(out.begin(), out.end(), [](const Migration* a, const Migration* b) {
        return compare_versions(a->version, b->version) < 0;
    });
    for (size_t i = 1; i < out.size(); ++i)
        if (compare_versions(out[i - 1]->version, out[i]->version) == 0)
            throw MigrationError(fmt::format("two migrations have version {}: {} and {}", out[i]->version,
                                             out[i - 1]->script, out[i]->script));
    return out;
}

/// Check the history against the files; return the pending migrations in order.
/// Throws MigrationError before anything is changed.
std::vector<const Migration*> plan(const SchemaState& state, const std::vector<const Migration*>& files,
                                   const std::string& broker_version) {
    if (!state.failed.empty()) {
        std::string list;
        for (const auto& v : state.failed)
            list += (list.empty() ? "" : ", ") + v;
        throw MigrationError(
            fmt::format("{} records failed migration(s) {}: the schema is in an unknown state; restore the database "
                        "from the restore point taken before the upgrade",
                        k_history_table, list));
    }
    if (state.schema_version) {
        if (files.empty() || compare_versions(*state.schema_version, files.back()->version) > 0)
            throw MigrationError(
                fmt::format("database schema {} is newer than this broker's newest migration {} (broker {}): a broker "
                            "cannot run an unknown schema; install broker {} or newer",
                            *state.schema_version, files.empty() ? std::string("(none)") : files.back()->version,
                            broker_version, state.broker_version.value_or("(the one that wrote it)")));
    }

    std::unordered_map<std::string, const Migration*> by_key;
    by_key.reserve(files.size());
    for (const auto* m : files)
        by_key.emplace(version_key(m->version), m);

    std::unordered_map<std::string, const AppliedMigration*> applied;
    applied.reserve(state.applied.size());
    for (const auto& a : state.applied) {
        const auto key = version_key(a.version);
        applied.emplace(key, &a);
        auto it = by_key.find(key);
        if (it == by_key.end())
            continue; // an older migration no longer shipped: fine
        const Migration& file = *it->second;
        if (a.checksum_algorithm != k_checksum_algorithm)
            throw MigrationError(
                fmt::format("migration {} was recorded with checksum algorithm '{}', which this broker does not know "
                            "(it uses '{}')",
                            file.script, a.checksum_algorithm, k_checksum_algorithm));
        if (a.checksum != file.checksum)
            throw MigrationError(fmt::format(
                "migration {} changed after it was applied: the database recorded checksum {} (applied as "
                "{}), the file has {} ({}); an applied migration must not change: restore the shipped file",
                file.script, a.checksum, a.script.empty() ? a.version : a.script, file.checksum, k_checksum_algorithm));
    }

    std::vector<const Migration*> pending;
    for (const auto* m : files) {
        if (applied.count(version_key(m->version)) != 0)
            continue;
        if (state.schema_version && compare_versions(m->version, *state.schema_version) < 0)
            throw MigrationError(
                fmt::format("migration {} is older than the database schema {} but was never applied; migrations "
                            "must be applied in version order",
                            m->script, *state.schema_version));
        pending.push_back(m);
    }
    return pending;
}

void apply_one(Connection& conn, const Migration& m, const std::string& broker_version) {
    std::string text;
    try {
        text = fs::read_file(m.path);
    } catch (const std::exception& e) {
        throw MigrationError(fmt::format("migration {} failed: {}", m.script, e.what()));
    }
    if (!m.checksum.empty() && migration_checksum(text) != m.checksum)
        throw MigrationError(fmt::format("migration {} failed: {} changed since it was read (checksum {}, now {})",
                                         m.script, m.path.string(), m.checksum, migration_checksum(text)));
    const std::string sql = strip_bom(std::move(text));
    const std::string checksum = m.checksum.empty() ? migration_checksum(sql) : m.checksum;

    bool in_script = false;
    try {
        conn.exec("BEGIN");
        // lock_timeout exists from 9.3; statement_timeout in every supported version.
        if (conn.server_version_num() >= 90300)
            conn.exec("SET LOCAL lock_timeout = '30s'");
        conn.exec("SET LOCAL statement_timeout = '15min'");
        const auto started = Clock::now();
        in_script = true;
        conn.exec(sql);
        in_script = false;
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
        conn.query(fmt::format("INSERT INTO {} (version, description, script, checksum, checksum_algorithm, "
                               "broker_version, execution_time_ms, success) "
                               "VALUES ($1, $2, $3, $4, $5, $6, $7::integer, true)",
                               k_history_table),
                   {m.version, m.description, m.script, checksum, std::string(k_checksum_algorithm), broker_version,
                    std::to_string(std::min<long long>(ms, 2147483647LL))});
        conn.exec("COMMIT");
    } catch (const DatabaseError& e) {
        try {
            conn.exec("ROLLBACK");
        } catch (const std::exception&) {
            // The connection may be gone; the server rolls back an unfinished transaction.
        }
        std::string reason = e.what();
        if (const auto* q = dynamic_cast<const QueryError*>(&e)) {
            reason = q->server_message();
            if (in_script && q->position())
                reason += fmt::format(" (line {} of the script)", line_of_position(sql, *q->position()));
        }
        throw MigrationError(fmt::format("migration {} failed: {}", m.script, reason));
    }
}

} // namespace

int compare_versions(const std::string& a, const std::string& b) {
    return compare_parts(version_parts_or_throw(a), version_parts_or_throw(b));
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

std::vector<Migration> load_migrations(const stdfs::path& dir) {
    std::vector<Migration> out;
    std::error_code ec;
    stdfs::directory_iterator it(dir, ec);
    if (ec)
        throw MigrationError(fmt::format("cannot read the migrations directory {}: {}", dir.string(), ec.message()));
    for (; it != stdfs::directory_iterator(); it.increment(ec)) {
        if (ec)
            break;
        const std::string name = it->path().filename().string();
        if (!name.starts_with('V') || !name.ends_with(".sql"))
            continue;
        std::error_code type_ec;
        if (!it->is_regular_file(type_ec))
            continue;
        const std::string_view body = std::string_view(name).substr(1, name.size() - 1 - 4);
        const size_t sep = body.find("__");
        const auto bad = [&](std::string_view why) {
            return MigrationError(
                fmt::format("invalid migration file name {} in {}: {}; expected "
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
        m.path = it->path();
        try {
            m.checksum = migration_checksum(fs::read_file(m.path));
        } catch (const SystemError& e) {
            throw MigrationError(fmt::format("cannot read migration {}: {}", name, e.what()));
        }
        out.push_back(std::move(m));
    }
    if (ec)
        throw MigrationError(fmt::format("cannot read the migrations directory {}: {}", dir.string(), ec.message()));
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
    state.has_history = history_exists(conn);
    if (!state.has_history)
        return state;
    const auto rows = conn.query(
        fmt::format("SELECT version, coalesce(description, ''), coalesce(checksum, ''), coalesce(broker_version, ''), "
                    "coalesce(script, ''), coalesce(checksum_algorithm, ''), coalesce(success, false) FROM {}",
                    k_history_table));
    for (size_t r = 0; r < rows.rows.size(); ++r) {
        if (rows.at(r, 6) != "t") {
            state.failed.push_back(rows.at(r, 0));
            continue;
        }
        state.applied.push_back(
            AppliedMigration{rows.at(r, 0), rows.at(r, 1), rows.at(r, 2), rows.at(r, 3), rows.at(r, 4), rows.at(r, 5)});
    }
    std::vector<std::pair<std::vector<long>, size_t>> order;
    order.reserve(state.applied.size());
    for (size_t i = 0; i < state.applied.size(); ++i) {
        auto parts = parse_version(state.applied[i].version);
        if (!parts)
            throw MigrationError(
                fmt::format("{} holds an invalid version '{}'", k_history_table, state.applied[i].version));
        order.emplace_back(std::move(*parts), i);
    }
    std::sort(order.begin(), order.end(),
              [](const auto& a, const auto& b) { return compare_parts(a.first, b.first) < 0; });
    std::vector<AppliedMigration> applied;
    applied.reserve(order.size());
    for (const auto& [parts, i] : order)
        applied.push_back(std::move(state.applied[i]));
    state.applied = std::move(applied);
    if (!state.applied.empty()) {
        state.schema_version = state.applied.back().version;
        state.broker_version = state.applied.back().broker_version;
    }
    return state;
}

MigrateResult migrate(Connection& conn, const std::vector<Migration>& migrations, const std::string& broker_version,
                      DryRun dry_run) {
    const auto files = sorted(migrations);
    MigrateResult result;

    if (dry_run == DryRun::yes) {
        const auto state = read_schema_state(conn);
        result.schema_before = state.schema_version;
        result.schema_after = state.schema_version;
        for (const auto* m : plan(state, files, broker_version)) {
            result.applied.push_back(m->script);
            result.schema_after = m->version;
        }
        return result;
    }

    MigrationLock lock(conn);
    // Read under the lock: another broker may have migrated while we waited.
    const auto state = read_schema_state(conn);
    result.schema_before = state.schema_version;
    result.schema_after = state.schema_version;
    const auto pending = plan(state, files, broker_version);
    if (pending.empty())
        return result;
    if (!state.has_history) {
        try {
            create_history(conn);
        } catch (const DatabaseError& e) {
            throw MigrationError(fmt::format("cannot create {}: {}", k_history_table, e.what()));
        }
    }
    for (const auto* m : pending) {
        apply_one(conn, *m, broker_version);
        result.applied.push_back(m->script);
        result.schema_after = m->version;
    }
    return result;
}

} // namespace leo::migrations
