#include "leo/common/process_handle.hpp"

#include "leo/common/error.hpp"
#include "leo/common/process_info.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <csignal>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434  // the same number on every architecture (Linux 5.3)
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424  // Linux 5.1
#endif

namespace leo::proc {

std::optional<ProcessHandle> ProcessHandle::open(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    const long fd = ::syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);  // pidfd_open sets it; said again for clarity
        return ProcessHandle(pid, static_cast<int>(fd));
    }
    if (errno == ESRCH) return std::nullopt;
    if (errno == ENOSYS) {  // before Linux 5.3: the pid alone
        if (!process_running(pid)) return std::nullopt;
        return ProcessHandle(pid, -1);
    }
    throw SystemError(fmt::format("pidfd_open({}): {}", pid, std::strerror(errno)));
}

ProcessHandle::ProcessHandle(ProcessHandle&& other) noexcept
    : m_pid(other.m_pid), m_fd(std::exchange(other.m_fd, -1)) {}

ProcessHandle& ProcessHandle::operator=(ProcessHandle&& other) noexcept {
    if (this != &other) {
        if (m_fd >= 0) ::close(m_fd);
        m_pid = other.m_pid;
        m_fd = std::exchange(other.m_fd, -1);
    }
    return *this;
}

ProcessHandle::~ProcessHandle() {
    if (m_fd >= 0) ::close(m_fd);
}

bool ProcessHandle::signal(int sig) const {
    const long rc = m_fd >= 0 ? ::syscall(SYS_pidfd_send_signal, m_fd, sig, nullptr, 0) : ::kill(m_pid, sig);
    if (rc == 0) return true;
    if (errno == ESRCH) return false;
    throw SystemError(fmt::format("cannot send signal {} to pid {}: {}", sig, m_pid, std::strerror(errno)));
}

bool ProcessHandle::ended() const {
    if (m_fd < 0) return !process_running(m_pid);
    pollfd p{m_fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

bool ProcessHandle::wait_ended(std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (ended()) return true;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        if (m_fd >= 0) {
            pollfd p{m_fd, POLLIN, 0};
            (void)::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 100)));
        } else {
            std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(20)));
        }
    }
}

} // namespace leo::proc
