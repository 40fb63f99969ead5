#pragma once
/// Preflight checks: pure functions over HostFacts with stable IDs.

#include "leo/preflight/facts.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace leo::preflight {

enum class Verdict { pass, inhibitor, warning, info, skipped };

/// Memory rule: installed memory (memory blocks) >= 8 GiB when readable, otherwise
/// MemTotal strictly above 7 GiB (see the "memory" check in checks.cpp).
inline constexpr std::uint64_t k_min_installed_mem_bytes = 8ULL << 30;
inline constexpr std::uint64_t k_min_mem_total_kib_exclusive = 7ULL * 1024 * 1024; // 7340032
/// vCPU rule: at least 2 usable CPUs (affinity capped by the cgroup quota), in thousandths.
inline constexpr std::uint64_t k_min_usable_millicpus = 2000;
/// Disk rule: the filesystem holding /home/leo has a TOTAL size of at least 18 GiB.
inline constexpr std::uint64_t k_min_home_total_bytes = 18ULL << 30;
/// Upgrade profile ("upgrade-space"): at least 2 GiB available on that filesystem: the
/// staged broker RPM and repository metadata (<= 0.5 GiB), the previous RPM kept for
/// rollback (<= 0.5 GiB), the configuration and secrets archive (a few MiB) and the
/// internal database's restore-point dump (budgeted at 1 GiB).
inline constexpr std::uint64_t k_min_upgrade_available_bytes = 2ULL << 30;
/// statfs(2) f_type of NFS (linux/magic.h NFS_SUPER_MAGIC).
inline constexpr std::uint64_t k_nfs_super_magic = 0x6969;
enum class Profile { install, upgrade, rest_api };

/// "install" | "upgrade" | "rest-api"; throws leo::UsageError for anything else.
[[nodiscard]] Profile parse_profile(std::string_view text);
[[nodiscard]] std::string_view to_string(Profile p);
[[nodiscard]] std::string_view to_string(Verdict v);

struct CheckResult {
    std::string id;          ///< stable id, e.g. "os", "arch", "vcpus", "memory", "disk", "home-not-nfs"
    Verdict verdict = Verdict::pass;
    std::string measured;    ///< what was found, e.g. "7.6 GiB MemTotal"
    std::string evidence;    ///< where it was read, e.g. "/proc/meminfo"
    std::string required;    ///< the requirement, e.g. ">= 8 GB (MemTotal > 7 GiB)"
    std::string tolerance;   ///< the tolerance applied and why ("" when none)
    std::string remediation; ///< what to do when it fails ("" on pass)
    bool skippable = true;   ///< false for checks that may not be skipped (NFS)
    std::string skip_reason; ///< set when skipped
    /// The verdict the check gave: equal to `verdict` unless skipped, when it says whether
    /// the skipped check would have passed.
    Verdict judged = Verdict::pass;
};

/// What the CLI needs to describe a check without running it.
struct CheckInfo {
    std::string_view id;
    std::string_view title;         ///< e.g. "/home/leo is not on NFS"
    bool skippable = true;
    std::string_view not_skippable_because; ///< "" when skippable
};

/// Every check, in report order, whatever the profile.
[[nodiscard]] const std::vector<CheckInfo>& check_catalog();
/// The ids that refuse --skip (for `preflight --help`): {"home-not-nfs"}.
[[nodiscard]] std::vector<std::string_view> non_skippable_check_ids();
/// The ids `profile` runs, in report order.
[[nodiscard]] std::vector<std::string_view> check_ids(Profile profile);

struct Report {
    Profile profile = Profile::install;
    std::vector<CheckResult> results;
    /// True when any result is an inhibitor (skipped checks do not count).
    [[nodiscard]] bool inhibited() const;
};

/// Run every check of `profile` on `facts`. `skips` maps check id -> reason; a
/// skipped check reports Verdict::skipped with the reason (and keeps its measured values,
/// remediation and the verdict it would have had in `judged`). Throws leo::UsageError when
/// a skip names an unknown id or a check that cannot be skipped, or has an empty reason;
/// nothing is judged then. A skip of a known check that `profile` does not run is ignored.
/// Profiles: install = os, arch, vcpus, memory, disk, home-not-nfs, home-symlink, home-traversable;
/// upgrade = install + upgrade-space; rest-api = memory (the REST API needs 8 GB).
[[nodiscard]] Report run_checks(const HostFacts& facts, Profile profile,
                                const std::map<std::string, std::string>& skips = {});

/// Every stable check id in report order: os, arch, vcpus, memory, disk, upgrade-space,
/// home-not-nfs, home-symlink, home-traversable.
[[nodiscard]] std::vector<std::string_view> check_ids();

/// Bytes as GiB with one decimal, rounded down so that a value just below a
/// threshold never prints as the threshold: 19327352831 -> "17.9 GiB".
[[nodiscard]] std::string format_gib(std::uint64_t bytes);

/// Every field of every result, plus "profile", "inhibited" and per-verdict "counts".
[[nodiscard]] nlohmann::json to_json(const Report& report);

struct TableOptions {
    enum class Rows { all, problems };
    std::size_t width = 100; ///< terminal columns; text wraps to fit (minimum 60)
    /// all: every check with its evidence and tolerance (`preflight`); problems: only the
    /// checks that did not pass, then one line naming those that did (install/upgrade).
    Rows rows = Rows::all;
};

/// A text table wrapped to `options.width`: ID, VERDICT, MEASURED, REQUIRED columns, then
/// indented "from:", "tolerance:", "fix:" and "skipped:" lines under each row.
[[nodiscard]] std::string to_table(const Report& report, const TableOptions& options = {});

/// The inhibitors of `report` as "id (measured), id (measured)" ("" when none), for the
/// one-line refusal of install and upgrade.
[[nodiscard]] std::string inhibitor_summary(const Report& report);

/// The line that ends every preflight report: "preflight (install profile): 7 passed,
/// 1 warning, 1 inhibitor: refused (not passed: home-symlink, home-traversable)"; info and
/// skipped counts are added when not zero.
[[nodiscard]] std::string summary_line(const Report& report);

/// True when every result is a pass (what install/upgrade use to decide to print the report).
[[nodiscard]] bool all_pass(const Report& report);

} // namespace leo::preflight
