// The deferred-signal handler (common/include/leo/common/signals.hpp): real signals
// through the kernel (kill), in forked children so that the test runner is not touched.
#include "leo/common/error.hpp"
#include "leo/common/signals.hpp"

#include <csignal>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

/// Run `body` in a forked child; its exit status (or 128+signal when killed).
template <typename F> int in_child(F body) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        int code = 0;
        try {
            code = body();
        } catch (...) {
            code = 99;
        }
        ::_exit(code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(Signals, OutsideACriticalSectionASignalEndsTheProcessAsItWould) {
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) {
        const int r = in_child([sig] {
            leo::signals::install("test");
            ::kill(::getpid(), sig);
            return 0;  // not reached
        });
        EXPECT_EQ(r, 128 + sig) << sig;
    }
}

TEST(Signals, AfterDeferUntilExitASignalIsRecordedEvenOutsideADeferred) {
    // The end of a run: the journal says "end", the report is still to be printed.
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) {
        const int r = in_child([sig] {
            leo::signals::install("test");
            { leo::signals::Deferred d("working"); }
            leo::signals::defer_until_exit("reporting");
            ::kill(::getpid(), sig);
            return leo::signals::pending() == sig ? 0 : 1;
        });
        EXPECT_EQ(r, 0) << sig;
    }
    // Without it, the same sequence ends the process.
    const int r = in_child([] {
        leo::signals::install("test");
        { leo::signals::Deferred d("working"); }
        ::kill(::getpid(), SIGTERM);
        return 0;
    });
    EXPECT_EQ(r, 128 + SIGTERM);
}

TEST(Signals, InsideTheFirstIsRecordedAndTheRunGoesOn) {
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) {
        const int r = in_child([sig] {
            leo::signals::install("test");
            leo::signals::Deferred d("test message");
            ::kill(::getpid(), sig);
            ::kill(::getpid(), SIGINT);  // a second one is not recorded over the first
            if (leo::signals::pending() != sig) return 1;
            try {
                leo::signals::check();
                return 2;
            } catch (const leo::InterruptedError& e) {
                return e.signal() == sig && leo::exit_code(e) == static_cast<leo::ExitCode>(128 + sig) ? 0 : 3;
            }
        });
        EXPECT_EQ(r, 0) << sig;
    }
}

TEST(Signals, NestedSectionsEndTogether) {
    const int r = in_child([] {
        leo::signals::install("test");
        {
            leo::signals::Deferred outer;
            { leo::signals::Deferred inner; }
            ::kill(::getpid(), SIGTERM);  // still inside outer: recorded
            if (leo::signals::pending() != SIGTERM) return 1;
        }
        ::kill(::getpid(), SIGHUP);  // outside again: ends the process
        return 0;
    });
    EXPECT_EQ(r, 128 + SIGHUP);
}

TEST(Signals, CheckWithNothingPendingDoesNothing) {
    leo::signals::reset_for_tests();
    EXPECT_EQ(leo::signals::pending(), 0);
    EXPECT_NO_THROW(leo::signals::check());
}

TEST(Signals, InterruptedDecidesTheExitCodeAnywhereInTheChain) {
    try {
        try {
            throw leo::InterruptedError("interrupted by SIGINT", SIGINT);
        } catch (const leo::Error&) {
            std::throw_with_nested(leo::RefusedError("outer refusal"));
        }
    } catch (const std::exception& e) {
        EXPECT_EQ(static_cast<int>(leo::exit_code(e)), 130);
        EXPECT_EQ(leo::describe(e), "outer refusal: interrupted by SIGINT");
    }
}

TEST(Signals, Names) {
    EXPECT_EQ(leo::signals::name(SIGINT), "SIGINT");
    EXPECT_EQ(leo::signals::name(SIGPIPE), "SIGPIPE");
    EXPECT_EQ(leo::signals::name(SIGUSR1), "signal " + std::to_string(SIGUSR1));
}

TEST(Signals, TerminalGuardWithoutATerminalDoesNothing) {
    const int r = in_child([] {
        const int null = ::open("/dev/null", O_RDONLY);
        const leo::signals::TerminalGuard g(null);
        return g.active() ? 1 : 0;
    });
    EXPECT_EQ(r, 0);
}

} // namespace
