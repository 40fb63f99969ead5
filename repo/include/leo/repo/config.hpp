#pragma once
/// Repository definitions in yum's format: ROOT/etc/yum.repos.d/*.repo (INI, parsed with inih).

#include "leo/common/system_root.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace leo::repo {

struct RepoConfig {
    std::string id;                      ///< the [section] name
    std::string name;
    std::vector<std::string> baseurls;   ///< http://, https:// or file:// URLs, tried in order (failover)
    std::string mirrorlist;              ///< URL of a list of base URLs, one per line ("" when not set)
    std::string metalink;                ///< URL of a metalink XML: mirrors and repomd.xml hashes ("" when not set)
    bool enabled = true;
    bool gpgcheck = true;                ///< packages must be signed by one of gpgkeys
    bool repo_gpgcheck = false;          ///< repomd.xml must carry a valid detached signature (repomd.xml.asc)
    std::vector<std::string> gpgkeys;    ///< file:// or http(s):// URLs (or absolute paths) of armored public keys
    bool allow_http_gpgkey = false;      ///< `allow_http_gpgkey=1`: a gpgkey over plain http is used (warned)
    std::vector<std::string> excludes;   ///< exclude= / excludepkgs= globs (fnmatch), after [main]'s
    std::vector<std::string> includepkgs;///< includepkgs= globs; empty: every package
    int priority = 99;                   ///< lower wins when several repositories offer the broker (dnf's rule)
    int cost = 1000;                     ///< among equal priorities and versions, the lower cost is used
    /// skip_if_unavailable as written ([main], then the section); unset: the repository is
    /// skipped with a warning unless it was selected (--repo) or is known to hold the broker.
    std::optional<bool> skip_if_unavailable;
    std::int64_t metadata_expire = 21600;///< seconds the metadata is used without asking (yum: 6h); -1: never
    long timeout = 30;                   ///< seconds without progress before a transfer fails (yum: 30)
    unsigned retries = 10;               ///< attempts per URL for a failed transfer (yum: 10; 0: forever, capped)
    std::uint64_t minrate = 0;           ///< bytes/s below which, for `timeout` seconds, a transfer fails
    bool sslverify = true;
    std::string sslcacert;
    std::string sslclientcert;           ///< PEM client certificate (TLS client authentication)
    std::string sslclientkey;            ///< its private key: a path, never the key itself in a message
    std::string proxy;                   ///< may hold "user:password@" (never shown: redact_url)
    std::string proxy_username;
    std::string proxy_password;          ///< a secret: never in a message, the log or --json
    std::string username;                ///< HTTP authentication for baseurl and gpgkey
    std::string password;                ///< a secret, like proxy_password
    std::string source;                  ///< "FILE" it came from, or "--repofrompath"
    /// Options of the section (or [main]) that are not implemented: each named, with the
    /// file and line, in a one-line warning ("FILE:LINE: [id] option 'x' is not supported; ignored").
    std::vector<std::string> warnings;
};

/// Every [section] of every ROOT/etc/yum.repos.d/*.repo, in file then section order, read
/// through `root` (no unsafe link is followed; a file over 1 MiB is refused).
/// Values follow yum: booleans 1/0/yes/no/true/false/on/off; baseurl and gpgkey lists
/// separated by whitespace or commas (continuation lines allowed); `$basearch` -> x86_64,
/// `$releasever` -> 7. Throws leo::RepoError naming file and line for a syntax error,
/// a bad boolean, a section without baseurl (mirrorlist/metalink: "not supported yet"),
/// or the same id twice. URLs in messages are redacted (redact_url).
[[nodiscard]] std::vector<RepoConfig> load_repo_configs(const leo::fs::SystemRoot& root);

/// The [sections] of one .repo file (or yum.conf: its [main] is ignored, as in a .repo
/// file) held in `text`, in order; `file` names it in errors and in RepoConfig::source.
/// Same rules and errors as load_repo_configs (what load_repo_configs runs on each file).
[[nodiscard]] std::vector<RepoConfig> parse_repo_config(const std::string& text, const std::string& file);

/// `--repofrompath ID,URL` as dnf takes it (enabled, gpgcheck on): URL is http://, https://,
/// file://, or a plain directory (relative to the working directory, made a file:// URL).
/// Throws leo::UsageError when it is not "ID,URL", the scheme is another, or the directory
/// does not exist.
[[nodiscard]] RepoConfig repo_from_path(const std::string& spec);

} // namespace leo::repo
