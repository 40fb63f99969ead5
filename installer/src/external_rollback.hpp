#pragma once
// Rollback and recover of a broker on an external database a cluster shares: what goes
// back (the package and configuration always; the shared database only when asked), under
// the cluster's upgrade lease. Used by recover.cpp.
#include "leo/installer/cluster.hpp"
#include "leo/installer/restore_point.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace leo::installer {

/// The plan of a rollback of a broker on an external database.
struct ExternalRollback {
    std::string conninfo;  ///< the shared database (may hold a password: never printed)
    std::string endpoint;  ///< "host:port/name"
    std::string dbname;    ///< its name on the server
    std::string member;    ///< member_id(root)
    std::optional<int> site_id;
    /// The shared database goes back too (the restore point holds it and
    /// --allow-remote-upgrade was given, or recover finishes a run that did so).
    bool restore_shared = false;
    /// One line for the administrator: what happens to the shared database, and why.
    std::string note;
    std::optional<UpgradeLease> lease;
};

/// Decide, before any change, what a rollback of `root`'s broker (on an external
/// database) to `rp` does. The shared database goes back only when `rp` holds it (a copy
/// on the server or a directory dump: the restore point of the broker that migrated it)
/// and `allow_remote_upgrade` is set: every broker of the cluster then sees the old schema
/// and data. Without it, the rollback puts back the package and the configuration only,
/// which is allowed only when the shared schema is the restore point's. Throws
/// leo::RefusedError (nothing changed) when `rp` holds the internal database or another
/// endpoint, or when the broker's old version could not run on the shared schema.
ExternalRollback plan_external_rollback(const std::filesystem::path& root, const RestorePoint& rp,
                                        bool allow_remote_upgrade);

/// Take the cluster's upgrade lease for the rollback (waiting up to `wait`; a lease left by
/// an earlier run of this same broker whose process is gone is taken over at once).
/// Throws what UpgradeLease::acquire throws.
void take_rollback_lease(ExternalRollback& plan, const std::string& purpose, std::chrono::seconds wait,
                         const std::function<void(const std::string&)>& on_step);

/// restore_external() as planned (the lease renewed first: a lost lease leaves the shared
/// database as it is, and says so), then the broker's record in the registry ("running",
/// the restore point's version) and the lease released. Throws like restore_external.
RestoreOutcome run_external_rollback(const std::filesystem::path& root, const RestorePoint& rp, ExternalRollback& plan,
                                     const std::function<void(const std::string&)>& on_step, const std::string& run,
                                     std::chrono::seconds rpmdb_wait);

/// `recover` of an interrupted upgrade or rollback of `root`'s broker (on an external
/// database) back to `rp`. `shared`: the run had migrated the shared database or was
/// putting it back; `token`: the lease token it held (0: none recorded). The shared database
/// goes back only when no other broker took the lease since (the token is still the
/// run's) and the lease can be taken now (the dead run's is taken over at once); otherwise
/// it is left as it is and `on_step` says why. Throws like restore_external.
/// `on_lease_taken` gets the token recover takes the lease with, before anything changes
/// (recover records it in the journal: a recover that dies after taking the lease must not
/// make the next one believe another broker took it).
RestoreOutcome recover_external(const std::filesystem::path& root, const RestorePoint& rp, bool shared,
                                std::int64_t token, const std::function<void(const std::string&)>& on_step,
                                const std::string& run, const std::function<void(std::int64_t)>& on_lease_taken);

/// After `recover`: a lease `root`'s broker still holds from the interrupted run (its
/// process is gone) is given back, and the broker is registered "running" again, so the
/// other brokers of the cluster do not wait for the lease to expire. Returns a line for
/// the administrator, "" when there was nothing to do (not external, lease not ours).
std::string release_lease_of_interrupted_run(const std::filesystem::path& root);

} // namespace leo::installer
