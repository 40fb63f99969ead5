#pragma once
/// `leo-installer install --rpm FILE`: the first install of the broker into a root.
///
/// Order (verify first, change after): read and verify the package (digests, signature,
/// arch) -> preflight (install profile) -> database prerequisites -> rpm test transaction
/// -> confirmation -> user `leo` -> the rpm transaction -> keep a copy of the RPM ->
/// internal database init/start -> migrations. Every refusal before the confirmation
/// leaves the root exactly as it was.

#include "leo/repo/config.hpp"
#include "leo/preflight/checks.hpp"
#include "leo/rpm/package.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace leo::installer {

enum class GpgCheck { yes, no };

/// Which repositories to ask: all enabled ones of the root's yum configuration
/// (repo::load_yum_config: yum.conf's sections and every reposdir), or only `ids`
/// (`--repo ID`, which also enables a disabled one, as dnf does), plus `extra`
/// (`--repofrompath`).
struct RepoSelection {
    std::vector<std::string> ids;
    std::vector<repo::RepoConfig> extra;
    /// Told each warning about the repositories, once, one line each: the configuration's
    /// (YumConfig::warnings, and RepoConfig::warnings of each repository used), each
    /// repository skipped because its metadata cannot be loaded, and packages left out by
    /// exclude/includepkgs when nothing is left. Optional (nullptr: not shown).
    std::function<void(const std::string&)> on_warning;
};


struct InstallRequest {
    std::filesystem::path root = "/";
    /// The package file (--rpm FILE, or FILE.rpm); empty: the broker package is taken from
    /// the repositories (`repos`), the newest or the one `version` names, downloaded and
    /// verified through the same staging as `upgrade`.
    std::filesystem::path package_file;
    std::optional<std::string> version;           ///< --version: V, V-R, E:V-R or a NEVRA
    RepoSelection repos;                          ///< --repo ID, --repofrompath ID,URL|DIR
    std::vector<std::filesystem::path> gpgkeys;   ///< --gpgkey files (armored)
    GpgCheck gpgcheck = GpgCheck::yes;            ///< --nogpgcheck turns it off
    std::map<std::string, std::string> skips;     ///< preflight --skip ID --reason TEXT
    /// The leo-installer program that ROOT/home/leo/bin/switch_database.pl links to (the
    /// documented CLI is the same binary, which knows its name); empty: no link. A file
    /// that is not a symbolic link is left alone (with a warning).
    std::filesystem::path switch_database_program;
};

/// How the library talks to its caller (it never prints).
struct InstallCallbacks {
    std::function<void(const std::string&)> on_step;     ///< a step starts ("verifying ...")
    std::function<void(const std::string&)> on_warning;  ///< a warning to show
    std::function<void(const preflight::Report&)> on_preflight;
    /// Ask before the first change; false stops with nothing changed.
    std::function<bool(const std::string&)> confirm;
    std::function<void(std::uint64_t, std::uint64_t)> on_progress; ///< rpm payload bytes done/total
    std::function<void(std::uint64_t, std::uint64_t)> on_download; ///< package download bytes done/total
};

struct InstallOutcome {
    enum class Kind { installed, completed, nothing_to_do } kind = Kind::installed;
    rpm::VerifyResult verification;
    bool user_created = false;
    bool database_initialised = false;
    std::vector<std::string> migrations_applied;
    std::optional<std::string> schema_version;
};

/// Run the install. Throws leo::UsageError (bad root), leo::RefusedError (preflight
/// inhibitor, declined confirmation), leo::InstallError with the cause nested (package
/// rejected, transaction or database failure; the message says what state the root is in
/// and what to do).
InstallOutcome install(const InstallRequest& request, const InstallCallbacks& callbacks);

/// The root as an absolute path; throws leo::UsageError when it is not a directory.
[[nodiscard]] std::filesystem::path checked_root(const std::filesystem::path& root);

/// Verify `file` for installation: throws leo::InstallError naming the file, the
/// signature state and the remedy unless it may be installed under `gpgcheck`; also
/// refuses source packages and architectures other than x86_64 and noarch.
rpm::VerifyResult verify_for_install(const std::filesystem::path& root, const std::filesystem::path& file,
                                     const std::vector<std::filesystem::path>& gpgkeys, GpgCheck gpgcheck);

} // namespace leo::installer
