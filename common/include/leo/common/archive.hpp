#pragma once
/// tar.gz archives of files under a root, through libarchive.

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace leo::archive {

/// Refuse the symbolic links at and below `paths` (absolute paths inside `root`, e.g.
/// "/home/leo/etc") that lead out of them: a link's target (its text as it is, absolute
/// ones taken from the root, relative ones from the link's directory, the links met on
/// the way followed as the kernel would under a chroot) must be one of `paths` or below
/// one (a dangling link, or one that points at itself, is kept as it is). Reads only.
/// Throws leo::RefusedError naming the link, its target and the way out:
/// "symbolic link ROOT/home/leo/etc/x -> ../../../etc/passwd cannot be saved in a restore
/// point: it points to /etc/passwd, outside the directories a restore point saves (...)".
void check_links(const std::filesystem::path& root, const std::vector<std::string>& paths);

/// Write a gzip-compressed POSIX tar of `paths` (absolute paths inside `root`, e.g.
/// "/home/leo/etc"; directories are archived recursively, missing paths skipped) to
/// `out`, with names relative to the root and owners, modes and times kept. Links are
/// archived as links, their target text unchanged, and each is checked as check_links
/// does (leo::RefusedError). `out` is created here with mode 0600 whatever the umask, and
/// must not exist. Returns the archived entry names. Throws leo::SystemError naming the file.
std::vector<std::string> create_tar_gz(const std::filesystem::path& root, const std::vector<std::string>& paths,
                                       const std::filesystem::path& out);

/// The entry names of an archive, read to the end (proves it is complete and readable).
/// Throws leo::SystemError for a truncated or corrupt archive.
[[nodiscard]] std::vector<std::string> list_entries(const std::filesystem::path& archive_file);

/// Check an archive of `paths` before it is extracted under `root`: every entry is one of
/// `paths` or below one, is a file, a directory or a symbolic link (no hard links, devices
/// or FIFOs), and every link leads to one of `paths` as check_links requires (judged with
/// the archive's links in place of those on disk). Reads the archive to its end. Throws
/// leo::RefusedError naming the archive, the entry (and a link's target); leo::SystemError
/// for a damaged archive.
void check_restorable(const std::filesystem::path& archive_file, const std::filesystem::path& root,
                      const std::vector<std::string>& paths);

/// Extract `archive_file` under `root`, restoring owners, modes and times, refusing
/// entries with ".." or absolute names or that go through symlinks. Throws leo::SystemError.
void extract(const std::filesystem::path& archive_file, const std::filesystem::path& root);

/// The contents of the regular files of an archive, by entry name (configuration files:
/// compared with the files on disk before a restore overwrites them). Throws
/// leo::SystemError for a damaged archive or when they add up to more than `limit` bytes.
[[nodiscard]] std::map<std::string, std::string> regular_file_contents(const std::filesystem::path& archive_file,
                                                                       std::size_t limit);

} // namespace leo::archive
