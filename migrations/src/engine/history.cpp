// leo_schema_history: creating and upgrading it, writing rows, reading the schema state.
#include "internal.hpp"

#include "leo/common/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <set>

namespace leo::migrations::detail {
namespace {

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

/// The columns later formats added, with their definitions (nullable or defaulted, so a
/// broker of an earlier format keeps inserting rows). Format 2: who applied it, and the
/// oldest broker that can run the schema; format 3: where a failed migration failed.
struct AddedColumn {
    int format;
    const char* name;
    const char* definition;
};
constexpr AddedColumn k_added_columns[] = {
    {2, "installed_host", "varchar(255)"},
    {2, "installed_site_id", "integer"},
    {2, "min_broker_version", "varchar(64)"},
    {2, "type", "varchar(20) NOT NULL DEFAULT 'SQL'"},
    {3, "failure", "text"},
};

/// The format of a history table with `columns`: the highest whose columns (and every
/// earlier format's) are all there.
int format_of(const std::set<std::string>& columns) {
    int format = 1;
    for (int f = 2; f <= k_history_format; ++f) {
        const bool all = std::all_of(std::begin(k_added_columns), std::end(k_added_columns),
                                     [&](const AddedColumn& c) { return c.format != f || columns.count(c.name) != 0; });
        if (!all)
            break;
        format = f;
    }
    return format;
}

std::optional<std::string> site_param(const RowContext& ctx) {
    return ctx.site_id ? std::optional<std::string>(std::to_string(*ctx.site_id)) : std::nullopt;
}
std::string ms_param(long long ms) { return std::to_string(std::clamp<long long>(ms, 0, 2147483647LL)); }

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

} // namespace

/// Create the history table (k_history_format), or add the columns later formats added to
/// an older one. Runs under the migration lock.
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
                                      " type varchar(20) NOT NULL DEFAULT 'SQL',"
                                      " failure text)",
                                      k_history_table));
            });
            return;
        }
        const auto columns = history_columns(conn);
        in_transaction(conn, [&] {
            for (const auto& col : k_added_columns)
                if (columns.count(col.name) == 0)
                    conn.exec(
                        fmt::format("ALTER TABLE {} ADD COLUMN {} {}", k_history_table, col.name, col.definition));
        });
    } catch (const DatabaseError& e) {
        throw MigrationError(
            fmt::format("cannot {} {}: {}", state.has_history ? "upgrade" : "create", k_history_table, e.what()));
    }
}

long long insert_history(Connection& conn, const std::string& version, const std::string& description,
                         const std::string& script, const std::string& checksum, const std::string& algorithm,
                         const std::string& type, long long ms, bool success, const RowContext& ctx,
                         const std::optional<std::string>& failure) {
    std::vector<std::optional<std::string>> params{version,  description,     script,
                                                   checksum, algorithm,       ctx.broker_version,
                                                   ctx.host, site_param(ctx), broker_part(version),
                                                   type,     ms_param(ms),    std::string(success ? "true" : "false")};
    if (failure)
        params.emplace_back(*failure);
    const auto rows = conn.query(
        fmt::format("INSERT INTO {} (version, description, script, checksum, checksum_algorithm, "
                    "broker_version, installed_host, installed_site_id, min_broker_version, type, "
                    "execution_time_ms, success{}) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::integer, $9, $10, $11::integer, $12::boolean{}) "
                    "RETURNING installed_rank::text",
                    k_history_table, failure ? ", failure" : "", failure ? ", $13" : ""),
        params);
    return std::stoll(rows.at(0, 0));
}

void set_failure(Connection& conn, long long rank, const std::string& failure) {
    conn.query(fmt::format("UPDATE {} SET failure = $2 WHERE installed_rank = $1::integer", k_history_table),
               {std::to_string(rank), failure});
}

void mark_succeeded(Connection& conn, long long rank, long long ms) {
    conn.query(fmt::format("UPDATE {} SET success = true, failure = NULL, execution_time_ms = $2::integer, "
                           "installed_on = now() WHERE installed_rank = $1::integer",
                           k_history_table),
               {std::to_string(rank), ms_param(ms)});
}

void delete_history_row(Connection& conn, long long rank) {
    conn.query(fmt::format("DELETE FROM {} WHERE installed_rank = $1::integer", k_history_table),
               {std::to_string(rank)});
}

} // namespace leo::migrations::detail

namespace leo::migrations {
using namespace detail;

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
    state.history_format = format_of(columns);
    const bool format2 = state.history_format >= 2;
    const auto rows = conn.query(fmt::format(
        "SELECT version, coalesce(description, ''), coalesce(checksum, ''), coalesce(broker_version, ''), "
        "coalesce(script, ''), coalesce(checksum_algorithm, ''), coalesce(success, false), "
        "coalesce(installed_by, ''), {}, installed_rank::text, "
        "coalesce(to_char(installed_on AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), {} "
        "FROM {} ORDER BY installed_rank",
        format2 ? "coalesce(installed_host, ''), installed_site_id::text, coalesce(min_broker_version, ''), "
                  "coalesce(type, 'SQL')"
                : "'', NULL::text, '', 'SQL'",
        state.history_format >= 3 ? "coalesce(failure, '')" : "''", k_history_table));
    std::vector<std::pair<std::vector<long>, AppliedMigration>> order;
    order.reserve(rows.rows.size());
    for (size_t r = 0; r < rows.rows.size(); ++r) {
        if (rows.at(r, 6) != "t") {
            FailedMigration f;
            f.installed_rank = std::stoll(rows.at(r, 12));
            f.version = rows.at(r, 0);
            f.description = rows.at(r, 1);
            f.script = rows.at(r, 4);
            f.broker_version = rows.at(r, 3);
            f.installed_by = rows.at(r, 7);
            f.installed_host = rows.at(r, 8);
            f.installed_on = rows.at(r, 13);
            f.failure = rows.at(r, 14);
            state.failed.push_back(std::move(f));
            continue;
        }
        AppliedMigration a{rows.at(r, 0),  rows.at(r, 1), rows.at(r, 2), rows.at(r, 3), rows.at(r, 4), rows.at(r, 5),
                           rows.at(r, 11), rows.at(r, 7), rows.at(r, 8), std::nullopt,  rows.at(r, 10)};
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

RepairResult repair(Connection& conn, const std::vector<FailedMigration>& confirmed, const LockOptions& lock_options) {
    RepairResult result;
    if (confirmed.empty())
        return result;
    ClusterLock lock(conn, lock_options);
    SessionName name(conn);
    try {
        in_transaction(conn, [&] {
            for (const auto& f : confirmed) {
                const auto rows = conn.query(fmt::format("DELETE FROM {} WHERE installed_rank = $1::integer AND "
                                                         "version = $2 AND success IS NOT TRUE RETURNING version",
                                                         k_history_table),
                                             {std::to_string(f.installed_rank), f.version});
                (rows.empty() ? result.already_gone : result.removed).push_back(f);
            }
        });
    } catch (const DatabaseError& e) {
        throw MigrationError(fmt::format("cannot remove the failed entries from {}: {}", k_history_table, e.what()));
    }
    return result;
}

} // namespace leo::migrations
