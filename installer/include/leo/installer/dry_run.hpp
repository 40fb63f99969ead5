#pragma once
/// `upgrade --dry-run`: the migrations the package ships, run for real in a throw-away
/// copy of the broker database, then dropped (a dry run that only planned said "possible"
/// for an upgrade whose migration then failed).
///
/// The copy is named "leo_dryrun_HHHHHHHH_PID": HHHHHHHH the first 8 hex digits of the
/// SHA-256 of this broker's cluster member id (member_id(root): host name, and the root
/// for a sandbox root), PID this process's; brokers of a cluster sharing one external
/// server never collide. Its COMMENT says whose it is (k_dry_run_comment_prefix, then
/// "host=H; pid=P; start=S; member=M; time=T", S the process's start time in epoch
/// seconds), set right after CREATE DATABASE. A copy whose owner process has ended (a dry
/// run killed with SIGKILL) is dropped by the next dry run of the same host.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace leo::installer {

/// The name prefix of every dry-run copy.
inline constexpr const char* k_dry_run_copy_prefix = "leo_dryrun_";
/// How a dry-run copy's COMMENT starts.
inline constexpr const char* k_dry_run_comment_prefix = "leo-installer upgrade --dry-run copy; ";

/// What the trial in the copy did.
struct MigrationTrial {
    bool ran = false;                        ///< always true when returned (a copy that cannot be made throws)
    std::string why_not;                     ///< kept for the JSON output: always ""
    std::vector<std::string> applied;        ///< the scripts that would be applied, in order
    std::optional<std::string> schema_after; ///< the copy's schema version afterwards
    std::string copy_name;                   ///< the scratch database (dropped again)
    /// What was cleaned up first: stale copies and dump directories of dry runs of this
    /// host whose process has ended, one line each ("dropped the copy leo_dryrun_... left
    /// by pid 4242 on HOST (it has ended)").
    std::vector<std::string> cleaned_up;
};

/// The name of this process's copy for `root`: "leo_dryrun_" + 8 hex digits of
/// sha256(member_id(root)) + "_" + pid.
[[nodiscard]] std::string dry_run_copy_name(const std::filesystem::path& root);

/// Copy the broker database of `root` (internal or external, as database.conf says) into
/// the scratch database dry_run_copy_name(root) on the same server (pg_dump and
/// pg_restore: the broker may keep running; the dump in a private 0700 directory under
/// $TMPDIR or /tmp, "leo-dry-run.PID.XXXXXX", removed on every exit path but SIGKILL),
/// apply the migrations of `package_file` (read from its payload with libarchive) with
/// `broker_version`, and drop the copy. Stale copies and dump directories of this host's
/// ended dry runs are removed first (drop_stale_dry_run_copies). SIGINT, SIGTERM, SIGHUP
/// are deferred meanwhile: the current step ends, the copy is dropped, then
/// leo::InterruptedError (exit 128+N).
/// Throws leo::InstallError "the migrations of PACKAGE fail on a throw-away copy of the
/// broker database ..." when one fails (the copy is dropped, the broker database is
/// never touched); leo::InstallError "dry run: no throw-away copy of the broker database
/// could be made ..." when the dump or the copy fails (an external role without
/// CREATEDB): the dry run cannot say whether the migrations work, so it fails (exit 1).
[[nodiscard]] MigrationTrial try_migrations_on_copy(const std::filesystem::path& root,
                                                    const std::filesystem::path& package_file,
                                                    const std::string& broker_version);

/// The leftovers of this host's dry runs whose process has ended: "leo_dryrun_*" copies on
/// the server of `root`'s broker database whose COMMENT names this host and a process that
/// is not running any more (or, without a COMMENT, whose name carries this root's member
/// hash and a pid that is not running), and "leo-dry-run.PID.*" directories of ours in
/// $TMPDIR (or /tmp) whose PID is not running. Copies of other hosts, and of running
/// processes, are never touched. One line each; StaleAction::remove drops/removes them (the
/// line then says "dropped"/"removed"), StaleAction::list only lists them ("stale ...": for
/// `recover`'s list of leftovers). An internal database that is not running is not
/// started (nothing is looked at there). Never throws: a problem is one more line.
enum class StaleAction { list, remove };
[[nodiscard]] std::vector<std::string> stale_dry_run_leftovers(const std::filesystem::path& root, StaleAction action);

} // namespace leo::installer
