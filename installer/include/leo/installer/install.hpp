#pragma once
/// `leo-installer install --rpm FILE`: the first install of the broker into a root.
///
/// Order (verify first, change after): read and verify the package (digests, signature,
/// arch) -> preflight (install profile) -> database prerequisites -> rpm test transaction
/// -> confirmation -> user `leo` -> the rpm transaction -> keep a copy of the RPM ->
/// internal database init/start -> migrations. Every refusal before the confirmation
/// leaves the root exactly as it was.

#include "leo/repo/config.hpp"
#include "leo/repo/metadata.hpp"
#include "leo/preflight/checks.hpp"
#include "leo/rpm/keys.hpp"
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
    /// --refresh / -C (--cacheonly), as dnf: for the metadata (load_metadata) and, with
    /// cache_only, the package too (download_package).
    repo::CachePolicy cache = repo::CachePolicy::normal;
    /// Told each warning about the repositories, once, one line each: the configuration's
    /// (YumConfig::warnings, and RepoConfig::warnings of each repository used), each
    /// repository skipped because its metadata cannot be loaded, and packages left out by
    /// exclude/includepkgs when nothing is left. Optional (nullptr: not shown).
    std::function<void(const std::string&)> on_warning;
    /// Told the progress of each repository's primary download: (repository id, bytes
    /// received, bytes in all or 0). Optional (nullptr: not shown).
    std::function<void(const std::string&, std::uint64_t, std::uint64_t)> on_metadata_progress;
    /// Told each repository read, in order, with its metadata, or nullptr when it was skipped
    /// (its metadata could not be loaded): what check-update's warm answer keeps
    /// (warm_answer.hpp). Optional.
    std::function<void(const repo::RepoConfig&, const repo::Metadata*)> on_loaded;
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

/// The keys of the repository a package came from, for verification and for the NOKEY
/// message (empty for `--rpm FILE`).
struct RepoKeySources {
    std::string repo_id;
    std::string repo_file;                       ///< the .repo file that defines it
    /// Each gpgkey of the repository: (URL, key id shown as yum shows it, "0x6441EDF5").
    std::vector<std::pair<std::string, std::string>> urls;
    std::vector<std::string> armored;            ///< its keys held in memory (not imported yet: a dry run)
};

/// Verify `file` for installation: throws leo::InstallError naming the file, the
/// signature state and the remedy unless it may be installed under `gpgcheck`; also
/// refuses source packages and architectures other than x86_64 and noarch. A NOKEY
/// names the signer's key id and every key source tried (the root's rpmdb and the keys
/// imported there, each --gpgkey file, each gpgkey URL of `repo`) and points at the
/// repository's gpgkey= (yum's "Public key for X is not installed" with the sources).
rpm::VerifyResult verify_for_install(const std::filesystem::path& root, const std::filesystem::path& file,
                                     const std::vector<std::filesystem::path>& gpgkeys, GpgCheck gpgcheck,
                                     const RepoKeySources& repo = {});

/// Import into the rpmdb of `root` the key among `gpgkeys` (armored files) that made the
/// signature `signer_key_id` (its primary key or a subkey), unless the rpmdb has it
/// already: what `install --gpgkey FILE` does after a successful install, so that later
/// upgrades verify with it. Returns the key imported (nullopt when none was needed).
/// Throws leo::RpmError when the import fails.
std::optional<rpm::PublicKey> import_verifying_key(const std::filesystem::path& root,
                                                   const std::vector<std::filesystem::path>& gpgkeys,
                                                   const std::string& signer_key_id);

} // namespace leo::installer
