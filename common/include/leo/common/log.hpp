#pragma once
/// The installer's log file (`ROOT/var/log/leo-installer/installer.log`).
///
/// Libraries never print to the terminal; they write here. The CLI opens the log once
/// per command with `open_log(root)`; until then, messages are discarded. Each line is
/// "ISO-8601-UTC LEVEL [pid] message". Writing never throws: a log that cannot be
/// written must not stop an install (the terminal still gets the outcome).

#include <filesystem>
#include <string_view>

#include <fmt/format.h>

namespace leo::log {

enum class Level { debug, info, warning, error };

/// Open (create, append) the log under `root`; creates the directory (0750).
/// Returns false when it could not be opened (the reason is not fatal; last_open_error()
/// says it, for the CLI to print: a run without its log must say so).
bool open_log(const std::filesystem::path& root);
/// Why the last open_log() failed ("" when it did not).
[[nodiscard]] std::string last_open_error();
/// Close the log (tests use this between roots).
void close_log();
/// Append one line; flushed immediately.
void write(Level level, std::string_view message);

template <typename... Args> void info(fmt::format_string<Args...> f, Args&&... a) {
    write(Level::info, fmt::format(f, std::forward<Args>(a)...));
}
template <typename... Args> void warning(fmt::format_string<Args...> f, Args&&... a) {
    write(Level::warning, fmt::format(f, std::forward<Args>(a)...));
}
template <typename... Args> void error(fmt::format_string<Args...> f, Args&&... a) {
    write(Level::error, fmt::format(f, std::forward<Args>(a)...));
}

} // namespace leo::log
