#include "leo/installer/remove.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/hint.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/services.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/rpm/transaction.hpp"

#include <fmt/format.h>

namespace leo::installer {

namespace {

void step(const RemoveCallbacks& cb, const std::string& s) {
    log::info("{}", s);
    if (cb.on_step) cb.on_step(s);
}

} // namespace

RemoveOutcome remove_broker(const RemoveRequest& req, const RemoveCallbacks& cb) {
    const auto& root = req.root;
    auto lock = RunLock::acquire(root, "remove");
    Journal journal(root);
    journal.refuse_if_unfinished();
    const fs::SystemRoot sr(root);
    RemoveOutcome out;

    const auto installed = rpm::query_installed(root, k_broker_package);
    if (installed.empty()) {
        lock.remove_state_dir_if_created();
        return out;
    }
    if (installed.size() > 1)
        throw RefusedError(fmt::format("{} versions of {} are in the rpmdb of {} (an interrupted transaction): run {} "
                                       "first; nothing was changed",
                                       installed.size(), k_broker_package, root.string(), command_hint("recover")));
    out.nevra = installed.front().nevra();
    const auto config = load_database_config(root);
    const bool external = config.mode == DatabaseMode::external;
    const bool purge = req.purge == PurgeData::yes;
    const std::string database =
        external ? fmt::format("the external database {} (shared with the cluster; remove never touches it)",
                               config.external.display())
                 : fmt::format("the internal database under {}", sr.host(fs::SystemRoot::k_pgsql).string());

    // 1. The questions, before any change (dnf: "Is this ok [y/N]").
    require_stoppable(root, req.components_stopped);
    const std::string kept_text =
        purge ? fmt::format("{} is kept", external ? database : std::string("/etc/leostream"))
              : fmt::format("{}, /etc/leostream and the restore points are kept", database);
    if (cb.confirm && !cb.confirm(fmt::format("Remove {} from {}? The broker stops; {}.", out.nevra, root.string(),
                                              kept_text)))
        throw RefusedError("remove cancelled: nothing was changed");
    if (purge && cb.confirm &&
        !cb.confirm(fmt::format("--purge-data: also delete {} and the restore points under {}, for good? They "
                                "cannot be recovered afterwards (no restore point is taken).",
                                external ? std::string("the internal database directory")
                                         : sr.host(fs::SystemRoot::k_pgsql).string(),
                                sr.host(fs::SystemRoot::k_snapshots).string())))
        throw RefusedError("remove cancelled: nothing was changed");

    // 2. Stop, erase, purge: each step in the journal (history shows the run).
    lock.describe("remove " + out.nevra);
    const std::string run = journal.begin("remove", out.nevra, "");
    try {
        journal.step_start(run, "stop");
        (void)stop_for_change(root, req.components_stopped, [&cb](const std::string& s) { step(cb, s); });
        forget_stopped_for_change(root);  // nothing to start again: the package goes
        migrations::InternalDatabase db(root);
        if (db.status().state == migrations::DbState::running) {
            step(cb, "stopping the internal database");
            db.stop();
        }
        journal.step_done(run, "stop");

        journal.step_start(run, "erase");
        step(cb, fmt::format("erasing {}", out.nevra));
        rpm::erase_package(root, out.nevra);
        journal.step_done(run, "erase");
        out.removed = true;

        if (purge) {
            journal.step_start(run, "purge");
            for (const auto inside : {fs::SystemRoot::k_pgsql, fs::SystemRoot::k_snapshots, fs::SystemRoot::k_packages}) {
                if (sr.remove_all(inside)) {
                    step(cb, fmt::format("deleted {}", sr.host(inside).string()));
                    out.purged.push_back(sr.host(inside).string());
                }
            }
            journal.step_done(run, "purge");
        }
    } catch (const std::exception&) {
        journal.end(run, "failed");
        std::throw_with_nested(InstallError(fmt::format(
            "remove of {} failed (the broker's components may be stopped: {} starts them again)", out.nevra,
            command_hint("service start"))));
    }
    if (!purge) {
        if (external) out.kept.push_back(config.external.display());
        else if (sr.lstat(fs::SystemRoot::k_pgsql)) out.kept.push_back(sr.host(fs::SystemRoot::k_pgsql).string());
        if (sr.lstat(fs::SystemRoot::k_snapshots)) out.kept.push_back(sr.host(fs::SystemRoot::k_snapshots).string());
    } else if (external) {
        out.kept.push_back(config.external.display());
    }
    if (sr.lstat(fs::SystemRoot::k_etc_leostream)) out.kept.push_back(sr.host(fs::SystemRoot::k_etc_leostream).string());
    journal.end(run, "ok");
    return out;
}

} // namespace leo::installer
