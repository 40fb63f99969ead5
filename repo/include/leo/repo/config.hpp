#pragma once
/// Repository definitions in yum's format: ROOT/etc/yum.conf [main] (and dnf.conf), then
/// ROOT/etc/yum.repos.d/*.repo (INI, parsed with inih), with yum's variables (yum_vars.hpp).

#include "leo/common/system_root.hpp"

#include <cstdint>
#include <map>
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
    std::vector<std::string> excludes;   ///< exclude= / excludepkgs= globs (package_spec.hpp), after [main]'s
    std::vector<std::string> includepkgs;///< includepkgs= globs (the section's, else [main]'s); empty: every package
    int priority = 99;                   ///< lower wins when several repositories offer the broker (dnf's rule)
    int cost = 1000;                     ///< among equal priorities and versions, the lower cost is used
    /// skip_if_unavailable as written (the section's, else [main]'s); unset: a repository
    /// whose metadata cannot be loaded is skipped with a warning unless it was named with
    /// --repo or --repofrompath (installer's update_detail::available).
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
    /// `proxy=_none_`: no proxy at all, not even the environment's http_proxy/https_proxy
    /// (yum's rule; without a proxy setting, libcurl and yum use the environment's).
    bool no_proxy = false;
    std::string proxy_username;
    std::string proxy_password;          ///< a secret: never in a message, the log or --json
    std::string username;                ///< HTTP authentication for baseurl and gpgkey
    std::string password;                ///< a secret, like proxy_password
    std::string source;                  ///< "FILE" it came from, or "--repofrompath"
    /// About this section, one line each with file and line: each option this tool does not
    /// act on ("FILE:LINE: [id] option 'x' is not supported; ignored") and each unknown variable
    /// ("FILE:LINE: [id] unknown variable $x in baseurl; left as written"). [main]'s are in
    /// YumConfig::warnings.
    std::vector<std::string> warnings;
};

/// What yum reads before it uses a repository: the [main] defaults, the variables, the
/// repository sections (load_yum_config).
struct YumConfig {
    std::vector<RepoConfig> repos;       ///< every repository, enabled or not, in reading order
    /// Warnings about [main] (an option this tool does not act on, an unknown variable), about
    /// $releasever, and about dnf.conf, one line each ("FILE:LINE: [main] option 'x' is not
    /// supported; ignored"). Each repository's own warnings are in RepoConfig::warnings.
    std::vector<std::string> warnings;
    std::vector<std::string> reposdirs;  ///< the directories read, inside the root, in order
    std::map<std::string, std::string, std::less<>> vars;  ///< the substitution variables used (yum_vars.hpp)
};

/// Read the root's yum configuration as yum 3 (CentOS 7) does, everything through `root`
/// (no unsafe link is followed; a file over 1 MiB is refused):
/// - [main] of ROOT/etc/dnf/dnf.conf, then of ROOT/etc/yum.conf (yum's system: its values win
///   where both set a key); either may be missing.
/// - Variables: load_yum_vars (distroverpkg from [main]); every value of [main] and of each
///   section gets `$var` / `${var}` replaced. An unknown variable is left as written, as yum
///   does, and named in a warning ("FILE:LINE: [id] unknown variable $x in baseurl; left as
///   written"); in password and proxy_password it is left without a warning (a secret is
///   never quoted).
/// - [main] options each repository inherits unless its section sets them (yum's
///   RepoConf Inherit): gpgcheck, repo_gpgcheck, skip_if_unavailable, metadata_expire,
///   timeout, retries, minrate, sslverify, sslcacert, sslclientcert, sslclientkey, proxy,
///   proxy_username, proxy_password, username, password, includepkgs; exclude/excludepkgs of
///   [main] are added before the section's own (yum's global exclude).
/// - [main] options that decide what is read: reposdir (directories separated by
///   whitespace or commas, absolute inside the root; default /etc/yum.repos.d and
///   /etc/yum/repos.d; a missing one is skipped, as yum does) and distroverpkg.
/// - [main] options that change nothing in what we fetch, trust or choose are accepted
///   silently (config.cpp's k_main_without_effect): yum's cachedir, persistdir, keepcache,
///   debuglevel, errorlevel, logfile, exactarch, obsoletes, plugins, pluginpath,
///   pluginconfpath, installonly_limit, installonlypkgs, bugtracker_url, tolerant,
///   assumeyes, assumeno, alwaysprompt, color and color_*, diskspacecheck, history_*,
///   protected_packages, protected_multilib, multilib_policy, recent, showdupesfromrepos,
///   syslog_*, mdpolicy, deltarpm, deltarpm_*, group_package_types, groupremove_leaf_only,
///   upgrade_requirements_on_install, clean_requirements_on_remove, skip_broken,
///   localpkg_gpgcheck (a local package is always verified here), usr_w_check, rpmverbosity,
///   exit_on_lock, metadata_timer_sync, installroot (--root decides), config_file_path,
///   keepalive, http_caching, failovermethod, enablegroups, mirrorlist_expire, fssnap_*,
///   and dnf's best, install_weak_deps, max_parallel_downloads, fastestmirror, zchunk,
///   countme. Any other [main] option is named in a warning (file, line, key).
/// - Repositories: the sections of yum.conf other than [main] (or of dnf.conf when there is
///   no yum.conf; dnf.conf's are otherwise named in a warning), then every *.repo file of
///   each reposdir in name order, each section in file order. A [main] in a .repo file is
///   ignored, as yum does.
/// Section values follow parse_repo_config's rules. Throws leo::RepoError naming file and
/// line for a syntax error, a bad value (in [main] too: "FILE:LINE: [main] timeout=x: not a
/// timeout (seconds, from 1 to 3600)"), a reposdir that is not absolute or not a directory,
/// an enabled section without baseurl/mirrorlist/metalink, or the same id twice. URLs in
/// messages are redacted (redact_url).
[[nodiscard]] YumConfig load_yum_config(const leo::fs::SystemRoot& root);

/// load_yum_config(root).repos: the repositories alone, without the warnings of [main]
/// and of the variables (for tools and tests; the commands use load_yum_config and show
/// every warning).
[[nodiscard]] std::vector<RepoConfig> load_repo_configs(const leo::fs::SystemRoot& root);

/// The [sections] of one .repo file (or yum.conf: its [main] is ignored, as in a .repo
/// file) held in `text`, in order, with no [main] defaults and builtin_yum_vars()
/// (yum_vars.hpp); `file` names it in errors and in RepoConfig::source. Values follow yum:
/// booleans 1/0/yes/no/true/false/on/off; baseurl, gpgkey, exclude and includepkgs lists
/// separated by whitespace or commas (continuation lines allowed). Throws leo::RepoError
/// naming file and line for a syntax error, a bad boolean or number, an enabled section
/// without baseurl, mirrorlist or metalink, or the same id twice.
[[nodiscard]] std::vector<RepoConfig> parse_repo_config(const std::string& text, const std::string& file);

/// `--repofrompath ID,URL` as dnf takes it (enabled, gpgcheck on): URL is http://, https://,
/// file://, or a plain directory (relative to the working directory, made a file:// URL).
/// Throws leo::UsageError when it is not "ID,URL", the scheme is another, or the directory
/// does not exist.
[[nodiscard]] RepoConfig repo_from_path(const std::string& spec);

} // namespace leo::repo
