#pragma once
/// tar.gz archives of files under a root, through libarchive.

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace leo::archive {

/// Write a gzip-compressed POSIX tar of `paths` (absolute paths inside `root`, e.g.
/// "/home/leo/etc"; directories are archived recursively, missing paths skipped) to
/// `out`, with names relative to the root and owners, modes and times kept.
/// Returns the archived entry names. Throws leo::SystemError naming the file.
std::vector<std::string> create_tar_gz(const std::filesystem::path& root, const std::vector<std::string>& paths,
                                       const std::filesystem::path& out);

/// The entry names of an archive, read to the end (proves it is complete and readable).
/// Throws leo::SystemError for a truncated or corrupt archive.
[[nodiscard]] std::vector<std::string> list_entries(const std::filesystem::path& archive_file);

/// Extract `archive_file` under `root`, restoring owners, modes and times, refusing
/// entries with ".." or absolute names or that go through symlinks. Throws leo::SystemError.
void extract(const std::filesystem::path& archive_file, const std::filesystem::path& root);

/// The contents of the regular files of an archive, by entry name (configuration files:
/// compared with the files on disk before a restore overwrites them). Throws
/// leo::SystemError for a damaged archive or when they add up to more than `limit` bytes.
[[nodiscard]] std::map<std::string, std::string> regular_file_contents(const std::filesystem::path& archive_file,
                                                                       std::size_t limit);

} // namespace leo::archive
