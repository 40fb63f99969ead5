#pragma once
/// Failover for repo/src (not installed): the URLs of a repository in the order to try
/// (baseurl, then the mirrorlist's or metalink's mirrors), and trying them in turn.

#include "fetch.hpp"

#include "leo/common/error.hpp"
#include "leo/repo/config.hpp"
#include "leo/repo/mirrors.hpp"

#include <fmt/format.h>

#include <optional>
#include <string>
#include <vector>

namespace leo::repo::detail {

/// The base URLs of a repository, in the order to try.
struct ResolvedMirrors {
    std::vector<std::string> urls;     ///< every baseurl, then the mirrors of the mirrorlist or metalink
    std::optional<Metalink> metalink;  ///< when a metalink was read: repomd.xml must match it
    std::vector<std::string> failures; ///< why the list could not be read, or entries refused
    std::vector<std::string> warnings; ///< for Metadata::warnings
    bool only_baseurls = true;         ///< no mirrorlist nor metalink: messages say "baseurl"
};

/// Fetch and parse the repository's metalink (when set; it wins over mirrorlist, as in dnf)
/// or mirrorlist (a mirrorlist that holds a metalink document is read as one, as dnf does),
/// each bounded (k_mirrorlist_limit) and with the repository's transfer settings and
/// retries. When it cannot be read and there is a baseurl, the baseurls are used (warned);
/// without one, leo::RepoError naming the URL and the cause.
ResolvedMirrors resolve_mirrors(const RepoConfig& repo);

/// The message of `e` without its leading "repository ID: " (the list says it once).
std::string without_repo_prefix(const RepoConfig& repo, const std::string& message);

/// `attempt(url)` for each of `urls` in turn, each under the repository's retries
/// (with_retries), until one returns. A single URL's error passes through unchanged; when
/// several all fail, one leo::RepoError lists each failure (each names its URL), then
/// `extra` (refused entries, a mirrorlist that failed).
template <class F>
auto try_each(const RepoConfig& repo, const std::vector<std::string>& urls, bool only_baseurls,
              const std::vector<std::string>& extra, F&& attempt) -> decltype(attempt(urls.front())) {
    std::vector<std::string> failures;
    for (const auto& url : urls) {
        try {
            return with_retries(repo, [&] { return attempt(url); });
        } catch (const RepoError& e) {
            if (urls.size() == 1 && extra.empty()) {
                throw;
            }
            failures.push_back(without_repo_prefix(repo, e.what()));
        }
    }
    for (const auto& line : extra) {
        failures.push_back(line);
    }
    if (urls.empty()) {
        throw RepoError(fmt::format("repository {}: no mirror to try: {}", repo.id, fmt::join(failures, "; ")));
    }
    throw RepoError(fmt::format("repository {}: every {} failed ({} tried): {}", repo.id,
                                only_baseurls ? "baseurl" : "mirror", urls.size(), fmt::join(failures, "; ")));
}

} // namespace leo::repo::detail
