#include "leo/installer/cluster.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/signals.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/paths.hpp"
#include "leo/rpm/transaction.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <limits>
#include <mutex>
#include <thread>

#include <pthread.h>
#include <signal.h>

#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;
using migrations::Connection;
using migrations::QueryError;

namespace {

/// pg_advisory_xact_lock key for creating the schema (any constant of ours).
constexpr long long k_schema_lock_key = 0x6c656f636c7573LL;  // "leoclus"

/// BEGIN ... COMMIT around `work`, ROLLBACK when it throws.
template <typename F>
auto in_transaction(Connection& conn, F&& work) {
    conn.exec("BEGIN");
    try {
        if constexpr (std::is_void_v<decltype(work())>) {
            work();
            conn.exec("COMMIT");
        } else {
            auto result = work();
            conn.exec("COMMIT");
            return result;
        }
    } catch (...) {
        try {
            conn.exec("ROLLBACK");
        } catch (const std::exception&) {
        }
        throw;
    }
}

bool table_exists(Connection& conn, const char* table) {
    return !conn.query("SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE n.nspname = $1 AND c.relname = $2",
                       {std::string(k_cluster_schema), std::string(table)})
                .empty();
}

/// The lease table as this installer makes it: column -> format_type().
constexpr std::array<std::pair<const char*, const char*>, 9> k_lease_columns{{
    {"id", "integer"},
    {"token", "bigint"},
    {"holder", "character varying"},
    {"holder_application", "character varying"},
    {"holder_pid", "integer"},
    {"purpose", "text"},
    {"acquired_at", "timestamp with time zone"},
    {"renewed_at", "timestamp with time zone"},
    {"expires_at", "timestamp with time zone"},
}};

/// "leo_installer.upgrade_lease": the table messages name.
std::string lease_table() { return fmt::format("{}.upgrade_lease", k_cluster_schema); }

/// What is wrong with the lease table's columns ("column expires_at is text, expected
/// timestamp with time zone; column holder_pid is missing"), "" when nothing is (or the
/// table does not exist, or the catalogue cannot be read).
std::string lease_table_problem(Connection& conn) {
    try {
        const auto rows = conn.query(
            "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = "
            "c.relnamespace WHERE n.nspname = $1 AND c.relname = 'upgrade_lease' AND a.attnum > 0 AND NOT "
            "a.attisdropped",
            {std::string(k_cluster_schema)});
        if (rows.empty()) return "";
        std::string out;
        for (const auto& [name, type] : k_lease_columns) {
            std::optional<std::string> found;
            for (size_t r = 0; r < rows.rows.size(); ++r)
                if (rows.at(r, 0) == name) found = rows.at(r, 1);
            std::string problem;
            if (!found)
                problem = fmt::format("column {} is missing", name);
            else if (*found != type)
                problem = fmt::format("column {} is {}, expected {}", name, *found, type);
            if (!problem.empty()) out += (out.empty() ? "" : "; ") + problem;
        }
        return out;
    } catch (const std::exception&) {
        return "";
    }
}

/// The one error for an altered lease table: what differs and the repair.
DatabaseError altered_table(const std::string& problem) {
    return DatabaseError(fmt::format(
        "the cluster's lease table {} in the shared database is not as this installer made it ({}): it was altered "
        "by hand; when no broker of the cluster is upgrading, drop it (DROP TABLE {};) and run again: it is made "
        "anew",
        lease_table(), printable(problem), lease_table()));
}

/// A statement on the lease table failed with `e`: an altered table gives altered_table()
/// (thrown), anything else is rethrown with the table named. Never returns.
[[noreturn]] void lease_query_failed(Connection& conn, const QueryError& e, const std::string& doing) {
    // 42xxx: undefined column or table, wrong types: the table is not ours any more.
    if (e.sqlstate().rfind("42", 0) == 0 && !conn.in_transaction())
        if (const auto problem = lease_table_problem(conn); !problem.empty()) throw altered_table(problem);
    std::throw_with_nested(DatabaseError(fmt::format("{}: the lease table {} cannot be used", doing, lease_table())));
}

LeaseHolder holder_from(const migrations::Rows& rows) {
    LeaseHolder h;
    h.member = rows.rows[0][0].value_or("");
    h.application = rows.rows[0][1].value_or("");
    h.pid = rows.rows[0][2] ? std::stoi(*rows.rows[0][2]) : 0;
    h.token = std::stoll(rows.at(0, 3));
    h.acquired_at = rows.rows[0][4].value_or("");
    h.expires_at = rows.rows[0][5].value_or("");
    // NULL or infinite: the row was edited by hand (this installer writes finite times).
    h.expiry_valid = rows.rows[0][6].has_value() && *rows.rows[0][6] != "Infinity" && *rows.rows[0][6] != "-Infinity";
    if (!rows.rows[0][6] || *rows.rows[0][6] == "Infinity")
        h.seconds_left = std::numeric_limits<double>::infinity();
    else if (*rows.rows[0][6] == "-Infinity")
        h.seconds_left = -std::numeric_limits<double>::infinity();
    else
        h.seconds_left = std::stod(*rows.rows[0][6]);
    h.purpose = rows.rows[0][7].value_or("");
    return h;
}

// Infinite timestamps cannot be subtracted before PostgreSQL 17: their distance is
// spelled out, and to_char (NULL for them) falls back to the text 'infinity'.
constexpr const char* k_holder_columns =
    "holder, holder_application, holder_pid, token::text, "
    "coalesce(to_char(acquired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), acquired_at::text), "
    "coalesce(to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), expires_at::text), "
    "CASE WHEN expires_at IS NULL THEN NULL WHEN pg_catalog.isfinite(expires_at) THEN "
    "extract(epoch FROM expires_at - pg_catalog.now())::text WHEN expires_at > pg_catalog.now() THEN 'Infinity' "
    "ELSE '-Infinity' END, coalesce(purpose, '')";

std::string describe_holder(const LeaseHolder& h) {
    return fmt::format("{} (pid {}, {}since {}, {} {})", h.member, h.pid,
                       h.purpose.empty() ? "" : h.purpose + ", ", h.acquired_at,
                       h.seconds_left < 0 ? "expired at" : "lease until", h.expires_at.empty() ? "NULL" : h.expires_at);
}

/// The SQL that clears a held lease row by hand (for messages).
std::string clear_lease_sql() {
    return fmt::format("UPDATE {} SET holder = NULL, holder_application = NULL, holder_pid = NULL, purpose = NULL, "
                       "expires_at = now() WHERE id = 1;",
                       lease_table());
}

/// Why the lease row no longer holds `token` for `member`, in words, for "the upgrade
/// lease was lost (...)": dropped table, deleted row, cleared, or taken over.
std::string why_lost(Connection& conn, std::int64_t token) {
    try {
        if (!table_exists(conn, "upgrade_lease"))
            return fmt::format("the table {} was dropped while this run held the lease", lease_table());
        const auto row = conn.query(fmt::format("SELECT {} FROM {} WHERE id = 1", k_holder_columns, lease_table()));
        if (row.empty())
            return fmt::format("its row ({}, id = 1) was deleted while this run held it", lease_table());
        const auto h = holder_from(row);
        if (h.member.empty())
            return fmt::format("the row ({}, id = 1) was cleared meanwhile (nobody holds it now; token {})",
                               lease_table(), h.token);
        return fmt::format("our token {}; now {}: another broker took it over after it expired", token,
                           describe_holder(h));
    } catch (const std::exception& e) {
        return fmt::format("the lease row cannot be read: {}", describe(e));
    }
}

const std::string& renew_sql() {
    static const std::string sql = fmt::format(
        "UPDATE {}.upgrade_lease SET renewed_at = pg_catalog.now(), expires_at = pg_catalog.now() + $3::integer * "
        "interval '1 second' WHERE id = 1 AND token = $1::bigint AND holder = $2 RETURNING 1",
        k_cluster_schema);
    return sql;
}

/// pg_notify(k_lease_channel, payload) on `conn`, best effort (a waiter polls anyway).
void notify_lease_channel(Connection& conn, const std::string& payload) noexcept {
    try {
        conn.query("SELECT pg_catalog.pg_notify($1, $2)", {std::string(k_lease_channel), payload});
    } catch (const std::exception& e) {
        log::warning("could not notify {} ({}): waiting brokers notice at their next poll", k_lease_channel, e.what());
    }
}

} // namespace

std::string member_id(const stdfs::path& root) {
    const std::string host = migrations::host_name();
    return root == "/" ? host : host + " " + root.string();
}

void ensure_cluster_schema(Connection& conn) {
    try {
        in_transaction(conn, [&] {
            conn.query("SELECT pg_advisory_xact_lock($1)", {std::to_string(k_schema_lock_key)});
            if (conn.query("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", {std::string(k_cluster_schema)})
                    .empty())
                conn.exec(fmt::format("CREATE SCHEMA {}", k_cluster_schema));
            if (!table_exists(conn, "cluster_members"))
                conn.exec(fmt::format("CREATE TABLE {}.cluster_members ("
                                      " member varchar(512) PRIMARY KEY,"
                                      " host varchar(255) NOT NULL,"
                                      " site_id integer,"
                                      " broker_version varchar(64) NOT NULL,"
                                      " state varchar(32) NOT NULL,"
                                      " heartbeat timestamp with time zone NOT NULL DEFAULT pg_catalog.now(),"
                                      " registered_at timestamp with time zone NOT NULL DEFAULT pg_catalog.now())",
                                      k_cluster_schema));
            if (!table_exists(conn, "upgrade_lease")) {
                conn.exec(fmt::format("CREATE TABLE {}.upgrade_lease ("
                                      " id integer PRIMARY KEY CHECK (id = 1),"
                                      " token bigint NOT NULL DEFAULT 0,"
                                      " holder varchar(512),"
                                      " holder_application varchar(128),"
                                      " holder_pid integer,"
                                      " purpose text,"
                                      " acquired_at timestamp with time zone,"
                                      " renewed_at timestamp with time zone,"
                                      " expires_at timestamp with time zone)",
                                      k_cluster_schema));
                conn.exec(fmt::format("INSERT INTO {}.upgrade_lease (id, token) VALUES (1, 0)", k_cluster_schema));
            }
        });
    } catch (const QueryError& e) {
        std::throw_with_nested(DatabaseError(fmt::format(
            "cannot create the cluster's tables (schema {}) in the shared database: the broker's database role must "
            "be allowed to create a schema there (GRANT CREATE ON DATABASE ... TO the role)",
            k_cluster_schema)));
    }
}

void register_member(Connection& conn, const std::string& member, std::optional<int> site_id,
                     const std::string& broker_version, const std::string& state) {
    const std::optional<std::string> site = site_id ? std::optional<std::string>(std::to_string(*site_id)) : std::nullopt;
    const std::string update = fmt::format("UPDATE {}.cluster_members SET host = $2, site_id = $3::integer, "
                                           "broker_version = $4, state = $5, heartbeat = pg_catalog.now() WHERE member = $1",
                                           k_cluster_schema);
    const std::vector<std::optional<std::string>> params{member, migrations::host_name(), site, broker_version, state};
    for (int attempt = 0; attempt < 2; ++attempt) {
        const auto updated = conn.query(update + " RETURNING 1", params);
        if (!updated.empty()) return;
        try {
            conn.query(fmt::format("INSERT INTO {}.cluster_members (member, host, site_id, broker_version, state) "
                                   "VALUES ($1, $2, $3::integer, $4, $5)",
                                   k_cluster_schema),
                       params);
            return;
        } catch (const QueryError& e) {
            if (e.sqlstate() != "23505") throw;  // another session inserted it: update it
        }
    }
}

std::string register_this_broker(const stdfs::path& root, const std::string& state) {
    try {
        const auto config = load_database_config(root);
        if (config.mode != DatabaseMode::external) return "";
        const auto installed = rpm::query_installed(root, k_broker_package);
        if (installed.size() != 1) return "";
        auto conn = Connection::open(external_conninfo(config));
        ensure_cluster_schema(conn);
        register_member(conn, member_id(root), config.site_id, installed.front().version, state);
        return "";
    } catch (const std::exception& e) {
        return fmt::format("this broker could not register in the shared database: {}", describe(e));
    }
}

std::vector<ClusterMember> cluster_members(Connection& conn) {
    std::vector<ClusterMember> out;
    const auto rows = conn.query(fmt::format(
        "SELECT member, host, site_id::text, broker_version, state, "
        "to_char(heartbeat AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        "extract(epoch FROM pg_catalog.now() - heartbeat)::text FROM {}.cluster_members ORDER BY member",
        k_cluster_schema));
    for (size_t r = 0; r < rows.rows.size(); ++r) {
        ClusterMember m;
        m.member = rows.at(r, 0);
        m.host = rows.at(r, 1);
        if (rows.rows[r][2]) m.site_id = std::stoi(*rows.rows[r][2]);
        m.broker_version = rows.at(r, 3);
        m.state = rows.at(r, 4);
        m.heartbeat = rows.at(r, 5);
        m.heartbeat_age_s = std::stod(rows.at(r, 6));
        out.push_back(std::move(m));
    }
    return out;
}

void replace_cluster_members(Connection& conn, const std::vector<ClusterMember>& members) {
    in_transaction(conn, [&] {
        conn.exec(fmt::format("DELETE FROM {}.cluster_members", k_cluster_schema));
        for (const auto& m : members)
            conn.query(fmt::format("INSERT INTO {}.cluster_members (member, host, site_id, broker_version, state, "
                                   "heartbeat) VALUES ($1, $2, $3::integer, $4, $5, $6::timestamptz)",
                                   k_cluster_schema),
                       {m.member, m.host, m.site_id ? std::optional<std::string>(std::to_string(*m.site_id)) : std::nullopt,
                        m.broker_version, m.state, m.heartbeat});
        return 0;
    });
}

std::optional<LeaseHolder> lease_holder(Connection& conn) {
    if (!table_exists(conn, "upgrade_lease")) return std::nullopt;
    try {
        const auto rows = conn.query(fmt::format("SELECT {} FROM {} WHERE id = 1 AND holder IS NOT NULL",
                                                 k_holder_columns, lease_table()));
        if (rows.empty()) return std::nullopt;
        return holder_from(rows);
    } catch (const QueryError& e) {
        lease_query_failed(conn, e, "reading the cluster's upgrade lease");
    }
}

/// The background renewal: a thread with a session of its own, renewing every ttl/3.
struct UpgradeLease::Renewer {
    std::mutex mutex;
    std::condition_variable wake;
    bool stop = false;                ///< guarded by mutex
    std::atomic<bool> lost{false};
    std::string lost_reason;          ///< guarded by mutex; set once, with lost
    std::thread thread;
};

namespace {

/// The renewal thread's body. The session is reopened after a connection failure, retried
/// every second until the last successful renewal's ttl has run out (then the lease counts
/// as lost); a server that answers "no such row" or an error about the table marks it
/// lost at once.
void renew_in_background(UpgradeLease::Renewer& r, std::string conninfo, std::int64_t token, std::string member,
                         std::chrono::seconds ttl) {
    // Signals are for the main thread (the run's critical sections decide what they do).
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    using clock = std::chrono::steady_clock;
    const auto period = std::max<std::chrono::milliseconds>(std::chrono::milliseconds(ttl) / 3,
                                                            std::chrono::milliseconds(500));
    std::optional<Connection> conn;
    auto valid_until = clock::now() + ttl;  // the foreground took or renewed it just before
    auto next = clock::now() + period;
    std::unique_lock lock(r.mutex);
    for (;;) {
        if (r.wake.wait_until(lock, next, [&] { return r.stop; })) return;
        lock.unlock();
        std::string lost;
        bool retry = false;
        const auto sent = clock::now();
        try {
            if (!conn) conn.emplace(Connection::open(conninfo));
            if (conn->query(renew_sql(), {std::to_string(token), member, std::to_string(ttl.count())}).empty())
                lost = why_lost(*conn, token);
            else
                valid_until = sent + ttl;
        } catch (const QueryError& e) {
            conn.reset();
            if (e.sqlstate().empty()) {
                retry = true;  // the connection broke during the statement
            } else {
                lost = fmt::format("renewing it failed: {}", e.what());
                try {
                    auto fresh = Connection::open(conninfo);
                    if (const auto problem = lease_table_problem(fresh); !problem.empty())
                        lost = altered_table(problem).what();
                    else if (!table_exists(fresh, "upgrade_lease"))
                        lost = why_lost(fresh, token);
                } catch (const std::exception&) {
                }
            }
        } catch (const std::exception& e) {
            conn.reset();
            retry = true;
            log::warning("renewing the upgrade lease failed (tried again in 1 s): {}", e.what());
        }
        lock.lock();
        if (retry && clock::now() + std::chrono::seconds(1) >= valid_until)
            lost = fmt::format("it could not be renewed for {} s (the ttl): the shared database is unreachable",
                               ttl.count());
        if (!lost.empty()) {
            r.lost_reason = lost;
            r.lost = true;
            log::error("the upgrade lease was lost: {}", lost);
            return;
        }
        next = clock::now() + (retry ? std::chrono::milliseconds(1000) : period);
    }
}

} // namespace

UpgradeLease::UpgradeLease(Connection conn, std::string member, std::int64_t token, std::chrono::seconds ttl)
    : m_conn(std::move(conn)), m_conninfo(m_conn->conninfo()), m_member(std::move(member)), m_token(token),
      m_ttl(ttl) {}

UpgradeLease::UpgradeLease(UpgradeLease&& other) noexcept
    : m_conn(std::move(other.m_conn)), m_conninfo(std::move(other.m_conninfo)), m_member(std::move(other.m_member)),
      m_token(other.m_token), m_ttl(other.m_ttl), m_released(other.m_released),
      m_restart_renewal(other.m_restart_renewal), m_renewer(std::move(other.m_renewer)) {
    other.m_released = true;  // the moved-from object releases nothing
}

void UpgradeLease::start_renewal() {
    if (m_released || m_conninfo.empty()) return;
    auto r = std::make_shared<Renewer>();
    r->thread = std::thread(renew_in_background, std::ref(*r), m_conninfo, m_token, m_member, m_ttl);
    m_renewer = std::move(r);
}

void UpgradeLease::stop_renewal() noexcept {
    if (!m_renewer) return;
    {
        std::lock_guard lock(m_renewer->mutex);
        m_renewer->stop = true;
    }
    m_renewer->wake.notify_all();
    if (m_renewer->thread.joinable()) m_renewer->thread.join();
}

bool UpgradeLease::lost() const noexcept { return m_renewer && m_renewer->lost; }

UpgradeLease::RenewalPause::RenewalPause(UpgradeLease& lease) : m_lease(lease) {
    m_lease.renew();  // a whole ttl ahead, then no other thread
    m_lease.stop_renewal();
}

UpgradeLease::RenewalPause::~RenewalPause() {
    const bool was_renewing = m_lease.m_renewer != nullptr;
    if (!was_renewing || m_lease.lost() || m_lease.m_released) return;
    try {
        m_lease.start_renewal();
    } catch (const std::exception& e) {
        log::warning("could not restart the upgrade lease's background renewal: {}", e.what());
    }
}

std::shared_ptr<void> pause_lease_renewal(std::optional<UpgradeLease>& lease) {
    if (!lease) return nullptr;
    try {
        return std::make_shared<UpgradeLease::RenewalPause>(*lease);
    } catch (const std::exception& e) {
        log::warning("the upgrade lease's renewal is not paused: {}", e.what());
        return nullptr;
    }
}

UpgradeLease UpgradeLease::acquire(const std::string& conninfo, const std::string& member, const Options& options) {
    auto conn = Connection::open(conninfo);
    ensure_cluster_schema(conn);
    if (const auto problem = lease_table_problem(conn); !problem.empty()) throw altered_table(problem);
    // Woken by a release or a takeover elsewhere (the row is looked at again at once).
    conn.exec("LISTEN " + conn.quote_ident(k_lease_channel));
    const std::string suffix = migrations::host_name();
    const auto deadline = std::chrono::steady_clock::now() + options.wait;
    auto last_said = std::chrono::steady_clock::now() - std::chrono::hours(1);
    for (;;) {
        // A signal recorded while waiting (the caller's critical section began earlier):
        // the wait ends, nothing taken.
        if (const int sig = options.stop_on_signal ? signals::pending() : 0; sig != 0)
            throw InterruptedError(fmt::format("{} received while waiting for the cluster's upgrade lease: stopped "
                                               "waiting, the lease was not taken",
                                               signals::name(sig)),
                                   sig);
        // One statement on the server's clock: free, or already ours.
        const std::vector<std::optional<std::string>> params{member, suffix, std::to_string(::getpid()),
                                                             options.purpose, std::to_string(options.ttl.count())};
        const std::string take = fmt::format(
            "UPDATE {}.upgrade_lease SET token = token + 1, holder = $1, holder_application = $2, "
            "holder_pid = $3::integer, purpose = $4, acquired_at = pg_catalog.now(), renewed_at = pg_catalog.now(), "
            "expires_at = pg_catalog.now() + $5::integer * interval '1 second' WHERE id = 1 AND ",
            k_cluster_schema);
        migrations::Rows taken;
        std::optional<LeaseHolder> holder;
        try {
            taken = conn.query(take + "(holder IS NULL OR (holder = $1 AND holder_application = $2 AND holder_pid = "
                                      "$3::integer)) RETURNING token::text",
                               params);
            if (taken.empty()) {
                if (conn.query(fmt::format("SELECT 1 FROM {} WHERE id = 1", lease_table())).empty())
                    throw DatabaseError(fmt::format(
                        "the cluster's lease row ({}, id = 1) is missing: it was deleted by hand; when no broker of "
                        "the cluster is upgrading, put it back with: INSERT INTO {} (id, token) VALUES (1, "
                        "extract(epoch FROM now())::bigint); and run again (a token above every earlier one); "
                        "nothing was changed",
                        lease_table(), lease_table()));
                holder = lease_holder(conn);
            }
        } catch (const QueryError& e) {
            lease_query_failed(conn, e, "taking the cluster's upgrade lease");
        }
        if (holder && !holder->expiry_valid && holder->seconds_left > 0)
            throw RefusedError(fmt::format(
                "the cluster's lease row ({}, id = 1) says {} holds the upgrade lease with no expiry (expires_at is "
                "{}), so it would never pass to another broker: this installer never writes that; if {} is not "
                "upgrading now, clear the row with: {} and run again; nothing was changed",
                lease_table(), describe_holder(*holder), holder->expires_at.empty() ? "NULL" : holder->expires_at,
                holder->member, clear_lease_sql()));
        // A lease this very broker (member and host) holds from a run whose process is gone
        // (killed: `recover` runs next) is as good as expired: nobody else can renew it.
        const bool dead_self = holder && holder->member == member && holder->application == suffix &&
                               holder->pid != ::getpid() && holder->pid > 0 && ::kill(holder->pid, 0) != 0 &&
                               errno == ESRCH;
        if (taken.empty() && holder && (holder->seconds_left < 0 || dead_self)) {
            // Expired: its holder is dead or cut off. End its sessions on this database
            // (only those: their application_name names its host and pid), then take the
            // lease from exactly that holder (its token: no third broker slips in between).
            if (dead_self)
                log::warning("the upgrade lease is held by this broker's run pid {}, which is gone: taking it over",
                             holder->pid);
            if (options.on_wait) options.on_wait(*holder, true);
            const std::string pid_tail = fmt::format(" pid {}", holder->pid);
            const auto ended = conn.query(
                "SELECT pid::text, application_name, pg_terminate_backend(pid)::text FROM pg_catalog.pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'leo-%' "
                "AND right(application_name, length($1)) = $1 AND length($2) > 0 AND "
                "(application_name LIKE '% ' || $2 || ' pid %' OR (length(application_name) = 63 AND "
                "strpos(application_name, ' ' || left($2, 24)) > 0))",
                {pid_tail, holder->application});
            for (size_t r = 0; r < ended.rows.size(); ++r) {
                const std::string line =
                    fmt::format("ended session pid {} (\"{}\") of the expired lease holder {}", ended.at(r, 0),
                                ended.at(r, 1), holder->member);
                log::warning("{}", line);
                if (options.on_takeover) options.on_takeover(line);
            }
            auto with_token = params;
            with_token.push_back(std::to_string(holder->token));
            try {
                with_token.push_back(dead_self ? "true" : "false");
                taken = conn.query(take + "token = $6::bigint AND (expires_at < pg_catalog.now() OR $7::boolean) "
                                          "RETURNING token::text",
                                   with_token);
            } catch (const QueryError& e) {
                lease_query_failed(conn, e, "taking over the cluster's upgrade lease");
            }
            if (!taken.empty()) notify_lease_channel(conn, fmt::format("taken over by {}", member));
        }
        if (!taken.empty()) {
            const auto token = std::stoll(taken.at(0, 0));
            conn.exec("UNLISTEN *");
            log::info("upgrade lease taken by {} (token {}, ttl {} s)", member, token, options.ttl.count());
            UpgradeLease lease(std::move(conn), member, token, options.ttl);
            if (options.renew_in_background) lease.start_renewal();
            return lease;
        }
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            // A holder on this host whose process is gone was killed: its broker's `recover`
            // gives the lease back (or the lease expires by itself).
            const bool gone_here = holder && holder->application == suffix && holder->pid > 0 &&
                                   ::kill(holder->pid, 0) != 0 && errno == ESRCH;
            throw RefusedError(fmt::format(
                "another broker holds the cluster's upgrade lease: {}; waited {} s (--lease-wait); nothing was "
                "changed: {}",
                holder ? describe_holder(*holder) : std::string("(released meanwhile)"), options.wait.count(),
                gone_here ? fmt::format("its process (pid {} on this host) is gone: run `leo-installer recover` for "
                                        "that broker ({}), which gives the lease back, or wait until it expires at {}",
                                        holder->pid, holder->member, holder->expires_at)
                          : std::string("run again when it has finished")));
        }
        if (holder && options.on_wait && now - last_said >= std::chrono::seconds(5)) {
            options.on_wait(*holder, false);
            last_said = now;
        }
        // Until a NOTIFY, the holder's expiry, the next poll or the deadline.
        auto wait = std::min<std::chrono::milliseconds>(
            options.poll, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
        if (holder && std::isfinite(holder->seconds_left) && holder->seconds_left >= 0)
            wait = std::min(wait, std::chrono::milliseconds(static_cast<long long>(holder->seconds_left * 1000) + 50));
        wait = std::max(wait, std::chrono::milliseconds(10));
        if (const auto n = conn.wait_for_notification(wait))
            log::info("upgrade lease: notified ({}), looking again", n->payload);
    }
}

UpgradeLease::~UpgradeLease() { release(); }

migrations::Connection& UpgradeLease::session() {
    if (!m_conn) m_conn.emplace(Connection::open(m_conninfo));
    return *m_conn;
}

void UpgradeLease::disconnect() noexcept {
    if (m_renewer && !m_renewer->stop) {
        stop_renewal();
        m_restart_renewal = true;  // by the next renew() or restate()
    }
    m_conn.reset();
}

void UpgradeLease::resume_renewal() {
    if (!m_restart_renewal) return;
    m_restart_renewal = false;
    start_renewal();
}

void UpgradeLease::restate() {
    const auto rows = session().query(
        fmt::format("UPDATE {}.upgrade_lease SET token = $1::bigint, holder = $2, holder_application = $3, "
                    "holder_pid = $4::integer, acquired_at = pg_catalog.now(), renewed_at = pg_catalog.now(), "
                    "expires_at = pg_catalog.now() + $5::integer * interval '1 second' WHERE id = 1 AND token <= "
                    "$1::bigint RETURNING 1",
                    k_cluster_schema),
        {std::to_string(m_token), m_member, migrations::host_name(), std::to_string(::getpid()),
         std::to_string(m_ttl.count())});
    if (rows.empty())
        throw InstallError(fmt::format("the restored shared database records a newer upgrade lease than this run's "
                                       "(token {}); this run stops",
                                       m_token));
    resume_renewal();
}

void UpgradeLease::renew() {
    if (lost()) {
        std::string reason;
        {
            std::lock_guard lock(m_renewer->mutex);
            reason = m_renewer->lost_reason;
        }
        throw InstallError(fmt::format("the upgrade lease was lost ({}); this run stops", reason));
    }
    migrations::Rows rows;
    try {
        rows = session().query(renew_sql(), {std::to_string(m_token), m_member, std::to_string(m_ttl.count())});
    } catch (const QueryError& e) {
        if (e.sqlstate().rfind("42", 0) == 0) {
            const auto problem = lease_table_problem(session());
            throw InstallError(fmt::format("the upgrade lease was lost ({}); this run stops",
                                           problem.empty() ? why_lost(session(), m_token)
                                                           : std::string(altered_table(problem).what())));
        }
        throw;
    }
    if (rows.empty())
        throw InstallError(
            fmt::format("the upgrade lease was lost ({}); this run stops", why_lost(session(), m_token)));
    resume_renewal();
}

void UpgradeLease::fence(Connection& conn) const {
    if (lost()) {
        std::string reason;
        {
            std::lock_guard lock(m_renewer->mutex);
            reason = m_renewer->lost_reason;
        }
        throw InstallError(fmt::format("fencing: the upgrade lease is no longer this broker's (token {}): {}; the "
                                       "write is refused",
                                       m_token, reason));
    }
    migrations::Rows rows;
    try {
        rows = conn.query(fmt::format("SELECT token::text, holder, (expires_at < pg_catalog.now())::text, "
                                      "(expires_at IS NULL OR NOT pg_catalog.isfinite(expires_at))::text FROM "
                                      "{}.upgrade_lease WHERE id = 1 FOR SHARE",
                                      k_cluster_schema));
    } catch (const QueryError& e) {
        if (e.sqlstate().rfind("42", 0) == 0)
            throw InstallError(fmt::format("fencing: the lease table {} was dropped or altered while this run held "
                                           "the lease ({}); the write is refused",
                                           lease_table(), e.server_message()));
        throw;
    }
    if (rows.empty())
        throw InstallError(fmt::format("fencing: the lease row ({}, id = 1) was deleted while this run held the lease "
                                       "(token {}); the write is refused",
                                       lease_table(), m_token));
    if (rows.at(0, 0) != std::to_string(m_token) || rows.rows[0][1] != m_member || rows.rows[0][2] == "true" ||
        rows.rows[0][3] == "true")
        throw InstallError(fmt::format("fencing: the upgrade lease is no longer this broker's (token {}, holder {}{}); "
                                       "the write is refused",
                                       rows.at(0, 0), rows.rows[0][1].value_or("none"),
                                       rows.rows[0][2] == "true"   ? ", expired"
                                       : rows.rows[0][3] == "true" ? ", expiry edited to NULL or infinity"
                                                                   : ""));
}

void UpgradeLease::release() noexcept {
    stop_renewal();
    if (m_released || m_conninfo.empty()) return;
    m_released = true;
    try {
        const auto rows = session().query(fmt::format("UPDATE {}.upgrade_lease SET holder = NULL, holder_application = NULL, "
                                                    "holder_pid = NULL, purpose = NULL, expires_at = pg_catalog.now() "
                                                    "WHERE id = 1 AND token = $1::bigint AND holder = $2 RETURNING 1",
                                                    k_cluster_schema),
                                        {std::to_string(m_token), m_member});
        if (!rows.empty()) {
            notify_lease_channel(session(), fmt::format("released by {}", m_member));
            log::info("upgrade lease released by {} (token {})", m_member, m_token);
        } else {
            log::warning("upgrade lease of {} (token {}) not released: it was no longer ours ({})", m_member, m_token,
                         why_lost(session(), m_token));
        }
    } catch (const std::exception& e) {
        log::warning("could not release the upgrade lease (it expires by itself): {}", e.what());
    }
}

UpgradeLease::Options lease_options(std::chrono::seconds ttl, std::chrono::seconds wait, std::string purpose,
                                    const std::function<void(const std::string&)>& say) {
    UpgradeLease::Options o;
    o.ttl = ttl;
    o.wait = wait;
    o.purpose = std::move(purpose);
    o.on_wait = [say](const LeaseHolder& h, bool expired) {
        say(expired ? fmt::format("the upgrade lease of {} (pid {}) expired at {}: taking it over", h.member, h.pid,
                                  h.expires_at)
                    : fmt::format("waiting for the cluster's upgrade lease: {} (pid {}) holds it since {} ({}; until "
                                  "{})",
                                  h.member, h.pid, h.acquired_at, h.purpose, h.expires_at));
    };
    o.on_takeover = say;
    return o;
}

UpgradeLease acquire_as_member(const std::string& conninfo, const std::string& member, std::optional<int> site_id,
                               const std::string& version, const UpgradeLease::Options& options,
                               const std::string& state_on_failure) {
    {
        auto conn = Connection::open(conninfo);
        ensure_cluster_schema(conn);
        register_member(conn, member, site_id, version, "waiting");
    }
    std::optional<UpgradeLease> lease;
    try {
        lease.emplace(UpgradeLease::acquire(conninfo, member, options));
    } catch (...) {
        try {
            auto conn = Connection::open(conninfo);
            register_member(conn, member, site_id, version, state_on_failure);
        } catch (const std::exception&) {
        }
        throw;
    }
    auto conn = Connection::open(conninfo);
    register_member(conn, member, site_id, version, "upgrading");
    return std::move(*lease);
}

std::vector<JobMove> reassign_orphaned_jobs(Connection& conn, const UpgradeLease& lease) {
    return in_transaction(conn, [&] {
        lease.fence(conn);
        std::vector<int> sites;
        const auto member_sites = conn.query(fmt::format(
            "SELECT DISTINCT site_id FROM {}.cluster_members WHERE site_id IS NOT NULL ORDER BY site_id",
            k_cluster_schema));
        for (size_t r = 0; r < member_sites.rows.size(); ++r) sites.push_back(std::stoi(member_sites.at(r, 0)));
        std::vector<JobMove> moves;
        if (sites.empty()) return moves;
        std::string list;
        for (int s : sites) list += (list.empty() ? "" : ",") + std::to_string(s);
        const auto orphans = conn.query(fmt::format("SELECT job_id::text, site_id::text FROM work_queue WHERE status "
                                                    "= 'pending' AND site_id <> ALL ('{{{}}}'::integer[]) ORDER BY "
                                                    "job_id FOR UPDATE",
                                                    list));
        for (size_t r = 0; r < orphans.rows.size(); ++r) {
            JobMove m;
            m.job_id = std::stoll(orphans.at(r, 0));
            m.from_site = std::stoi(orphans.at(r, 1));
            m.to_site = sites[r % sites.size()];
            conn.query("UPDATE work_queue SET site_id = $2::integer WHERE job_id = $1::bigint",
                       {std::to_string(m.job_id), std::to_string(m.to_site)});
            moves.push_back(m);
        }
        if (!moves.empty()) log::info("reassigned {} pending work-queue jobs of sites that left the cluster", moves.size());
        return moves;
    });
}

} // namespace leo::installer
