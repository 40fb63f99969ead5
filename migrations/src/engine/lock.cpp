// The cluster lock (a session-level advisory lock on its own connection) and the
// migrating session's application_name.
#include "internal.hpp"

#include "leo/common/error.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <random>
#include <set>
#include <thread>

namespace leo::migrations::detail {
namespace {

constexpr const char* k_pooler_advice =
    "a connection pooler in transaction mode (for example pgbouncer with pool_mode = transaction) stands "
    "between leo-installer and PostgreSQL, so a session-level advisory lock cannot keep the brokers of the "
    "cluster from migrating at once; run the migration with a connection to PostgreSQL itself (its own port), "
    "or through a pool in session mode";

std::string pid_column(const Connection& conn) { return conn.server_version_num() >= 90200 ? "pid" : "procpid"; }

} // namespace

ClusterLock::ClusterLock(Connection& main, const LockOptions& options)
    : m_main(main), m_lock(open_lock_connection(main)) {
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
        std::this_thread::sleep_for(
            std::min(std::chrono::milliseconds(dist(rng)), std::max(left, std::chrono::milliseconds::zero())));
        pause = std::min(pause * 2, options.retry_max);
    }
    verify();
}

ClusterLock::~ClusterLock() {
    try {
        m_lock.query("SELECT pg_advisory_unlock($1::bigint)", {std::to_string(k_migration_lock_key)});
    } catch (const std::exception&) {
        // The lock ends with the session anyway (the connection closes next).
    }
}

void ClusterLock::verify() {
    Rows rows;
    try {
        rows = m_lock.query(held_sql(), lock_params());
    } catch (const DatabaseError& e) {
        throw MigrationError(
            fmt::format("the migration lock's connection failed ({}): stopping before the next migration", e.what()));
    }
    if (rows.at(0, 0) != m_server_pid || rows.at(0, 1) != "t")
        throw MigrationError(fmt::format(
            "the migration lock taken in server session {} is not held by the session that answers now ({}): "
            "{}",
            m_server_pid, rows.at(0, 0), k_pooler_advice));
}

void ClusterLock::wait_for_orphans(const std::chrono::milliseconds wait) {
    const std::string pid = pid_column(m_main);
    const std::string sql =
        fmt::format("SELECT {0}::text, coalesce(application_name, '') FROM pg_catalog.pg_stat_activity "
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

Connection ClusterLock::open_lock_connection(Connection& main) {
    try {
        auto c = Connection::open(main.conninfo());
        c.query("SELECT set_config('application_name', $1, false)", {application_name(std::string(k_app_lock))});
        return c;
    } catch (const DatabaseError& e) {
        throw MigrationError(fmt::format("cannot open the connection for the migration lock: {}", e.what()));
    }
}

std::vector<std::optional<std::string>> ClusterLock::lock_params() const {
    const auto key = static_cast<unsigned long long>(k_migration_lock_key);
    return {std::to_string(key >> 32), std::to_string(key & 0xFFFFFFFFULL)};
}

std::string ClusterLock::held_sql() {
    return "SELECT pg_backend_pid()::text, EXISTS (SELECT 1 FROM pg_catalog.pg_locks l "
           "WHERE l.locktype = 'advisory' AND l.granted AND l.pid = pg_backend_pid() "
           "AND l.classid = $1::oid AND l.objid = $2::oid AND l.objsubid = 1)";
}

/// Before locking: statements of one connection must reach one server session, and the
/// two connections two different sessions. A pooler in transaction mode hands each
/// transaction (each statement, outside BEGIN) to any idle server session.
void ClusterLock::refuse_transaction_pooler() {
    std::set<std::string> lock_pids;
    std::set<std::string> main_pids;
    for (int i = 0; i < 4; ++i) {
        lock_pids.insert(m_lock.query("SELECT pg_backend_pid()::text").at(0, 0));
        main_pids.insert(m_main.query("SELECT pg_backend_pid()::text").at(0, 0));
    }
    const bool shared =
        std::any_of(lock_pids.begin(), lock_pids.end(), [&](const std::string& p) { return main_pids.count(p) != 0; });
    if (lock_pids.size() == 1 && main_pids.size() == 1 && !shared)
        return;
    std::string seen;
    for (const auto& p : lock_pids)
        seen += (seen.empty() ? "" : ", ") + p;
    for (const auto& p : main_pids)
        if (lock_pids.count(p) == 0)
            seen += (seen.empty() ? "" : ", ") + p;
    const bool announced = m_main.backend_pid() == std::stoi(*main_pids.begin());
    throw MigrationError(fmt::format("refusing to migrate: the statements of two connections ran in server sessions {} "
                                     "(one connection's statements must stay in one session{}): {}",
                                     seen, announced ? "" : "; the pid announced at connect is not the server's",
                                     k_pooler_advice),
                         ExitCode::refused);
}

/// "held by server pid 123 (leo-migrate-lock host1 pid 456) from 10.0.0.5", best effort.
std::string ClusterLock::holder() {
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

SessionName::SessionName(Connection& conn) : m_conn(conn) {
    m_conn.query("SELECT set_config('application_name', $1, false)", {application_name(std::string(k_app_migrate))});
    // PostgreSQL 14+ ends a query whose client has gone (a killed migrator) within a
    // second instead of at its end.
    if (m_conn.server_version_num() >= 140000)
        m_conn.exec("SET client_connection_check_interval = '1s'");
}

SessionName::~SessionName() {
    try {
        m_conn.exec("RESET application_name");
    } catch (const std::exception&) {
    }
}

} // namespace leo::migrations::detail
