#pragma once
// What `install` and `upgrade` share when the package comes from a repository: choosing the
// broker package a version names, and staging it (download, checksum, keys) before anything
// changes (staging.cpp).
#include "leo/installer/upgrade.hpp"
#include "repo_keys.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace leo::installer::staging {

/// Whether `spec` names `e`, as yum takes a package spec of a known name: "V", "V-R",
/// "E:V-R", or the whole NEVRA with or without arch and epoch ("N-V-R", "N-V-R.A",
/// "N-E:V-R.A", "E:N-V-R.A"). An epoch written as 0 matches an entry without one.
[[nodiscard]] bool version_matches(const repo::PackageEntry& e, const std::string& spec);

/// The candidate `version` names (the newest of `candidates`, which are newest first, when
/// nullopt). Throws leo::InstallError when there is none: "version V of leostream-broker is
/// not in the repositories (available: NEVRA, ...)" or "the repositories offer no
/// leostream-broker package".
[[nodiscard]] Candidate choose(const std::vector<Candidate>& candidates, const std::optional<std::string>& version);

/// A package downloaded and ready to verify.
struct Staged {
    std::filesystem::path file;             ///< host path, in ROOT/var/cache/leo-installer/packages
    std::string expected_nevra;             ///< what the repository metadata says it is
    RepoKeySources repo_keys;               ///< the repository's keys (gpgcheck on), for verification
};

/// Download `c` (from its repository, else from each of c.alternatives in turn: the same
/// NEVRA in other repositories, cheapest first) into the root's package cache (verified
/// against primary's size and checksum; a verified file already there is reused) and, when `gpgcheck` is on, resolve
/// its repository's keys through `keyring` (shown, imported with consent on first use,
/// checked against their pin: repo_keys.hpp). `on_download(done, total)` reports bytes;
/// `policy` cache_only (-C) downloads nothing. Throws leo::RepoError (download, key fetch,
/// a changed key, not cached with -C), leo::RefusedError (a key not accepted),
/// leo::SystemError (cache).
[[nodiscard]] Staged stage(const std::filesystem::path& root, const Candidate& c,
                           const std::function<void(std::uint64_t, std::uint64_t)>& on_download,
                           RepoKeyring& keyring, GpgCheck gpgcheck,
                           repo::CachePolicy policy = repo::CachePolicy::normal);

} // namespace leo::installer::staging
