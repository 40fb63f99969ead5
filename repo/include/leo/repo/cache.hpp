#pragma once
/// The download cache under ROOT/var/cache/leo-installer: what `clean` removes.

#include "leo/common/system_root.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace leo::repo {

/// The metadata cache: one directory per repository id (repomd.xml, entries.json).
inline constexpr std::string_view k_metadata_cache = "/var/cache/leo-installer/metadata";
/// Downloaded packages (reused when their size and checksum match primary).
inline constexpr std::string_view k_package_cache = "/var/cache/leo-installer/packages";
/// Keys fetched from gpgkey URLs.
inline constexpr std::string_view k_key_cache = "/var/cache/leo-installer/keys";
/// check-update's kept answers (installer/warm_answer.hpp), made from the metadata: cleaned with it.
inline constexpr std::string_view k_answer_cache = "/var/cache/leo-installer/answers";

/// What `clean` removes (dnf clean metadata|packages|all).
enum class CleanKind { metadata, packages, all };

/// What clean_cache removed.
struct CleanResult {
    std::vector<std::filesystem::path> removed;  ///< inside the root, in order
    std::uint64_t files = 0;                     ///< regular files and links removed
    std::uint64_t bytes = 0;                     ///< their sizes
};

/// Remove the cache of `kind` under `root`: metadata (k_metadata_cache, and k_key_cache
/// with it, as dnf's metadata includes the keys it fetched, and k_answer_cache), packages (k_package_cache),
/// or all three. Only these directories of ours are touched; links are removed, never
/// followed (SystemRoot::remove_all). Missing directories are not an error. Throws
/// leo::SystemError (an unsafe link above them, I/O).
CleanResult clean_cache(const leo::fs::SystemRoot& root, CleanKind kind);

} // namespace leo::repo
