#pragma once
/// Repository metadata: repomd.xml and primary, fetched, verified, parsed as a stream.

#include "leo/repo/config.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace leo::repo {

/// One package of primary.xml.
struct PackageEntry {
    std::string name;
    std::string arch;
    std::uint32_t epoch = 0;
    std::string version;
    std::string release;
    std::string checksum_type;   ///< "sha256", "sha1" ("sha" in old metadata is sha1), ...
    std::string checksum;        ///< hex
    std::uint64_t size = 0;      ///< <size package=...>, bytes
    std::string location_href;   ///< relative to the base URL
    std::string location_base;   ///< xml:base of <location>, "" when absent
    std::string base_url;        ///< the repository URL the metadata came from
    /// The absolute URL of the package: location_base (when set) or base_url, joined with href.
    [[nodiscard]] std::string url() const;
    /// "name-[epoch:]version-release.arch"
    [[nodiscard]] std::string nevra() const;
};

struct Metadata {
    std::string repo_id;
    std::string revision;                 ///< <revision> of repomd.xml ("" when absent)
    std::vector<PackageEntry> packages;   ///< only those accepted by the filter
};

/// Name filter: keep a package when it returns true (nullptr keeps all).
using PackageFilter = std::function<bool(const std::string& name)>;

/// What repomd.xml says about the primary metadata (<data type="primary">).
struct PrimaryRef {
    std::string checksum_type;
    std::string checksum;
    std::string href;
    std::string base;  ///< xml:base of <location>
    std::uint64_t size = 0;
};

struct Repomd {
    std::string revision;
    std::optional<PrimaryRef> primary;
};

/// Parse repomd.xml text with libxml2's streaming reader (what load_metadata runs on the
/// fetched file). Throws leo::RepoError(`context` + cause) when it is empty, not
/// well-formed XML or not <repomd>. A missing primary is not an error here (`primary` empty).
[[nodiscard]] Repomd parse_repomd(const std::string& xml, const std::string& context);

/// Stream-parse primary metadata held in memory, compressed (.gz, .xz, .bz2, .zst, with
/// libarchive) or not (what load_metadata runs on the verified primary file). Packages
/// get `base_url`; only those `filter` accepts are kept. Throws leo::RepoError(`context`
/// + cause): empty, truncated or corrupt, not valid XML, not <metadata>, a package
/// without name, version, location or a usable checksum, a bad epoch or size.
[[nodiscard]] std::vector<PackageEntry> parse_primary(std::string_view data, const std::string& base_url,
                                                      const PackageFilter& filter, const std::string& context);

/// Fetch `baseurl/repodata/repomd.xml` (libcurl; file:// too), locate primary, download it
/// into `cache_dir/<repo id>/`, verify its <checksum> (sha1/"sha", sha224, sha256, sha384,
/// sha512), decompress (.gz, .xz, .bz2, .zst or none, with libarchive) and parse it with
/// libxml2's streaming reader. Tries each baseurl in turn. Throws leo::RepoError naming
/// the repository, the URL and the cause: unreachable, HTTP status, malformed repomd.xml,
/// no primary, checksum mismatch (both values), truncated or malformed primary.
[[nodiscard]] Metadata load_metadata(const RepoConfig& repo, const std::filesystem::path& cache_dir,
                                     const PackageFilter& filter = nullptr);

/// Download progress: (bytes done, bytes total; total 0 when unknown).
using Progress = std::function<void(std::uint64_t, std::uint64_t)>;

/// Download `entry` to `dest_dir/<file name>` (a temporary name first, renamed when
/// complete), then verify its size and checksum against primary. Returns the path.
/// Throws leo::RepoError (unreachable, HTTP status, size or checksum mismatch: the
/// partial or wrong file is removed).
std::filesystem::path download_package(const RepoConfig& repo, const PackageEntry& entry,
                                       const std::filesystem::path& dest_dir, const Progress& progress = nullptr);

/// Fetch a URL (http, https, file) into memory; used for gpgkey URLs. Throws leo::RepoError.
[[nodiscard]] std::string fetch_url(const RepoConfig& repo, const std::string& url);

} // namespace leo::repo
