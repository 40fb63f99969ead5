#pragma once
/// A handle that stays on one process of the live system, for signalling a process a file
/// names (a pid file) without signalling another that took its pid: a pidfd
/// (pidfd_open(2), Linux 5.3 and later) refers to the process it was opened on, whatever
/// happens to the pid afterwards. Open it first, check the identity (/proc/PID: start time,
/// uid) while holding it, then signal through it: the check and the signal are about the
/// same process. On a kernel without pidfd_open (ENOSYS: EL7's 3.10) it falls back to the
/// pid and kill(2), and the caller should check the identity again before each signal.

#include <chrono>
#include <optional>

#include <sys/types.h>

namespace leo::proc {

class ProcessHandle {
public:
    /// A handle on `pid`: nullopt when there is no such process (ESRCH). Throws
    /// leo::SystemError for another failure of pidfd_open (EMFILE, ...).
    [[nodiscard]] static std::optional<ProcessHandle> open(pid_t pid);

    ProcessHandle(const ProcessHandle&) = delete;
    ProcessHandle& operator=(const ProcessHandle&) = delete;
    ProcessHandle(ProcessHandle&& other) noexcept;
    ProcessHandle& operator=(ProcessHandle&& other) noexcept;
    ~ProcessHandle();

    [[nodiscard]] pid_t pid() const { return m_pid; }
    /// Whether signals go through a pidfd (false: the kill(2) fallback).
    [[nodiscard]] bool has_pidfd() const { return m_fd >= 0; }
    /// Send `sig` (pidfd_send_signal(2), or kill(2) without a pidfd); false when the process
    /// has ended (ESRCH). Throws leo::SystemError for another error (EPERM, ...).
    bool signal(int sig) const;
    /// Whether the process has ended (exited or killed; a zombie has ended). With a pidfd:
    /// poll(2) on it; without: /proc (process_running()).
    [[nodiscard]] bool ended() const;
    /// Wait until ended(), at most `timeout`; true when it has ended.
    bool wait_ended(std::chrono::milliseconds timeout) const;

private:
    ProcessHandle(pid_t pid, int fd) : m_pid(pid), m_fd(fd) {}
    pid_t m_pid = 0;
    int m_fd = -1;
};

} // namespace leo::proc
