#pragma once
/// Run a program and collect its exit status and output.
///
/// Output is collected in anonymous memory files, not pipes, so a daemon the child
/// leaves behind (pg_ctl's postgres) cannot hold the caller's pipe open. The child gets
/// no other descriptor of ours, stdin is /dev/null, SIGXFSZ back to its default (the
/// program ignores it), and the environment is ours plus `env` (a value replaces ours). `uid`/`gid` switch identity (with no supplementary
/// groups) before exec. The child is killed (SIGKILL, PR_SET_PDEATHSIG) when the calling
/// thread dies, so a killed installer leaves no pg_dump/pg_restore working on; daemons it
/// starts (pg_ctl's postgres) are their children's children and live on.

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <sys/types.h>

namespace leo::subprocess {

struct Options {
    std::map<std::string, std::string> env;  ///< added to / replacing the caller's environment
    bool clean_env = false;                  ///< true: `env` only, nothing inherited (hooks run as root)
    std::optional<uid_t> uid;                ///< run as this uid (requires root)
    std::optional<gid_t> gid;                ///< run as this gid (requires root)
    std::optional<std::filesystem::path> cwd;
    /// The child's standard input (from memory, never a file on disk); nullopt: /dev/null.
    /// For secrets a child reads on stdin (`switch-database --connection_file -`).
    std::optional<std::string> input;
    std::chrono::milliseconds timeout{600000}; ///< the process group is killed (SIGKILL) after this long
};

struct Result {
    int exit_code = -1;      ///< exit status, or -1 when killed by a signal
    int signal = 0;          ///< the terminating signal, 0 when it exited
    bool timed_out = false;
    std::string out;         ///< standard output
    std::string err;         ///< standard error
    [[nodiscard]] bool ok() const { return exit_code == 0; }
};

/// Run `argv` (argv[0] is a path or a name looked up in PATH) and wait for it.
/// Throws leo::SystemError when it cannot be started (fork or exec failed: the
/// message names the program and the reason).
[[nodiscard]] Result run(const std::vector<std::string>& argv, const Options& options = {});

/// Start `argv` as a daemon and return its pid without waiting: a new session (setsid),
/// stdin /dev/null, stdout and stderr appended to `output` (opened by the child *after*
/// it switched to `options.uid`/`gid`, with O_NOFOLLOW and O_NONBLOCK, created 0600 when
/// missing; a FIFO or socket there is refused instead of blocking the start), no
/// other descriptor of ours, default signal dispositions and an empty signal mask;
/// `options.env` and `options.cwd` as for run() (`timeout` is ignored). The daemon is our
/// child until we exit (reap it with waitpid when it ends while we run) and is not
/// killed with us. Throws leo::SystemError naming the program when it cannot be started
/// (fork, credentials, the output file, chdir or exec failed).
[[nodiscard]] pid_t spawn_detached(const std::vector<std::string>& argv, const Options& options,
                                   const std::filesystem::path& output);

/// Run `work` in a forked child with the identity `uid`:`gid` (setgroups(0), setgid,
/// setuid: no supplementary groups, no way back to root) and wait for it: least
/// privilege for work on files another account owns. An exception `work` throws comes
/// back as a leo::SystemError with the same message (the child's memory changes are
/// lost: report through files or exceptions only). The child is killed (SIGKILL) when
/// the calling thread dies. Throws leo::SystemError when the child cannot be started,
/// cannot take the identity, or dies of a signal. Call it from a single-threaded
/// process (the child runs C++ code after fork()).
void run_as(uid_t uid, gid_t gid, const std::function<void()>& work);

/// `argv` joined for messages, each word quoted when it holds spaces.
[[nodiscard]] std::string command_line(const std::vector<std::string>& argv);

/// The last non-empty line of `text`, trimmed (a short reason for an error message).
[[nodiscard]] std::string last_line(const std::string& text);

} // namespace leo::subprocess
