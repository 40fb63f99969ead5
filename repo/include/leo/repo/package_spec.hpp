#pragma once
/// yum's package specs (exclude=, includepkgs=): which packages a glob names.

#include "leo/repo/metadata.hpp"

#include <string>
#include <vector>

namespace leo::repo {

/// `spec` (a glob, fnmatch(3) without flags: `*`, `?`, `[...]`) names `e` when it matches one
/// of the forms yum compares package specs with (yum's parsePackages): name, name.arch,
/// name-version, name-version-release, name-version-release.arch,
/// epoch:name-version-release.arch and name-epoch:version-release.arch (the epoch written
/// even when it is 0). Case-sensitive, as yum.
[[nodiscard]] bool package_matches(const PackageEntry& e, const std::string& spec);

/// The first of `specs` that names `e`, or nullptr.
[[nodiscard]] const std::string* first_match(const std::vector<std::string>& specs, const PackageEntry& e);

} // namespace leo::repo
