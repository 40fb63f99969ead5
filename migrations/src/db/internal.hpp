// What the internal PostgreSQL's files share (private to migrations/src/db/): paths, limits, the Runner, server control.
#pragma once

#include "leo/common/accounts.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/common/system_root.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/types.h>

namespace leo::migrations::detail {

constexpr const char* k_user = "leo";
constexpr int k_port = 5432;
/// sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
constexpr size_t k_max_socket_path = 108;
/// How long start() waits for the server to accept connections, and stop() for it to end.
constexpr auto k_server_wait = std::chrono::seconds(60);
/// How much of the server log an error quotes from (its last lines).
constexpr off_t k_log_tail_bytes = 64 * 1024;

// Paths inside the root (fs::SystemRoot names them so).
inline const std::filesystem::path k_pgsql_in{fs::SystemRoot::k_pgsql};
inline const std::filesystem::path k_data_in = k_pgsql_in / "data";
inline const std::filesystem::path k_staging_in = k_pgsql_in / "data.init";
inline const std::filesystem::path k_log_in = k_pgsql_in / "postgresql.log";
constexpr auto k_subprocess_timeout = std::chrono::seconds(180);

// ---- pg_programs.cpp ----

/// `s` without leading and trailing blanks (space, tab, CR, LF).
std::string trim(const std::string& s);

std::optional<std::filesystem::path> find_nss_wrapper();

bool is_host_root(const std::filesystem::path& root);

/// How to run PostgreSQL's programs for one root: as leo, with nss_wrapper in a sandbox.
struct Runner {
    std::filesystem::path bindir;
    accounts::User user;
    subprocess::Options options;

    subprocess::Result run(const std::string& program, std::vector<std::string> args) const {
        args.insert(args.begin(), (bindir / program).string());
        return subprocess::run(args, options);
    }
};

/// The root's user leo; throws leo::DatabaseError when it is missing or has uid 0.
accounts::User leo_user(const std::filesystem::path& root);

Runner make_runner(const std::filesystem::path& root);

/// One line saying how a program ended: its last line of output, a timeout or a signal.
std::string output_of(const subprocess::Result& r);

// ---- server_process.cpp ----

/// How far the start time PostgreSQL writes into its lock files (line 3, epoch seconds
/// from time()) may be from the process's start time as /proc gives it (boot time, in
/// whole seconds, plus /proc/PID/stat field 22): the boot time is rounded down and the
/// server reads the clock just after it is exec'd.
constexpr std::int64_t k_start_time_tolerance_s = 3;

/// What a lock file PostgreSQL writes says, judged against the process it names. The files
/// are DATA/postmaster.pid and SOCKETDIR/.s.PGSQL.PORT.lock, both written by the postmaster
/// as "PID\nDATADIR\nSTART_TIME\nPORT\nSOCKETDIR\n..." (PostgreSQL's miscinit.c,
/// CreateLockFile; a standalone backend writes -PID).
struct LockFileVerdict {
    enum class Kind {
        absent, ///< no such file
        ours,   ///< its pid is this data directory's live postmaster (believed)
        stale,  ///< not believed: see `reason`
    };
    Kind kind = Kind::absent;
    pid_t pid = 0;        ///< line 1 (0 when it holds no pid)
    /// Stale: one phrase for messages, "stale postmaster.pid names pid N, which is not
    /// running" (or "... which is a process of uid U (NAME) running PROGRAM", "... which is
    /// not this data directory's server (WHY)"), "stale postmaster.pid holds no pid (...)".
    std::string reason;
    /// Stale, yet its pid is a live postgres of leo working in this data directory (started
    /// at another time than the file says, or a standalone backend): such a file is never
    /// moved aside and the process never signalled.
    bool live_server_here = false;
    std::string content;  ///< the file as read (to notice a change before moving it)
};

/// Judge the lock file `file_in` (inside the root) of the data directory `data_in`: believed
/// only when line 1 is the pid of a live process whose real and effective uid are leo's,
/// whose program is postgres (or postmaster), whose current directory is the data directory
/// (checked when /proc/PID/cwd can be read, which it can as root), and when line 2 names
/// this data directory (same device and inode) and line 3 is the process's start time
/// (within k_start_time_tolerance_s). Never signals or changes anything. Throws
/// leo::SystemError for an unsafe link on the way to the file.
LockFileVerdict examine_lock_file(const fs::SystemRoot& sys, const std::filesystem::path& file_in,
                                  const std::filesystem::path& data_in, const accounts::User& leo);

/// The pid of the postmaster running in `data_in` (a data directory inside the root): the
/// pid of DATA/postmaster.pid when examine_lock_file() believes it; otherwise nullopt.
std::optional<pid_t> running_postmaster(const fs::SystemRoot& sys, const std::filesystem::path& data_in,
                                        const std::optional<accounts::User>& leo);

/// Live (not zombie) processes of uid `uid` running postgres whose current directory is
/// the directory `dir` (its stat): a server of that data directory, or the backends a
/// killed postmaster left. Scans /proc; empty when nothing matches.
std::vector<pid_t> postgres_processes_in(const struct stat& dir, uid_t uid);

/// Start `postgres -D DATA` as leo, detached, output appended to the log; wait until it
/// accepts connections. Returns its pid.
pid_t start_server(const Runner& runner, const fs::SystemRoot& sys, const std::filesystem::path& data_in);

/// Fast shutdown (SIGINT) of the postmaster `pid` of `data_in`, and wait for it to end.
/// Right before the signal it checks again that DATA/postmaster.pid names `pid` and is
/// believed (examine_lock_file); otherwise it signals nothing and returns false. The
/// signal goes through a pidfd where the kernel has them (Linux 5.3), so a pid reused
/// after the check is never signalled. Throws leo::DatabaseError when it does not end
/// within k_server_wait.
bool stop_server(const fs::SystemRoot& sys, const std::filesystem::path& data_in, pid_t pid,
                 const accounts::User& leo);

} // namespace leo::migrations::detail
