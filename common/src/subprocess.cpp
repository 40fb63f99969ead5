#include "leo/common/subprocess.hpp"

#include "leo/common/error.hpp"

#include <cerrno>
#include <cstring>
#include <thread>

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/prctl.h>
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

    // Prepare everything the child needs before fork (no allocation after fork).
    std::vector<std::string> env_strings;
    for (char** e = options.clean_env ? nullptr : environ; e != nullptr && *e != nullptr; ++e) {
        std::string kv(*e);
        auto eq = kv.find('=');
        if (eq != std::string::npos && options.env.count(kv.substr(0, eq)) != 0) continue;
        env_strings.push_back(std::move(kv));
    }
    for (const auto& [k, v] : options.env) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = argv;
    std::vector<char*> argp;
    for (auto& a : args) argp.push_back(a.data());
    argp.push_back(nullptr);
    const std::string cwd = options.cwd ? options.cwd->string() : std::string{};

    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        int e = errno;
        ::close(out_fd);
        ::close(err_fd);
        ::close(errpipe[0]);
        ::close(errpipe[1]);
        throw system_error("cannot start " + argv[0], e);
    }
    if (pid == 0) {
        ::setpgid(0, 0);
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull < 0 || ::dup2(devnull, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0)
            child_fail(errpipe[1], errno);
        if (errpipe[1] != 3) {
            if (::dup2(errpipe[1], 3) < 0) child_fail(errpipe[1], errno);
            errpipe[1] = 3;
        }
        ::fcntl(3, F_SETFD, FD_CLOEXEC);
        close_from(4);
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

} // namespace leo::subprocess
