#pragma once
/// check-update's warm answer: the answer of a check-update run kept with everything it was
/// computed from, and given again without loading the rest of the program while all of it
/// is unchanged (a monitoring check that runs the same command every few minutes).
///
/// `leo-installer` is a small launcher (OpenSSL's libcrypto and libc++ only) that answers from
/// a kept answer when it may, and otherwise executes the full program
/// (../libexec/leo-installer/leo-installer beside it). Its GET of repomd.xml is in a module
/// beside the full program (leo-installer-get.so, installer/src/warm_get.hpp) that brings
/// libcurl: loaded only when an answer needs a GET, on a thread of its own while the inputs
/// are checked; without it (missing, of another build) the full program answers. The full program's check-update keeps
/// an answer (AnswerMaker) when:
/// - it succeeded (exit 0 or 100) and every repository it read loaded (none skipped);
/// - every repository is answerable: baseurl only (a mirrorlist or metalink is read again by
///   the full program), no credentials (no secret is ever written into an answer), sslverify
///   on, and, with repo_gpgcheck, keys from files only;
/// - none of its inputs changed while it ran.
/// The inputs are: the command line (argv after the program name, as given), the working
/// directory, the effective uid, the environment (every variable except a fixed list of
/// terminal and session ones: k_environment_ignored), the full program's file, every path any
/// SystemRoot reached during the run (fs::AccessRecorder: the yum and dnf configuration, the
/// .repo files and their directories, the variables, keys, pins, the metadata cache's
/// entries) and the files of the rpmdb (the installed broker; its -shm and lock files, which
/// readers touch, excepted), each by its identity (fs::file_identity) and, for what the run
/// read or listed, by the SHA-256 of the bytes it read or the names it listed (a file
/// rewritten within one tick of the kernel's clock keeps its times: git's "racy clean" case). The launcher gives the
/// answer again only when every input has the same identity and, for each repository whose
/// metadata the full program would ask for again (past metadata_expire, or --refresh; never
/// with -C), one GET of its first baseurl's repodata/repomd.xml, with the repository's own
/// transfer settings (repo::set_transfer_options), returns the same bytes (SHA-256) as when
/// the answer was kept; a repository with repo_gpgcheck that would be asked again is always
/// the full program's (it fetches repomd.xml.asc again and verifies it: a signature that went
/// bad over the same repomd.xml is its error, and the launcher has no OpenPGP). Anything else (a change, an error, a different byte) runs the full
/// program, which answers and keeps a new answer. The launcher writes nothing; the expiry
/// of the metadata starts again at the next full run (dnf restarts it when repomd.xml is
/// unchanged; so does the full program).
///
/// Where answers are kept: root's in ROOT/var/cache/leo-installer/answers (0700), another
/// user's in their own metadata cache (user_cache_dir), one file per command line
/// (SHA-256 of uid, working directory and arguments), at most k_max_answers of them.

#include "leo/repo/config.hpp"
#include "leo/repo/metadata.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace leo::installer::warm {

/// The newest answers kept per user and root; older ones are removed when a new one is kept.
inline constexpr std::size_t k_max_answers = 16;

/// The metadata cache of a user other than root, as dnf keeps one per user: by the XDG base
/// directory rule, $XDG_CACHE_HOME/leo-installer/R (else $HOME/.cache/leo-installer/R), R the
/// first 16 hex digits of the SHA-256 of the root's absolute path. Computed only (nothing is
/// read or made); nullopt when neither variable gives an absolute path (HOME "/" neither).
[[nodiscard]] std::optional<std::filesystem::path> user_cache_dir(const std::filesystem::path& root);

/// The SHA-256 (hex) of the environment that can change an answer: every variable except
/// those of k_environment_ignored, sorted.
[[nodiscard]] std::string environment_digest();

/// Makes the warm answer of one check-update run of the full program. Live for the whole run
/// (it records, through fs::AccessRecorder, every path the run reaches: only one may live).
class AnswerMaker {
public:
    /// `args`: the arguments after the program name, as given; `root`: --root, resolved;
    /// `policy`: --refresh / -C. Records the rpmdb's files of `root` first. Throws
    /// std::logic_error when another fs::AccessRecorder lives.
    AnswerMaker(std::vector<std::string> args, const std::filesystem::path& root, repo::CachePolicy policy);
    ~AnswerMaker();
    AnswerMaker(const AnswerMaker&) = delete;
    AnswerMaker& operator=(const AnswerMaker&) = delete;

    /// A repository the run read (RepoSelection::on_loaded): `md` null when it was skipped.
    void repo_loaded(const repo::RepoConfig& repo, const repo::Metadata* md);

    /// Keep the answer: what the run wrote on stdout (`out`) and stderr (`err`), and its exit
    /// code. Returns "" when it was kept, otherwise why not ("repository X uses a mirrorlist",
    /// "an input changed while the run read it: FILE", a write error). Never throws: an answer
    /// not kept only makes the next run slower.
    std::string keep(const std::string& out, const std::string& err, int exit_code) noexcept;

private:
    struct State;
    std::unique_ptr<State> m_state;
};

/// The launcher's half: when `argv` is a command line a kept answer was made for and every
/// input is unchanged (see above), writes the kept stderr then stdout and returns the kept
/// exit code. nullopt otherwise (then nothing was written); `program` is the full program
/// the launcher would execute. Never throws; writes nothing to disk.
[[nodiscard]] std::optional<int> answer(int argc, char** argv, const std::filesystem::path& program) noexcept;

} // namespace leo::installer::warm
