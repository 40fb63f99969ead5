#pragma once
/// `db purge`: empty the internal broker database back to what a fresh install of the
/// installed version holds (the vendor manual's Administration Menu > Database > Purge the
/// internal database). Every configuration the broker keeps in its database is lost; the
/// restore point taken first is how to get it back (`leo-installer rollback ID`).
///
/// Internal database only: a broker on an external database (shared by a cluster) is
/// refused, naming `switch-database --to_internal` (the manual offers the purge only
/// with the internal database).
///
/// A journalled run ("db-purge") under the run lock, like upgrade:
///   stop           the broker components that run (services.hpp stop_for_change)
///   restore_point  create_restore_point (kind manual: retention never deletes it)
///   purge          DROP DATABASE leo, CREATE DATABASE leo as `db init` makes it, its
///                  database-level state (owner, ACL, settings, comment) put back, then
///                  the migrations of the installed package (/home/leo/share/migrations)
///                  applied as a fresh install applies them
///   start          what was stopped starts again
/// A failure in `purge` returns to the restore point at once; an interrupted run is
/// undone by `recover` (back to the restore point) unless `purge` had ended (then it is
/// finished: the components start).

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace leo::installer {

struct PurgeRequest {
    std::filesystem::path root = "/";
    /// Asked once every check has passed and before anything changes, with one sentence
    /// of what will happen; false cancels (leo::RefusedError "db purge cancelled: nothing
    /// was changed"). Not set: no question.
    std::function<bool(const std::string& plan)> confirm;
};

struct PurgeCallbacks {
    std::function<void(const std::string&)> on_step;
    std::function<void(const std::string&)> on_warning;
};

struct PurgeOutcome {
    std::string nevra;                    ///< the installed broker
    std::string restore_point;            ///< id of the restore point taken first
    std::vector<std::string> applied;     ///< migration scripts applied to the empty database
    std::optional<std::string> schema_version;
    std::vector<std::string> restarted;   ///< components started again
};

/// Run the purge described above. Throws leo::RefusedError (exit 3; nothing changed) for
/// an external database, an unfinished run in the journal, another session on the broker
/// database, or a cancelled question; leo::InstallError when no (or more than one) broker
/// is installed or the restore point cannot be taken (nothing changed); leo::InstallError
/// naming the restore point when the purge failed and was undone.
PurgeOutcome purge_internal_database(const PurgeRequest& request, const PurgeCallbacks& callbacks);

} // namespace leo::installer
