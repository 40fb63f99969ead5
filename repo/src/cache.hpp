#pragma once
/// The metadata cache of one repository (not installed): repomd.xml's checksum, when it was
/// fetched, the URL settings it came from and the entries kept (cache.cpp).

#include "leo/common/system_root.hpp"
#include "leo/repo/config.hpp"
#include "leo/repo/metadata.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace leo::repo::detail {

/// File name of the record in the repository's cache directory.
inline constexpr std::string_view k_entries_file = "entries.json";

/// What the cache keeps of one repository: format 1 of entries.json, a first line
/// "leo-installer-metadata-cache 1 sha256=HEX" (the digest of what follows) then a JSON
/// object {"repomd_sha256", "revision", "fetched" (seconds since the epoch), "urls",
/// "filter", "skipped", "first_skipped", "packages": [{name, arch, epoch, version,
/// release, checksum_type, checksum, size, location_href, location_base, base_url}]}.
struct CacheRecord {
    std::string repomd_sha256;
    std::string revision;
    std::int64_t timestamp = 0;  ///< Repomd::timestamp of the repomd.xml they came from (0: unknown)
    std::int64_t fetched = 0;
    std::string urls;        ///< url_settings() of the repository it came from
    std::string filter;      ///< LoadOptions::filter_key
    std::size_t skipped = 0;
    std::string first_skipped;
    std::vector<PackageEntry> packages;
};

/// The settings that say where the metadata comes from (baseurls, mirrorlist, metalink):
/// a change invalidates the cache, as dnf keys its cache on them.
std::string url_settings(const RepoConfig& repo);

/// The record in `dir`, or nullopt with `why` (for the -C message): missing, not a regular
/// file of ours (another owner, writable by others), half-written or altered (checksum),
/// of another format. Never throws for the file's content; leo::SystemError for an unsafe
/// link on the way.
std::optional<CacheRecord> read_cache(const leo::fs::SystemRoot& root, const std::filesystem::path& dir,
                                      std::string& why);

/// Write the record into `dir` atomically (0644).
void write_cache(const leo::fs::SystemRoot& root, const std::filesystem::path& dir, const CacheRecord& record);

/// Within metadata_expire of when it was fetched (-1: never expires; a time in the
/// future by more than a minute counts as expired: a clock set back).
bool fresh(const CacheRecord& record, std::int64_t metadata_expire, std::int64_t now);

/// The Metadata a record answers for `repo`.
Metadata metadata_of(const RepoConfig& repo, const CacheRecord& record, MetadataSource source);

} // namespace leo::repo::detail
