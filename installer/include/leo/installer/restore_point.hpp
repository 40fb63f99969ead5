#pragma once
/// Restore points: everything needed to put the broker back exactly as it was.
///
/// Layout: ROOT/var/lib/leo-installer/snapshots/<id>/ with manifest.json (versioned),
/// package.rpm (the installed version's RPM, for the downgrade), config.tar.gz (the
/// broker's configuration and secrets: /home/leo/etc, /etc/leostream,
/// /etc/leo-installer) and database.dump (pg_dump -Fc of the broker database, with the
/// per-table checksums taken at the same moment). A restore point is written under a
/// temporary name and renamed when complete, so a listed one is always whole.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "leo/installer/config.hpp"

#include <nlohmann/json_fwd.hpp>

namespace leo::installer {

/// Version of manifest.json; a manifest of another version is refused.
inline constexpr int k_manifest_format_version = 1;

struct RestorePoint {
    std::string id;                 ///< "20261129T153000Z" (UTC), unique within the root
    std::string created;            ///< ISO-8601 UTC
    std::string reason;             ///< e.g. "before upgrade to leostream-broker-9.1.2-1.x86_64"
    std::string nevra;              ///< the broker NEVRA it restores
    std::string package_sha256;     ///< of package.rpm
    std::string config_sha256;      ///< of config.tar.gz
    std::vector<std::string> config_entries;
    std::string database_sha256;    ///< of database.dump
    std::optional<std::string> schema_version;
    std::map<std::string, std::string> table_checksums; ///< table -> "rows:md5"
    std::string vm_snapshot_id;     ///< printed by the VM-snapshot hook ("" when none ran)
    std::filesystem::path dir;      ///< where it is (not serialised)
};

[[nodiscard]] nlohmann::json to_json(const RestorePoint& rp);

/// The restore point described by manifest.json `text` of the restore point directory
/// `dir` (what list_restore_points reads). Throws leo::InstallError for text that is not
/// JSON, another format version, or a missing or mistyped field.
[[nodiscard]] RestorePoint parse_manifest(const std::string& text, const std::filesystem::path& dir);

/// Take a restore point of the broker installed in `root` (the database is started when
/// it is stopped). Before anything is written, the free space is checked: the kept RPM,
/// the database size and the configuration, plus 10% and 64 MiB, must fit on the
/// filesystem of the snapshots directory. Then the configured VM-snapshot hook runs
/// (config.vm_snapshot_create_command; its last output line is recorded; a failure
/// stops here unless the hook is optional, then `on_warning` is told). Throws
/// leo::InstallError naming what is missing (no broker installed, its RPM not kept, not
/// enough space, the hook failed) or leo::DatabaseError / leo::SystemError with the
/// failing part; a failed attempt leaves nothing behind.
RestorePoint create_restore_point(const std::filesystem::path& root, const std::string& reason,
                                  const InstallerConfig& config = {},
                                  const std::function<void(const std::string&)>& on_warning = nullptr);

/// Delete the oldest restore points so that at most `keep` remain. Returns the deleted ids.
std::vector<std::string> prune_restore_points(const std::filesystem::path& root, int keep);

/// Restore points of `root`, oldest first. Throws leo::InstallError for a manifest that
/// cannot be read or has an unknown format version.
[[nodiscard]] std::vector<RestorePoint> list_restore_points(const std::filesystem::path& root);

/// The restore point `id`, or the newest when `id` is empty. Throws leo::InstallError
/// ("no restore point ID in ROOT; `leo-installer snapshot list` shows them").
[[nodiscard]] RestorePoint find_restore_point(const std::filesystem::path& root, const std::string& id);

/// Check every part against the manifest (digests, archive readable). Throws leo::InstallError.
void verify_restore_point(const RestorePoint& rp);

/// Everything restore() checks before it changes anything: every part against the manifest
/// (verify_restore_point), package.rpm's NEVRA, the configuration archive (only
/// configuration, only files, directories and links, and no link out of the saved
/// directories: archive::check_restorable) and the dump readable. Reads only. Throws
/// leo::InstallError (or leo::DatabaseError for the dump) naming the restore point and
/// what makes it unusable.
void check_restore_point(const std::filesystem::path& root, const RestorePoint& rp);

/// Put `root` back to `rp` (check_restore_point first, nothing changed when it throws): the RPM (downgrade or reinstall of the kept package, one
/// librpm transaction), the configuration archive, then the database (dropped, restored
/// from the dump, and its table checksums compared with the manifest's).
/// `on_step` reports progress. Throws with the failing part named.
void restore(const std::filesystem::path& root, const RestorePoint& rp,
             const std::function<void(const std::string&)>& on_step = nullptr);

/// Run the configured VM-snapshot restore hook for `rp` (`rollback --vm-snapshot`): the
/// whole machine goes back to the VM snapshot taken with the restore point. Throws
/// leo::InstallError when the restore point has no VM snapshot, no restore_command is
/// configured, or the hook fails or times out (its last line of error output named).
void run_vm_restore_hook(const std::filesystem::path& root, const RestorePoint& rp, const InstallerConfig& config);

/// Delete restore point `id`. Throws leo::InstallError when it does not exist.
void delete_restore_point(const std::filesystem::path& root, const std::string& id);

} // namespace leo::installer
