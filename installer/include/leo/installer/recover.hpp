#pragma once
/// `rollback` and `recover`: back to a restore point, and finishing or undoing a run the
/// journal says was interrupted (DESIGN.md "The maintenance-window upgrade, as a journal
/// of steps").

#include "leo/installer/restore_point.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace leo::installer {

/// What `rollback` did.
struct RollbackResult {
    RestorePoint restore_point;  ///< the one it returned to
    RestoreOutcome outcome;      ///< the state it left (a restore point), configuration kept as .rpmsave
    std::vector<std::string> pruned;  ///< restore points deleted by retention afterwards
};

/// `leo-installer rollback [ID]`: restore point `id` (the newest usable one when empty).
/// The run lock is taken first and held through `confirm` (asked with the restore point
/// found; false cancels: leo::RefusedError, nothing changed). The state being left is kept
/// as a before-rollback restore point, whose dump is taken after the rollback (off the
/// critical path). The internal database is left running or stopped as it was found.
/// Throws leo::RefusedError when another run holds the lock, an earlier run is
/// unfinished, another rpm transaction still holds rpm's lock after `rpmdb_wait`, other
/// sessions use the broker database, the restore point cannot be used (check_rollback; no
/// run is recorded), or it failed its verification and `force` is not set (all with
/// nothing changed); leo::InstallError when the restore stops
/// part way (the message says to run `recover`).
///
/// A broker on an external database (a cluster): the package and the configuration go
/// back; the shared database too only with `allow_remote_upgrade` and a restore point
/// that holds it (the one taken by the broker that migrated it), under the cluster's
/// upgrade lease (waited for up to `lease_wait`). leo::RefusedError, nothing changed, when
/// the old version could not run on the shared schema (external_rollback.hpp).
///
/// The broker's running components are stopped before the restore and started again after
/// it (services.hpp stop_for_change); `components_stopped` says the administrator stopped
/// them (`--components-stopped`). Where nothing can stop them, leo::RefusedError unless it
/// is set.
RollbackResult rollback(const std::filesystem::path& root, const std::string& id,
                        const std::function<void(const std::string&)>& on_step = nullptr,
                        const std::function<bool(const RestorePoint&)>& confirm = nullptr,
                        std::chrono::seconds rpmdb_wait = std::chrono::seconds(60), bool force = false,
                        bool components_stopped = false, bool allow_remote_upgrade = false,
                        std::chrono::seconds lease_wait = std::chrono::seconds(900));

/// What `recover` would do, and why (`recover --dry-run` prints it).
struct RecoverPlan {
    /// give_up: the restore point the run must return to cannot be used (missing, damaged,
    /// or holding what cannot be restored); recover ends the run and changes nothing else.
    enum class Action { nothing, forward, back, give_up } action = Action::nothing;
    std::string run;        ///< the run's id ("" when there is none)
    std::string command;    ///< "upgrade", "install", "rollback", "switch-database"
    std::string last_step;  ///< "migrate (started, not ended)", or "" when no step began
    std::string why;        ///< why forward or back ("every step had ended", ...)
    std::string what;       ///< what recover does ("return to 9.0.7 (restore point ID)")
    /// What interrupted runs left of restore points (a copy no manifest names, a
    /// half-written directory), which recover removes too; one line each.
    std::vector<std::string> leftovers;
};

/// Read the journal and say what `recover` would do; changes nothing, takes no lock.
/// Throws leo::RefusedError when a live run holds the lock (its run is in progress, not
/// interrupted), leo::InstallError for a journal it cannot use.
[[nodiscard]] RecoverPlan plan_recover(const std::filesystem::path& root);

struct RecoverOutcome {
    enum class Kind { nothing, completed, undone } kind = Kind::nothing;
    std::string run;
    std::string message;  ///< what was found and what was done, for the terminal
};

/// `leo-installer recover`: under the run lock, plan as plan_recover(), ask `confirm`
/// with the plan (false: leo::RefusedError, nothing changed), then finish the run (an
/// upgrade whose every step had ended) or undo it (back to its restore point, after
/// removing stale rpmdb entries), and record the outcome. A second call does nothing.
/// The broker ends exactly on the old or exactly on the new version. Signals are
/// deferred until it is done. When the restore point it would return to cannot be used
/// (RecoverPlan::Action::give_up), it records the run as given up, changes nothing else
/// and throws leo::InstallError saying so and what to do instead, so that the next
/// recover has nothing to do (never the same failure again and again).
RecoverOutcome recover(const std::filesystem::path& root,
                       const std::function<void(const std::string&)>& on_step = nullptr,
                       const std::function<bool(const RecoverPlan&)>& confirm = nullptr);

} // namespace leo::installer
