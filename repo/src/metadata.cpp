// Repository metadata tied together: load_metadata (repomd.xml, then primary), download_package, fetch_url.
#include "leo/repo/metadata.hpp"

#include "detail.hpp"
#include "fetch.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/repo/signature.hpp"
#include "leo/repo/url.hpp"

#include <fmt/format.h>
#include <libxml/parser.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <sys/stat.h>

namespace leo::repo {

using detail::basename_of;
using detail::digest_name;
using detail::discard;
using detail::Downloaded;
using detail::fetch_to_cache;
using detail::fetch_to_string;
using detail::Limit;
using detail::limit_of;
using detail::parse_primary_fd;
using detail::Transfer;
using detail::unsafe_location;

namespace {

// ---- URLs and hints -----------------------------------------------------------------------

std::string join_url(const std::string& base, const std::string& path) {
    if (base.empty()) {
        return path;
    }
    if (base.back() == '/') {
        return path.starts_with('/') ? base + path.substr(1) : base + path;
    }
    return path.starts_with('/') ? base + path : base + "/" + path;
}

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
                     const std::string& hint) {
    const std::string algorithm = digest_name(type);
    if (algorithm.empty()) {
        throw RepoError(context + fmt::format("unsupported checksum type \"{}\"", type));
    }
    // the very file written (its descriptor), not whatever a name points to now
    const std::string actual = crypto::file_digest_hex(algorithm, fmt::format("/proc/self/fd/{}", fd));
    std::string want = expected;
    std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return std::tolower(c); });
    if (actual != want) {
        throw RepoError(context + fmt::format("checksum mismatch: expected {}:{}, got {}:{}{}", type, expected,
                                              type, actual, hint.empty() ? "" : " (" + hint + ")"));
    }
}

Metadata load_from(const RepoConfig& repo, const std::string& baseurl, const leo::fs::SystemRoot& root,
                   const std::filesystem::path& cache, const PackageFilter& filter,
                   const std::vector<SigningKey>& keys) {
    const std::string repomd_url = join_url(baseurl, "repodata/repomd.xml");
    const std::string shown_repomd = redact_url(repomd_url);
    const std::string repomd_xml = fetch_to_string(
        repo, repomd_url, Limit{k_repomd_limit, "of the cap for repomd.xml"}, true, "repodata/repomd.xml",
        fmt::format("check baseurl in {}, the network and the proxy", where_defined(repo)),
        fmt::format("check baseurl in {}: it must be the directory that holds repodata/", where_defined(repo)));
    if (repo.repo_gpgcheck) {
        verify_repomd_signature(repo, baseurl, repomd_xml, keys);  // before any of it is used
    }
    const Repomd repomd = parse_repomd(
        repomd_xml, fmt::format("repository {}: repodata/repomd.xml from {} is not valid repomd XML: ", repo.id,
                                shown_repomd));
    if (!repomd.primary || repomd.primary->href.empty()) {
        throw RepoError(fmt::format("repository {}: repodata/repomd.xml from {} lists no primary metadata "
                                    "(<data type=\"primary\"> with a <location href=...>)",
                                    repo.id, shown_repomd));
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
    Downloaded file = fetch_to_cache(transfer, root, cache, file_name, what, "try again",
                                     "the repository may be changing under us; try again");
    try {
        verify_checksum(file.fd.get(), primary.checksum_type, primary.checksum, context,
                        "the repository may be changing under us or a proxy altered it; try again");
        root.rename(file.part, cache / file_name);
    } catch (...) {
        discard(root, file.part);
        throw;
    }

    Metadata metadata;
    metadata.repo_id = repo.id;
    metadata.revision = repomd.revision;
    metadata.packages = parse_primary_fd(file.fd.get(), open_limit, baseurl, filter, context);
    return metadata;
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
    if (auto why = unsafe_file_name(repo.id); !why.empty()) {
        throw RepoError(fmt::format("repository \"{}\": not a usable repository id ({})", repo.id, why));
    }
    if (repo.baseurls.empty() && (!repo.mirrorlist.empty() || !repo.metalink.empty())) {
        throw RepoError(fmt::format("repository {}: uses {}, which is not supported yet; set baseurl in {}", repo.id,
                                    repo.mirrorlist.empty() ? "metalink" : "mirrorlist", where_defined(repo)));
    }
    if (repo.baseurls.empty()) {
        throw RepoError(fmt::format("repository {}: no baseurl (set one in {})", repo.id, where_defined(repo)));
    }
    xmlInitParser();
    const auto cache = cache_dir / repo.id;
    return scrubbed(repo, [&] {
        std::vector<std::string> failures;
        for (const auto& baseurl : repo.baseurls) {
            try {
                return load_from(repo, baseurl, root, cache, filter, keys);
            } catch (const RepoError& e) {
                if (repo.baseurls.size() == 1) {
                    throw;
                }
                // each message starts "repository ID: ": say it once
                const std::string prefix = fmt::format("repository {}: ", repo.id);
                std::string message = e.what();
                failures.push_back(message.starts_with(prefix) ? message.substr(prefix.size()) : message);
            }
        }
        throw RepoError(
            fmt::format("repository {}: every baseurl failed: {}", repo.id, fmt::join(failures, "; ")));
    });
}

std::filesystem::path download_package(const RepoConfig& repo, const PackageEntry& entry,
                                       const leo::fs::SystemRoot& root, const std::filesystem::path& dest_dir,
                                       const Progress& progress) {
    return scrubbed(repo, [&] {
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
                            "the file on the server differs from its metadata; try again later");
            root.rename(file.part, dest_dir / file_name);
        } catch (...) {
            discard(root, file.part);
            throw;
        }
        return root.host(dest_dir / file_name);
    });
}

std::string fetch_url(const RepoConfig& repo, const std::string& url) {
    return scrubbed(repo, [&] {
        const std::string hint = fmt::format("check gpgkey in {}", where_defined(repo));
        return fetch_to_string(repo, url, Limit{k_key_limit, "of the cap for a key"}, true, "key", hint, hint);
    });
}

} // namespace leo::repo
