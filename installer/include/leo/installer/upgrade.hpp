#pragma once
/// check-update and the upgrade procedure (DESIGN.md "The maintenance-window upgrade"),
/// first form: plan -> stage (download and verify) -> preflight (upgrade profile) ->
/// restore point -> rpm upgrade transaction -> migrations -> spot-check; on any failure
/// after the restore point, an automatic rollback to it.

#include "leo/installer/cluster.hpp"
#include "leo/installer/dry_run.hpp"
#include "leo/installer/gates.hpp"
#include "leo/installer/install.hpp"
#include "leo/installer/services.hpp"
#include "leo/installer/recover.hpp"
#include "leo/installer/restore_point.hpp"
#include "leo/repo/config.hpp"
#include "leo/repo/metadata.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace leo::installer {


/// A broker package available in a repository.
struct Candidate {
    repo::RepoConfig repo;
    repo::PackageEntry entry;
    /// The same NEVRA in other repositories of the same priority, lowest cost first (yum's
    /// cost: `repo` has the lowest): where a download can fall back to.
    std::vector<std::pair<repo::RepoConfig, repo::PackageEntry>> alternatives;
};

struct UpdateInfo {
    rpm::PackageInfo installed;
    std::vector<Candidate> available;   ///< broker packages, newest first (rpm's order)
    std::optional<Candidate> update;    ///< the newest, when newer than the installed one
    std::vector<std::string> warnings;  ///< to show the administrator (a key over http, a key not imported yet)
};

/// Resolve the repositories of `root` (repo::load_yum_config) and tell `sel.on_warning` the
/// configuration's warnings: YumConfig::warnings and those of each repository returned.
/// Throws leo::RepoError for a configuration error (file and line), leo::UsageError for an
/// unknown --repo id or a --repofrompath id that exists, leo::RepoError when none is enabled.
[[nodiscard]] std::vector<repo::RepoConfig> select_repos(const std::filesystem::path& root, const RepoSelection& sel);

/// What the repositories offer for the installed broker (librpm's EVR order: epoch,
/// tilde, caret), chosen as yum does (update_detail::available): exclude/includepkgs,
/// priority, cost, skip_if_unavailable. Throws leo::InstallError when no broker is
/// installed, leo::RepoError when a repository meant to hold the broker cannot be read, or
/// when none that offers it is left.
[[nodiscard]] UpdateInfo check_update(const std::filesystem::path& root, const RepoSelection& sel);

struct UpgradeRequest {
    std::filesystem::path root = "/";
    std::optional<std::filesystem::path> package_file; ///< --rpm FILE instead of a repository
    /// --installed-rpm FILE: the RPM of the installed broker, kept for the restore point when
    /// it is not kept yet (keep_installed_package(): a broker installed by rpm -U).
    std::optional<std::filesystem::path> installed_package_file;
    std::optional<std::string> version;                ///< --version V (version, V-R or E:V-R)
    RepoSelection repos;
    std::vector<std::filesystem::path> gpgkeys;
    GpgCheck gpgcheck = GpgCheck::yes;                 ///< --nogpgcheck; a repository's gpgcheck=0 too
    bool dry_run = false;                              ///< plan and stage only
    /// How long to wait for another rpm/yum/dnf transaction on the root (rpm's lock) before
    /// the restore point, and at each of our own transactions (the automatic rollback's
    /// too), before refusing (`--rpmdb-wait SECONDS`).
    std::chrono::seconds rpmdb_wait{60};
    /// `--components-stopped`: the administrator stopped the broker's components; nothing
    /// here stops or starts them, and the spot-check does not probe them.
    bool components_stopped = false;
    /// `--now --reason TEXT`: upgrade outside the maintenance window (logged).
    std::optional<std::string> override_reason;
    /// `--allow-remote-upgrade`: this broker may migrate an external (shared) database.
    bool allow_remote_upgrade = false;
    /// A cluster's upgrade lease: how long to wait for another broker's (`--lease-wait`;
    /// how long ours lasts is installer.conf [cluster] lease_ttl).
    std::chrono::seconds lease_wait{900};
};

struct UpgradeCallbacks {
    std::function<void(const std::string&)> on_step;
    std::function<void(const std::string&)> on_warning;
    std::function<void(const preflight::Report&)> on_preflight;
    std::function<bool(const std::string&)> confirm;
    std::function<void(std::uint64_t, std::uint64_t)> on_download; ///< bytes done/total
    std::function<void(std::uint64_t, std::uint64_t)> on_progress; ///< rpm payload bytes done/total (the transaction)
    std::function<void(const std::vector<GateVerdict>&)> on_gates;  ///< every verdict, before any refusal
};

struct UpgradeOutcome {
    enum class Kind { upgraded, nothing_to_do, dry_run } kind = Kind::upgraded;
    std::string from;   ///< NEVRA before
    std::string to;     ///< NEVRA after (the target)
    std::string restore_point;
    bool already_that_version = false;  ///< nothing to do because --version names the installed one
    std::vector<std::string> migrations_applied;
    std::optional<std::string> schema_version;
    std::vector<GateVerdict> gates;
    std::string service_manager;                  ///< how the components were stopped
    std::vector<Component> components_stopped;    ///< stopped before, started again after
    std::optional<double> downtime_seconds;       ///< stopped to healthy; none when nothing was stopped
    std::vector<std::pair<std::string, double>> step_seconds;  ///< each step after the plan, in order
    // A cluster (external database):
    std::int64_t lease_token = 0;           ///< the upgrade lease's fencing token (0: no cluster)
    std::vector<ClusterMember> cluster;     ///< the registry after this upgrade
    bool cluster_upgraded = false;          ///< every member reports the new version
    std::vector<JobMove> jobs_moved;        ///< pending jobs moved from sites that left
    // A dry run's plan (components_stopped: those that would be stopped):
    std::uint64_t database_bytes = 0;       ///< the broker database's size (pg_database_size)
    std::uint64_t package_bytes = 0;        ///< the target package file
    std::uint64_t space_needed_bytes = 0;   ///< what the restore point needs (package, database copy and dump)
    std::uint64_t space_free_bytes = 0;     ///< free on the snapshots' filesystem
    bool migrates = true;                   ///< this broker would migrate the schema
    /// A dry run: what would refuse a real run, one "ID: detail" each (a refused gate,
    /// "preflight: ..." for the preflight's inhibitors, or "components: ..." when nothing
    /// here could stop them); empty when nothing would.
    std::vector<std::string> would_refuse;
    std::optional<MigrationTrial> trial;    ///< the migrations run in a throw-away copy
};

/// Run the upgrade. Errors before the restore point change nothing but the download
/// cache; after it, the root is rolled back and the error says so (leo::InstallError
/// "upgrade A -> B failed: ...; rolled back to A (restore point ID)"); if the rollback
/// fails too, the error says that and names the restore point to use.
UpgradeOutcome upgrade(const UpgradeRequest& request, const UpgradeCallbacks& callbacks);

} // namespace leo::installer
