// Rollback and recover of a broker on an external database a cluster shares.
#include "external_rollback.hpp"
#include "leo/installer/hint.hpp"
#include "update_check.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/paths.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/rpm/package.hpp"
#include "leo/rpm/transaction.hpp"

#include <fmt/format.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

ExternalRollback plan_external_rollback(const stdfs::path& root, const RestorePoint& rp, bool allow_remote_upgrade) {
    const auto config = load_database_config(root);
    ExternalRollback plan;
    plan.endpoint = config.external.display();
    if (rp.database_location != "external")
        throw RefusedError(fmt::format(
            "restore point {} holds the internal database (it was taken before the broker switched to the external "
            "database {}); rolling back to it would leave the broker on the external database with the internal "
            "database's old contents: switch back first (`switch_database.pl --internal`), then roll back; nothing "
            "was changed",
            rp.id, plan.endpoint));
    if (rp.external_endpoint != plan.endpoint)
        throw RefusedError(fmt::format("restore point {} was taken on the external database {}, and the broker now "
                                       "uses {}; nothing was changed",
                                       rp.id, rp.external_endpoint, plan.endpoint));
    plan.conninfo = external_conninfo(config);
    plan.member = member_id(root);
    plan.site_id = config.site_id;
    std::optional<std::string> shared_schema;
    {
        auto conn = migrations::Connection::open(plan.conninfo);
        shared_schema = migrations::read_schema_state(conn).schema_version;
    }
    const bool holds_database = rp.copy.has_value() || rp.external_dump;
    const std::string here = shared_schema.value_or("none");
    const std::string there = rp.schema_version.value_or("none");
    // The schema the restore point's package itself ships: a broker whose restore point was
    // taken after another broker migrated (so it records the newer schema) can still go
    // back once the shared database went back to its package's schema.
    std::optional<std::string> shipped;
    try {
        shipped = update_detail::package_schema_version(rp.dir / "package.rpm");
    } catch (const Error&) {
    }
    if (holds_database && allow_remote_upgrade) {
        plan.restore_shared = true;
        plan.note = fmt::format("the shared database {} goes back to restore point {} (schema {}; now {}) for every "
                                "broker of the cluster (--allow-remote-upgrade)",
                                plan.endpoint, rp.id, there, here);
        // The other brokers then run on the old schema: name those on another version, so
        // that they are rolled back (or stopped) too.
        try {
            auto conn = migrations::Connection::open(plan.conninfo);
            std::string others;
            const auto version = rpm::read_package_info(rp.dir / "package.rpm").version;
            for (const auto& m : cluster_members(conn))
                if (m.member != plan.member && m.broker_version != version)
                    others += fmt::format("{}{} ({}, {})", others.empty() ? "" : ", ", m.member, m.broker_version,
                                          m.state);
            if (!others.empty())
                plan.note += fmt::format("; other brokers run another version on it: {}: roll each back too "
                                         "(`leo-installer rollback` on it: its package and configuration) or stop "
                                         "it",
                                         others);
        } catch (const std::exception&) {
        }
        return plan;
    }
    if (shared_schema != rp.schema_version && shared_schema != shipped) {
        if (holds_database)
            throw RefusedError(fmt::format(
                "the shared database {} is at schema {} and restore point {} at schema {}: {} would run on a schema "
                "it does not know. Putting the shared database back too (for every broker of the cluster) needs "
                "--allow-remote-upgrade; nothing was changed",
                plan.endpoint, here, rp.id, there, rp.nevra));
        throw RefusedError(fmt::format(
            "the shared database {} is at schema {} and restore point {} at schema {}: {} would run on a schema it "
            "does not know, and this restore point holds no copy of the shared database (the broker that migrated "
            "it took one: roll that broker back with --allow-remote-upgrade first); nothing was changed",
            plan.endpoint, here, rp.id, there, rp.nevra));
    }
    plan.note = fmt::format("the shared database {} is left as it is (schema {}, the restore point's){}", plan.endpoint,
                            here, holds_database ? "; --allow-remote-upgrade would put its contents back too" : "");
    return plan;
}

void take_rollback_lease(ExternalRollback& plan, const std::string& purpose, std::chrono::seconds wait,
                         const std::function<void(const std::string&)>& on_step) {
    UpgradeLease::Options options;
    options.wait = wait;
    options.purpose = purpose;
    options.on_wait = [&on_step](const LeaseHolder& h, bool expired) {
        if (!on_step) return;
        on_step(expired ? fmt::format("the upgrade lease of {} (pid {}) expired at {}: taking it over", h.member, h.pid,
                                      h.expires_at)
                        : fmt::format("waiting for the cluster's upgrade lease: {} (pid {}) holds it since {} ({})",
                                      h.member, h.pid, h.acquired_at, h.purpose));
    };
    options.on_takeover = on_step;
    if (on_step) on_step("taking the cluster's upgrade lease");
    plan.lease.emplace(UpgradeLease::acquire(plan.conninfo, plan.member, options));
}

RestoreOutcome run_external_rollback(const stdfs::path& root, const RestorePoint& rp, ExternalRollback& plan,
                                     const std::function<void(const std::string&)>& on_step, const std::string& run,
                                     std::chrono::seconds rpmdb_wait) {
    bool shared = plan.restore_shared;
    if (shared && plan.lease) {
        try {
            plan.lease->renew();
        } catch (const std::exception& lost) {
            shared = false;
            if (on_step) on_step(fmt::format("the shared database is left as it is: {}", describe(lost)));
        }
    }
    ExternalRestore database;
    database.restore_database = shared;
    database.conninfo = plan.conninfo;
    database.dbname = plan.dbname;
    database.before_rename = [&plan] {
        if (plan.lease) plan.lease->disconnect();
    };
    database.after_rename = [&plan] {
        if (plan.lease) plan.lease->restate();
    };
    database.pause_renewal = [&plan]() -> std::shared_ptr<void> { return pause_lease_renewal(plan.lease); };
    auto out = restore_external(root, rp, on_step, run, rpmdb_wait, database);
    try {
        auto conn = migrations::Connection::open(plan.conninfo);
        const auto installed = rpm::query_installed(root, k_broker_package);
        register_member(conn, plan.member, plan.site_id, installed.size() == 1 ? installed.front().version : "",
                        "running");
    } catch (const std::exception& e) {
        log::warning("the broker's record in the cluster could not be updated: {}", describe(e));
    }
    if (plan.lease) plan.lease->release();
    return out;
}

namespace {

/// The broker's external database, as recover needs it (no schema check: it undoes a run).
ExternalRollback plan_from_config(const stdfs::path& root) {
    const auto config = load_database_config(root);
    if (config.mode != DatabaseMode::external)
        throw InstallError("the broker no longer uses an external database; recover cannot reach the shared one");
    ExternalRollback plan;
    plan.endpoint = config.external.display();
    plan.dbname = config.external.dbname;
    plan.conninfo = external_conninfo(config);
    plan.member = member_id(root);
    plan.site_id = config.site_id;
    return plan;
}

/// Whether the shared database exists on its server (asked on a maintenance database: a
/// rollback killed between its renames leaves it absent for a moment).
bool shared_database_exists(const ExternalRollback& plan) {
    for (const char* maintenance : {"postgres", "template1"}) {
        try {
            auto admin = migrations::Connection::open(migrations::with_dbname(plan.conninfo, maintenance));
            return !admin.query("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", {plan.dbname}).empty();
        } catch (const DatabaseError&) {
        }
    }
    return true;  // cannot tell: the normal path says what is wrong
}

std::int64_t lease_token_now(const std::string& conninfo) {
    auto conn = migrations::Connection::open(conninfo);
    const auto rows = conn.query(fmt::format("SELECT token::text FROM {}.upgrade_lease WHERE id = 1", k_cluster_schema));
    return rows.empty() ? 0 : std::stoll(rows.at(0, 0));
}

} // namespace

RestoreOutcome recover_external(const stdfs::path& root, const RestorePoint& rp, bool shared, std::int64_t token,
                                const std::function<void(const std::string&)>& on_step, const std::string& run,
                                const std::function<void(std::int64_t)>& on_lease_taken) {
    auto plan = plan_from_config(root);
    if (shared) {
        std::string why_not;
        try {
            if (!plan.dbname.empty() && !shared_database_exists(plan)) {
                // Killed between the renames: the live database was renamed away, the copy
                // not yet into place. No broker can use (or take the lease in) a database
                // that is not there: finish the switch, then the lease is given back.
                if (on_step)
                    on_step(fmt::format("the shared database {} is not on its server (the interrupted rollback "
                                        "was between its renames): finishing the switch",
                                        plan.endpoint));
            } else if (const auto now = lease_token_now(plan.conninfo); token == 0 || now != token)
                why_not = fmt::format("another broker took the cluster's upgrade lease since (token {}, the run held "
                                      "{}), and may have upgraded the cluster",
                                      now, token);
            else {
                take_rollback_lease(plan, "recover " + run, std::chrono::seconds(60), on_step);
                if (on_lease_taken) on_lease_taken(plan.lease->token());
            }
        } catch (const Error& e) {
            why_not = describe(e);
        }
        if (!why_not.empty()) {
            shared = false;
            if (on_step) on_step("the shared database is left as it is: " + why_not);
        }
    }
    plan.restore_shared = shared;
    return run_external_rollback(root, rp, plan, on_step, run, std::chrono::seconds(60));
}

std::string release_lease_of_interrupted_run(const stdfs::path& root) {
    try {
        if (load_database_config(root).mode != DatabaseMode::external) return "";
        auto plan = plan_from_config(root);
        {
            auto conn = migrations::Connection::open(plan.conninfo);
            const auto holder = lease_holder(conn);
            if (!holder || holder->member != plan.member || holder->application != migrations::host_name())
                return "";
        }
        UpgradeLease::Options options;
        options.wait = std::chrono::seconds(0);
        options.purpose = "recover";
        auto lease = UpgradeLease::acquire(plan.conninfo, plan.member, options);
        lease.release();
        auto conn = migrations::Connection::open(plan.conninfo);
        const auto installed = rpm::query_installed(root, k_broker_package);
        register_member(conn, plan.member, plan.site_id, installed.size() == 1 ? installed.front().version : "",
                        "running");
        return "gave back the cluster's upgrade lease the interrupted run held";
    } catch (const std::exception& e) {
        return fmt::format("the cluster's upgrade lease the interrupted run held could not be given back (it expires "
                           "by itself): {}",
                           describe(e));
    }
}

} // namespace leo::installer
