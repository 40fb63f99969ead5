#pragma once
/// Repository metadata: repomd.xml and primary, fetched, verified, parsed as a stream.

#include "leo/common/system_root.hpp"
#include "leo/repo/config.hpp"
#include "leo/repo/signature.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
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
    /// The repository's base URLs in the order download_package tries them (base_url
    /// first, then the other baseurls and mirrors: Metadata::mirrors); null: base_url only.
    std::shared_ptr<const std::vector<std::string>> mirrors;
    /// The absolute URL of the package: location_base (when set) or base_url, joined with href.
    [[nodiscard]] std::string url() const;
    /// "name-[epoch:]version-release.arch"
    [[nodiscard]] std::string nevra() const;
};

/// Where load_metadata's answer came from.
enum class MetadataSource {
    fetched,      ///< repomd.xml and primary fetched (no usable cache, or repomd.xml changed)
    cache,        ///< the cache alone, no network (within metadata_expire, or --cacheonly)
    revalidated,  ///< repomd.xml fetched and unchanged: the cached entries, primary not read
};

struct Metadata {
    std::string repo_id;
    std::string revision;                 ///< <revision> of repomd.xml ("" when absent)
    std::vector<PackageEntry> packages;   ///< only those accepted by the filter
    /// The base URLs to fetch packages from, in order: the one that served this metadata,
    /// then the other baseurls, then the mirrorlist's or metalink's mirrors.
    std::vector<std::string> mirrors;
    /// What the caller should show (one line each): a mirror list that could not be read
    /// while a baseurl could, mirror entries refused, sslverify=0.
    std::vector<std::string> warnings;
    /// Bad entries about packages the filter does not want (no version, a bad epoch...),
    /// skipped rather than fatal: one bad entry about another package does not reject the
    /// repository (dnf/libsolv skip what they cannot read). A bad wanted entry is an error.
    std::size_t skipped = 0;
    std::string first_skipped;            ///< why the first was skipped ("" when none)
    MetadataSource source = MetadataSource::fetched;
    /// The cached entries answered although the network was asked: every server's
    /// repomd.xml was older than the cached one (yum's timestamp_check; `warnings` says so).
    /// Such an answer must not be given again without asking the servers again.
    bool stale = false;
    /// SHA-256 (hex) of the repomd.xml these entries come from; "" when no entries are cached
    /// (LoadOptions::filter_key empty).
    std::string repomd_sha256;
    /// When the metadata was last fetched or found unchanged, seconds since the epoch (what
    /// metadata_expire counts from); 0 when no entries are cached.
    std::int64_t fetched = 0;
};

/// How metadata and packages may come from the cache (dnf's --refresh and --cacheonly).
enum class CachePolicy {
    normal,      ///< within metadata_expire: the cache alone; after it: repomd.xml, primary only when it changed
    refresh,     ///< --refresh: metadata expired now (repomd.xml always fetched; primary only when it changed)
    cache_only,  ///< -C/--cacheonly: the cache alone however old; an error naming the repository otherwise
};

/// What load_metadata keeps and how it may use the cache.
struct LoadOptions {
    /// Name filter: keep a package when it returns true (nullptr keeps all).
    std::function<bool(const std::string& name)> filter;
    /// Names what `filter` keeps ("name=leostream-broker"): the entries kept are cached under
    /// this key and reused only for the same key. "" caches nothing (every call reads primary).
    std::string filter_key;
    CachePolicy policy = CachePolicy::normal;
    /// The time, seconds since the epoch (0: the clock); for metadata_expire.
    std::int64_t now = 0;
    /// The repository's keys for repo_gpgcheck (repomd.xml.asc is verified against them
    /// before any metadata is used; signature.hpp). Unused when repo_gpgcheck is off.
    std::vector<SigningKey> signing_keys;
    /// Bytes of primary received and its size (repomd's <size>, 0 when unknown), while it
    /// downloads; nothing is reported when the cache answers.
    std::function<void(std::uint64_t, std::uint64_t)> progress;
};

// Bounds of what a server can make root download or decompress when the metadata declares
// nothing (a declared size above its bound is refused). Past a bound the transfer stops,
// the partial file is removed, and the error names the URL and both sizes.
inline constexpr std::uint64_t k_repomd_limit = std::uint64_t{10} << 20;         ///< repomd.xml: 10 MiB
inline constexpr std::uint64_t k_key_limit = std::uint64_t{1} << 20;             ///< a gpgkey: 1 MiB
inline constexpr std::uint64_t k_mirrorlist_limit = std::uint64_t{4} << 20;      ///< a mirrorlist or metalink: 4 MiB
inline constexpr std::uint64_t k_metadata_limit = std::uint64_t{512} << 20;      ///< primary as downloaded: 512 MiB
inline constexpr std::uint64_t k_metadata_open_limit = std::uint64_t{2} << 30;   ///< primary decompressed: 2 GiB
/// The most entries a filtered parse keeps (the versions of the broker one repository lists;
/// CentOS's own repositories list at most a few hundred of one name): more is a broken or
/// hostile repository, refused, instead of memory and time that grow with it, and a cache
/// file larger than the cache may read back.
inline constexpr std::size_t k_max_wanted_entries = 5000;
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
    /// The newest <timestamp> of its <data> elements, whole seconds since the epoch, read as
    /// yum's repoMDObject.timestamp (a float: "1.7e9" too); 0 when none is readable.
    std::int64_t timestamp = 0;
    std::optional<PrimaryRef> primary;
};

/// Parse repomd.xml text with libxml2's streaming reader (what load_metadata runs on the
/// fetched file). Throws leo::RepoError(`context` + cause) when it is empty, not
/// well-formed XML or not <repomd>. A missing primary is not an error here (`primary` empty).
[[nodiscard]] Repomd parse_repomd(const std::string& xml, const std::string& context);

/// parse_primary's packages, and the bad entries about other packages it skipped.
struct PrimaryResult {
    std::vector<PackageEntry> packages;
    std::size_t skipped = 0;
    std::string first_skipped;
};

/// parse_primary, with the count of bad entries skipped (Metadata::skipped).
[[nodiscard]] PrimaryResult parse_primary_counted(std::string_view data, const std::string& base_url,
                                                  const PackageFilter& filter, const std::string& context);

/// Stream-parse primary metadata held in memory, compressed (.gz, .xz, .bz2, .zst, with
/// libarchive) or not (what load_metadata runs on the verified primary file), at most
/// k_metadata_open_limit bytes decompressed. Packages
/// get `base_url`; only those `filter` accepts are kept. A byte scan finds each <package>
/// and its <name>; only the packages the filter wants are parsed by libxml2 (the whole
/// document is, when it has a DOCTYPE). Bad entries of other packages are skipped
/// (parse_primary_counted counts them). Throws leo::RepoError(`context` + cause): empty,
/// truncated or corrupt, not valid XML, not <metadata>, a wanted package without name,
/// version, location or a usable checksum, a bad epoch or size ("package NAME (#N): ..."),
/// more than k_max_wanted_entries packages wanted by a `filter`.
[[nodiscard]] std::vector<PackageEntry> parse_primary(std::string_view data, const std::string& base_url,
                                                      const PackageFilter& filter, const std::string& context);

/// Fetch `baseurl/repodata/repomd.xml` (libcurl; file:// too), locate primary, download it
/// while verifying its <checksum> (sha1/"sha", sha224, sha256, sha384, sha512),
/// decompressing (.gz, .xz, .bz2, .zst or none, with libarchive) and scanning it
/// (parse_primary) on a second thread; primary itself is not kept on disk. `cache_dir/<repo id>/` (inside `root`, such as
/// "/var/cache/leo-installer/metadata") keeps repomd.xml and, when options.filter_key is
/// set, the entries kept (cache.hpp); the cache is used as yum/dnf use theirs: within the
/// repository's metadata_expire no network at all, after it only repomd.xml is fetched and,
/// when it is unchanged (same sha256), the cached entries are the answer (dnf's "metadata
/// not changed"). A cache whose URL settings, filter key or checksum do not match is not
/// used. CachePolicy::refresh and cache_only as dnf's --refresh and -C.
///
/// Mirrors and failover (yum's rules; mirrors.hpp): the URLs tried are every baseurl, then
/// the mirrors of the metalink (which wins when both are set, as in dnf) or mirrorlist,
/// fetched first with the same transfer settings (a mirrorlist holding a metalink document
/// is read as one). A failure on one URL (unreachable, HTTP error, a stall: less than
/// max(minrate, 1) bytes/s for `timeout` seconds, a size or checksum mismatch, a repomd.xml
/// that matches none of the metalink's versions) moves to the next; transient failures are
/// first retried on the same URL (RetryPolicy). When every URL failed, one leo::RepoError
/// lists each and why ("every baseurl failed (N tried): ..." / "every mirror failed"); a
/// single URL's error is thrown as is. A mirror list that cannot be read is an error only
/// when there is no baseurl (else a warning). The result records the URLs to fetch packages
/// from (Metadata::mirrors, also in each PackageEntry::mirrors) and warnings to show.
///
/// Transfer settings: timeout (connect and stall, seconds), minrate, retries, sslverify
/// (0: warned in Metadata::warnings), sslcacert, sslclientcert/sslclientkey (PEM; a file
/// that cannot be read is a leo::RepoError naming the option and path, before any
/// transfer), proxy, proxy_username, proxy_password (never in a message: scrubbed).
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
/// primary, an unsafe location; with cache_only, no usable cache ("repository ID: nothing
/// usable is cached for --cacheonly (-C) in DIR: why; run once without -C").
/// leo::SystemError for the cache (an unsafe link, I/O).
[[nodiscard]] Metadata load_metadata(const RepoConfig& repo, const leo::fs::SystemRoot& root,
                                     const std::filesystem::path& cache_dir, const LoadOptions& options);
/// load_metadata with `filter` and no cache of entries (filter_key "").
[[nodiscard]] Metadata load_metadata(const RepoConfig& repo, const leo::fs::SystemRoot& root,
                                     const std::filesystem::path& cache_dir, const PackageFilter& filter = nullptr,
                                     const std::vector<SigningKey>& keys = {});

/// Download progress: (bytes done, bytes total; total 0 when unknown).
using Progress = std::function<void(std::uint64_t, std::uint64_t)>;

/// Download `entry` to `dest_dir/<file name>` inside `root` (a temporary name first,
/// created as load_metadata creates its files, renamed when verified), bounded by the size
/// primary declares, hashed as it arrives, then verify its size and checksum. A regular
/// file already there whose size and checksum match primary is reused without any network
/// (yum's keepcache/dnf's "already downloaded"); with CachePolicy::cache_only nothing else
/// is allowed. Returns the host path of the file. Throws leo::RepoError (unsafe location,
/// unreachable, HTTP status, too big, size or checksum mismatch: the partial or wrong file
/// is removed; cache_only and no matching file: "package NEVRA is not in the cache").
/// Failover: entry.base_url first, then the other URLs of entry.mirrors (set by
/// load_metadata), each under the retry rules of load_metadata; a package with an xml:base
/// is fetched from there only; with several URLs, one message lists each and why it failed.
std::filesystem::path download_package(const RepoConfig& repo, const PackageEntry& entry,
                                       const leo::fs::SystemRoot& root, const std::filesystem::path& dest_dir,
                                       const Progress& progress = nullptr,
                                       CachePolicy policy = CachePolicy::normal);

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
