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

/// Memory rule: MemTotal strictly above 7 GiB (see the "memory" check in checks.cpp).
inline constexpr std::uint64_t k_min_mem_total_kib_exclusive = 7ULL * 1024 * 1024; // 7340032
/// Disk rule: the filesystem holding /home/leo has a TOTAL size of at least 18 GiB.
inline constexpr std::uint64_t k_min_home_total_bytes = 18ULL << 30;
/// Upgrade profile: at least 2 GiB available on that filesystem (staging + restore point).
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
    std::string remediation; ///< what to do when it fails ("" on pass)
    bool skippable = true;   ///< false for checks that may not be skipped (NFS)
    std::string skip_reason; ///< set when skipped
};

struct Report {
    Profile profile = Profile::install;
    std::vector<CheckResult> results;
    /// True when any result is an inhibitor (skipped checks do not count).
    [[nodiscard]] bool inhibited() const;
};

/// Run every check of `profile` on `facts`. `skips` maps check id -> reason; a
/// skipped check reports Verdict::skipped with the reason (and keeps its measured values
/// and remediation). Throws leo::UsageError when a skip names an unknown id or a check
/// that cannot be skipped, or has an empty reason; nothing is judged then.
[[nodiscard]] Report run_checks(const HostFacts& facts, Profile profile,
                                const std::map<std::string, std::string>& skips = {});

/// The stable check ids in report order: os, arch, vcpus, memory, disk, home-not-nfs.
[[nodiscard]] std::vector<std::string_view> check_ids();

/// Bytes as GiB with one decimal, rounded down so that a value just below a
/// threshold never prints as the threshold: 19327352831 -> "17.9 GiB".
[[nodiscard]] std::string format_gib(std::uint64_t bytes);

[[nodiscard]] nlohmann::json to_json(const Report& report);
/// A fixed-width text table: ID, VERDICT, MEASURED, REQUIRED, then remediation lines.
[[nodiscard]] std::string to_table(const Report& report);

} // namespace leo::preflight
