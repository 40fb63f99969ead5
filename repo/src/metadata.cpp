// Repository metadata tied together: load_metadata (repomd.xml, then primary), download_package, fetch_url.
#include "leo/repo/metadata.hpp"

#include "cache.hpp"
#include "detail.hpp"
#include "failover.hpp"
#include "fetch.hpp"
#include "scan.hpp"

#include "leo/common/clock.hpp"
#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/hint.hpp"
#include "leo/repo/mirrors.hpp"
#include "leo/repo/signature.hpp"
#include "leo/repo/url.hpp"

#include <fmt/format.h>
#include <libxml/parser.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <ctime>
#include <memory>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

namespace leo::repo {

using detail::basename_of;
using detail::digest_name;
using detail::discard;
using detail::Downloaded;
using detail::fetch_to_cache;
using detail::fetch_to_string;
using detail::Limit;
using detail::limit_of;
using detail::resolve_mirrors;
using detail::Transfer;
using detail::try_each;
using detail::unsafe_location;
using detail::without_repo_prefix;

namespace {

// ---- URLs and hints -----------------------------------------------------------------------

/// Where to fix a bad baseurl.
std::string where_defined(const RepoConfig& repo) {
    if (repo.source.empty()) {
        return "the repository configuration";
    }
    if (repo.source == "--repofrompath") {
        return "the --repofrompath URL";
    }
    return repo.source;
}

/// Verify the file open at `fd` against `type`:`expected`; throw RepoError(`context` + ...)
/// on mismatch (the caller removes the file).
void verify_checksum(int fd, const std::string& type, const std::string& expected, const std::string& context,
                     const std::string& hint, std::string actual = {}) {
    const std::string algorithm = digest_name(type);
    if (algorithm.empty()) {
        throw RepoError(context + fmt::format("unsupported checksum type \"{}\"", type));
    }
    if (actual.empty()) {
        // the very file written (its descriptor), not whatever a name points to now
        actual = crypto::file_digest_hex(algorithm, fmt::format("/proc/self/fd/{}", fd));
    }
    std::string want = expected;
    std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return std::tolower(c); });
    if (actual != want) {
        throw RepoError(context + fmt::format("checksum mismatch: expected {}:{}, got {}:{}{}", type, expected,
                                              type, actual, hint.empty() ? "" : " (" + hint + ")"));
    }
}

/// A complete download of `entry` at `inside`: a regular file (not a link) of ours whose
/// size and checksum match primary.
bool reusable(const leo::fs::SystemRoot& root, const std::filesystem::path& inside, const PackageEntry& entry) {
    const auto st = root.lstat(inside);
    if (!st || !S_ISREG(st->st_mode) || st->st_uid != ::geteuid() ||
        (entry.size != 0 && static_cast<std::uint64_t>(st->st_size) != entry.size)) {
        return false;
    }
    const std::string algorithm = digest_name(entry.checksum_type);
    if (algorithm.empty() || entry.checksum.empty()) {
        return false;
    }
    const leo::fs::UniqueFd fd = root.open_read(inside);
    std::string want = entry.checksum;
    std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return std::tolower(c); });
    return crypto::file_digest_hex(algorithm, fmt::format("/proc/self/fd/{}", fd.get())) == want;
}

/// The cache of the entries kept, as load_metadata uses it.
struct CacheUse {
    std::optional<detail::CacheRecord> record;  ///< usable for this repository and filter
    std::string why_not;                        ///< why there is none
    std::int64_t now = 0;
    /// The cached entries as the answer (Metadata::stale, with the warning), set when a
    /// server's repomd.xml was older than theirs: given if no other server does better.
    std::optional<Metadata> older;
};

/// A server's repomd.xml is older than the cached one (yum's timestamp_check): that server
/// failed, the next one is tried (failover), and the cache answers if none does better.
class OlderRepomd : public RepoError {
public:
    using RepoError::RepoError;
};

/// What accepts an older repomd.xml: root's `clean metadata`, or removing another user's own cache.
std::string accept_older_hint(const leo::fs::SystemRoot& root, const std::filesystem::path& cache) {
    if (::geteuid() == 0) {
        return command_hint("clean metadata") + " accepts the older one";
    }
    return fmt::format("removing {} (your own cache) accepts the older one", root.host(cache).string());
}

/// The answer of the cache when it may give one without the network (-C; within
/// metadata_expire); otherwise `cached` holds the usable record for load_from, if any.
std::optional<Metadata> answer_from_cache(const RepoConfig& repo, const leo::fs::SystemRoot& root,
                                          const std::filesystem::path& cache, const LoadOptions& options,
                                          CacheUse& cached) {
    cached.now = options.now != 0 ? options.now : static_cast<std::int64_t>(std::time(nullptr));
    if (options.filter_key.empty()) {
        cached.why_not = "the caller caches no entries";
    } else {
        // The cache's directories are ours again before anything in them is read, not only
        // when something is written (another user handed one must not keep it).
        if (root.lstat(cache)) {
            ensure_cache_dir(root, cache.parent_path());
            ensure_cache_dir(root, cache);
        }
        cached.record = detail::read_cache(root, cache, cached.why_not);
        if (cached.record && cached.record->urls != detail::url_settings(repo)) {
            cached.why_not = "it was fetched with other baseurl/mirrorlist/metalink settings";
            cached.record.reset();
        } else if (cached.record && cached.record->filter != options.filter_key) {
            cached.why_not = "it holds other packages";
            cached.record.reset();
        }
    }
    if (options.policy == CachePolicy::cache_only) {
        if (!cached.record) {
            throw RepoError(fmt::format("repository {}: nothing usable is cached for --cacheonly (-C) in {}: {}; run "
                                        "once without -C to fetch the metadata",
                                        repo.id, root.host(cache).string(), cached.why_not));
        }
        return detail::metadata_of(repo, *cached.record, MetadataSource::cache);
    }
    // A repository read in place (file://) is read again each time, as dnf does: its
    // repomd.xml is a local read, and a cached answer would hide an edit of the directory.
    if (options.policy == CachePolicy::normal && cached.record && !is_local(repo) &&
        detail::fresh(*cached.record, repo.metadata_expire, cached.now)) {
        return detail::metadata_of(repo, *cached.record, MetadataSource::cache);
    }
    return std::nullopt;
}

Metadata load_from(const RepoConfig& repo, const std::string& baseurl, const leo::fs::SystemRoot& root,
                   const std::filesystem::path& cache, const LoadOptions& options, CacheUse& cached,
                   const Metalink* metalink) {
    const std::string repomd_url = join_url(baseurl, "repodata/repomd.xml");
    const std::string shown_repomd = redact_url(repomd_url);
    const std::string repomd_xml = fetch_to_string(
        repo, repomd_url, Limit{k_repomd_limit, "of the cap for repomd.xml"}, true, "repodata/repomd.xml",
        fmt::format("check baseurl in {}, the network and the proxy", where_defined(repo)),
        fmt::format("check baseurl in {}: it must be the directory that holds repodata/", where_defined(repo)));
    if (metalink != nullptr) {  // a mirror's repomd.xml must be a version the metalink lists
        if (auto why = metalink_mismatch(*metalink, repomd_xml); !why.empty()) {
            throw RepoError(fmt::format("repository {}: repodata/repomd.xml from {} does not match the metalink: {} "
                                        "(a mirror not in sync, or altered on the way)",
                                        repo.id, shown_repomd, why));
        }
    }
    if (repo.repo_gpgcheck) {
        verify_repomd_signature(repo, baseurl, repomd_xml, options.signing_keys);  // before any of it is used
    }
    const Repomd repomd = parse_repomd(
        repomd_xml, fmt::format("repository {}: repodata/repomd.xml from {} is not valid repomd XML: ", repo.id,
                                shown_repomd));
    if (!repomd.primary || repomd.primary->href.empty()) {
        throw RepoError(fmt::format("repository {}: repodata/repomd.xml from {} lists no primary metadata "
                                    "(<data type=\"primary\"> with a <location href=...>)",
                                    repo.id, shown_repomd));
    }
    // yum's timestamp_check: a repomd.xml older than the one the cached entries came from (a
    // mirror behind the others, or an old copy served again to hide an update) is not used:
    // the next server is tried, and if none does better the cached entries answer, unrefreshed,
    // so that the next run asks again. A repomd.xml without a timestamp counts as 0, as in yum.
    // Not for a repository the administrator points at by hand (read in place, or
    // --repofrompath: yum turns the check off for it), nor against a cached time more than a
    // day ahead of the clock (a publisher's clock gone wrong must not block every later one).
    if (cached.record && !is_local(repo) && repo.source != "--repofrompath" &&
        cached.record->timestamp <= cached.now + 86400 && cached.record->timestamp > repomd.timestamp) {
        const std::string why = fmt::format(
            "repository {}: not using repodata/repomd.xml from {}: it is older than the cached one (cached {}, "
            "downloaded {}: a mirror behind, or an old copy served again)",
            repo.id, shown_repomd, clock::utc_time(cached.record->timestamp),
            repomd.timestamp == 0 ? std::string("without a timestamp") : clock::utc_time(repomd.timestamp));
        if (!cached.older) {
            Metadata md = detail::metadata_of(repo, *cached.record, MetadataSource::cache);
            md.stale = true;
            md.warnings.push_back(why + "; the cached metadata is used (" + accept_older_hint(root, cache) + ")");
            cached.older = std::move(md);
        }
        throw OlderRepomd(why);
    }
    // repomd.xml unchanged since the entries were cached: they are the answer (dnf: "metadata not changed").
    const std::string repomd_sha256 = crypto::digest_hex("sha256", repomd_xml);
    if (cached.record && cached.record->repomd_sha256 == repomd_sha256) {
        const bool untimed = cached.record->timestamp != repomd.timestamp;  // a record of an older version
        cached.record->timestamp = repomd.timestamp;
        if (repo.metadata_expire > 0) {  // the expiry starts again (0: always expired; -1: never)
            cached.record->fetched = cached.now;
        }
        if (repo.metadata_expire > 0 || untimed) {
            detail::write_cache(root, cache, *cached.record);
        }
        return detail::metadata_of(repo, *cached.record, MetadataSource::revalidated);
    }
    const PrimaryRef& primary = *repomd.primary;
    const std::string in_repomd = fmt::format("repository {}: repodata/repomd.xml from {}: ", repo.id, shown_repomd);
    if (primary.checksum.empty()) {
        throw RepoError(in_repomd + "primary metadata has no <checksum>");
    }
    if (digest_name(primary.checksum_type).empty()) {
        throw RepoError(in_repomd + fmt::format("unsupported checksum type \"{}\"", primary.checksum_type));
    }
    PackageEntry where;  // the primary's location, checked by the rules of a package's
    where.location_href = primary.href;
    where.location_base = primary.base;
    where.base_url = baseurl;
    if (auto why = unsafe_location(where); !why.empty()) {
        throw RepoError(in_repomd + "primary metadata " + why);
    }
    const std::string file_name = basename_of(primary.href);
    const std::string primary_url = where.url();
    const bool allow_file = url_scheme(baseurl) == "file";
    const std::string what = fmt::format("primary metadata {}", file_name);
    const std::string context = fmt::format("repository {}: {} from {}: ", repo.id, what, redact_url(primary_url));
    const Limit download_limit = limit_of(primary.size, "repomd.xml's <size>", k_metadata_limit, "metadata", context);
    const Limit open_limit = limit_of(primary.open_size, "repomd.xml's <open-size>", k_metadata_open_limit,
                                      "decompressed metadata", context);

    ensure_cache_dir(root, cache.parent_path());
    ensure_cache_dir(root, cache);
    root.write_atomic(cache / "repomd.xml", repomd_xml, 0644);
    Transfer transfer{repo, primary_url, download_limit};
    transfer.allow_file = allow_file;
    transfer.progress = options.progress;
    transfer.expected_total = primary.size;
    auto scan = detail::stream_primary(transfer, primary.checksum_type, primary.checksum, open_limit, baseurl,
                                       options.filter, what, context,
                                       "the repository may be changing under us or a proxy altered it; try again");
    Metadata metadata;
    metadata.repo_id = repo.id;
    metadata.revision = repomd.revision;
    metadata.packages = std::move(scan.packages);
    metadata.skipped = scan.skipped;
    metadata.first_skipped = std::move(scan.first_skipped);
    if (!options.filter_key.empty()) {
        detail::CacheRecord record;
        record.repomd_sha256 = repomd_sha256;
        record.revision = metadata.revision;
        record.timestamp = repomd.timestamp;
        record.fetched = cached.now;
        record.urls = detail::url_settings(repo);
        record.filter = options.filter_key;
        record.skipped = metadata.skipped;
        record.first_skipped = metadata.first_skipped;
        record.packages = metadata.packages;
        detail::write_cache(root, cache, record);
        metadata.repomd_sha256 = record.repomd_sha256;
        metadata.fetched = record.fetched;
    }
    // Primary is not kept: whatever an older version kept (or anyone left) of it goes.
    for (const auto& name : root.list(cache)) {
        if (name.ends_with(".part") || name.find("primary.xml") != std::string::npos) {
            discard(root, cache / name);
        }
    }
    return metadata;
}

/// Download `entry` from its base_url (one mirror): download_package's work for one URL.
std::filesystem::path download_from(const RepoConfig& repo, const PackageEntry& entry, const leo::fs::SystemRoot& root,
                                    const std::filesystem::path& dest_dir, const Progress& progress) {
    const std::string url = entry.url();
    const std::string shown = redact_url(url);
    if (auto why = unsafe_location(entry); !why.empty()) {
        throw RepoError(fmt::format("repository {}: package {}: {}", repo.id, entry.nevra(), why));
    }
    const std::string file_name = basename_of(entry.location_href);
    const std::string context = fmt::format("repository {}: package {} from {}: ", repo.id, entry.nevra(), shown);
    const Limit limit = limit_of(entry.size, "primary's <size package>", k_package_limit, "a package", context);
    ensure_cache_dir(root, dest_dir);
    const std::string what = fmt::format("package {}", entry.nevra());
    Transfer transfer{repo, url, limit};
    transfer.allow_file = url_scheme(entry.base_url) == "file";
    transfer.progress = progress;
    transfer.expected_total = entry.size;
    transfer.durable = false;  // never reused without its checksum: a torn file after a crash is refetched
    transfer.digest_algorithm = digest_name(entry.checksum_type);  // "" for an unknown type: refused below
    Downloaded file = fetch_to_cache(transfer, root, dest_dir, file_name, what, "try again",
                                     "the repository metadata may be stale; try again");
    try {
        struct stat st {};
        if (::fstat(file.fd.get(), &st) != 0) {
            throw system_error("cannot stat " + root.host(file.part).string(), errno);
        }
        const auto size = static_cast<std::uint64_t>(st.st_size);
        if (entry.size != 0 && size != entry.size) {
            throw RepoError(context + fmt::format("size mismatch: expected {} bytes, got {}", entry.size, size));
        }
        verify_checksum(file.fd.get(), entry.checksum_type, entry.checksum, context,
                        "the file on the server differs from its metadata; try again later",
                        file.digest_hex);
        root.rename(file.part, dest_dir / file_name);
    } catch (...) {
        discard(root, file.part);
        throw;
    }
    return root.host(dest_dir / file_name);
}

/// Every secret of `repo` out of `message`: URL passwords (redact_url), and the
/// password and proxy_password values should libcurl ever echo them.
std::string scrub(std::string message, const RepoConfig& repo) {
    message = redact_url(message);
    for (const std::string* secret : {&repo.password, &repo.proxy_password}) {
        if (secret->size() < 3) {
            continue;  // too short to tell from ordinary text
        }
        std::size_t pos = 0;
        while ((pos = message.find(*secret, pos)) != std::string::npos) {
            message.replace(pos, secret->size(), "***");
            pos += 3;
        }
    }
    return message;
}

/// Run `f`, its RepoError messages scrubbed of the repository's secrets.
template <class F>
auto scrubbed(const RepoConfig& repo, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const RepoError& e) {
        throw RepoError(scrub(e.what(), repo));
    }
}

} // namespace

std::string PackageEntry::url() const {
    return join_url(location_base.empty() ? base_url : location_base, location_href);
}

std::string PackageEntry::nevra() const {
    if (epoch != 0) {
        return fmt::format("{}-{}:{}-{}.{}", name, epoch, version, release, arch);
    }
    return fmt::format("{}-{}-{}.{}", name, version, release, arch);
}

Metadata load_metadata(const RepoConfig& repo, const leo::fs::SystemRoot& root,
                       const std::filesystem::path& cache_dir, const PackageFilter& filter,
                       const std::vector<SigningKey>& keys) {
    LoadOptions options;
    options.filter = filter;
    options.signing_keys = keys;
    return load_metadata(repo, root, cache_dir, options);
}

Metadata load_metadata(const RepoConfig& repo, const leo::fs::SystemRoot& root,
                       const std::filesystem::path& cache_dir, const LoadOptions& options) {
    if (auto why = unsafe_file_name(repo.id); !why.empty()) {
        throw RepoError(fmt::format("repository \"{}\": not a usable repository id ({})", repo.id, why));
    }
    const auto cache = cache_dir / repo.id;
    CacheUse cached;
    if (auto answer = answer_from_cache(repo, root, cache, options, cached)) {
        // No network, so no mirror list: packages come from the mirror that served the
        // metadata, then the baseurls.
        std::vector<std::string> urls;
        if (!answer->packages.empty()) urls.push_back(answer->packages.front().base_url);
        for (const auto& url : repo.baseurls) {
            if (std::find(urls.begin(), urls.end(), url) == urls.end()) urls.push_back(url);
        }
        answer->mirrors = urls;
        const auto shared = std::make_shared<const std::vector<std::string>>(urls);
        for (auto& package : answer->packages) package.mirrors = shared;
        return *answer;
    }
    if (repo.baseurls.empty() && repo.mirrorlist.empty() && repo.metalink.empty()) {
        throw RepoError(fmt::format("repository {}: no baseurl, mirrorlist or metalink (set one in {})", repo.id,
                                    where_defined(repo)));
    }
    xmlInitParser();
    return scrubbed(repo, [&] {
        detail::check_transfer_settings(repo);
        const detail::ResolvedMirrors mirrors = resolve_mirrors(repo);
        const Metalink* metalink = mirrors.metalink ? &*mirrors.metalink : nullptr;
        std::string served;
        Metadata metadata;
        try {
            metadata = try_each(repo, mirrors.urls, mirrors.only_baseurls, mirrors.failures,
                                [&](const std::string& baseurl) {
                                    Metadata md = load_from(repo, baseurl, root, cache, options, cached, metalink);
                                    served = baseurl;
                                    return md;
                                });
        } catch (const RepoError& e) {
            if (!cached.older) {
                throw;
            }
            // no server did better than one whose repomd.xml is older than the cache: the cache answers
            metadata = std::move(*cached.older);
            if (mirrors.urls.size() > 1) {
                metadata.warnings.push_back(scrub(e.what(), repo));
            }
            served = metadata.packages.empty() ? mirrors.urls.front() : metadata.packages.front().base_url;
        }
        metadata.mirrors.push_back(served);
        for (const auto& url : mirrors.urls) {
            if (url != served) {
                metadata.mirrors.push_back(url);
            }
        }
        const auto shared = std::make_shared<const std::vector<std::string>>(metadata.mirrors);
        for (auto& package : metadata.packages) {
            package.mirrors = shared;
        }
        for (const auto& warning : mirrors.warnings) {
            metadata.warnings.push_back(scrub(warning, repo));
        }
        if (!repo.sslverify) {
            metadata.warnings.push_back(fmt::format("repository {}: sslverify=0 in {}: the servers' certificates are "
                                                    "not checked, anyone on the network path can serve this "
                                                    "repository",
                                                    repo.id, where_defined(repo)));
        }
        return metadata;
    });
}

std::filesystem::path download_package(const RepoConfig& repo, const PackageEntry& entry,
                                       const leo::fs::SystemRoot& root, const std::filesystem::path& dest_dir,
                                       const Progress& progress, CachePolicy policy) {
    return scrubbed(repo, [&] {
        detail::check_transfer_settings(repo);
        if (auto why = unsafe_location(entry); !why.empty()) {
            throw RepoError(fmt::format("repository {}: package {}: {}", repo.id, entry.nevra(), why));
        }
        const std::string file_name = basename_of(entry.location_href);
        // The cache's directories are ours again before anything in them is used, not only
        // when something is downloaded into them (another user handed one must not keep it).
        if (root.lstat(dest_dir)) {
            ensure_cache_dir(root, dest_dir);
        }
        if (reusable(root, dest_dir / file_name, entry)) {
            return root.host(dest_dir / file_name);  // already downloaded and complete: no network
        }
        if (policy == CachePolicy::cache_only) {
            throw RepoError(fmt::format("repository {}: package {} is not in the cache ({}) and --cacheonly (-C) "
                                        "downloads nothing; run without -C",
                                        repo.id, entry.nevra(), root.host(dest_dir / file_name).string()));
        }
        std::vector<std::string> urls{entry.base_url};
        if (entry.mirrors && entry.location_base.empty()) {  // an xml:base names one place
            for (const auto& url : *entry.mirrors) {
                if (url != entry.base_url) {
                    urls.push_back(url);
                }
            }
        }
        const auto attempt = [&](const std::string& base) {
            PackageEntry from = entry;
            from.base_url = base;
            return download_from(repo, from, root, dest_dir, progress);
        };
        const bool has_list = !repo.mirrorlist.empty() || !repo.metalink.empty();
        try {
            return try_each(repo, urls, !has_list, {}, attempt);
        } catch (const RepoError& failed) {
            // Metadata answered from the cache fetched no mirror list: the package came
            // only from the mirror that served the metadata and the baseurls. The list's
            // other mirrors are tried now, after those failures (listed first).
            if (!has_list || !entry.location_base.empty()) throw;
            detail::ResolvedMirrors mirrors;
            try {
                mirrors = resolve_mirrors(repo);
            } catch (const RepoError&) {
                throw failed;
            }
            std::vector<std::string> more;
            for (const auto& url : mirrors.urls) {
                if (std::find(urls.begin(), urls.end(), url) == urls.end()) more.push_back(url);
            }
            if (more.empty()) throw;
            std::vector<std::string> failures;
            for (const auto& url : more) {
                try {
                    return detail::with_retries(repo, [&] { return attempt(url); });
                } catch (const RepoError& e) {
                    failures.push_back(without_repo_prefix(repo, e.what()));
                }
            }
            failures.insert(failures.end(), mirrors.failures.begin(), mirrors.failures.end());
            throw RepoError(fmt::format("repository {}: every mirror failed ({} tried): {}; {}", repo.id,
                                        urls.size() + more.size(), without_repo_prefix(repo, failed.what()),
                                        fmt::join(failures, "; ")));
        }
    });
}

std::string fetch_url(const RepoConfig& repo, const std::string& url) {
    return scrubbed(repo, [&] {
        detail::check_transfer_settings(repo);
        const std::string hint = fmt::format("check gpgkey in {}", where_defined(repo));
        return detail::with_retries(repo, [&] {
            return fetch_to_string(repo, url, Limit{k_key_limit, "of the cap for a key"}, true, "key", hint, hint);
        });
    });
}

} // namespace leo::repo
