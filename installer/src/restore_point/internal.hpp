#pragma once
// What the parts of the restore-point implementation share (installer/src/restore_point/).
#include "leo/installer/restore_point.hpp"

#include "leo/common/system_root.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace leo::installer::rp_detail {

/// The configuration a restore point keeps (absolute paths inside the root).
extern const std::vector<std::string> k_config_paths;

/// Name prefixes of the databases restore points keep in the instance.
inline constexpr const char* k_copy_prefix = "leo_rp_";
inline constexpr const char* k_left_prefix = "leo_before_rollback_";

/// ROOT/var/lib/leo-installer/snapshots, root-only (0700) and reached through no unsafe
/// link (everything below it is root's alone, so its host paths can go to pg_dump, tar
/// and digests). Created (and brought back to 0700) when `create` is set.
std::filesystem::path snapshots_dir(const std::filesystem::path& root, bool create = false);
/// "/var/lib/leo-installer/snapshots/NAME" (inside the root).
std::filesystem::path snapshot_inside(const std::string& name);

/// The database name of restore point `id`'s copy: "leo_rp_20261129t153000z", or
/// "leo_before_rollback_..." for the state a rollback left.
std::string database_name_for(const std::string& id, RestorePointKind kind);

/// The internal database, started when it is not running; what the start did with stale
/// lock files goes to `notice` (the caller's output), not only to the log.
migrations::InternalDatabase running_database(const std::filesystem::path& root,
                                              const std::function<void(const std::string&)>& notice);
/// A session on the instance's maintenance database (`postgres`), for CREATE, ALTER and
/// DROP DATABASE.
/// Waits (at most 60 s) for a server that is restarting or has just stopped, and starts
/// it again when it is down. Throws leo::DatabaseError after that.
migrations::Connection admin_connection(migrations::InternalDatabase& db);

/// Connections to a frozen copy (on the internal instance or an external server) are
/// allowed only while a Thaw exists (under the run lock); refused again when it ends (a
/// failure to is logged: `recover` freezes such a copy again).
class Thaw {
public:
    Thaw(migrations::Connection& admin, std::string name);
    ~Thaw();
    Thaw(const Thaw&) = delete;
    Thaw& operator=(const Thaw&) = delete;

private:
    migrations::Connection& m_admin;
    std::string m_name;
};

/// The server of an external broker database: a session on its maintenance database
/// (`postgres`, else `template1`) for CREATE/ALTER/DROP DATABASE, and the broker
/// database's name (`dbname`, or asked of the server when empty: it must exist then). Throws leo::DatabaseError naming both attempts.
struct ExternalServer {
    std::optional<migrations::Connection> admin;
    std::string admin_db;
    std::string dbname;
};
ExternalServer open_external_server(const std::string& conninfo, const std::string& dbname = "");
/// "" when a template copy of the external database of `conninfo` can be made now (server
/// opened into `server`), else why not (a standby, no CREATEDB, not the owner, no
/// maintenance database, other sessions named).
std::string why_no_external_copy(const std::string& conninfo, std::optional<ExternalServer>& server);

/// The conninfo of the external database `rp`'s copy lives on (the broker's database.conf
/// must still name its endpoint). Throws leo::InstallError otherwise.
std::string external_conninfo_for(const std::filesystem::path& root, const RestorePoint& rp);
/// finish_restore_point for a restore point whose copy is on the external server: its
/// checksums and its directory dump (without the cluster's schema), taken from the copy.
std::string finish_external_restore_point(const std::filesystem::path& root, RestorePoint& rp,
                                          const std::function<void(const std::string&)>& on_step);

/// The id of the restore point a rollback keeps of the state it leaves, from the
/// journal's run id ("2026-12-01T03:09:33Z-1234" -> "20261201T030933Z-1234-left"): the
/// same when the rollback runs again after a crash.
std::string left_id_for(const std::string& run);

/// Leftovers::external_databases of `root` (empty when the broker is not on an external
/// database, or its server cannot be asked: logged).
std::vector<migrations::DatabaseInfo> external_leftover_copies(const std::filesystem::path& root);

/// What finishing a restore point shares: run `work` (its checksums and dump), then mark it
/// verified, or record why not (dump_state "failed: ..." unless complete; logged), and write
/// its manifest either way. Returns "" or the problem.
std::string record_finishing(const std::filesystem::path& root, RestorePoint& rp, const std::function<void()>& work);

/// What a rollback checks of a restore point's files before anything changes: not failed
/// its verification (unless `force`), package and configuration digests, package NEVRA,
/// configuration restorable. Throws leo::RefusedError / leo::InstallError.
void check_files(const std::filesystem::path& root, const RestorePoint& rp, bool force);
/// The rpm transaction that puts the restore point's package back (a downgrade or a
/// reinstall), and the package kept in /var/lib/leo-installer/packages again. Throws
/// leo::InstallError naming the NEVRA.
void reinstall_package(const std::filesystem::path& root, const RestorePoint& rp,
                       const std::function<void(const std::string&)>& step, std::chrono::seconds rpmdb_wait);
/// The configuration back from config.tar.gz; returns the host paths of files kept as
/// .rpmsave because they had been edited since (restore.cpp).
std::vector<std::string> restore_config(const std::filesystem::path& root, const RestorePoint& rp,
                                        const std::function<void(const std::string&)>& step);
/// reinstall_package(), then restore_config(): what every rollback puts back first.
std::vector<std::string> restore_package_and_config(const std::filesystem::path& root, const RestorePoint& rp,
                                                    const std::function<void(const std::string&)>& step,
                                                    std::chrono::seconds rpmdb_wait);
/// Run the VM-snapshot hook when configured, then keep the installed package and archive
/// the configuration into `partial_inside` (create.cpp), filling rp's package and config fields.
void save_package_and_config(const std::filesystem::path& root, RestorePoint& rp, const std::filesystem::path& base,
                             const std::filesystem::path& partial_inside, const InstallerConfig& config,
                             const std::function<void(const std::string&)>& on_warning);

/// Write rp's manifest.json (0600, atomically) into `dir_inside` (its directory, inside the root).
void write_manifest(const std::filesystem::path& root, const RestorePoint& rp, const std::filesystem::path& dir_inside);

/// The tables whose checksums differ between `want` and `got` (missing or extra ones too),
/// "a, b"; "" when none.
std::string checksum_differences(const std::map<std::string, std::string>& want,
                                 const std::map<std::string, std::string>& got);

/// Throw leo::InstallError when `file` is missing or its sha256 is not `expected`.
void check_digest(const std::filesystem::path& file, const std::string& expected);

/// Bytes of the regular files at and below `inside`, never following a link.
std::uintmax_t tree_size(const fs::SystemRoot& sr, const std::filesystem::path& inside);
/// "12.3 MiB".
std::string mib(std::uintmax_t bytes);

} // namespace leo::installer::rp_detail
