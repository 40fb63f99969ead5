#include "leo/installer/db_purge.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/common/log.hpp"
#include "leo/common/signals.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/restore_point.hpp"
#include "leo/installer/services.hpp"
#include "leo/migrations/db_copy.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/rpm/transaction.hpp"

#include "restore_point/internal.hpp"

#include <fmt/format.h>

namespace leo::installer {

namespace {

constexpr const char* k_database = "leo";

/// The broker database dropped and made again as `db init` makes it (CREATE DATABASE leo
/// from template1), with the database-level state it had, then the installed package's
/// migrations applied. Returns the migration result.
migrations::MigrateResult empty_and_migrate(const std::filesystem::path& root,
                                            const std::vector<migrations::Migration>& files,
                                            const std::string& broker_version,
                                            const std::function<void(const std::string&)>& say) {
    auto db = rp_detail::running_database(root, say);
    {
        auto admin = rp_detail::admin_connection(db);
        if (const auto clients = migrations::database_clients(admin, k_database); !clients.empty())
            throw RefusedError(fmt::format("other sessions use the broker database: {}",
                                           migrations::describe_clients(clients)));
        const auto state = migrations::read_database_state(admin, k_database);
        say("emptying the broker database");
        migrations::drop_database(admin, k_database);
        fault::point("db_purge.after_drop");
        admin.exec(fmt::format("CREATE DATABASE {}", admin.quote_ident(k_database)));
        migrations::apply_database_state(admin, k_database, state);
    }
    auto conn = migrations::Connection::open(db.conninfo());
    say(fmt::format("applying the migrations of broker {} ({} shipped)", broker_version, files.size()));
    return migrations::migrate(conn, files, broker_version);
}

} // namespace

PurgeOutcome purge_internal_database(const PurgeRequest& req, const PurgeCallbacks& cb) {
    const auto& root = req.root;
    const auto say = [&cb](const std::string& s) {
        log::info("db purge: {}", s);
        if (cb.on_step) cb.on_step(s);
    };
    PurgeOutcome out;
    // The lock first, held through the question (a second run cannot slip in).
    auto lock = RunLock::acquire(root, "db purge");
    Journal journal(root);
    journal.refuse_if_unfinished();
    if (const auto config = load_database_config(root); config.mode == DatabaseMode::external)
        throw RefusedError(fmt::format(
            "db purge empties the internal database only, and this broker uses the external database {} "
            "(/etc/leostream/database.conf), which other brokers of its cluster may share; nothing was changed: to "
            "purge the internal database, switch to it first with {}",
            config.external.display(), command_hint("switch-database --to_internal")));
    migrations::check_root_for_postgres(root);
    const auto installed = rpm::query_installed(root, k_broker_package);
    if (installed.size() != 1)
        throw InstallError(fmt::format("db purge needs exactly one installed {} in {} (found {}): the empty schema "
                                       "is the installed version's; nothing was changed",
                                       k_broker_package, root.string(), installed.size()));
    const auto& pkg = installed.front();
    out.nevra = pkg.nevra();
    const auto files = migrations::load_migrations(fs::SystemRoot(root).checked_host(k_migrations_dir));
    const auto config = load_config(root);
    require_stoppable(root, false);
    try {
        precheck_restore_point(root, cb.on_warning, false);
    } catch (const RefusedError&) {
        std::throw_with_nested(
            RefusedError("cannot take a restore point before purging the internal database; nothing was changed"));
    } catch (const Error&) {
        std::throw_with_nested(
            InstallError("cannot take a restore point before purging the internal database; nothing was changed"));
    }
    if (req.confirm &&
        !req.confirm(fmt::format("Purge the internal database of {}? Every row the broker keeps there is deleted "
                                 "and its schema made again as a fresh install's ({}); the broker components stop "
                                 "for it, and a restore point is taken first.",
                                 root.string(), pkg.nevra())))
        throw RefusedError("db purge cancelled: nothing was changed");

    const std::string run = journal.begin("db-purge", pkg.nevra(), pkg.nevra());
    StoppedComponents stopped;
    const auto start_again = [&](const char* when) {
        try {
            start_after_change(root, stopped, say);
        } catch (const std::exception& e) {
            if (cb.on_warning)
                cb.on_warning(fmt::format("{}, starting the broker components again failed: {}; start them with {}",
                                          when, describe(e), command_hint("service start")));
        }
    };
    journal.step_start(run, "stop");
    try {
        stopped = stop_for_change(root, false, say);
    } catch (const Error&) {
        start_again("after the failed stop");
        journal.end(run, "abandoned");
        std::throw_with_nested(
            InstallError("cannot stop the broker components before purging the database; nothing was changed"));
    }
    journal.step_done(run, "stop");
    say("taking a restore point");
    journal.step_start(run, "restore_point");
    RestorePoint rp;
    try {
        rp = create_restore_point(root, "before db purge", config, cb.on_warning, RestorePointKind::manual);
    } catch (const Error&) {
        start_again("after the failed restore point");
        journal.end(run, "abandoned");
        std::throw_with_nested(
            InstallError("cannot take a restore point before purging the database; nothing was changed"));
    }
    journal.step_done(run, "restore_point", {{"id", rp.id}});
    out.restore_point = rp.id;
    fault::point("db_purge.after_restore_point");
    journal.step_start(run, "purge");
    try {
        const auto res = empty_and_migrate(root, files, pkg.version, say);
        out.applied = res.applied;
        out.schema_version = res.schema_after;
    } catch (const std::exception& failure) {
        const std::string cause = describe(failure);
        signals::say("undoing the purge: returning to the restore point; please wait");
        journal.step_start(run, "rollback");
        try {
            (void)restore(root, rp, cb.on_step, run);
        } catch (const std::exception& rollback_failure) {
            throw InstallError(fmt::format("db purge failed: {}; returning to restore point {} failed too: {}; run {} "
                                           "once the cause is fixed",
                                           cause, rp.id, describe(rollback_failure), command_hint("recover")));
        }
        journal.step_done(run, "rollback");
        start_again("after the rollback");
        journal.end(run, "rolled-back");
        throw InstallError(fmt::format("db purge failed: {}; the database is back as it was (restore point {})", cause,
                                       rp.id));
    }
    journal.step_done(run, "purge", {{"schema_version", out.schema_version.value_or("")}});
    journal.step_start(run, "start");
    start_after_change(root, stopped, say);
    for (const auto c : stopped.were_running) out.restarted.emplace_back(to_string(c));
    journal.step_done(run, "start");
    journal.end(run, "ok");
    // Off the critical path: the dump of the frozen copy, as after an upgrade.
    if (const auto problem = finish_restore_point(root, rp, say); !problem.empty() && cb.on_warning)
        cb.on_warning(fmt::format("restore point {}: {}", rp.id, problem));
    return out;
}

} // namespace leo::installer
