#pragma once
/// Repository definitions in yum's format: ROOT/etc/yum.repos.d/*.repo (INI, parsed with inih).

#include "leo/common/system_root.hpp"

#include <string>
#include <vector>

namespace leo::repo {

struct RepoConfig {
    std::string id;                      ///< the [section] name
    std::string name;
    std::vector<std::string> baseurls;   ///< http://, https:// or file:// URLs (first one used, the rest are fallbacks)
    bool enabled = true;
    bool gpgcheck = true;                ///< packages must be signed by one of gpgkeys
    bool repo_gpgcheck = false;          ///< repomd.xml must carry a valid detached signature (not supported yet)
    std::vector<std::string> gpgkeys;    ///< file:// or http(s):// URLs (or absolute paths) of armored public keys
    bool sslverify = true;
    std::string sslcacert;
    std::string proxy;                   ///< may hold "user:password@" (never shown: redact_url)
    std::string proxy_username;
    std::string proxy_password;          ///< a secret: never in a message, the log or --json
    std::string username;                ///< HTTP authentication for baseurl and gpgkey
    std::string password;                ///< a secret, like proxy_password
    std::string source;                  ///< "FILE" it came from, or "--repofrompath"
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

/// `--repofrompath ID,URL` as dnf takes it (enabled, gpgcheck on). Throws leo::UsageError
/// when it is not "ID,URL" or the URL scheme is not http, https or file.
[[nodiscard]] RepoConfig repo_from_path(const std::string& spec);

} // namespace leo::repo
