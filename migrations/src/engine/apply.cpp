// Running one migration: in its transaction, or statement by statement without one.
#include "internal.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace leo::migrations::detail {
namespace {

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

} // namespace

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
        fault::point("migrate.inside"); // the migration ran, its transaction is not committed
        conn.exec("COMMIT");
        fault::point("migrate.between"); // committed; the next one has not started
    } catch (const DatabaseError& e) {
        try {
            conn.exec("ROLLBACK");
        } catch (const std::exception&) {
            // The connection may be gone; the server rolls back an unfinished transaction.
        }
        throw MigrationError(fmt::format("migration {} failed: {}", m.script, reason_of(e, sql, 0, in_script)));
    }
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
            reason +=
                fmt::format(" at statement {} of {}: {}", done + 1, statements.size(), reason_of(e, sql, offset, true));
            const auto* q = dynamic_cast<const QueryError*>(&e);
            if (q == nullptr || !q->position())
                reason += fmt::format(" (the statement at line {} of the script)",
                                      1 + std::count(sql.begin(), sql.begin() + static_cast<long>(offset), '\n'));
        } else
            reason += ": " + std::string(e.what());
        // CREATE INDEX CONCURRENTLY leaves an INVALID index behind when it fails: drop it,
        // so that the next run can build it again.
        try {
            std::vector<std::string> dropped;
            for (const auto& index : invalid_indexes(conn)) {
                if (invalid_before.count(index) != 0)
                    continue;
                conn.exec(
                    fmt::format("DROP INDEX {}{}", conn.server_version_num() >= 90200 ? "CONCURRENTLY " : "", index));
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
            reason += fmt::format("; its first {} statement(s) had completed and stay applied, and it is recorded as "
                                  "failed, so no migration runs until this is put right: undo by hand what they "
                                  "changed (it runs again from its first statement), then remove the failed entry "
                                  "with `leo-installer migrate --repair`",
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

} // namespace leo::migrations::detail
