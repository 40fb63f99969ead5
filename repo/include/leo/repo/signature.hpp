#pragma once
/// repo_gpgcheck: repomd.xml verified against its detached armored signature
/// repodata/repomd.xml.asc with the repository's keys, before any metadata is used
/// (yum's and dnf's repo_gpgcheck=1; librpm's OpenPGP through leo/rpm/keys.hpp).

#include "leo/repo/config.hpp"

#include <string>
#include <vector>

namespace leo::repo {

/// A public key the repository's metadata may be signed with: the armored key and where
/// it came from (a gpgkey URL, or the root's rpmdb), for messages.
struct SigningKey {
    std::string armored;
    std::string source;
};

/// Check `repomd_xml` (the bytes as fetched) against the armored detached signature `asc`
/// with `keys`. `asc_url` names the signature in messages (redacted). Throws leo::RepoError:
/// - bad: "...repomd.xml.asc from URL does not verify with key KEYID ..." (the data changed
///   after signing, or the signature is not an OpenPGP signature librpm can read);
/// - unknown key: "...is signed by key KEYID, which is not among the repository's keys
///   (tried: KEYID from SOURCE, ...)" and the hint to check gpgkey= in the .repo file.
void check_repomd_signature(const RepoConfig& repo, const std::string& asc_url, const std::string& repomd_xml,
                            const std::string& asc, const std::vector<SigningKey>& keys);

/// Fetch `baseurl`/repodata/repomd.xml.asc (bounded as a key is: k_key_limit) and check it
/// as check_repomd_signature does. A missing signature (HTTP 404/410, no such file) is its
/// own leo::RepoError: "...repo_gpgcheck=1, but repodata/repomd.xml.asc is missing at URL
/// ...". Other transfer failures throw as fetching repomd.xml does.
void verify_repomd_signature(const RepoConfig& repo, const std::string& baseurl, const std::string& repomd_xml,
                             const std::vector<SigningKey>& keys);

} // namespace leo::repo
