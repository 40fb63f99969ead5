// ProcessHandle: a pidfd that stays on the process it was opened on.
#include "leo/common/process_handle.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>

#include <sys/wait.h>
#include <unistd.h>

namespace {
using leo::proc::ProcessHandle;
using namespace std::chrono_literals;

pid_t sleeper() {
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    return pid;
}

TEST(ProcessHandle, SignalsTheProcessItWasOpenedOn) {
    const pid_t pid = sleeper();
    auto h = ProcessHandle::open(pid);
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->pid(), pid);
    EXPECT_TRUE(h->has_pidfd()) << "Linux 5.3 or later has pidfd_open";
    EXPECT_FALSE(h->ended());
    EXPECT_FALSE(h->wait_ended(50ms));
    EXPECT_TRUE(h->signal(SIGTERM));
    EXPECT_TRUE(h->wait_ended(5s)) << "a zombie has ended";
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    // Reaped: the handle still means that process, which has ended; no signal reaches
    // whatever takes the pid next.
    EXPECT_TRUE(h->ended());
    EXPECT_FALSE(h->signal(SIGTERM));
}

TEST(ProcessHandle, NoSuchProcess) {
    const pid_t pid = sleeper();
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_FALSE(ProcessHandle::open(pid).has_value());
    EXPECT_FALSE(ProcessHandle::open(0).has_value());
}

TEST(ProcessHandle, MovesItsDescriptor) {
    const pid_t pid = sleeper();
    auto h = ProcessHandle::open(pid);
    ASSERT_TRUE(h.has_value());
    ProcessHandle moved(std::move(*h));
    EXPECT_TRUE(moved.signal(SIGKILL));
    EXPECT_TRUE(moved.wait_ended(5s));
    int status = 0;
    ::waitpid(pid, &status, 0);
}

} // namespace
