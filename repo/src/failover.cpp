// Failover: a repository's URLs in the order to try (baseurl, then a mirrorlist's or a
// metalink's mirrors), read with the repository's transfer settings.
#include "failover.hpp"

#include "leo/repo/url.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace leo::repo::detail {
namespace {

/// The values of yum's variables in mirrorlist lines: the ones config.cpp substitutes in
/// .repo files (a CentOS 7 x86_64 host).
const std::vector<std::pair<std::string, std::string>> k_yum_vars = {{"basearch", "x86_64"}, {"releasever", "7"}};

std::string where_set(const RepoConfig& repo) {
    return repo.source.empty() ? std::string("the repository configuration") : repo.source;
}

bool looks_like_xml(const std::string& body) {
    const auto first = body.find_first_not_of(" \t\r\n");
    return first != std::string::npos && body[first] == '<';
}

} // namespace

std::string without_repo_prefix(const RepoConfig& repo, const std::string& message) {
    const std::string prefix = fmt::format("repository {}: ", repo.id);
    return message.starts_with(prefix) ? message.substr(prefix.size()) : message;
}

ResolvedMirrors resolve_mirrors(const RepoConfig& repo) {
    ResolvedMirrors out;
    out.urls = repo.baseurls;
    const bool use_metalink = !repo.metalink.empty();
    const std::string& list_url = use_metalink ? repo.metalink : repo.mirrorlist;
    if (list_url.empty()) {
        return out;
    }
    out.only_baseurls = false;
    const char* option = use_metalink ? "metalink" : "mirrorlist";
    if (use_metalink && !repo.mirrorlist.empty()) {
        out.warnings.push_back(fmt::format("repository {}: both metalink and mirrorlist are set in {}; the metalink "
                                           "is used (as dnf does)",
                                           repo.id, where_set(repo)));
    }
    // file:// entries only in a list the administrator keeps on this host
    const FileUrls file_urls = url_scheme(list_url) == "file" ? FileUrls::allowed : FileUrls::refused;
    const std::string shown = redact_url(list_url);
    MirrorList mirrors;
    try {
        const std::string body = with_retries(repo, [&] {
            return fetch_to_string(repo, list_url, Limit{k_mirrorlist_limit, "of the cap for a mirror list"}, true,
                                   option,
                                   fmt::format("check {} in {}, the network and the proxy", option, where_set(repo)),
                                   fmt::format("check {} in {}", option, where_set(repo)));
        });
        const std::string context = fmt::format("repository {}: {} {} ", repo.id, option, shown);
        if (use_metalink || looks_like_xml(body)) {
            Metalink metalink = parse_metalink(body, file_urls, context + "is not a usable metalink: ");
            mirrors = metalink.mirrors;
            metalink.mirrors = {};
            out.metalink = std::move(metalink);
        } else {
            mirrors = parse_mirrorlist(body, file_urls, k_yum_vars);
        }
        if (mirrors.urls.empty()) {
            throw RepoError(
                context + "lists no usable mirror" +
                (mirrors.refused.empty() ? std::string() : fmt::format(" ({})", fmt::join(mirrors.refused, "; "))));
        }
    } catch (const RepoError& e) {
        if (repo.baseurls.empty()) {
            throw;
        }
        out.metalink.reset();
        out.failures.push_back(without_repo_prefix(repo, e.what()));
        out.warnings.push_back(std::string(e.what()) + "; using baseurl only");
        return out;
    }
    for (auto& url : mirrors.urls) {
        if (std::find(out.urls.begin(), out.urls.end(), url) == out.urls.end()) {
            out.urls.push_back(std::move(url));
        }
    }
    for (const auto& refused : mirrors.refused) {
        out.failures.push_back(fmt::format("{} {} entry refused: {}", option, shown, refused));
        out.warnings.push_back(fmt::format("repository {}: {} {}: entry refused: {}", repo.id, option, shown, refused));
    }
    return out;
}

} // namespace leo::repo::detail
