#pragma once
/// The commands a message tells the administrator to run, spelled for the root the run was
/// given: `leo-installer rollback ID --root /mnt/sysimage` when it was not "/", so a hint can
/// be pasted as it is (for the root it names, not the host's).

#include <filesystem>
#include <string>
#include <string_view>

namespace leo {

/// Set once by the CLI after parsing --root (the canonical path; "/" by default).
void set_hint_root(const std::filesystem::path& root);

/// "`leo-installer ARGS`" with " --root R" appended when the hint root is not "/"
/// (R quoted in single quotes when it holds a character a shell would read). `args` is the
/// subcommand and its arguments ("rollback 20261201-1").
[[nodiscard]] std::string command_hint(std::string_view args);

/// " --root R" (or "" for "/"), for hints of other tools that take the same option
/// (`rpm --root R ...`).
[[nodiscard]] std::string root_option();

} // namespace leo
