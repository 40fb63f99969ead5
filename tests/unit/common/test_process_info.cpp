#include "leo/common/process_info.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <ctime>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace {
using namespace leo::proc;
using namespace std::string_literals;

TEST(ProcessInfo, ParseStatTakesCommBetweenTheFirstAndLastParenthesis) {
    // A comm may hold spaces and parentheses; field 22 (starttime) is 123456.
    const std::string text =
        "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10 184467 1 1 0 0\n";
    const auto f = parse_stat(text);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->comm, "a b) c)");
    EXPECT_EQ(f->state, 'S');
    EXPECT_EQ(f->start_ticks, 123456U);
}

TEST(ProcessInfo, ParseStatRefusesMalformedText) {
    EXPECT_FALSE(parse_stat(""));
    EXPECT_FALSE(parse_stat("4242 sleep S 1"));
    EXPECT_FALSE(parse_stat("4242 (sleep) S 1 2 3"));
    EXPECT_FALSE(parse_stat("4242 (sleep) SS 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 99 1"));
    EXPECT_FALSE(parse_stat("4242 (sleep) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 x 1"));
}

TEST(ProcessInfo, ParseBtimeStatusAndCmdline) {
    EXPECT_EQ(parse_btime("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"), 1700000000);
    EXPECT_FALSE(parse_btime("cpu 1\n"));
    EXPECT_EQ(parse_status_uids("Name:\tsleep\nUid:\t999\t998\t999\t999\nGid:\t1\n"), (std::pair<uid_t, uid_t>{999, 998}));
    EXPECT_FALSE(parse_status_uids("Name:\tsleep\n"));
    EXPECT_EQ(parse_cmdline("rpm\0-i\0foo.rpm\0"s), (std::vector<std::string>{"rpm", "-i", "foo.rpm"}));
    EXPECT_EQ(parse_cmdline("postgres: checkpointer"s), (std::vector<std::string>{"postgres: checkpointer"}));
    EXPECT_TRUE(parse_cmdline("").empty());
}

TEST(ProcessInfo, CommandAndProgramEscapeControlCharacters) {
    ProcessInfo p;
    p.argv = {"/usr/bin/sleep", "300", "\x1b[2Jx"};
    EXPECT_EQ(p.program(), "sleep");
    EXPECT_EQ(p.command(), "/usr/bin/sleep 300 \\x1b[2Jx");
    ProcessInfo k;
    k.comm = "kworker/0:1";
    EXPECT_EQ(k.program(), "[kworker/0:1]");
    EXPECT_EQ(k.command(), "[kworker/0:1]");
}

TEST(ProcessInfo, ReadsALiveProcessAndNoticesItsEnd) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    const std::time_t forked = std::time(nullptr);
    // Wait for the exec to show in /proc.
    std::optional<ProcessInfo> info;
    for (int i = 0; i < 200; ++i) {
        info = read_process(child);
        if (info && info->program() == "sleep")
            break;
        ::usleep(10000);
    }
    ASSERT_TRUE(info);
    EXPECT_EQ(info->pid, child);
    EXPECT_TRUE(info->running());
    EXPECT_EQ(info->program(), "sleep");
    EXPECT_EQ(info->command(), "sleep 30");
    EXPECT_EQ(info->real_uid, ::getuid());
    ASSERT_TRUE(info->start_time);
    EXPECT_LE(std::llabs(*info->start_time - static_cast<long long>(forked)), 2) << "start time from /proc";
    EXPECT_TRUE(process_running(child));

    ASSERT_EQ(::kill(child, SIGKILL), 0);
    // A zombie until reaped: not running, though kill(pid, 0) still succeeds.
    for (int i = 0; i < 200 && process_running(child); ++i)
        ::usleep(10000);
    EXPECT_FALSE(process_running(child));
    ASSERT_EQ(::waitpid(child, nullptr, 0), child);
    EXPECT_FALSE(read_process(child));
    EXPECT_FALSE(process_running(child));
    EXPECT_FALSE(read_process(0));
    EXPECT_TRUE(boot_time());
}

} // namespace
