#pragma once
/// `leo-installer remove`: erase the broker package, as `dnf remove leostream-broker`
/// does, keeping its data. What dnf and rpm keep, this keeps too: the database (the
/// internal PostgreSQL data directory ROOT/home/leo/pgsql, or the external database, which
/// remove never touches), /etc/leostream (database.conf, its key), the restore points, the
/// journal and the log, and the `leo` user (the Fedora packaging guidelines never remove
/// users). `--purge-data` also deletes the internal database and the restore points (with
/// the kept RPMs), after a second question: what `dnf remove` cannot undo.

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace leo::installer {

enum class PurgeData { no, yes };

struct RemoveRequest {
    std::filesystem::path root;
    PurgeData purge = PurgeData::no;
    bool components_stopped = false;  ///< --components-stopped: the administrator stopped them
};

struct RemoveCallbacks {
    std::function<void(const std::string&)> on_step;
    /// The question before anything changes; false cancels (leo::RefusedError, nothing changed).
    std::function<bool(const std::string&)> confirm;
};

struct RemoveOutcome {
    std::string nevra;                 ///< what was installed ("" when nothing was)
    bool removed = false;              ///< false: nothing to do
    std::vector<std::string> kept;     ///< host paths (or the external database) kept
    std::vector<std::string> purged;   ///< host paths deleted by --purge-data
};

/// Remove the broker package from `req.root`, under the run lock and in the journal
/// ("remove" run: steps stop, erase, purge). Asks once, and with PurgeData::yes a second
/// time, before the first change; a "no" throws leo::RefusedError ("remove cancelled:
/// nothing was changed"). Nothing installed: removed=false, nothing changed. Throws
/// leo::RefusedError when an earlier run is unfinished or another run holds the lock, and
/// what the stop, the rpm transaction (leo::RpmError) or the deletion throws.
RemoveOutcome remove_broker(const RemoveRequest& req, const RemoveCallbacks& cb);

} // namespace leo::installer
