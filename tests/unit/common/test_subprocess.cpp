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
#include <stdexcept>
#include <sys/stat.h>
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

TEST(Subprocess, TheChildGetsTheDefaultSigxfszTheProgramIgnores) {
    // The program ignores SIGXFSZ (cli.cpp); an ignored signal survives exec, so run()
    // gives the child the default back, as Python's subprocess does (restore_signals).
    struct sigaction ignore {};
    struct sigaction old {};
    ignore.sa_handler = SIG_IGN;
    ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &old), 0);
    const auto r = run({"grep", "^SigIgn:", "/proc/self/status"});
    ::sigaction(SIGXFSZ, &old, nullptr);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const unsigned long long ignored = std::stoull(r.out.substr(r.out.find(':') + 1), nullptr, 16);
    EXPECT_EQ(ignored & (1ULL << (SIGXFSZ - 1)), 0ULL) << r.out;
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

// ---- run_as: least privilege for work on another account's files ----

constexpr uid_t k_nobody = 65534;

TEST(RunAs, TheWorkRunsWithTheIdentityAndNoGroups) {
    ASSERT_EQ(::geteuid(), 0U) << "these tests run as root";
    char dir_template[] = "/tmp/leo-runas-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    ASSERT_EQ(::chmod(dir_template, 0777), 0);
    const std::string file = std::string(dir_template) + "/ids";
    leo::subprocess::run_as(k_nobody, k_nobody, [&] {
        std::ofstream out(file);
        out << ::geteuid() << ' ' << ::getuid() << ' ' << ::getegid() << ' ' << ::getgroups(0, nullptr);
    });
    EXPECT_EQ(leo::fs::read_file(file), "65534 65534 65534 0");
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, k_nobody) << "the file was created by the child, as the uid";
    EXPECT_EQ(::geteuid(), 0U) << "the caller keeps its identity";
    std::filesystem::remove_all(dir_template);
}

TEST(RunAs, AnExceptionsMessageComesBackAsSystemError) {
    try {
        leo::subprocess::run_as(k_nobody, k_nobody, [] { throw std::runtime_error("cannot do X: because Y"); });
        FAIL() << "no exception";
    } catch (const leo::SystemError& e) {
        EXPECT_STREQ(e.what(), "cannot do X: because Y");
    }
}

TEST(RunAs, TheChildCannotDoWhatOnlyRootCan) {
    try {
        leo::subprocess::run_as(k_nobody, k_nobody, [] {
            if (::setuid(0) == 0) throw std::runtime_error("setuid(0) succeeded");
            std::ofstream out("/etc/leo-runas-must-not-exist");
            if (out) throw std::runtime_error("wrote in /etc");
        });
    } catch (const leo::SystemError& e) {
        FAIL() << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists("/etc/leo-runas-must-not-exist"));
}

TEST(RunAs, ADeathBySignalIsReported) {
    try {
        leo::subprocess::run_as(k_nobody, k_nobody, [] { ::raise(SIGKILL); });
        FAIL() << "no exception";
    } catch (const leo::SystemError& e) {
        EXPECT_NE(std::string(e.what()).find("killed by signal 9"), std::string::npos) << e.what();
    }
}

// ---- spawn_detached: daemons without a shell ----

TEST(SpawnDetached, RunsInItsOwnSessionAsTheUidWithOutputAppended) {
    char dir_template[] = "/tmp/leo-detach-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    ASSERT_EQ(::chown(dir_template, k_nobody, k_nobody), 0);
    const std::string log = std::string(dir_template) + "/out.log";
    {
        std::ofstream(log) << "before\n";
        ASSERT_EQ(::chown(log.c_str(), k_nobody, k_nobody), 0);
    }
    leo::subprocess::Options o;
    o.uid = k_nobody;
    o.gid = k_nobody;
    o.env["LEO_TEST_VALUE"] = "v$1";
    o.cwd = dir_template;
    const pid_t pid = leo::subprocess::spawn_detached(
        {"/bin/sh", "-c", "echo \"$LEO_TEST_VALUE $(id -u) $(pwd)\"; echo err >&2; ls /proc/self/fd | wc -l; "
                          "[ \"$(cut -d' ' -f6 /proc/$$/stat)\" = \"$$\" ] && echo session; cat"},
        o, log);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    const auto text = leo::fs::read_file(log);
    EXPECT_EQ(text, "before\nv$1 65534 " + std::string(dir_template) + "\nerr\n4\nsession\n")
        << "appended; stdin empty; only 0, 1, 2 (and ls's own directory descriptor) open";
    std::filesystem::remove_all(dir_template);
}

// A FIFO planted at the output's path (the log directory is another account's) is
// refused at once instead of blocking the start forever.
TEST(SpawnDetached, RefusesAFifoAsOutputWithoutBlocking) {
    char dir_template[] = "/tmp/leo-detach-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    const std::string log = std::string(dir_template) + "/out.log";
    ASSERT_EQ(::mkfifo(log.c_str(), 0600), 0);
    const auto started = std::chrono::steady_clock::now();
    try {
        (void)leo::subprocess::spawn_detached({"/bin/true"}, {}, log);
        FAIL() << "no exception";
    } catch (const leo::SystemError& e) {
        EXPECT_NE(std::string(e.what()).find("cannot open its output file " + log), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
    std::filesystem::remove_all(dir_template);
}

TEST(SpawnDetached, RefusesALinkAsOutputAndNamesIt) {
    char dir_template[] = "/tmp/leo-detach-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    const std::string log = std::string(dir_template) + "/out.log";
    std::filesystem::create_symlink("/etc/leo-detach-target", log);
    try {
        (void)leo::subprocess::spawn_detached({"/bin/true"}, {}, log);
        FAIL() << "no exception";
    } catch (const leo::SystemError& e) {
        EXPECT_NE(std::string(e.what()).find("cannot open its output file " + log), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists("/etc/leo-detach-target"));
    std::filesystem::remove_all(dir_template);
}

TEST(SpawnDetached, AMissingProgramIsNamed) {
    try {
        (void)leo::subprocess::spawn_detached({"/nonexistent/postgres"}, {}, "/dev/null");
        FAIL() << "no exception";
    } catch (const leo::SystemError& e) {
        EXPECT_NE(std::string(e.what()).find("cannot run /nonexistent/postgres"), std::string::npos) << e.what();
    }
}

} // namespace
