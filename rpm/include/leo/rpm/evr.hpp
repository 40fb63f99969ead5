#pragma once
/// EVR (epoch:version-release) ordering, by librpm's own comparison (rpmvercmp):
/// epoch first (absent = 0), then version, then release, with rpm's rules for
/// tilde (sorts before anything, 1.0~rc1 < 1.0) and caret (sorts after, 1.0^git1 > 1.0).

#include <cstdint>
#include <string>

namespace leo::rpm {

struct Evr {
    std::uint32_t epoch = 0;
    std::string version;
    std::string release; ///< may be empty: then only epoch and version are compared
};

/// Parse "[E:]V[-R]". Throws leo::RpmError for an empty version or a bad epoch.
[[nodiscard]] Evr parse_evr(const std::string& text);
/// <0, 0, >0 as rpm orders `a` and `b`.
[[nodiscard]] int compare_evr(const Evr& a, const Evr& b);
/// rpmvercmp on two version (or release) strings.
[[nodiscard]] int compare_versions(const std::string& a, const std::string& b);

} // namespace leo::rpm
