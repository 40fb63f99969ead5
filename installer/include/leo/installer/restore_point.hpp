#pragma once
/// Restore points: everything needed to put the broker back exactly as it was.
///
/// Layout: ROOT/var/lib/leo-installer/snapshots/<id>/ (0700; files 0600) with
/// manifest.json (versioned), package.rpm (the installed version's RPM, for the
/// downgrade), config.tar.gz (the broker's configuration and secrets: /home/leo/etc,
/// /etc/leostream, /etc/leo-installer), and, for the database:
/// - a frozen copy inside the PostgreSQL instance, `leo_rp_<id>` (CREATE DATABASE ...
///   TEMPLATE leo; connections not allowed), the fast path: a rollback is two renames;
/// - database.dump (pg_dump -Fc of that copy), taken after the copy, off the critical
///   path (finish_restore_point), which survives the loss of the instance and is what a
///   rollback uses when the copy is gone (consumed by an earlier rollback);
/// - the database-level state (owner, ACL, settings, comment) neither carries.
/// A restore point is written under a temporary name and renamed when complete, so a
/// listed one is always whole (its dump and verification may still be pending).

#include "leo/installer/config.hpp"
#include "leo/migrations/db_copy.hpp"
#include "leo/migrations/db_snapshot.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace leo::installer {

/// Version of manifest.json written now; version 1 (a dump only, taken with the restore
/// point) is still read. Another version is refused.
inline constexpr int k_manifest_format_version = 2;

/// Why a restore point exists; retention never deletes a manual one.
enum class RestorePointKind { manual, before_upgrade, before_rollback };
[[nodiscard]] std::string to_string(RestorePointKind kind);  ///< "manual", "before-upgrade", "before-rollback"

/// The frozen copy of the broker database inside the instance.
struct DatabaseCopy {
    std::string name;            ///< "leo_rp_20261129t153000z"
    std::uint32_t oid = 0;       ///< pg_database.oid: kept through renames (0: not made yet)
    std::uint64_t size_bytes = 0;
    /// A rollback renamed it into place: it is the live database now, no longer a copy.
    bool consumed = false;
};

struct RestorePoint {
    std::string id;                 ///< "20261129T153000Z" (UTC), unique within the root
    std::string created;            ///< ISO-8601 UTC
    /// Order of taking, within the root (ids and times have one-second resolution; two
    /// restore points can share a second). 0 for format-1 manifests (ordered by id).
    std::uint64_t sequence = 0;
    std::string reason;             ///< e.g. "before upgrade to leostream-broker-9.1.2-1.x86_64"
    RestorePointKind kind = RestorePointKind::manual;
    std::string nevra;              ///< the broker NEVRA it restores
    std::string package_sha256;     ///< of package.rpm
    std::string config_sha256;      ///< of config.tar.gz
    std::vector<std::string> config_entries;
    std::optional<DatabaseCopy> copy;  ///< nullopt: a format-1 restore point (dump only)
    /// database.dump: "complete", "pending" (not taken yet: finish_restore_point or
    /// `snapshot verify`), or "failed: WHY".
    std::string dump_state = "complete";
    std::string database_sha256;    ///< of database.dump ("" unless complete)
    std::optional<std::string> schema_version;
    std::map<std::string, std::string> table_checksums; ///< table -> "rows:digest", of the copy
    /// How table_checksums were computed (format 1: sorted_rows; format 2: row_digest_sum).
    migrations::ChecksumMethod checksum_method = migrations::ChecksumMethod::row_digest_sum;
    /// "pending" (checksums not computed yet), "verified", or "failed: WHY" (then a
    /// rollback refuses it without --force).
    std::string verification = "verified";
    std::optional<migrations::DatabaseState> database_state;  ///< nullopt: not recorded (format 1)
    std::string vm_snapshot_id;     ///< printed by the VM-snapshot hook ("" when none ran)
    /// Where the broker database was: "internal" (the copy and database.dump above) or
    /// "external" (a database shared by a cluster: no copy; database.dir, a directory-format
    /// pg_dump, when `external_dump`: taken by the broker that migrated the shared schema).
    std::string database_location = "internal";
    std::string external_endpoint;  ///< "host:port/name" of the external database (never a password)
    bool external_dump = false;
    std::filesystem::path dir;      ///< where it is (not serialised)

    /// The copy is there to rename into place.
    [[nodiscard]] bool has_copy() const { return copy && copy->oid != 0 && !copy->consumed; }
    /// A rollback to it can work: its package is kept, and the copy or a complete dump.
    [[nodiscard]] bool usable() const {
        if (database_location == "external") return !package_sha256.empty();
        return !package_sha256.empty() && (has_copy() || dump_state == "complete");
    }
    /// One word for `snapshot list`: "verified", "pending", "consumed", "failed", "unusable".
    [[nodiscard]] std::string state() const;
};

[[nodiscard]] nlohmann::json to_json(const RestorePoint& rp);

/// The restore point described by manifest.json `text` of the restore point directory
/// `dir` (what list_restore_points reads). Throws leo::InstallError for text that is not
/// JSON, another format version, or a missing or mistyped field.
[[nodiscard]] RestorePoint parse_manifest(const std::string& text, const std::filesystem::path& dir);

/// What create_restore_point() checks before it writes anything, alone (an upgrade asks
/// before its journal records a run): exactly one broker installed and its RPM kept, no
/// other session on the broker database (leo::RefusedError naming them), and the free
/// space. Changes nothing (but starts the internal database when it is stopped).
/// `check_sessions` false leaves the sessions out: an upgrade asks before it stops the
/// broker's components, whose sessions end then (create_restore_point checks them after).
void precheck_restore_point(const std::filesystem::path& root,
                            const std::function<void(const std::string&)>& on_warning = nullptr, bool check_sessions = true);

/// Take a restore point of the broker installed in `root` (the database is started when
/// it is stopped). Before anything is written, the free space is checked per filesystem:
/// the copy (pg_database_size of the broker database, +10% and 64 MiB) where the
/// database lives, the kept RPM, the configuration and the later dump (the database size)
/// where the snapshots are. Then the configured VM-snapshot hook runs (its last output
/// line is recorded; a failure stops here unless the hook is optional, then `on_warning`
/// is told). The database part is a frozen template copy (migrations::copy_database),
/// which refuses, naming them, while other sessions use the broker database; the dump and
/// the checksums are left "pending" for finish_restore_point(). Throws leo::InstallError
/// naming what is missing (no broker installed, its RPM not kept, not enough space, the
/// hook failed), leo::RefusedError (sessions), leo::DatabaseError / leo::SystemError with
/// the failing part; a failed attempt leaves nothing behind (no directory, no copy).
RestorePoint create_restore_point(const std::filesystem::path& root, const std::string& reason,
                                  const InstallerConfig& config = {},
                                  const std::function<void(const std::string&)>& on_warning = nullptr,
                                  RestorePointKind kind = RestorePointKind::before_upgrade);

/// The part of a restore point that is not on the critical path: the per-table
/// checksums and the pg_dump of the frozen copy (connections to it are allowed for the
/// moment it takes, under the run lock, then refused again), recorded in the manifest
/// ("complete"/"verified", or "failed: WHY"). Does nothing for parts already done.
/// Errors are recorded and returned as text (empty when none), never thrown: the upgrade
/// that took the restore point has already succeeded.
std::string finish_restore_point(const std::filesystem::path& root, RestorePoint& rp,
                                 const std::function<void(const std::string&)>& on_step = nullptr);

/// `snapshot verify ID`: finish what is pending, then check everything again: the
/// digests of the package, archive and dump, the copy's checksums against the recorded
/// ones, and the dump restored into a scratch database against them too. The result is
/// recorded ("verified" or "failed: WHY") and returned. Throws leo::InstallError only
/// when the restore point cannot be read.
std::string check_restore_point(const std::filesystem::path& root, RestorePoint& rp,
                                const std::function<void(const std::string&)>& on_step = nullptr);

/// Retention (installer.conf `keep`): delete automatic restore points (before-upgrade,
/// before-rollback) beyond the newest `keep`, duplicates of a version first (an older
/// restore point of a NEVRA that has a newer one), then the oldest; manual ones are never
/// deleted. Their database copies are dropped with them. Returns the deleted ids (and
/// logs one line for the whole pass).
std::vector<std::string> prune_restore_points(const std::filesystem::path& root, int keep);

/// Copies in the instance (leo_rp_*, leo_before_rollback_*) that no restore point's
/// manifest names, and restore-point directories left half-written: what an interrupted
/// run left. Read-only; empty when the database is not running.
struct Leftovers {
    std::vector<migrations::DatabaseInfo> databases;
    std::vector<std::string> partial_dirs;  ///< ".ID.partial"
    /// Copies of listed restore points left accepting connections (a run killed while it
    /// took the dump): recover freezes them again.
    std::vector<std::string> thawed;
    /// Copies on the external server of a broker on a shared database whose COMMENT names
    /// this broker as their maker and that no manifest names (a run killed between the
    /// CREATE DATABASE and the manifest). Never another broker's.
    std::vector<migrations::DatabaseInfo> external_databases;
};
[[nodiscard]] Leftovers find_leftovers(const std::filesystem::path& root);
/// Remove what find_leftovers() finds (recover does, under the run lock); returns what it did.
std::vector<std::string> remove_leftovers(const std::filesystem::path& root);

/// The sequence number the next restore point of `root` gets (one more than the largest).
[[nodiscard]] std::uint64_t next_sequence(const std::filesystem::path& root);

/// Restore points of `root`, oldest first (by sequence, then id). Throws leo::InstallError for a manifest that
/// cannot be read or has an unknown format version.
[[nodiscard]] std::vector<RestorePoint> list_restore_points(const std::filesystem::path& root);

/// The restore point `id`, or the newest when `id` is empty. Throws leo::InstallError
/// ("no restore point ID in ROOT; `leo-installer snapshot list` shows them").
[[nodiscard]] RestorePoint find_restore_point(const std::filesystem::path& root, const std::string& id);

/// Check the files of a restore point against the manifest (digests, archive readable;
/// the dump only when it is complete). Throws leo::InstallError.
void verify_restore_point(const RestorePoint& rp);

/// What restore() checks before it changes anything, alone (rollback asks before its
/// journal records a run): the verification (refused unless `force`), the package and the
/// archive, the copy or else a complete and readable dump, and no other session on the
/// broker database (unless `sessions` is false: recover asks whether a restore point is
/// unusable for good). `continuing`: the same rollback runs again after a crash (its own
/// renamed copy is not "used by an earlier rollback"). Returns whether the copy is used.
/// Throws leo::RefusedError / leo::InstallError saying that nothing was changed.
bool check_rollback(const std::filesystem::path& root, const RestorePoint& rp, bool force = false,
                    bool continuing = false, bool sessions = true);

/// What a rollback did beside putting the restore point back.
struct RestoreOutcome {
    /// The restore point of the state the rollback left (its database renamed, not
    /// copied), so that the rollback itself can be rolled back; "" when none was taken.
    std::string left_restore_point;
    /// Configuration files that had changed since the restore point: each kept beside the
    /// restored one as FILE.rpmsave (rpm's convention). Host paths.
    std::vector<std::string> saved_config;
    bool used_dump = false;  ///< the dump was restored (no copy left)
    /// A shared (external) database was put back: returning to the left restore point
    /// needs --allow-remote-upgrade too.
    bool shared_database = false;
};

/// Put `root` back to `rp`. First everything is checked (files, digests, that no other
/// session uses the broker database: refused naming them), and the state being left is
/// kept as a before-rollback restore point (package if kept, configuration, and then the
/// live database itself, renamed). Then the RPM (one librpm transaction with the kept
/// package), the configuration (a file changed since the restore point is kept as
/// FILE.rpmsave), and the database: the frozen copy renamed into place and its
/// database-level state applied (constant time), or, when the copy was consumed, the dump
/// restored into a staging database, proved equal to the recorded checksums, and renamed
/// into place. `run` (the journal's run id) names what this rollback creates, so that
/// running it again after a crash (recover) continues where it stopped. A restore point
/// whose verification failed is refused unless `force`. `on_step` reports progress.
/// Throws with the failing part named.
/// The external database's part of a restore point (a broker of a cluster).
struct ExternalDatabasePart {
    std::string conninfo;  ///< the shared database (may hold a password: never printed)
    std::string endpoint;  ///< "host:port/name", for the manifest and messages
    /// Keep the shared database: the broker that migrates the shared schema does; the
    /// others keep only their package and configuration.
    bool dump = false;
    int jobs = 2;
    /// A template copy on the external server may be tried (an --allow-remote-upgrade
    /// upgrade, every broker stopped); it is made when the role may create databases, owns
    /// the broker database, and no other session uses it. Otherwise, or when false (with
    /// `no_copy_reason` printed), a directory dump.
    bool allow_copy = false;
    std::string no_copy_reason = "a restore point taken while the other brokers of the cluster may run";
    /// Called just before the copy: ends this process's own sessions on the shared
    /// database (the lease's), which CREATE DATABASE ... TEMPLATE would wait for.
    std::function<void()> before_copy;
    /// Called once the copy is made (or failed): the lease's renewal resumes at once.
    std::function<void()> after_copy;
    /// The restore point's id ("" : from the clock, as every restore point's).
    std::string id;
};

/// What a restore point of the state being left needs of the configuration, checked before
/// a rollback records its run: no link in the saved directories leading out of them (the
/// leo account owns /home/leo/etc). Throws leo::RefusedError naming the link and its target.
void check_configuration_saveable(const std::filesystem::path& root);

/// A restore point of a broker on an external database: the package and configuration as
/// create_restore_point keeps them, the schema version, and, when `db.dump`, the shared
/// database: a frozen template copy on its server (see ExternalDatabasePart::allow_copy;
/// its directory dump is taken later, off the critical path, by finish_restore_point) or
/// a directory-format pg_dump (`--jobs`, a consistent snapshot; rows the other brokers
/// write afterwards are not in it). The choice and its reason go to `on_step`. Throws like
/// create_restore_point (nothing is left half-written; a copy made is dropped again).
RestorePoint create_external_restore_point(const std::filesystem::path& root, const std::string& reason,
                                           const InstallerConfig& config, RestorePointKind kind,
                                           const ExternalDatabasePart& db,
                                           const std::function<void(const std::string&)>& on_step,
                                           const std::function<void(const std::string&)>& on_warning);

/// What restore_external may do to the shared database.
struct ExternalRestore {
    /// Put the shared database back too (else only the package and the configuration).
    bool restore_database = false;
    /// The shared database (may hold a password: never printed); "" when unreachable (no
    /// restore point of the state left is taken then).
    std::string conninfo;
    /// Its name on the server ("": asked of the server, so it must exist); given by
    /// recover, which may find it renamed away by the run it finishes.
    std::string dbname;
    /// Called before the renames: ends this process's own sessions on the shared database.
    std::function<void()> before_rename;
    /// Called once the copy is in place: the cluster's lease written back into it (the copy
    /// holds the lease row as it was when it was taken).
    std::function<void()> after_rename;
    /// Called around the rpm transaction: holds the lease's background renewal while it
    /// runs (librpm chroots the whole process); the returned object resumes it.
    std::function<std::shared_ptr<void>()> pause_renewal;
};

/// Roll a broker on an external database back to `rp`: the state being left is kept as a
/// before-rollback restore point, the package and the configuration are put back, and
/// when `database.restore_database` is set and `rp` holds the shared database, that too: by renames when
/// its copy is on the server and no other session uses the database (the live one is
/// kept, frozen, as the left restore point's copy), else from its directory dump
/// (`pg_restore --clean --single-transaction`). Every broker of the cluster then sees the
/// old schema and data. Throws leo::RefusedError before any change when the database
/// cannot be put back (sessions and no dump), leo::InstallError (the journal says how far
/// it got).
RestoreOutcome restore_external(const std::filesystem::path& root, const RestorePoint& rp,
                                const std::function<void(const std::string&)>& on_step, const std::string& run,
                                std::chrono::seconds rpmdb_wait, const ExternalRestore& database);

RestoreOutcome restore(const std::filesystem::path& root, const RestorePoint& rp,
                       const std::function<void(const std::string&)>& on_step, const std::string& run,
                       bool force = false, std::chrono::seconds rpmdb_wait = std::chrono::seconds(60));

/// Run the configured VM-snapshot restore hook for `rp` (`rollback --vm-snapshot`): the
/// whole machine goes back to the VM snapshot taken with the restore point. Throws
/// leo::InstallError when the restore point has no VM snapshot, no restore_command is
/// configured, or the hook fails or times out (its last line of error output named).
void run_vm_restore_hook(const std::filesystem::path& root, const RestorePoint& rp, const InstallerConfig& config);

/// Delete restore point `id` and its database copy. Throws leo::InstallError when it does
/// not exist.
void delete_restore_point(const std::filesystem::path& root, const std::string& id);

} // namespace leo::installer
