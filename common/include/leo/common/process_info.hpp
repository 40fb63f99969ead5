#pragma once
/// What a process of the live system is, read from /proc (proc(5)): whether it runs, its
/// uids, its program and command line, its start time. For deciding whether a pid that a
/// file names (postmaster.pid, rpm's lock) is the process the file means, and for naming
/// it in messages. /proc is the live system's, never a root's.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace leo::proc {

/// One process as /proc/PID describes it.
struct ProcessInfo {
    pid_t pid = 0;
    char state = '?';                      ///< /proc/PID/stat field 3: R, S, D, Z (zombie), X (dead), ...
    uid_t real_uid = 0;                    ///< /proc/PID/status "Uid:" first field
    uid_t effective_uid = 0;               ///< /proc/PID/status "Uid:" second field
    std::string comm;                      ///< /proc/PID/stat field 2 (at most 15 bytes)
    std::vector<std::string> argv;         ///< /proc/PID/cmdline; empty for kernel threads and zombies
    std::optional<std::int64_t> start_time; ///< epoch seconds (boot time + field 22), nullopt when unknown

    /// Exists and has not ended (a zombie, which still answers kill(pid, 0), has ended).
    [[nodiscard]] bool running() const { return state != 'Z' && state != 'X'; }
    /// The program: the last component of argv[0] ("sleep"), or "[comm]" when there is no
    /// command line (a kernel thread). Control characters escaped (leo::printable).
    [[nodiscard]] std::string program() const;
    /// The command line, its arguments joined with spaces ("rpm -i foo.rpm"), or "[comm]";
    /// control characters escaped (another user chose it: it must not rewrite a terminal).
    [[nodiscard]] std::string command() const;
};

/// Whether /proc is mounted where this process looks (/proc/self/stat readable): not in a
/// chroot that rpm --root made into a root without /proc (scriptlets run there).
[[nodiscard]] bool proc_mounted();

/// /proc/PID read now, or nullopt when there is no such process (or /proc is not mounted).
/// Never throws. Fields /proc hides (another user's cmdline on a hardened host) stay empty.
[[nodiscard]] std::optional<ProcessInfo> read_process(pid_t pid);

/// True when `pid` exists and is not a zombie: kill(pid, 0) succeeds or fails with EPERM,
/// and /proc/PID/stat (when readable) does not say Z or X.
[[nodiscard]] bool process_running(pid_t pid);

/// The system's boot time in epoch seconds ("btime" of /proc/stat), or nullopt.
[[nodiscard]] std::optional<std::int64_t> boot_time();

// ---- pure parsers (unit-tested on fixed text) ----

/// From /proc/PID/stat text: the state (field 3), comm (field 2, between the first "(" and
/// the last ")": a comm may hold spaces and parentheses) and starttime (field 22, clock
/// ticks after boot). Nullopt when the text is malformed.
struct StatFields {
    char state = '?';
    std::string comm;
    std::uint64_t start_ticks = 0;
};
[[nodiscard]] std::optional<StatFields> parse_stat(std::string_view text);

/// The "btime N" line of /proc/stat text, or nullopt.
[[nodiscard]] std::optional<std::int64_t> parse_btime(std::string_view text);

/// Real and effective uid from the "Uid:" line of /proc/PID/status text, or nullopt.
[[nodiscard]] std::optional<std::pair<uid_t, uid_t>> parse_status_uids(std::string_view text);

/// /proc/PID/cmdline text (NUL-separated, usually NUL-terminated) as arguments.
[[nodiscard]] std::vector<std::string> parse_cmdline(std::string_view text);

} // namespace leo::proc
