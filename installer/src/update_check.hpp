#pragma once
// What `upgrade` and `check-update` share: the installed broker and the candidates of the
// enabled repositories, newest first (update_check.cpp).
#include "leo/installer/upgrade.hpp"
#include "repo_keys.hpp"
#include "leo/repo/metadata.hpp"
#include "leo/rpm/evr.hpp"
#include "leo/rpm/transaction.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace leo::installer::update_detail {

rpm::Evr evr_of(const repo::PackageEntry& e);
rpm::Evr evr_of(const rpm::PackageInfo& p);

/// The one advice of `install` and `upgrade` when the package asked for (`wanted`, a NEVRA)
/// is not an upgrade of the installed one: older (`wanted_vs_installed` < 0): neither
/// command downgrades, `rollback` returns to a restore point (rpm has no rollback of its
/// own; dnf's `downgrade` is not offered: a schema cannot go back without its restore
/// point); newer (> 0, from `install` only): `upgrade_command` (the upgrade to the same
/// package: "upgrade", "upgrade --version V", "upgrade --rpm FILE").
std::string replace_advice(const std::string& wanted, int wanted_vs_installed, const std::string& installed,
                           const std::filesystem::path& root, const std::string& upgrade_command);

/// The one installed broker package of `root`. Throws leo::InstallError when none is
/// installed or when the rpmdb holds several (an interrupted transaction).
rpm::PackageInfo installed_broker(const std::filesystem::path& root);

/// The broker packages (x86_64 or noarch) of the selected repositories, newest EVR first
/// (rpm's order), chosen as yum does:
/// - a repository whose metadata cannot be loaded is skipped with a warning naming it and
///   the reason, unless it is meant to hold the broker (named by --repo or --repofrompath, or
///   skip_if_unavailable=0 written for it); skip_if_unavailable=1 is always skippable. When
///   no repository that offers the broker is left, leo::RepoError names each skipped one;
/// - exclude (with [main]'s) and includepkgs (repo::package_matches) leave packages out; when
///   they leave out every one, a warning lists them;
/// - priority: only the repositories with the lowest number that offer the broker count
///   (dnf; yum-plugin-priorities);
/// - cost: the same NEVRA from several repositories is one Candidate from the cheapest,
///   the others in Candidate::alternatives.
/// A repository with repo_gpgcheck=1 has its repomd.xml verified with the keys `keys` gives
/// it (repo_keys.hpp). Warnings go to sel.on_warning. Another user than root reads the
/// metadata into a private temporary cache. Throws leo::RepoError / leo::UsageError
/// (select_repos), and what RepoKeyring::keys_of throws.
std::vector<Candidate> available(const std::filesystem::path& root, const RepoSelection& sel, RepoKeyring& keys);


/// The newest schema version the package file ships (its /home/leo/share/migrations), or
/// nullopt when it ships none. Throws leo::RpmError for a file rpm cannot read.
std::optional<std::string> package_schema_version(const std::filesystem::path& file);

} // namespace leo::installer::update_detail
