#include "leo/common/subprocess.hpp"

#include "leo/common/error.hpp"

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <thread>

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ;

namespace leo::subprocess {
namespace {

std::string slurp(int fd) {
    std::string out;
    if (::lseek(fd, 0, SEEK_SET) < 0) return out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

void close_from(int lowfd) {
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, lowfd, ~0U, 0) == 0) return;
#endif
    long max = ::sysconf(_SC_OPEN_MAX);
    for (long fd = lowfd; fd < (max > 0 ? max : 1024); ++fd) ::close(static_cast<int>(fd));
}

[[noreturn]] void child_fail(int errpipe, int err) {
    (void)!::write(errpipe, &err, sizeof err);
    ::_exit(127);
}

/// The caller's environment with `extra` added or replacing (built before fork); only
/// `extra` when `clean`.
std::vector<std::string> merged_environment(const std::map<std::string, std::string>& extra, bool clean = false) {
    std::vector<std::string> env_strings;
    for (char** e = clean ? nullptr : environ; e != nullptr && *e != nullptr; ++e) {
        std::string kv(*e);
        auto eq = kv.find('=');
        if (eq != std::string::npos && extra.count(kv.substr(0, eq)) != 0) continue;
        env_strings.push_back(std::move(kv));
    }
    for (const auto& [k, v] : extra) env_strings.push_back(k + "=" + v);
    return env_strings;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (auto& s : strings) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

/// setgroups(0) + setgid + setuid in a child; false (errno set) on failure.
bool take_identity(std::optional<uid_t> uid, std::optional<gid_t> gid) {
    if (gid && (::setgroups(0, nullptr) != 0 || ::setgid(*gid) != 0)) return false;
    if (uid && ::setuid(*uid) != 0) return false;
    return true;
}

void write_all_fd(int fd, const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        done += static_cast<size_t>(n);
    }
}

std::string read_all_fd(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

int wait_for(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return status;
}

} // namespace

std::string command_line(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) {
        if (!s.empty()) s += ' ';
        if (a.find_first_of(" \t'\"") != std::string::npos) s += "'" + a + "'";
        else s += a;
    }
    return s;
}

std::string last_line(const std::string& text) {
    size_t end = text.find_last_not_of(" \t\r\n");
    if (end == std::string::npos) return {};
    size_t start = text.rfind('\n', end);
    start = (start == std::string::npos) ? 0 : start + 1;
    std::string line = text.substr(start, end - start + 1);
    size_t first = line.find_first_not_of(" \t");
    return first == std::string::npos ? std::string{} : line.substr(first);
}

Result run(const std::vector<std::string>& argv, const Options& options) {
    if (argv.empty()) throw SystemError("subprocess: empty command");
    int out_fd = ::memfd_create("leo-out", MFD_CLOEXEC);
    int err_fd = ::memfd_create("leo-err", MFD_CLOEXEC);
    int errpipe[2] = {-1, -1};
    if (out_fd < 0 || err_fd < 0 || ::pipe2(errpipe, O_CLOEXEC) != 0) {
        int e = errno;
        if (out_fd >= 0) ::close(out_fd);
        if (err_fd >= 0) ::close(err_fd);
        throw system_error("cannot start " + argv[0], e);
    }
    // Standard input from memory: written whole before the child starts, so no pipe can fill.
    int in_fd = -1;
    // Everything opened so far is closed when the child cannot be started.
    const auto fail_to_start = [&](int e) {
        if (in_fd >= 0) ::close(in_fd);
        ::close(out_fd);
        ::close(err_fd);
        ::close(errpipe[0]);
        ::close(errpipe[1]);
        throw system_error("cannot start " + argv[0], e);
    };
    if (options.input) {
        in_fd = ::memfd_create("leo-in", MFD_CLOEXEC);
        const std::string& in = *options.input;
        std::size_t done = 0;
        while (in_fd >= 0 && done < in.size()) {
            const ssize_t n = ::write(in_fd, in.data() + done, in.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            done += static_cast<std::size_t>(n);
        }
        if (in_fd < 0 || done != in.size() || ::lseek(in_fd, 0, SEEK_SET) != 0) fail_to_start(errno);
    }

    // Prepare everything the child needs before fork (no allocation after fork).
    std::vector<std::string> env_strings = merged_environment(options.env, options.clean_env);
    std::vector<char*> envp = pointers(env_strings);
    std::vector<std::string> args = argv;
    std::vector<char*> argp = pointers(args);
    const std::string cwd = options.cwd ? options.cwd->string() : std::string{};

    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) fail_to_start(errno);
    if (pid == 0) {
        ::setpgid(0, 0);
        int devnull = in_fd >= 0 ? in_fd : ::open("/dev/null", O_RDONLY);
        if (devnull < 0 || ::dup2(devnull, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0)
            child_fail(errpipe[1], errno);
        if (errpipe[1] != 3) {
            if (::dup2(errpipe[1], 3) < 0) child_fail(errpipe[1], errno);
            errpipe[1] = 3;
        }
        ::fcntl(3, F_SETFD, FD_CLOEXEC);
        close_from(4);
        // Handlers are reset by exec; what the program ignores (SIGXFSZ, cli.cpp) is not.
        ::signal(SIGXFSZ, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        if (options.gid) {
            if (::setgroups(0, nullptr) != 0 || ::setgid(*options.gid) != 0) child_fail(3, errno);
        }
        if (options.uid && ::setuid(*options.uid) != 0) child_fail(3, errno);
        // Killed with us (after the credential change, which would clear it): a
        // pg_restore or rpm helper must not go on working after the installer was killed.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) child_fail(3, errno);
        ::execvpe(argp[0], argp.data(), envp.data());
        child_fail(3, errno);
    }
    ::close(errpipe[1]);
    if (in_fd >= 0) ::close(in_fd);
    int child_errno = 0;
    ssize_t got;
    do {
        got = ::read(errpipe[0], &child_errno, sizeof child_errno);
    } while (got < 0 && errno == EINTR);
    ::close(errpipe[0]);

    Result result;
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    auto delay = std::chrono::milliseconds(1);
    for (;;) {
        pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        if (std::chrono::steady_clock::now() >= deadline) {
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            result.timed_out = true;
            break;
        }
        std::this_thread::sleep_for(delay);
        if (delay < std::chrono::milliseconds(50)) delay *= 2;
    }
    result.out = slurp(out_fd);
    result.err = slurp(err_fd);
    ::close(out_fd);
    ::close(err_fd);
    if (got == static_cast<ssize_t>(sizeof child_errno)) {
        throw system_error("cannot run " + argv[0], child_errno);
    }
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
    return result;
}

pid_t spawn_detached(const std::vector<std::string>& argv, const Options& options,
                     const std::filesystem::path& output) {
    if (argv.empty()) throw SystemError("subprocess: empty command");
    int errpipe[2] = {-1, -1};
    if (::pipe2(errpipe, O_CLOEXEC) != 0) throw system_error("cannot start " + argv[0], errno);
    std::vector<std::string> env_strings = merged_environment(options.env, options.clean_env);
    std::vector<char*> envp = pointers(env_strings);
    std::vector<std::string> args = argv;
    std::vector<char*> argp = pointers(args);
    const std::string cwd = options.cwd ? options.cwd->string() : std::string{};
    const std::string out_path = output.string();

    const pid_t pid = ::fork();
    if (pid < 0) {
        const int e = errno;
        ::close(errpipe[0]);
        ::close(errpipe[1]);
        throw system_error("cannot start " + argv[0], e);
    }
    if (pid == 0) {
        // Step numbers tell the parent what failed: 1 identity, 2 output file, 3 chdir, 4 exec.
        auto fail = [&](int step) {
            const int report[2] = {step, errno};
            (void)!::write(errpipe[1], report, sizeof report);
            ::_exit(127);
        };
        ::setsid();
        if (errpipe[1] != 3) {
            if (::dup2(errpipe[1], 3) < 0) ::_exit(127);
            errpipe[1] = 3;
        }
        ::fcntl(3, F_SETFD, FD_CLOEXEC);
        const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull < 0 || ::dup2(devnull, 0) < 0) fail(2);
        close_from(4);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        for (int sig = 1; sig < NSIG; ++sig) {
            if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
        }
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        if (!take_identity(options.uid, options.gid)) fail(1);
        // O_NONBLOCK: a FIFO planted at the log's path (its directory is the account's own)
        // must not block the start forever: a FIFO or a socket is refused.
        const int out = ::open(out_path.c_str(),
                               O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK, 0600);
        struct stat out_st {};
        if (out < 0 || ::fstat(out, &out_st) != 0 || S_ISFIFO(out_st.st_mode) || S_ISSOCK(out_st.st_mode)) {
            if (out >= 0) errno = EINVAL;
            fail(2);
        }
        ::fcntl(out, F_SETFL, ::fcntl(out, F_GETFL) & ~O_NONBLOCK);
        if (::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) fail(2);
        if (out > 2) ::close(out);
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) fail(3);
        ::execve(argp[0], argp.data(), envp.data());
        fail(4);
    }
    ::close(errpipe[1]);
    int report[2] = {0, 0};
    ssize_t got;
    do {
        got = ::read(errpipe[0], report, sizeof report);
    } while (got < 0 && errno == EINTR);
    ::close(errpipe[0]);
    if (got == static_cast<ssize_t>(sizeof report)) {
        (void)wait_for(pid);
        switch (report[0]) {
        case 1:
            throw system_error(fmt::format("cannot start {} as uid {} gid {}", argv[0],
                                           options.uid ? static_cast<long>(*options.uid) : -1L,
                                           options.gid ? static_cast<long>(*options.gid) : -1L),
                               report[1]);
        case 2: throw system_error("cannot start " + argv[0] + ": cannot open its output file " + out_path, report[1]);
        case 3: throw system_error("cannot start " + argv[0] + ": cannot change to the directory " + cwd, report[1]);
        default: throw system_error("cannot run " + argv[0], report[1]);
        }
    }
    return pid;
}

void run_as(uid_t uid, gid_t gid, const std::function<void()>& work) {
    int pipefd[2] = {-1, -1};
    if (::pipe2(pipefd, O_CLOEXEC) != 0) throw system_error("cannot start a child process", errno);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int e = errno;
        ::close(pipefd[0]);
        ::close(pipefd[1]);
        throw system_error("cannot start a child process", e);
    }
    if (pid == 0) {
        ::close(pipefd[0]);
        int code = 0;
        if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
            write_all_fd(pipefd[1], fmt::format("cannot switch to uid {} gid {}: {}", uid, gid, std::strerror(errno)));
            ::_exit(1);
        }
        // After the credential change, which clears it.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(1);
        try {
            work();
        } catch (const std::exception& e) {
            write_all_fd(pipefd[1], e.what());
            code = 1;
        } catch (...) {
            write_all_fd(pipefd[1], "unknown exception");
            code = 1;
        }
        ::_exit(code);
    }
    ::close(pipefd[1]);
    std::string message = read_all_fd(pipefd[0]);
    ::close(pipefd[0]);
    const int status = wait_for(pid);
    if (status < 0) throw system_error(fmt::format("cannot wait for the child process {}", pid), errno);
    if (WIFSIGNALED(status))
        throw SystemError(fmt::format("the child process working as uid {} was killed by signal {}{}", uid,
                                      WTERMSIG(status), message.empty() ? "" : ": " + message));
    if (!message.empty()) throw SystemError(message);
    if (WEXITSTATUS(status) != 0)
        throw SystemError(fmt::format("the child process working as uid {} exited with status {}", uid,
                                      WEXITSTATUS(status)));
}

} // namespace leo::subprocess
