#pragma once
/// Scheduled database backups (`leo-installer backup create|list|verify|prune`), as the
/// broker's manual advises for production: a pg_dump of the broker database kept beside
/// the installer's state, with retention, and a verification that restores it.
///
/// Unlike a restore point (restore_point.hpp: package, configuration and a frozen copy,
/// taken before an upgrade to undo it), a backup is the database alone, taken on a timer
/// (leo-installer-backup.timer) while the broker runs.
///
/// Layout: BACKUPS/<id>/ (0700; files 0600, root's), BACKUPS being installer.conf
/// `[backup] directory` (default /var/lib/leo-installer/backups, inside the root):
/// - database.dump: `pg_dump --format=custom` of the broker database (internal: over the
///   instance's socket; external: the endpoint of database.conf, its password in the
///   child's environment, never on its command line);
/// - manifest.json (format k_backup_manifest_format): id, time, broker NEVRA, schema
///   version and history, database, size, SHA-256 of the dump (OpenSSL), and the
///   per-table row counts and checksums taken in the very snapshot pg_dump dumped
///   (pg_export_snapshot + `pg_dump --snapshot`, PostgreSQL 9.2+), so a restore can be
///   compared exactly even while the broker writes.
/// A backup is written as BACKUPS/.<id>.partial and renamed when whole: a killed run
/// leaves no half backup listed (the next create or prune removes the partial directory).

#include "leo/installer/config.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace leo::installer {

/// Version of manifest.json of a backup; another version is refused (listed as broken).
inline constexpr int k_backup_manifest_format = 1;

struct Backup {
    std::string id;               ///< "20261201T020000Z" (UTC; "-2", "-3" within one second)
    std::string created;          ///< ISO-8601 UTC
    std::string broker_nevra;     ///< the broker installed when it was taken ("" when none)
    std::optional<std::string> schema_version;         ///< highest applied migration
    std::optional<std::string> schema_broker_version;  ///< the broker version that applied it
    /// The successful rows of leo_schema_history, "VERSION CHECKSUM", in version order.
    std::vector<std::string> schema_history;
    std::string database_location = "internal";  ///< "internal" or "external"
    std::string database;         ///< "leo" (internal) or the endpoint "user@host:port/name" (no password)
    std::string server_version;   ///< PostgreSQL's server_version of the source
    std::uint64_t size_bytes = 0; ///< of database.dump
    std::string sha256;           ///< of database.dump, lowercase hex
    /// Table -> "rows:digest" (migrations::table_checksums, row_digest_sum).
    std::map<std::string, std::string> table_checksums;
    std::filesystem::path dir;    ///< host path of its directory (not serialised)
};

[[nodiscard]] nlohmann::json to_json(const Backup& backup);
/// The backup manifest.json `text` describes, in directory `dir`. Throws leo::InstallError
/// for text that is not JSON, another format version, or a missing or mistyped field.
[[nodiscard]] Backup parse_backup_manifest(const std::string& text, const std::filesystem::path& dir);

/// What is in the backup directory: whole backups (oldest first, by id), and what is not
/// one (a directory whose manifest cannot be read: "NAME: why"; partial directories of a
/// killed run).
struct BackupListing {
    std::filesystem::path dir;         ///< host path of the backup directory
    std::vector<Backup> backups;
    std::vector<std::string> broken;   ///< never deleted by prune: an administrator looks at them
    std::vector<std::string> partial;  ///< ".ID.partial" names
};

/// The backup directory inside the root: `[backup] directory` or /var/lib/leo-installer/backups.
[[nodiscard]] std::filesystem::path backups_inside(const InstallerConfig& config);

/// List the backup directory (changing nothing; empty when it does not exist). Throws
/// leo::SystemError for an unsafe link on the way.
[[nodiscard]] BackupListing list_backups(const std::filesystem::path& root, const InstallerConfig& config);

/// The backup `id`, or the newest when `id` is empty. Throws leo::UsageError when there is
/// none or no such id (naming the directory and `backup list`).
[[nodiscard]] Backup find_backup(const BackupListing& listing, const std::string& id);

/// The backups that retention deletes: all but the newest `keep` (keep >= 1), oldest first.
[[nodiscard]] std::vector<Backup> backups_to_prune(const BackupListing& listing, int keep);

/// Delete the backup `id` (its whole directory, never following a link) and the partial
/// directories of killed runs. Callers hold the run lock.
void delete_backup(const std::filesystem::path& root, const InstallerConfig& config, const std::string& id);
/// Remove partial directories (".ID.partial") of killed runs; returns their names.
std::vector<std::string> remove_partial_backups(const std::filesystem::path& root, const InstallerConfig& config);

/// Take a backup of the broker database (internal, started when stopped; or external, as
/// database.conf says): one REPEATABLE READ transaction exports its snapshot, reads the
/// schema history and the table checksums, and pg_dump dumps that same snapshot. Written
/// atomically as described above. `on_step` gets progress lines. Throws leo::DatabaseError
/// (pg_dump's message), leo::InstallError, leo::SystemError; a failed attempt leaves no
/// backup (its partial directory is removed).
Backup create_backup(const std::filesystem::path& root, const InstallerConfig& config,
                     const std::function<void(const std::string&)>& on_step = nullptr);

/// The verdict of verify_backup(): `ok` when the dump's digest matches and it restores
/// into a scratch database whose tables and schema history equal the manifest's.
struct BackupVerification {
    bool ok = false;
    std::vector<std::string> problems;  ///< each one plain sentence; empty when ok
    std::string scratch_database;       ///< the scratch database used (dropped again)
    std::size_t tables_compared = 0;
};

/// Check backup `backup`: the SHA-256 and size of database.dump, then `pg_restore` into a
/// freshly created scratch database ("leo_backup_verify_<id>_<pid>", on the server the
/// broker uses now, as database.conf says: the internal instance, or the external server,
/// where the broker's user needs CREATEDB), compared with the manifest's table checksums and schema history. The
/// scratch database is dropped afterwards, also on failure; left-over scratch databases of
/// a killed verify are dropped first. Expected failures are in the result; throws only
/// when the database server cannot be reached at all.
BackupVerification verify_backup(const std::filesystem::path& root, const InstallerConfig& config, const Backup& backup,
                                 const std::function<void(const std::string&)>& on_step = nullptr);

} // namespace leo::installer
