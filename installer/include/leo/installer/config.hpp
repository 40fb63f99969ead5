#pragma once
/// Installer settings: ROOT/etc/leo-installer/installer.conf (INI, parsed with inih).
///
///   [restore_points]
///   keep = 3                    ; restore points kept; older ones are deleted after a
///                               ; successful upgrade or `snapshot create` (1 to 2147483647)
///   [backup]                    ; `backup create|list|verify|prune` (backup.hpp)
///   directory = /var/lib/leo-installer/backups   ; inside the root; made 0700, root's
///   keep = 7                    ; backups `backup prune` keeps (1 to 2147483647)
///
///   [vm_snapshot]
///   create_command = /usr/local/bin/take-vm-snapshot   ; optional; run before a restore point
///   restore_command = /usr/local/bin/revert-vm-snapshot ; optional; `rollback --vm-snapshot`
///   timeout = 600               ; seconds (1 to 2147483647, as every timeout here)
///   optional = no               ; yes: a failing hook only warns
///
///   [services]
///   stop_command = systemctl stop leostream-broker.service    ; optional (see services.hpp)
///   start_command = systemctl start leostream-broker.service  ; optional
///   timeout = 300               ; seconds, for each (also a supervised stop's SIGTERM grace)
///   ready_timeout = 60          ; seconds a started component has to become ready
///
///   [maintenance_window]        ; optional: upgrades only inside these weekly ranges
///   time_zone = Europe/Berlin   ; an IANA zone name (PostgreSQL's tz database); default UTC
///   windows = Sat 22:00-Sun 04:00, Wed 02:00-03:00
///                               ; DAY HH:MM-[DAY ]HH:MM, comma-separated; an end before the
///                               ; start (or a later DAY) runs into the next day(s)
///
///   [cluster]
///   lease_ttl = 600             ; seconds the upgrade lease lasts without renewal (renewed at
///                               ; every step; a dead holder's lease is taken over after it)
///
///   [spot_check]
///   timeout = 30                ; seconds each probe after an upgrade may take
///
///   [support_bundle]
///   secret_keys = ldap_bind, license   ; more key names whose values the support bundle
///                               ; redacts (comma-separated, compared without case), besides
///                               ; every name holding password, secret, token, ... (redact.hpp)
///
/// The hooks get LEO_ROOT, LEO_RESTORE_POINT_ID and LEO_RESTORE_POINT_DIR in their
/// environment (the restore hook also LEO_VM_SNAPSHOT_ID); the last line the create hook
/// prints is the snapshot id recorded in the manifest.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "leo/common/system_root.hpp"

namespace leo::installer {

struct InstallerConfig {
    int keep_restore_points = 3;
    std::string backup_directory;  ///< [backup] directory; "" = /var/lib/leo-installer/backups
    int backup_keep = 7;           ///< [backup] keep
    std::string vm_snapshot_create_command;
    std::string vm_snapshot_restore_command;
    std::chrono::seconds vm_snapshot_timeout{600};
    bool vm_snapshot_optional = false;
    std::string services_stop_command;
    std::string services_start_command;
    std::chrono::seconds services_timeout{300};
    std::chrono::seconds services_ready_timeout{60};
    std::string maintenance_time_zone = "UTC";
    std::string maintenance_windows;  ///< as written; parsed by gates.hpp parse_windows()
    int maintenance_windows_line = 0; ///< its line in installer.conf, for errors
    /// Why [maintenance_window] cannot be used ("FILE:LINE: message": a syntax error, an
    /// unknown key, bad windows, a time zone that is not a zoneinfo name); "" when it can.
    /// Only the upgrade's maintenance_window gate refuses on it; other commands go on.
    std::string maintenance_window_error;
    std::chrono::seconds spot_check_timeout{30};
    std::chrono::seconds cluster_lease_ttl{600};
    std::vector<std::string> support_bundle_secret_keys; ///< [support_bundle] secret_keys
};

/// Read ROOT/etc/leo-installer/installer.conf; defaults when it does not exist. Throws
/// leo::UsageError naming file and line for a syntax error, an unknown key or a bad value
/// (except in [maintenance_window]: see InstallerConfig::maintenance_window_error, also
/// written to the log as a warning),
/// and leo::RefusedError (exit 3) when the file or its directory can be changed by a user
/// other than root (its commands run as root): see check_trusted_config().
[[nodiscard]] InstallerConfig load_config(const std::filesystem::path& root);

/// Refuse (leo::RefusedError naming the file, its owner and mode, and the fix) a file whose
/// content root acts on when it is not root's, is writable by group or others, or sits in
/// a directory a user other than root can change. Nothing when it does not exist.
void check_trusted_config(const fs::SystemRoot& root, const std::filesystem::path& inside);

/// Parse installer.conf text (what load_config runs on the file's content); `file` names
/// it in errors. Throws leo::UsageError as load_config does; an error in the
/// [maintenance_window] sections (syntax, key or value) is kept in maintenance_window_error
/// instead, with their settings left at the defaults.
[[nodiscard]] InstallerConfig parse_config(const std::string& text, const std::string& file);

/// The tz database the host's PostgreSQL reads (Debian's and RHEL's tzdata).
inline constexpr const char* k_zoneinfo_dir = "/usr/share/zoneinfo";

/// Why `name` is not a time zone `[maintenance_window] time_zone` accepts, or nullopt when
/// it is: an IANA name (Europe/Berlin, UTC, Etc/GMT-3) that is a TZif file of `zoneinfo`
/// (PostgreSQL's pg_timezone_names, which evaluates the window at gate time, lists the
/// same database). Refused: POSIX TZ strings ("EST5EDT,M3.2.0,M11.1.0", "UTC+3",
/// "<+03>-3"), paths ("../x", "/etc/localtime"), the posix/ and right/ copies.
[[nodiscard]] std::optional<std::string> time_zone_problem(const std::string& name,
                                                           const std::filesystem::path& zoneinfo = k_zoneinfo_dir);

} // namespace leo::installer
