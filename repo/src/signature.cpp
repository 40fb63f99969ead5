// repo_gpgcheck: repomd.xml against repodata/repomd.xml.asc, before any metadata is used.
#include "leo/repo/signature.hpp"

#include "detail.hpp"
#include "fetch.hpp"

#include "leo/common/error.hpp"
#include "leo/repo/url.hpp"
#include "leo/rpm/keys.hpp"

#include <fmt/format.h>

namespace leo::repo {
namespace {

std::string file_of(const RepoConfig& repo) {
    if (repo.source.empty()) return "the repository configuration";
    if (repo.source == "--repofrompath") return "the --repofrompath options";
    return repo.source;
}

std::string upper_id(std::string id) {
    for (auto& c : id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return id;
}

} // namespace

void check_repomd_signature(const RepoConfig& repo, const std::string& asc_url, const std::string& repomd_xml,
                            const std::string& asc, const std::vector<SigningKey>& keys) {
    const std::string shown = redact_url(asc_url);
    std::vector<rpm::PublicKey> parsed;
    std::vector<std::string> tried;
    for (const auto& k : keys) {
        try {
            parsed.push_back(rpm::parse_public_key(k.armored, k.source));
            tried.push_back(fmt::format("{} from {}", upper_id(parsed.back().key_id), redact_url(k.source)));
        } catch (const RpmError& e) {
            tried.push_back(fmt::format("{} (unreadable: {})", redact_url(k.source), e.what()));
        }
    }
    const rpm::DetachedResult r = rpm::verify_detached(repomd_xml, asc, parsed);
    switch (r.state) {
    case rpm::DetachedState::ok: return;
    case rpm::DetachedState::malformed:
        throw RepoError(fmt::format("repository {}: repodata/repomd.xml.asc from {} is not a valid signature ({}); "
                                    "repo_gpgcheck=1 requires one, so none of the repository's metadata is used",
                                    repo.id, shown, r.detail));
    case rpm::DetachedState::bad:
        throw RepoError(fmt::format("repository {}: the signature repodata/repomd.xml.asc from {} does not verify "
                                    "with key {}: repomd.xml was changed after it was signed ({}); none of the "
                                    "repository's metadata is used. A mirror in the middle of an update can cause "
                                    "this: try again later, and tell the repository's owner if it stays",
                                    repo.id, shown, upper_id(r.signer_key_id), r.detail));
    case rpm::DetachedState::unknown_key:
        throw RepoError(fmt::format(
            "repository {}: repodata/repomd.xml.asc from {} is signed by key {}, which is not among the "
            "repository's keys (tried: {}); none of the repository's metadata is used. Check gpgkey= in {}: it "
            "must name the key the repository's metadata is signed with",
            repo.id, shown, upper_id(r.signer_key_id),
            tried.empty() ? std::string("none: gpgkey= is not set") : fmt::format("{}", fmt::join(tried, ", ")),
            file_of(repo)));
    }
}

void verify_repomd_signature(const RepoConfig& repo, const std::string& baseurl, const std::string& repomd_xml,
                             const std::vector<SigningKey>& keys) {
    const std::string url =
        baseurl + (baseurl.empty() || baseurl.back() == '/' ? "" : "/") + "repodata/repomd.xml.asc";
    const std::string hint = fmt::format("check baseurl in {}, the network and the proxy", file_of(repo));
    std::string asc;
    try {
        asc = detail::fetch_to_string(repo, url, detail::Limit{k_key_limit, "of the cap for a signature"},
                                      url_scheme(baseurl) == "file", "repodata/repomd.xml.asc", hint, "");
    } catch (const detail::NotFoundError&) {
        throw RepoError(fmt::format("repository {}: repo_gpgcheck=1, but repodata/repomd.xml.asc is missing at {}: "
                                    "the metadata is not signed, so none of it is used. Sign repomd.xml (gpg "
                                    "--detach-sign --armor repodata/repomd.xml) on the repository, or set "
                                    "repo_gpgcheck=0 in {} to accept unsigned metadata",
                                    repo.id, redact_url(url), file_of(repo)));
    }
    check_repomd_signature(repo, url, repomd_xml, asc, keys);
}

} // namespace leo::repo
