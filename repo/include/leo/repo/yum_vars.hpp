#pragma once
/// yum's substitution variables ($basearch, $releasever, $infra, $YUM0, ...) as a stock
/// CentOS 7 (yum 3.4.3) defines them, and their substitution into configuration values.

#include "leo/common/system_root.hpp"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace leo::repo {

/// Variable name (lower case, as yum looks them up) -> value.
using YumVars = std::map<std::string, std::string, std::less<>>;

/// The variables yum defines for `root`, a later source replacing an earlier one (yum's
/// config.py order):
/// 1. `$yum0`..`$yum9` from the environment variables YUM0..YUM9 (set and non-empty);
/// 2. `$basearch` and `$arch`: "x86_64" (the broker is built for x86_64 only);
/// 3. `$releasever`: the version of the package in the root's rpmdb that provides one of
///    `distroverpkg` ([main] distroverpkg; when empty, yum's default list
///    "system-release(releasever)", "redhat-release", then "centos-release"), the first
///    found: the package's own version, or the version of that provide when it is
///    versioned and the provide is not the package's name (yum's _getsysver: CentOS 7's
///    centos-release-7-9.2009.1 gives "7"); else the major of VERSION_ID in
///    ROOT/etc/os-release; else "7", with a warning appended to `warnings`;
/// 4. every file of ROOT/etc/dnf/vars/, then of ROOT/etc/yum/vars/ (so yum's win): the file
///    name is the variable, its first line (without the newline) the value, as yum's
///    readVariablesFromDir (a file `releasever` there overrides 3). Names starting with "."
///    and entries that are not regular files are skipped.
/// Everything is read through `root`. Throws leo::RepoError naming the file when a vars
/// file cannot be read (an unsafe link, over 64 KiB, I/O). An rpmdb that cannot be read is
/// a warning, and the fallbacks of 3 apply.
[[nodiscard]] YumVars load_yum_vars(const leo::fs::SystemRoot& root, const std::vector<std::string>& distroverpkg,
                                    std::vector<std::string>& warnings);

/// The variables of a root that has no files: only 1 and 2 above, and `$releasever` "7"
/// (what parse_repo_config uses for a text in memory).
[[nodiscard]] YumVars builtin_yum_vars();

/// `text` with each `$name` and `${name}` replaced by its value in `vars`; a name is ASCII
/// letters, digits and "_" and is looked up lower-cased (yum's varReplace). A variable not in
/// `vars` is left as written, and its name as written ("$infra" or "${infra}") is appended to
/// `unknown` (when not null; once each). A "$" not followed by a name stays.
[[nodiscard]] std::string substitute_vars(std::string_view text, const YumVars& vars,
                                          std::vector<std::string>* unknown = nullptr);

} // namespace leo::repo
