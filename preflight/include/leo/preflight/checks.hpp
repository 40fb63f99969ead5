#pragma once
/// Preflight checks: pure functions over HostFacts with stable IDs.

#include "leo/preflight/facts.hpp"

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace leo::preflight {

enum class Verdict { pass, inhibitor, warning, info, skipped };
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
/// skipped check reports Verdict::skipped with the reason. Throws leo::UsageError when
/// a skip names an unknown id or a check that cannot be skipped.
[[nodiscard]] Report run_checks(const HostFacts& facts, Profile profile,
                                const std::map<std::string, std::string>& skips = {});

[[nodiscard]] nlohmann::json to_json(const Report& report);
/// A fixed-width text table: ID, VERDICT, MEASURED, REQUIRED, then remediation lines.
[[nodiscard]] std::string to_table(const Report& report);

} // namespace leo::preflight
