#include "leo/installer/cluster.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/paths.hpp"
#include "leo/rpm/transaction.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <csignal>

#include <thread>

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

LeaseHolder holder_from(const migrations::Rows& rows) {
    LeaseHolder h;
    h.member = rows.rows[0][0].value_or("");
    h.application = rows.rows[0][1].value_or("");
    h.pid = rows.rows[0][2] ? std::stoi(*rows.rows[0][2]) : 0;
    h.token = std::stoll(rows.at(0, 3));
    h.acquired_at = rows.rows[0][4].value_or("");
    h.expires_at = rows.rows[0][5].value_or("");
    h.seconds_left = rows.rows[0][6] ? std::stod(*rows.rows[0][6]) : 0;
    h.purpose = rows.rows[0][7].value_or("");
    return h;
}

constexpr const char* k_holder_columns =
    "holder, holder_application, holder_pid, token::text, "
    "to_char(acquired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "extract(epoch FROM expires_at - pg_catalog.now())::text, coalesce(purpose, '')";

std::string describe_holder(const LeaseHolder& h) {
    return fmt::format("{} (pid {}, {}since {}, {} {})", h.member, h.pid,
                       h.purpose.empty() ? "" : h.purpose + ", ", h.acquired_at,
                       h.seconds_left < 0 ? "expired at" : "lease until", h.expires_at);
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

std::optional<LeaseHolder> lease_holder(Connection& conn) {
    if (!table_exists(conn, "upgrade_lease")) return std::nullopt;
    const auto rows = conn.query(
        fmt::format("SELECT {} FROM {}.upgrade_lease WHERE id = 1 AND holder IS NOT NULL", k_holder_columns,
                    k_cluster_schema));
    if (rows.empty()) return std::nullopt;
    return holder_from(rows);
}

UpgradeLease UpgradeLease::acquire(const std::string& conninfo, const std::string& member, const Options& options) {
    auto conn = Connection::open(conninfo);
    ensure_cluster_schema(conn);
    const std::string suffix = migrations::host_name();
    const auto deadline = std::chrono::steady_clock::now() + options.wait;
    auto last_said = std::chrono::steady_clock::now() - std::chrono::hours(1);
    for (;;) {
        // One statement on the server's clock: free, or already ours.
        const std::vector<std::optional<std::string>> params{member, suffix, std::to_string(::getpid()),
                                                             options.purpose, std::to_string(options.ttl.count())};
        const std::string take = fmt::format(
            "UPDATE {}.upgrade_lease SET token = token + 1, holder = $1, holder_application = $2, "
            "holder_pid = $3::integer, purpose = $4, acquired_at = pg_catalog.now(), renewed_at = pg_catalog.now(), "
            "expires_at = pg_catalog.now() + $5::integer * interval '1 second' WHERE id = 1 AND ",
            k_cluster_schema);
        auto taken = conn.query(take + "(holder IS NULL OR (holder = $1 AND holder_application = $2 AND holder_pid = "
                                       "$3::integer)) RETURNING token::text",
                                params);
        const auto holder = taken.empty() ? lease_holder(conn) : std::nullopt;
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
            with_token.push_back(dead_self ? "true" : "false");
            taken = conn.query(take + "token = $6::bigint AND (expires_at < pg_catalog.now() OR $7::boolean) RETURNING "
                                      "token::text",
                               with_token);
        }
        if (!taken.empty()) {
            const auto token = std::stoll(taken.at(0, 0));
            log::info("upgrade lease taken by {} (token {}, ttl {} s)", member, token, options.ttl.count());
            return UpgradeLease(std::move(conn), member, token, options.ttl);
        }
        if (std::chrono::steady_clock::now() >= deadline)
            throw RefusedError(fmt::format(
                "another broker holds the cluster's upgrade lease: {}; waited {} s (--lease-wait); nothing was "
                "changed: run again when it has finished",
                holder ? describe_holder(*holder) : std::string("(released meanwhile)"), options.wait.count()));
        if (holder && options.on_wait && std::chrono::steady_clock::now() - last_said >= std::chrono::seconds(5)) {
            options.on_wait(*holder, false);
            last_said = std::chrono::steady_clock::now();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
}

UpgradeLease::~UpgradeLease() { release(); }

migrations::Connection& UpgradeLease::session() {
    if (!m_conn) m_conn.emplace(Connection::open(m_conninfo));
    return *m_conn;
}

void UpgradeLease::disconnect() noexcept { m_conn.reset(); }

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
}

void UpgradeLease::renew() {
    const auto rows = session().query(
        fmt::format("UPDATE {}.upgrade_lease SET renewed_at = pg_catalog.now(), expires_at = pg_catalog.now() + $3::integer * interval "
                    "'1 second' WHERE id = 1 AND token = $1::bigint AND holder = $2 RETURNING 1",
                    k_cluster_schema),
        {std::to_string(m_token), m_member, std::to_string(m_ttl.count())});
    if (rows.empty()) {
        const auto holder = lease_holder(session());
        throw InstallError(fmt::format("the upgrade lease was lost (our token {}; now {}): another broker took it "
                                       "over after it expired; this run stops",
                                       m_token, holder ? describe_holder(*holder) : std::string("nobody holds it")));
    }
}

void UpgradeLease::fence(Connection& conn) const {
    const auto rows = conn.query(fmt::format("SELECT token::text, holder, (expires_at < pg_catalog.now())::text FROM "
                                             "{}.upgrade_lease WHERE id = 1 FOR SHARE",
                                             k_cluster_schema));
    if (rows.empty() || rows.at(0, 0) != std::to_string(m_token) || rows.rows[0][1] != m_member ||
        rows.at(0, 2) == "true")
        throw InstallError(fmt::format("fencing: the upgrade lease is no longer this broker's (token {}, holder {}{}); "
                                       "the write is refused",
                                       rows.empty() ? "none" : rows.at(0, 0),
                                       rows.empty() ? "none" : rows.rows[0][1].value_or("none"),
                                       !rows.empty() && rows.at(0, 2) == "true" ? ", expired" : ""));
}

void UpgradeLease::release() noexcept {
    if (m_released || m_conninfo.empty()) return;
    m_released = true;
    try {
        session().query(fmt::format("UPDATE {}.upgrade_lease SET holder = NULL, holder_application = NULL, "
                                  "holder_pid = NULL, purpose = NULL, expires_at = pg_catalog.now() "
                                  "WHERE id = 1 AND token = $1::bigint AND holder = $2",
                                  k_cluster_schema),
                      {std::to_string(m_token), m_member});
        log::info("upgrade lease released by {} (token {})", m_member, m_token);
    } catch (const std::exception& e) {
        log::warning("could not release the upgrade lease (it expires by itself): {}", e.what());
    }
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
