#include "leo/common/error.hpp"
#include "leo/common/subprocess.hpp"

#include "leo/common/fs.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

namespace {
using leo::subprocess::run;

TEST(Subprocess, CollectsOutputAndExitCode) {
    auto r = run({"sh", "-c", "echo out; echo err >&2; exit 7"});
    EXPECT_EQ(r.exit_code, 7);
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "err\n");
}

TEST(Subprocess, EnvironmentIsAddedAndStdinIsEmpty) {
    leo::subprocess::Options o;
    o.env["LEO_TEST_VALUE"] = "42";
    auto r = run({"sh", "-c", "echo $LEO_TEST_VALUE; cat"}, o);
    EXPECT_EQ(r.out, "42\n");
}

TEST(Subprocess, MissingProgramThrowsNamingIt) {
    try {
        (void)run({"/nonexistent/leo-tool"});
        FAIL();
    } catch (const leo::SystemError& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/leo-tool"), std::string::npos);
    }
}

TEST(Subprocess, TimeoutKillsTheChild) {
    leo::subprocess::Options o;
    o.timeout = std::chrono::seconds(1);
    auto r = run({"sleep", "30"}, o);
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.signal, 9);
}

TEST(Subprocess, LargeOutputDoesNotDeadlock) {
    auto r = run({"sh", "-c", "head -c 1000000 /dev/zero"});
    EXPECT_EQ(r.out.size(), 1000000u);
}

TEST(Subprocess, LastLine) {
    EXPECT_EQ(leo::subprocess::last_line("a\nb\n\n  c  \n\n"), "c");
    EXPECT_EQ(leo::subprocess::last_line(""), "");
}

/// True when `pid` is gone or a zombie (its parent died and nobody reaped it yet).
bool gone(pid_t pid) {
    const auto stat = leo::fs::try_read_file("/proc/" + std::to_string(pid) + "/stat");
    if (!stat) return true;
    const auto close = stat->rfind(')');
    return close != std::string::npos && close + 2 < stat->size() && (*stat)[close + 2] == 'Z';
}

TEST(Subprocess, TheChildDiesWithItsCaller) {
    // A process runs `sleep` through run() and is killed: the sleep must not go on (a
    // pg_restore must not keep working for an installer that was killed).
    char dir_template[] = "/tmp/leo-sub.XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    const std::filesystem::path pidfile = std::filesystem::path(dir_template) / "pid";
    const pid_t caller = ::fork();
    ASSERT_GE(caller, 0);
    if (caller == 0) {
        (void)run({"sh", "-c", "echo $$ > " + pidfile.string() + "; exec sleep 30"});
        std::_Exit(0);
    }
    pid_t child = 0;
    for (int i = 0; i < 100 && child == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (auto text = leo::fs::try_read_file(pidfile); text && !text->empty()) child = std::stoi(*text);
    }
    ASSERT_GT(child, 0) << "the child did not start";
    EXPECT_FALSE(gone(child));
    ::kill(caller, SIGKILL);
    ::waitpid(caller, nullptr, 0);
    bool dead = false;
    for (int i = 0; i < 100 && !dead; ++i) {
        dead = gone(child);
        if (!dead) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(dead) << "the child outlived the process that ran it";
    if (!dead) ::kill(child, SIGKILL);
    std::filesystem::remove_all(dir_template);
}

} // namespace
