#pragma once
/// What a repository URL may be, and how one is shown: the pure rules of repo/ that
/// decide what a remote server or a repository file can make root do.

#include <string>
#include <string_view>

namespace leo::repo {

/// `text` with the password of every URL in it replaced: "https://user:pass@host/" becomes
/// "https://user:***@host/" (a user without a password is kept; anything without "@" in
/// its authority is unchanged). The one function used wherever a URL is shown: error
/// messages, the log, --json output.
[[nodiscard]] std::string redact_url(std::string_view text);

/// The lowercased scheme of `url` ("https"), or "" when it has none.
[[nodiscard]] std::string url_scheme(std::string_view url);

struct RepoConfig;

/// A repository read in place: every baseurl is file:// and there is no mirrorlist or metalink.
/// dnf reads such a repository's metadata where it is each time; so does load_metadata (its
/// metadata_expire does not apply), and so does check-update's warm answer.
[[nodiscard]] bool is_local(const RepoConfig& repo);

/// `base` and `path` joined by exactly one "/" ("http://h/r/" + "repodata/repomd.xml").
[[nodiscard]] std::string join_url(const std::string& base, const std::string& path);

/// The protocols libcurl may use for one transfer of `url`, as libcurl's strings
/// (CURLOPT_PROTOCOLS_STR / CURLOPT_REDIR_PROTOCOLS_STR) and bit masks (CURLPROTO_*).
/// - file: only for a URL the administrator wrote (`allow_file`), never redirected;
/// - http: http or https, redirects to http or https;
/// - https: https only, redirects to https only (no downgrade).
/// `allowed` is false (with `why`) for a scheme that may not be fetched at all.
struct TransferProtocols {
    bool allowed = false;
    std::string why;
    std::string protocols;          ///< "http,https"
    std::string redirect_protocols; ///< "" when redirects are not followed
    long protocol_mask = 0;
    long redirect_mask = 0;
};
[[nodiscard]] TransferProtocols transfer_protocols(std::string_view url, bool allow_file);

/// "" when `href` (a <location href> of repomd.xml or primary) is a relative path inside
/// the repository; otherwise why not: empty, a URL (scheme), absolute ("/..."), ".."
/// segments (also percent-encoded), a backslash or control characters.
[[nodiscard]] std::string unsafe_href(std::string_view href);

/// "" when `name` can be a file name in the cache; otherwise why not: empty, "." or "..",
/// a "/", control characters, longer than 200 bytes.
[[nodiscard]] std::string unsafe_file_name(std::string_view name);

} // namespace leo::repo
