// yum's package specs: globs against the forms of a package's NEVRA.
#include "leo/repo/package_spec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fnmatch.h>

namespace leo::repo {

bool package_matches(const PackageEntry& e, const std::string& spec) {
    const std::string forms[] = {
        e.name,
        fmt::format("{}.{}", e.name, e.arch),
        fmt::format("{}-{}", e.name, e.version),
        fmt::format("{}-{}-{}", e.name, e.version, e.release),
        fmt::format("{}-{}-{}.{}", e.name, e.version, e.release, e.arch),
        fmt::format("{}:{}-{}-{}.{}", e.epoch, e.name, e.version, e.release, e.arch),
        fmt::format("{}-{}:{}-{}.{}", e.name, e.epoch, e.version, e.release, e.arch),
    };
    return std::any_of(std::begin(forms), std::end(forms),
                       [&](const std::string& form) { return ::fnmatch(spec.c_str(), form.c_str(), 0) == 0; });
}

const std::string* first_match(const std::vector<std::string>& specs, const PackageEntry& e) {
    for (const auto& s : specs)
        if (package_matches(e, s)) return &s;
    return nullptr;
}

} // namespace leo::repo
