#pragma once
/// The logs `leo-installer log list|view|clear` and the support bundle know.
///
/// | name        | file (inside the root)                      | written by                        |
/// |-------------|---------------------------------------------|-----------------------------------|
/// | broker      | /home/leo/logs/httpd.log                    | the broker's web server (leo)     |
/// | queue       | /home/leo/logs/queue.log                    | the broker's work queue (leo)     |
/// | database    | /home/leo/pgsql/postgresql.log              | the internal PostgreSQL (leo)     |
/// | installer   | /var/log/leo-installer/installer.log        | leo-installer (root)              |
/// | NAME        | /home/leo/logs/NAME.log, any other there    | the broker (leo)                  |
///
/// The broker's daemons write their output to /home/leo/logs (the broker package makes it,
/// owned by leo; the supervisor appends each component's output to COMPONENT.log).
/// Everything goes through leo::fs::SystemRoot: /home/leo/logs and /home/leo/pgsql are
/// leo's, so a symbolic link there is never followed (SystemError naming it), a file with
/// a second hard link is never truncated, and a FIFO or device is never opened.

#include "leo/common/system_root.hpp"

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace leo::installer {

inline constexpr const char* k_installer_log = "/var/log/leo-installer/installer.log";
inline constexpr const char* k_database_log = "/home/leo/pgsql/postgresql.log";

struct LogFile {
    std::string name;         ///< "broker", "installer", ... (what `log view NAME` takes)
    std::string path;         ///< inside the root ("/home/leo/logs/httpd.log")
    std::string description;  ///< "the broker's web server"
    bool exists = false;      ///< a regular file is there (lstat: a link is not one)
    std::uint64_t size = 0;   ///< bytes
    std::time_t modified = 0; ///< mtime, seconds since the epoch (UTC)
    std::string problem;      ///< why it cannot be used ("a symbolic link", "a FIFO"); "" when fine
};

/// The known logs of the root, in the order of the table above (the fixed ones first,
/// then the other *.log files of /home/leo/logs by name), each with its size and time.
/// Reads only (lstat, readdir). Throws leo::SystemError when /home/leo/logs cannot be listed.
[[nodiscard]] std::vector<LogFile> list_logs(const fs::SystemRoot& root);

/// The log called `name`. Throws leo::UsageError naming it and every known name
/// ("unknown log 'x': the logs are broker, queue, database, installer").
[[nodiscard]] LogFile find_log(const fs::SystemRoot& root, const std::string& name);

/// The end of a log: at most `max_bytes` of it, starting after a newline when it was cut.
struct LogTail {
    std::string text;
    std::uint64_t size = 0;    ///< the whole file's size when it was read
    std::uint64_t skipped = 0; ///< bytes before `text` that were left out (0: the whole file)
};

/// The last `max_bytes` of the log file `inside` (SystemRoot::open_read: no unsafe link, a
/// regular file), cut after a newline when it does not start at the beginning. Throws
/// leo::SystemError (missing, a link, not regular, unreadable).
[[nodiscard]] LogTail read_tail(const fs::SystemRoot& root, const std::string& inside, std::uint64_t max_bytes);

/// The last `lines` lines of the log file `inside` (the whole file when it has fewer),
/// reading backwards in blocks: as `tail -n`. Throws leo::SystemError as read_tail().
[[nodiscard]] std::string read_last_lines(const fs::SystemRoot& root, const std::string& inside, std::size_t lines);

/// Hand the whole log file `inside` to `sink` in blocks of at most 64 KiB, from one
/// descriptor opened as read_tail() opens it. Throws leo::SystemError.
void read_all(const fs::SystemRoot& root, const std::string& inside, const std::function<void(std::string_view)>& sink);

/// Truncate the log `log` to 0 bytes in place (its owner, mode and inode kept, so the
/// daemon writing it with O_APPEND goes on writing into it). Opened through
/// SystemRoot::open_append with its current mode: a symbolic link, a FIFO, a device or a
/// file with a second hard link is refused (leo::SystemError naming it) and nothing is
/// changed. Returns the bytes it held; 0 and nothing done when it does not exist.
std::uint64_t clear_log(const fs::SystemRoot& root, const LogFile& log);

} // namespace leo::installer
