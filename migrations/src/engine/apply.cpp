// Running one migration: in its transaction, or statement by statement without one.
#include "internal.hpp"
#include "leo/common/hint.hpp"

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

/// `"public"."idx"` (quoted by libpq) of every index whose build failed (pg_index.indisvalid false).
std::set<std::string> invalid_indexes(Connection& conn) {
    const auto rows = conn.query("SELECT n.nspname, c.relname "
                                 "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
                                 "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid");
    std::set<std::string> out;
    for (size_t r = 0; r < rows.rows.size(); ++r)
        out.insert(conn.quote_ident(rows.at(r, 0)) + "." + conn.quote_ident(rows.at(r, 1)));
    return out;
}

/// The failure text of a no-transaction migration's row while it runs (and after a kill).
std::string unfinished(size_t kept, size_t n) {
    return fmt::format("did not finish: {} of its {} statement(s) had completed when the migrator stopped or lost its "
                       "connection (or it is still running)",
                       kept, n);
}

/// CREATE INDEX CONCURRENTLY leaves an INVALID index behind when it fails: drop those that
/// were not there before, so that the next run can build them again. Returns what to add
/// to the error ("" when none).
std::string drop_invalid_indexes(Connection& conn, const std::set<std::string>& invalid_before) {
    try {
        std::vector<std::string> dropped;
        for (const auto& index : invalid_indexes(conn)) {
            if (invalid_before.count(index) != 0)
                continue;
            conn.exec(fmt::format("DROP INDEX {}{}", conn.server_version_num() >= 90200 ? "CONCURRENTLY " : "", index));
            dropped.push_back(index);
        }
        std::string list;
        for (const auto& d : dropped)
            list += (list.empty() ? "" : ", ") + d;
        return dropped.empty() ? "" : fmt::format("; dropped the invalid index {} it left", list);
    } catch (const DatabaseError& drop_error) {
        return fmt::format("; could not drop the invalid index it left: {}", drop_error.what());
    }
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
        if (ctx.fence) {  // inside the transaction: the commit is the guarded write
            try {
                ctx.fence(conn);
            } catch (const DatabaseError&) {
                throw;  // rolled back below
            } catch (...) {
                try {
                    conn.exec("ROLLBACK");
                } catch (const std::exception&) {
                }
                throw;
            }
        }
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
    const size_t n = statements.size();
    auto line = [&](size_t i) { return line_at_offset(sql, statements[i].first); };
    auto reset = [&] {
        try {
            // Back to the session's own lock_timeout (Connection::open), not the server's default.
            conn.exec(conn.server_version_num() >= 90300
                          ? fmt::format("SET lock_timeout = '{}s'; RESET statement_timeout", k_session_lock_timeout_s)
                          : std::string("RESET statement_timeout"));
        } catch (const std::exception&) {
        }
    };
    // Recorded before its first statement as not finished, and kept true to what stays
    // applied as it goes: a migrator killed half-way, or a connection lost, leaves the row
    // behind, and the next run refuses instead of running the first statements again.
    long long rank = 0;
    try {
        rank = insert_history(conn, m.version, m.description, m.script, m.checksum, k_checksum_algorithm, "SQL", 0,
                              false, ctx, unfinished(0, n));
    } catch (const DatabaseError& e) {
        throw MigrationError(fmt::format("migration {} (no transaction) did not start: it could not be recorded in "
                                         "{} first: {}",
                                         m.script, k_history_table, e.what()));
    }
    std::set<std::string> invalid_before;
    size_t done = 0; // statements that ran
    size_t kept = 0; // of them, those not inside a transaction block the migration opened
    constexpr size_t k_none = static_cast<size_t>(-1);
    size_t opened = k_none; // the statement that opened the transaction block still open
    size_t ran = 0;         // statements that completed
    bool in_statement = false;
    bool ended_open = false; // every statement ran, but inside a transaction block it opened
    std::string cause;       // what went wrong, for the error ("at statement 2 of 3: ...")
    std::string failure;     // the same for the history row
    const auto started = Clock::now();
    try {
        conn.exec(timeout_sql(conn, timeouts, false));
        invalid_before = invalid_indexes(conn);
        for (; done < n; ++done) {
            in_statement = true;
            conn.exec(statements[done].second);
            in_statement = false;
            ran = done + 1;
            if (conn.in_transaction()) {
                if (opened == k_none)
                    opened = done;
                continue;
            }
            opened = k_none;
            kept = done + 1;
            set_failure(conn, rank, unfinished(kept, n));
            fault::point("migrate.no_transaction.after_statement"); // statement `kept` stays, the rest not run
        }
        if (opened != k_none) {
            ended_open = true;
            cause = fmt::format("after its last statement: it ended inside the transaction its statement {} (line {}) "
                                "opened, without COMMIT",
                                opened + 1, line(opened));
            failure = fmt::format("ended inside the transaction its statement {} (line {}) opened, without COMMIT",
                                  opened + 1, line(opened));
        }
    } catch (const DatabaseError& e) {
        if (in_statement) {
            std::string message = e.what();
            long at = line(done);
            if (const auto* q = dynamic_cast<const QueryError*>(&e)) {
                message = q->server_message();
                if (q->position()) // it counts characters of the statement sent; add the lines before it
                    at += line_of_position(statements[done].second, *q->position()) - 1;
            }
            cause = fmt::format("at statement {} of {}: {} (line {} of the script)", done + 1, n, message, at);
            failure = fmt::format("at statement {} of {} (line {}): {}", done + 1, n, at, message);
        } else {
            cause = ran == 0 ? fmt::format("before its first statement: {}", e.what())
                             : fmt::format("after statement {} of {}: {}", ran, n, e.what());
            failure = cause;
        }
    }
    if (cause.empty()) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
        try {
            mark_succeeded(conn, rank, ms);
        } catch (const DatabaseError& e) {
            reset();
            throw MigrationError(fmt::format(
                "migration {} (no transaction) ran, all {} statement(s), but its history row could not be marked "
                "applied: {}; {} records it as not finished: check that its changes are all there, then mark it "
                "applied: UPDATE {} SET success = true, failure = NULL WHERE installed_rank = {}",
                m.script, n, e.what(), k_history_table, k_history_table, rank));
        }
        reset();
        return;
    }

    std::string reason = fmt::format("migration {} (no transaction) failed {}", m.script, cause);
    if (conn.in_transaction()) {
        // A transaction the migration opened: what it did since then goes with it.
        try {
            conn.exec("ROLLBACK");
            reason += ended_open         ? std::string("; that transaction was rolled back")
                      : opened != k_none ? fmt::format("; the transaction its statement {} (line {}) opened was "
                                                       "rolled back",
                                                       opened + 1, line(opened))
                                         : std::string("; the transaction it was in was rolled back");
            failure += " (its transaction was rolled back)";
        } catch (const DatabaseError& rollback_error) {
            reason += fmt::format("; could not roll back the transaction it opened: {}", rollback_error.what());
        }
    }
    reason += drop_invalid_indexes(conn, invalid_before);
    if (kept > 0) {
        try {
            set_failure(conn, rank, fmt::format("{}; its first {} statement(s) had completed", failure, kept));
            reason += fmt::format("; its first {} statement(s) had completed and stay applied, and it is recorded as "
                                  "failed, so no migration runs until this is put right: undo by hand what they "
                                  "changed (it runs again from its first statement), then remove the failed entry "
                                  "with {}",
                                  kept, command_hint("migrate --repair"));
        } catch (const DatabaseError& e) {
            reason += fmt::format("; its first {} statement(s) had completed and stay applied; it stays recorded as "
                                  "not finished (where it failed could not be recorded: {}), so no migration runs "
                                  "until this is put right: undo by hand what they changed, then remove the failed "
                                  "entry with {}",
                                  kept, e.what(), command_hint("migrate --repair"));
        }
    } else {
        // Nothing of it stays: the next run simply runs it again.
        try {
            delete_history_row(conn, rank);
        } catch (const DatabaseError& e) {
            reason += fmt::format("; none of its statements stays applied, but it stays recorded as not finished (the "
                                  "row could not be removed: {}): check, then run {}",
                                  e.what(), command_hint("migrate --repair"));
        }
    }
    reset();
    throw MigrationError(reason);
}

} // namespace leo::migrations::detail
