// `leo-installer hook posttrans` after a real `rpm -U` (--noscripts: the hook is run by the
// test, as in test_hooks.cpp) of a broker whose components run: no reboot, the components
// run the new version when the hook ends, and the hook spot-checks it as `upgrade` does; a
// spot-check that fails is reported loudly with the ways out (rpm cannot undo its
// transaction). The fixture of test_maintenance_window.cpp (maintenance_support.hpp).
#include "maintenance_support.hpp"

#include <gtest/gtest.h>

namespace {
using namespace leo::test::maintenance;

class HooksWindow : public Maintenance {
protected:
    /// rpm -U of `file` into the root without its scriptlets.
    void rpm_upgrade(const stdfs::path& file) const {
        leo::test::run_ok({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-U", "--noscripts",
                           "--nosignature", "--nodeps", file.string()});
    }
};

TEST_F(HooksWindow, PosttransLeavesTheRunningBrokerOnTheNewVersionAndSpotChecksIt) {
    start_components();
    const pid_t old_httpd = pid_of("httpd");
    rpm_upgrade(leo::test::test_packages_dir() / "repo" / (k_new + ".rpm"));
    auto post = run_installer(args({"hook", "posttrans"}));
    ASSERT_EQ(post.exit_code, 0) << post.out << post.err;
    EXPECT_TRUE(contains(post.out, "spot-check: the health endpoint answers version 9.2.0")) << post.out;
    EXPECT_TRUE(contains(post.out, "spot-check: the work-queue worker is alive")) << post.out;
    EXPECT_TRUE(contains(post.out, k_new + " is ready")) << post.out;
    expect_component_runs("httpd");
    expect_component_runs("queue");
    EXPECT_NE(pid_of("httpd"), old_httpd) << "the web server was not restarted";
    const auto h = health();
    ASSERT_EQ(h.status, 200) << h;
    EXPECT_EQ(h.version(), "9.2.0") << h;
}

TEST_F(HooksWindow, AFailingSpotCheckInPosttransIsReportedWithTheWayBackAndRecoverKnowsTheRun) {
    // A broken 9.2.0: its health endpoint says 9.1.99.
    const auto broken = build_package("9.2.0", {{"HEALTH_VERSION", "9.1.99"}}, "broken");
    write_installer_conf("[spot_check]\ntimeout = 3\n");
    start_components();
    rpm_upgrade(broken);
    auto post = run_installer(args({"hook", "posttrans"}));
    EXPECT_EQ(post.exit_code, 1) << post.out << post.err;
    EXPECT_TRUE(contains(post.err, "THE BROKER IS INSTALLED BUT NOT READY")) << post.err;
    EXPECT_TRUE(contains(post.err, k_new + " is installed, but its posttrans step `spot_check` failed")) << post.err;
    EXPECT_TRUE(contains(post.err, "spot-check: the health endpoint http://127.0.0.1:" + std::to_string(port) +
                                       "/health: it answers version 9.1.99, expected 9.2.0"))
        << post.err;
    EXPECT_TRUE(contains(post.err, "leo-installer rollback ID --root " + root.string())) << post.err;
    // The migrations were applied and the components run: only the check failed.
    EXPECT_EQ(schema(), "9.1.0.2");
    expect_component_runs("httpd");
    auto plan = run_installer(args({"recover", "--dry-run"}));
    EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;
    EXPECT_TRUE(contains(plan.out, "spot_check (started, not ended)")) << plan.out;
    EXPECT_TRUE(contains(plan.out, "finish the posttrans of " + k_new)) << plan.out;
}

} // namespace
