#pragma once
/// Repository metadata: repomd.xml and primary, fetched, verified, parsed as a stream.

#include "leo/common/system_root.hpp"
#include "leo/repo/config.hpp"
#include "leo/repo/signature.hpp"

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

// Bounds of what a server can make root download or decompress when the metadata declares
// nothing (a declared size above its bound is refused). Past a bound the transfer stops,
// the partial file is removed, and the error names the URL and both sizes.
inline constexpr std::uint64_t k_repomd_limit = std::uint64_t{10} << 20;         ///< repomd.xml: 10 MiB
inline constexpr std::uint64_t k_key_limit = std::uint64_t{1} << 20;             ///< a gpgkey: 1 MiB
inline constexpr std::uint64_t k_metadata_limit = std::uint64_t{512} << 20;      ///< primary as downloaded: 512 MiB
inline constexpr std::uint64_t k_metadata_open_limit = std::uint64_t{2} << 30;   ///< primary decompressed: 2 GiB
inline constexpr std::uint64_t k_package_limit = std::uint64_t{4} << 30;         ///< a package: 4 GiB

/// Name filter: keep a package when it returns true (nullptr keeps all).
using PackageFilter = std::function<bool(const std::string& name)>;

/// What repomd.xml says about the primary metadata (<data type="primary">).
struct PrimaryRef {
    std::string checksum_type;
    std::string checksum;
    std::string href;
    std::string base;  ///< xml:base of <location>
    std::uint64_t size = 0;       ///< <size>, 0 when absent
    std::uint64_t open_size = 0;  ///< <open-size> (decompressed), 0 when absent
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
/// libarchive) or not (what load_metadata runs on the verified primary file), at most
/// k_metadata_open_limit bytes decompressed. Packages
/// get `base_url`; only those `filter` accepts are kept. Throws leo::RepoError(`context`
/// + cause): empty, truncated or corrupt, not valid XML, not <metadata>, a package
/// without name, version, location or a usable checksum, a bad epoch or size.
[[nodiscard]] std::vector<PackageEntry> parse_primary(std::string_view data, const std::string& base_url,
                                                      const PackageFilter& filter, const std::string& context);

/// Fetch `baseurl/repodata/repomd.xml` (libcurl; file:// too), locate primary, download it
/// into `cache_dir/<repo id>/` (a directory inside `root`, such as
/// "/var/cache/leo-installer/metadata"), verify its <checksum> (sha1/"sha", sha224, sha256,
/// sha384, sha512), decompress (.gz, .xz, .bz2, .zst or none, with libarchive) and parse it
/// with libxml2's streaming reader. Tries each baseurl in turn.
///
/// repo_gpgcheck=1: repomd.xml is verified against repodata/repomd.xml.asc with `keys` (the
/// repository's keys the caller trusts) before any of it is used, primary not fetched when
/// it fails (verify_repomd_signature: missing, bad, or made by an unknown key).
///
/// Trust: repomd.xml is bounded by k_repomd_limit, primary by repomd's <size> and its
/// decompression by <open-size> (else k_metadata_limit, k_metadata_open_limit); redirects
/// go to http(s) only, from https to https only; a <location> (of primary, or of a kept
/// package) must be a relative path inside the repository, an xml:base http(s) (and https
/// for an https repository). Cache directories are made (or brought back to) 0755, owned
/// by root, from /var/cache/leo-installer down; files are 0644, created O_EXCL under a
/// temporary name (whatever was planted there is removed, never opened) and renamed.
///
/// Throws leo::RepoError naming the repository, the URL (password redacted: redact_url)
/// and the cause: unreachable, HTTP status, refused redirect, too big, malformed
/// repomd.xml, no primary, checksum mismatch (both values), truncated or malformed
/// primary, an unsafe location. leo::SystemError for the cache (an unsafe link, I/O).
[[nodiscard]] Metadata load_metadata(const RepoConfig& repo, const leo::fs::SystemRoot& root,
                                     const std::filesystem::path& cache_dir, const PackageFilter& filter = nullptr,
                                     const std::vector<SigningKey>& keys = {});

/// Download progress: (bytes done, bytes total; total 0 when unknown).
using Progress = std::function<void(std::uint64_t, std::uint64_t)>;

/// Download `entry` to `dest_dir/<file name>` inside `root` (a temporary name first,
/// created as load_metadata creates its files, renamed when verified), bounded by the size
/// primary declares, then verify its size and checksum. Returns the host path of the file.
/// Throws leo::RepoError (unsafe location, unreachable, HTTP status, too big, size or
/// checksum mismatch: the partial or wrong file is removed).
std::filesystem::path download_package(const RepoConfig& repo, const PackageEntry& entry,
                                       const leo::fs::SystemRoot& root, const std::filesystem::path& dest_dir,
                                       const Progress& progress = nullptr);

/// Make `dir` (inside `root`) a cache directory: every directory from
/// /var/cache/leo-installer down to it (or `dir` alone, elsewhere) is made, or brought back
/// to, 0755 and owned by the caller (root), whatever an earlier run under another umask or
/// another user left. A link where a directory should be, or in a directory another user
/// can write, is refused (leo::SystemError naming it).
void ensure_cache_dir(const leo::fs::SystemRoot& root, const std::filesystem::path& dir);

/// Fetch a URL (http, https, file) into memory, at most k_key_limit bytes; used for gpgkey
/// URLs. Throws leo::RepoError.
[[nodiscard]] std::string fetch_url(const RepoConfig& repo, const std::string& url);

} // namespace leo::repo
