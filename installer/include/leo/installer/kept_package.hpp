#pragma once
// The RPM file of the installed broker, kept for rollbacks (kept_package.cpp).
#include "leo/rpm/package.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace leo::installer {

/// Make sure the RPM file of the installed broker `installed` is kept in
/// ROOT/var/lib/leo-installer/packages/NEVRA.rpm, where a restore point takes it from (a
/// rollback reinstalls it). `install` and `upgrade` keep the file they install; a broker
/// installed by `rpm -U` or `yum localinstall` has none (rpm does not tell a scriptlet
/// where the package file is), so the file is looked for, in order:
/// - `supplied`: a host path the administrator gave (`--installed-rpm FILE`);
/// - the package caches under the root: leo-installer's (/var/cache/leo-installer/packages),
///   yum's (/var/cache/yum, with keepcache=1) and dnf's (/var/cache/dnf), by rpm's file name
///   N-V-R.A.rpm, at most 5 directories deep, never through a symbolic link.
/// A candidate is kept only when its NEVRA and its header digest (PackageInfo::header_digest)
/// are those of the installed package: the very build rpm installed, whatever the file is
/// called. The kept copy is checked again after it is written (0600, root).
///
/// Returns where the file came from ("" when it was already kept).
/// Throws leo::InstallError when `supplied` is not that build (it names what the file is;
/// nothing is changed), or when no file was found (the message names the places looked at
/// and `--installed-rpm FILE`); leo::SystemError when the copy cannot be written.
std::string keep_installed_package(const std::filesystem::path& root, const rpm::PackageInfo& installed,
                                   const std::optional<std::filesystem::path>& supplied = std::nullopt);

} // namespace leo::installer
