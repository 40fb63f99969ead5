#pragma once
/// File helpers: paths under a root, whole-file reads, atomic writes.

#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>

namespace leo::fs {

/// `path` (absolute, e.g. "/home/leo") resolved under `root` (e.g. "/tmp/r" -> "/tmp/r/home/leo").
/// `root` "/" returns `path` unchanged.
[[nodiscard]] std::filesystem::path under_root(const std::filesystem::path& root,
                                               const std::filesystem::path& path);

/// The whole file as bytes. Throws leo::SystemError naming the path when it cannot be read.
[[nodiscard]] std::string read_file(const std::filesystem::path& path);
/// The whole file, or nullopt when it does not exist or cannot be read.
[[nodiscard]] std::optional<std::string> try_read_file(const std::filesystem::path& path);

/// Write `content` to `path` atomically: a temporary file in the same directory,
/// fsync, rename over `path`, fsync the directory. `mode` is the new file's mode.
/// Throws leo::SystemError.
void write_file_atomic(const std::filesystem::path& path, const std::string& content,
                       mode_t mode = 0644);

/// write_file_atomic() with the new file owned by `uid`:`gid` (set on the temporary file
/// before the rename, so the file never exists with another owner). Needs root.
void write_file_atomic(const std::filesystem::path& path, const std::string& content, mode_t mode, uid_t uid,
                       gid_t gid);

/// The nearest ancestor of `path` (or `path` itself) that exists; "/" at worst.
[[nodiscard]] std::filesystem::path nearest_existing_ancestor(const std::filesystem::path& path);

/// Copy `from` to `to` durably (write to a temporary file, fsync, rename). Throws leo::SystemError.
void copy_file_durable(const std::filesystem::path& from, const std::filesystem::path& to,
                       mode_t mode = 0644);

} // namespace leo::fs
