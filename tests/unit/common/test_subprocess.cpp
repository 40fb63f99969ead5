#include "leo/common/error.hpp"
#include "leo/common/subprocess.hpp"

#include <gtest/gtest.h>

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

} // namespace
