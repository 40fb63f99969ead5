// rollback and recover: back to a restore point; finish or undo an interrupted run.
#include "leo/installer/recover.hpp"
#include "leo/installer/hint.hpp"
#include "leo/installer/services.hpp"
#include "external_rollback.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/signals.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/dry_run.hpp"
#include "leo/installer/hooks.hpp"
#include "leo/installer/install.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/switch_database.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/rpm/lock.hpp"
#include "leo/rpm/transaction.hpp"

#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

/// The internal database as found before a rollback: put it back in that state after
/// (restore() starts it to restore the data).
void leave_database_as_found(const stdfs::path& root, migrations::DbState before,
                             const std::function<void(const std::string&)>& on_step) {
    if (before == migrations::DbState::running) return;
    migrations::InternalDatabase db(root);
    if (db.status().state == migrations::DbState::running && db.stop() && on_step)
        on_step("stopped the internal database again (it was stopped before the rollback)");
}

/// find_leftovers(), one line each, for the plan.
std::vector<std::string> describe_leftovers(const stdfs::path& root) {
    std::vector<std::string> out;
    const auto found = find_leftovers(root);
    for (const auto& d : found.databases)
        out.push_back(fmt::format("the database {} ({} bytes), a restore-point copy no restore point names: drop it",
                                  d.name, d.size_bytes));
    for (const auto& d : found.external_databases)
        out.push_back(fmt::format("the database {} ({} bytes) on the external server, a restore-point copy of this "
                                  "broker no restore point names: drop it",
                                  d.name, d.size_bytes));
    for (const auto& p : found.partial_dirs)
        out.push_back(fmt::format("the unfinished restore point directory {}: remove it", p));
    for (const auto& name : found.thawed)
        out.push_back(fmt::format("the restore-point copy {} accepts connections (a run was killed while it took the "
                                  "dump): refuse them again",
                                  name));
    // A dry run killed with its throw-away copy (and dump) left behind; the next dry run
    // removes them, and so does recover.
    for (auto& line : stale_dry_run_leftovers(root, StaleAction::list))
        if (line.rfind("stale: ", 0) == 0) out.push_back(std::move(line));  // not "could not look": no leftover
    return out;
}

/// The last step the run started, and whether it ended.
std::string last_step_of(const RunRecord& run) {
    if (run.started.empty()) return "";
    const auto& s = run.started.back();
    return fmt::format("{} ({})", s, run.is_done(s) ? "ended" : "started, not ended");
}

/// The restore point a rollback run was going to, by NEVRA (newest first).
std::string rollback_target(const stdfs::path& root, const RunRecord& run) {
    if (run.is_done("target")) return run.done.at("target").value("id", "");
    const auto all = list_restore_points(root);
    for (auto it = all.rbegin(); it != all.rend(); ++it)
        if (it->nevra == run.to) return it->id;
    return "";
}

/// Why restore point `id` cannot be used (it is missing, its manifest or a part is
/// damaged, its archive holds what cannot be restored), or nullopt when it can. Reads only.
std::optional<std::string> unusable(const stdfs::path& root, const std::string& id) {
    if (id.empty()) return std::string("the run's restore point is not recorded and none of its version is left");
    try {
        // What makes it unusable for good, not what may pass (a session, a failed
        // verification that --force overrides).
        (void)check_rollback(root, find_restore_point(root, id), true, true, false);
        return std::nullopt;
    } catch (const Error& e) {
        return describe(e);
    }
}

/// The plan when the restore point a run must return to cannot be used: end the run,
/// change nothing else, and say what the administrator does instead.
void give_up(RecoverPlan& plan, const std::string& id, const std::string& why) {
    plan.action = RecoverPlan::Action::give_up;
    plan.what = fmt::format("restore point {} cannot be used ({}); end the run without undoing it and change "
                            "nothing else",
                            id.empty() ? "-" : id, why);
}

RecoverPlan plan_for(const stdfs::path& root, const std::optional<RunRecord>& run, bool journal_exists) {
    RecoverPlan plan;
    if (!run) {
        plan.why = journal_exists ? "the journal records no run"
                                  : fmt::format("no run was ever recorded in {}",
                                                fs::SystemRoot(root).host(fs::SystemRoot::k_journal).string());
        plan.what = "nothing to recover: " + plan.why;
        return plan;
    }
    plan.run = run->id;
    plan.command = run->command;
    plan.last_step = last_step_of(*run);
    if (run->finished()) {
        plan.why = fmt::format("the last run (`{}`, run {}) finished: {}", run->command, run->id, *run->outcome);
        plan.what = "nothing to recover: " + plan.why;
        return plan;
    }
    const std::string stopped =
        plan.last_step.empty() ? "before its first step" : "in step " + plan.last_step;
    if (run->command == "install") {
        if (run->is_done("transaction")) {
            plan.action = RecoverPlan::Action::forward;
            plan.why = fmt::format("the install of {} stopped {}, after its rpm transaction had ended; its database "
                                   "steps can be done again safely",
                                   run->to, stopped);
            plan.what = fmt::format("complete the install of {}: the database step", run->to);
        } else {
            plan.action = RecoverPlan::Action::back;
            plan.why = fmt::format("the install of {} stopped {}, before its rpm transaction had ended", run->to,
                                   stopped);
            plan.what = "erase what the interrupted install left in the rpmdb (the leo user is kept)";
        }
        return plan;
    }
    if (run->command == "hook-posttrans") {
        // rpm installed the package; the hook's steps (stop, database, start) are idempotent.
        plan.action = RecoverPlan::Action::forward;
        plan.why = fmt::format("the posttrans step after the rpm transaction of {} stopped {}; the package is "
                               "installed and its steps can be done again safely",
                               run->to, stopped);
        plan.what = fmt::format("finish the posttrans of {}: the database step and the components", run->to);
        return plan;
    }
    if (run->command == "switch-database") {
        if (run->is_done("record")) {
            plan.action = RecoverPlan::Action::forward;
            plan.why = fmt::format("the switch from {} to {} stopped {}, after the switch was recorded", run->from,
                                   run->to, stopped);
            plan.what = fmt::format("finish it: start the components; the broker uses {}", run->to);
        } else {
            plan.action = RecoverPlan::Action::back;
            plan.why = fmt::format("the switch from {} to {} stopped {}, before it was recorded", run->from, run->to,
                                   stopped);
            plan.what = run->is_done("plan")
                            ? fmt::format("undo it: database.conf as it was, the components started, what the "
                                          "switch created in {} dropped; the broker stays on {}",
                                          run->to, run->from)
                            : "end the run: it had changed nothing";
        }
        return plan;
    }
    if (run->command == "upgrade") {
        if (!run->is_done("restore_point")) {
            plan.action = RecoverPlan::Action::back;
            plan.why = fmt::format("the upgrade {} -> {} stopped {}, before its restore point was complete: nothing "
                                   "had changed",
                                   run->from, run->to, stopped);
            plan.what = fmt::format("end the run; {} stays installed", run->from);
            return plan;
        }
        if (run->is_done("spot_check")) {
            plan.action = RecoverPlan::Action::forward;
            plan.why = fmt::format("the upgrade {} -> {} stopped {}, after every step had ended (transaction, "
                                   "migrations, spot-check)",
                                   run->from, run->to, stopped);
            plan.what = fmt::format("record it as finished; {} is installed", run->to);
            return plan;
        }
        const auto id = run->done.at("restore_point").value("id", "");
        plan.action = RecoverPlan::Action::back;
        plan.why = fmt::format("the upgrade {} -> {} stopped {}, before its spot-check had ended: the package, the "
                               "schema or the data may be between versions",
                               run->from, run->to, stopped);
        plan.what = fmt::format("return to {} (restore point {})", run->from, id);
        if (const auto why = unusable(root, id)) give_up(plan, id, *why);
        return plan;
    }
    if (run->command == "db-purge") {
        if (!run->is_done("restore_point")) {
            plan.action = RecoverPlan::Action::back;
            plan.why = fmt::format("the db purge stopped {}, before its restore point was complete: the database "
                                   "had not changed",
                                   stopped);
            plan.what = "end the run and start the components it stopped";
            return plan;
        }
        if (run->is_done("purge")) {
            plan.action = RecoverPlan::Action::forward;
            plan.why = fmt::format("the db purge stopped {}, after the database was emptied and migrated", stopped);
            plan.what = "record it as finished and start the components it stopped";
            return plan;
        }
        const auto id = run->done.at("restore_point").value("id", "");
        plan.action = RecoverPlan::Action::back;
        plan.why = fmt::format("the db purge stopped {}, before the empty database was complete", stopped);
        plan.what = fmt::format("return to the database as it was before the purge (restore point {})", id);
        if (const auto why = unusable(root, id)) give_up(plan, id, *why);
        return plan;
    }
    if (run->command == "rollback") {
        const auto id = rollback_target(root, *run);
        plan.action = RecoverPlan::Action::back;
        plan.why = fmt::format("the rollback to {} stopped {}", run->to, stopped);
        plan.what = fmt::format("finish the rollback: return to {} (restore point {})", run->to, id);
        if (const auto why = unusable(root, id)) give_up(plan, id, *why);
        return plan;
    }
    plan.action = RecoverPlan::Action::back;
    plan.why = fmt::format("a `{}` run stopped {}", run->command, stopped);
    plan.what = "nothing it knows how to do for this command";
    return plan;
}

RecoverOutcome recover_locked(const stdfs::path& root, std::optional<RunLock>& lock, const RunRecord& run_in,
                              const std::function<void(const std::string&)>& on_step);

} // namespace

RollbackResult rollback(const stdfs::path& root_in, const std::string& id,
                        const std::function<void(const std::string&)>& on_step,
                        const std::function<bool(const RestorePoint&)>& confirm, std::chrono::seconds rpmdb_wait,
                        bool force, bool components_stopped, bool allow_remote_upgrade,
                        std::chrono::seconds lease_wait) {
    const stdfs::path root = checked_root(root_in);
    auto lock = RunLock::acquire(root, "rollback");
    Journal journal(root);
    journal.refuse_if_unfinished();
    auto rp = find_restore_point(root, id);
    lock.describe("rollback to " + rp.id);  // what a second run is told while we ask
    // A broker on an external database: what happens to the shared database is decided
    // (and refused when the old version could not run on it) before the question.
    std::optional<ExternalRollback> external;
    if (load_database_config(root).mode == DatabaseMode::external) {
        external.emplace(plan_external_rollback(root, rp, allow_remote_upgrade));
        if (on_step) on_step(external->note);
    }
    if (confirm && !confirm(rp)) throw RefusedError("rollback cancelled: nothing was changed");
    // Another rpm/yum/dnf transaction on this root: wait for it (bounded) before anything
    // changes, as upgrade does, rather than stop half way with the database restored.
    try {
        rpm::wait_for_transaction_lock(fs::SystemRoot(root), rpmdb_wait,
                                       [&](const rpm::LockHolder& h, std::chrono::milliseconds) {
                                           if (on_step)
                                               on_step(fmt::format("waiting up to {} s for another rpm transaction to "
                                                                   "finish (pid {}{})",
                                                                   rpmdb_wait.count(), h.pid,
                                                                   h.command.empty() ? "" : ": " + h.command));
                                       });
    } catch (const RpmLockedError&) {
        std::throw_with_nested(RefusedError(fmt::format(
            "cannot roll back to restore point {} while another rpm transaction runs; nothing was changed: run the "
            "rollback again when it has finished, or give it longer with --rpmdb-wait SECONDS",
            rp.id)));
    }
    const auto before = migrations::InternalDatabase(root).status().state;
    // Everything restore() checks first, before the journal records a run: a refusal
    // leaves no unfinished rollback for recover to retry.
    try {
        (void)check_rollback(root, rp, force);
    } catch (const RefusedError&) {
        leave_database_as_found(root, before, on_step);
        throw;
    } catch (const Error&) {
        leave_database_as_found(root, before, on_step);
        std::throw_with_nested(RefusedError(fmt::format(
            "cannot roll back to restore point {}; nothing was changed ({} shows the others)",
            rp.id, command_hint("snapshot list"))));
    }
    try {
        require_stoppable(root, components_stopped);
        // The state being left is kept as a restore point: what would stop that part way
        // (a link the leo account planted in its configuration) refuses here, before the run
        // is recorded, with nothing changed.
        try {
            check_configuration_saveable(root);
        } catch (const RefusedError& e) {
            throw RefusedError(fmt::format("cannot roll back to restore point {}: the state being left cannot be "
                                           "kept as a restore point: {}; nothing was changed",
                                           rp.id, e.what()));
        }
    } catch (const Error&) {
        leave_database_as_found(root, before, on_step);
        throw;
    }
    if (external) {
        try {
            take_rollback_lease(*external, "rollback to " + rp.nevra, lease_wait, on_step);
        } catch (const Error&) {
            leave_database_as_found(root, before, on_step);
            throw;
        }
    }
    const auto installed = rpm::query_installed(root, k_broker_package);
    const std::string run = journal.begin("rollback", installed.empty() ? "" : installed.front().nevra(), rp.nevra);
    // Which restore point, for recover (and whether the shared database goes back too).
    journal.step_done(run, "target",
                      {{"id", rp.id},
                       {"shared_database", external && external->restore_shared},
                       {"lease_token", external && external->lease ? external->lease->token() : 0}});
    signals::say("the rollback is in progress and will finish; please wait");
    // The components stop first (the rename needs the database without clients); what was
    // stopped is recorded, so a recover after a crash starts it again.
    StoppedComponents stopped;
    try {
        stopped = stop_for_change(root, components_stopped, on_step);
    } catch (const Error&) {
        try {
            start_after_change(root, stopped, on_step);
        } catch (const std::exception&) {
        }
        journal.end(run, "abandoned");
        leave_database_as_found(root, before, on_step);
        std::throw_with_nested(InstallError(
            fmt::format("cannot stop the broker components before rolling back to {}; nothing was changed", rp.id)));
    }
    journal.step_start(run, "restore");
    RollbackResult result;
    result.restore_point = rp;
    try {
        result.outcome = external ? run_external_rollback(root, rp, *external, on_step, run, rpmdb_wait)
                                  : restore(root, rp, on_step, run, force, rpmdb_wait);
        leave_database_as_found(root, before, on_step);
    } catch (const std::exception&) {
        // Part of the restore point may be back already: the journal says so, and recover
        // finishes the rollback once the cause is fixed.
        std::throw_with_nested(InstallError(fmt::format(
            "the rollback to {} (restore point {}) stopped part way; once the cause below is fixed, run "
            "`leo-installer recover --root {}` to finish it",
            rp.nevra, rp.id, root.string())));
    }
    journal.step_done(run, "restore", {{"id", rp.id}});
    try {
        start_after_change(root, stopped, on_step);
    } catch (const std::exception& e) {
        if (on_step)
            on_step(fmt::format("the rollback is complete, but starting the broker components again failed: {}; "
                                "start them with `leo-installer service start --root {}`",
                                describe(e), root.string()));
    }
    journal.end(run, "ok");
    // Off the critical path: the dump of the state left, then retention.
    try {
        auto left = find_restore_point(root, result.outcome.left_restore_point);
        const bool was_running = migrations::InternalDatabase(root).status().state == migrations::DbState::running;
        if (const auto problem = finish_restore_point(root, left, on_step); !problem.empty() && on_step)
            on_step(fmt::format("restore point {} is kept without its dump: {}", left.id, problem));
        result.pruned = prune_restore_points(root, load_config(root).keep_restore_points);
        if (!was_running) leave_database_as_found(root, before, on_step);
    } catch (const Error& e) {
        if (on_step) on_step(fmt::format("after the rollback: {}", describe(e)));
    }
    return result;
}

RecoverPlan plan_recover(const stdfs::path& root_in) {
    const stdfs::path root = checked_root(root_in);
    if (const auto holder = RunLock::holder(root))
        throw RefusedError(fmt::format("a leo-installer run is in progress on {} ({}): it is not interrupted, "
                                       "nothing to recover; wait for it to finish",
                                       root.string(), *holder));
    const Journal journal(root);
    try {
        auto plan = plan_for(root, journal.last_run(), fs::SystemRoot(root).exists(fs::SystemRoot::k_journal));
        plan.leftovers = describe_leftovers(root);
        return plan;
    } catch (const nlohmann::json::exception& e) {
        throw InstallError(fmt::format("the journal in {} records the last run with data this leo-installer cannot "
                                       "use ({}); nothing was changed: inspect it and the system by hand",
                                       journal.file().string(), e.what()));
    }
}

RecoverOutcome recover(const stdfs::path& root_in, const std::function<void(const std::string&)>& on_step,
                       const std::function<bool(const RecoverPlan&)>& confirm) {
    const stdfs::path root = checked_root(root_in);
    std::optional<RunLock> lock;
    lock.emplace(RunLock::acquire(root, "recover"));
    const Journal journal(root);
    const auto run = journal.last_run();
    RecoverOutcome out;
    try {
        auto plan = plan_for(root, run, fs::SystemRoot(root).exists(fs::SystemRoot::k_journal));
        plan.leftovers = describe_leftovers(root);
        if (plan.action == RecoverPlan::Action::nothing) {
            out.message = plan.what;
            if (plan.leftovers.empty()) return out;
            if (confirm && !confirm(plan)) throw RefusedError("recover cancelled: nothing was changed");
            const signals::Deferred deferred("recover is removing what interrupted runs left; please wait");
            for (const auto& line : remove_leftovers(root)) {
                if (on_step) on_step(line);
                out.message += "; " + line;
            }
            for (const auto& line : stale_dry_run_leftovers(root, StaleAction::remove)) {
                if (on_step) on_step(line);
                out.message += "; " + line;
            }
            return out;
        }
        if (confirm && !confirm(plan)) throw RefusedError("recover cancelled: nothing was changed");
        // Recovering is itself the undo: a signal waits until it is done.
        signals::Deferred deferred("recover is finishing or undoing the interrupted run and will finish; please wait");
        out = recover_locked(root, lock, *run, on_step);
        // The components an interrupted upgrade or rollback stopped (its record in
        // /run/leostream) run again, on whichever version recover left.
        if (run->command == "upgrade" || run->command == "rollback" || run->command == "db-purge") {
            if (const auto line = release_lease_of_interrupted_run(root); !line.empty()) {
                if (on_step) on_step(line);
            }
            try {
                start_after_change(root, {}, on_step);
            } catch (const std::exception& e) {
                out.message += fmt::format("; starting the broker components again failed: {}: start them with "
                                           "`leo-installer service start --root {}`",
                                           describe(e), root.string());
            }
        }
        return out;
    } catch (const nlohmann::json::exception& e) {
        // A journal record whose step data lacks what its step writes (edited, or damaged
        // on disk): nothing is guessed, nothing more is changed.
        throw InstallError(fmt::format("the journal in {} records the last run with data this leo-installer cannot "
                                       "use ({}); nothing was changed: inspect it and the system by hand",
                                       journal.file().string(), e.what()));
    }
}

namespace {

RecoverOutcome recover_locked(const stdfs::path& root, std::optional<RunLock>& lock, const RunRecord& run_in,
                              const std::function<void(const std::string&)>& on_step) {
    const RunRecord* run = &run_in;
    Journal journal(root);
    RecoverOutcome out;
    out.run = run->id;
    auto say = [&](const std::string& s) {
        log::info("recover {}: {}", run->id, s);
        if (on_step) on_step(s);
    };
    // What the crash left of restore points (a half-written directory, a copy no manifest
    // names yet) is never listed nor used: remove it, saying so.
    for (const auto& line : remove_leftovers(root)) say(line);

    if (run->command == "install") {
        // A first install: finish it when the package is in place (the database steps are
        // idempotent), undo it when the transaction had not ended.
        if (run->is_done("transaction")) {
            say("completing the database step of the interrupted install");
            InstallRequest req;
            req.root = root;
            req.package_file = fs::SystemRoot(root).checked_host(stdfs::path(k_packages_dir) / (run->to + ".rpm"));
            req.gpgcheck = GpgCheck::no;  // the kept copy was verified when it was installed
            journal.end(run->id, "recovered-forward");
            lock.reset();  // install takes the lock itself
            (void)install(req, InstallCallbacks{});
            out.kind = RecoverOutcome::Kind::completed;
            out.message = fmt::format("the `install` of {} was interrupted after its rpm transaction: completed it",
                                      run->to);
            return out;
        }
        for (const auto& p : rpm::query_installed(root, k_broker_package)) {
            say(fmt::format("erasing {}, left by the interrupted install", p.nevra()));
            rpm::erase_package(root, p.nevra());
        }
        journal.end(run->id, "recovered-back");
        out.kind = RecoverOutcome::Kind::undone;
        out.message = fmt::format("the `install` of {} was interrupted before its rpm transaction ended: undone, no "
                                  "broker is installed (the leo user is kept); run the install again",
                                  run->to);
        return out;
    }

    if (run->command == "switch-database") return recover_switch(root, *run, journal, say);

    if (run->command == "hook-posttrans") {
        say(fmt::format("finishing the posttrans of {} (database step, components)", run->to));
        lock.reset();  // the hook takes the lock itself, and takes over the unfinished run
        PosttransRequest req;
        req.root = root;
        const char* allow = std::getenv(k_allow_remote_upgrade_env);
        req.allow_remote_upgrade = allow != nullptr && std::string(allow) == "1";
        HookCallbacks hcb;
        hcb.on_step = say;
        hcb.on_warning = say;
        const auto done = run_posttrans_hook(req, hcb);
        out.kind = RecoverOutcome::Kind::completed;
        out.message = fmt::format("the posttrans of {} after its rpm transaction was interrupted or failed: finished "
                                  "it (schema {})",
                                  run->to, done.schema_version.value_or("unknown"));
        return out;
    }

    std::string rp_id;
    if (run->command == "upgrade") {
        if (!run->is_done("restore_point")) {
            journal.end(run->id, "abandoned");
            out.kind = RecoverOutcome::Kind::undone;
            out.message = fmt::format("the `upgrade` {} -> {} stopped before its restore point was complete: nothing "
                                      "had changed, {} is installed",
                                      run->from, run->to, run->from);
            return out;
        }
        if (run->is_done("spot_check")) {
            journal.end(run->id, "recovered-forward");
            out.kind = RecoverOutcome::Kind::completed;
            out.message = fmt::format("the `upgrade` {} -> {} had completed every step: finished it, {} is installed",
                                      run->from, run->to, run->to);
            return out;
        }
        rp_id = run->done.at("restore_point").value("id", "");
    } else if (run->command == "db-purge") {
        if (!run->is_done("restore_point")) {
            journal.end(run->id, "abandoned");
            out.kind = RecoverOutcome::Kind::undone;
            out.message = "the `db purge` stopped before its restore point was complete: the database had not changed";
            return out;
        }
        if (run->is_done("purge")) {
            journal.end(run->id, "recovered-forward");
            out.kind = RecoverOutcome::Kind::completed;
            out.message = "the `db purge` had emptied and migrated the database: finished it";
            return out;
        }
        rp_id = run->done.at("restore_point").value("id", "");
    } else if (run->command == "rollback") {
        rp_id = rollback_target(root, *run);  // recorded at its start by NEVRA
    }
    // A restore point that cannot be used would fail the same way at every recover: give
    // the run up (the plan said so), change nothing, and say what to do instead.
    if (const auto why = unusable(root, rp_id)) {
        journal.end(run->id, "given-up");
        const auto installed = rpm::query_installed(root, k_broker_package);
        std::string now;
        for (const auto& p : installed) now += (now.empty() ? "" : ", ") + p.nevra();
        throw InstallError(fmt::format(
            "recover gave up on the interrupted `{}` {} -> {} (run {}): restore point {} cannot be used ({}); the run "
            "is ended and nothing was changed, so the broker is as that run left it (installed: {}): check it with "
            "{}, then roll back to another restore point ({}, {}) or install the version you want again",
            run->command, run->from, run->to, run->id, rp_id.empty() ? "-" : rp_id, *why,
            now.empty() ? "none" : now, command_hint("status"), command_hint("snapshot list"),
            command_hint("rollback ID")));
    }
    const auto rp = find_restore_point(root, rp_id);

    // rpmdb repair: an interrupted transaction can leave two versions in the rpmdb.
    const auto installed = rpm::query_installed(root, k_broker_package);
    if (installed.size() > 1) {
        for (const auto& p : installed) {
            if (p.nevra() == rp.nevra) continue;
            say(fmt::format("removing the stale rpmdb entry {} left by the interrupted transaction", p.nevra()));
            rpm::remove_rpmdb_entry(root, p.nevra());
        }
    }
    // Components the interrupted run had started again run the version being undone: stop
    // them before the restore (recorded, so they start again after it on the old version,
    // as rollback does). Where nothing can stop them, the restore goes on as before.
    try {
        (void)stop_for_change(root, false, say);
    } catch (const RefusedError& e) {
        say(fmt::format("the broker components are not stopped before the restore: {}", e.what()));
    }
    say(fmt::format("returning to {} (restore point {})", rp.nevra, rp.id));
    journal.step_start(run->id, "recover");
    if (rp.database_location == "external") {
        // The shared database goes back only if the run had changed it (migrated, or was
        // putting it back) and no other broker took the cluster's lease since.
        // "lease": written by the upgrade, and by every recover that took the lease (the
        // newest wins); a rollback records its own in "target".
        const char* step = run->is_done("lease") ? "lease" : "target";
        const auto data = run->is_done(step) ? run->done.at(step) : nlohmann::json::object();
        const bool shared = data.value("shared_database", false);
        recover_external(root, rp, shared, data.value("lease_token", std::int64_t{0}), on_step, run->id,
                         [&](std::int64_t token) {
                             journal.step_done(run->id, "lease",
                                               {{"lease_token", token}, {"shared_database", shared}});
                         });
    } else {
        restore(root, rp, on_step, run->id);
    }
    journal.step_done(run->id, "recover", {{"id", rp.id}});
    journal.end(run->id, "recovered-back");
    out.kind = RecoverOutcome::Kind::undone;
    out.message = fmt::format("the `{}` {} -> {} was interrupted: returned to {} (restore point {})", run->command,
                              run->from, run->to, rp.nevra, rp.id);
    return out;
}
} // namespace

} // namespace leo::installer
