// `leo-installer hook posttrans` of a broker on a cluster's shared database, after a real
// `rpm -U` (--noscripts: the hook is run by the test, as in test_hooks.cpp): it registers,
// waits for the one-at-a-time upgrade lease another broker holds, migrates the shared
// schema once under it (each migration fenced), records the lease in the journal for
// `recover`, and gives the lease back; without --allow-remote-upgrade an older shared
// schema is left alone and the hook says how to finish. Real PostgreSQL (cluster_support).
#include "cluster_support.hpp"

#include "leo/installer/cluster.hpp"

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <thread>

#include <unistd.h>

#include <gtest/gtest.h>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;
using leo::test::cluster::k_new;
using leo::test::cluster::k_password;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class HooksCluster : public leo::test::cluster::Cluster {
protected:
    /// rpm -U of the 9.1.2 broker into `root` without its scriptlets.
    static void rpm_upgrade(const stdfs::path& root) {
        const auto file = leo::test::test_packages_dir() / "repo" / (std::string(k_new) + ".rpm");
        leo::test::run_ok({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-U", "--noscripts",
                           "--nosignature", "--nodeps", file.string()});
    }
    static leo::subprocess::Result posttrans(const stdfs::path& root, std::vector<std::string> extra = {},
                                             const leo::subprocess::Options& o = {}, int lease_wait = 120) {
        std::vector<std::string> a{"hook", "posttrans", "--root", root.string(), "--lease-wait",
                                   std::to_string(lease_wait)};
        a.insert(a.end(), extra.begin(), extra.end());
        return run_installer(a, o);
    }
    [[nodiscard]] std::string scalar(const std::string& sql) const { return shared().query(sql).at(0, 0); }
    [[nodiscard]] std::string history_rows() const {
        return scalar("SELECT count(*)::text FROM leo_schema_history WHERE version LIKE '9.1.%'");
    }
    /// `recover` of `root` with the consent the scriptlets read (LEO_ALLOW_REMOTE_UPGRADE=1).
    static leo::subprocess::Result recover_with_consent(const stdfs::path& root) {
        leo::subprocess::Options o;
        o.env = {{"LEO_ALLOW_REMOTE_UPGRADE", "1"}};
        return run_installer({"recover", "--root", root.string(), "-y"}, o);
    }
    /// A run's options that make it sleep `seconds` at fault point `point`, so that the test
    /// acts while it waits there (wait_until_paused()).
    [[nodiscard]] leo::subprocess::Options paused_at(const std::string& point, int seconds) const {
        leo::subprocess::Options o;
        o.env = {{"LEO_FAULT_INJECT", point},
                 {"LEO_FAULT_SLEEP", std::to_string(seconds)},
                 {"LEO_FAULT_REACHED", (tmp.path() / "reached").string()}};
        return o;
    }
    /// Whether the run of paused_at() reached its point within 60 s.
    [[nodiscard]] bool wait_until_paused() const {
        const auto reached = tmp.path() / "reached";
        for (int i = 0; i < 1200 && !stdfs::exists(reached); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return stdfs::exists(reached);
    }
    [[nodiscard]] std::string conninfo() const { return ext->conninfo("leo_cluster", "broker", k_password); }
};

TEST_F(HooksCluster, PosttransWaitsForTheLeaseAnotherBrokerHoldsThenMigratesOnceUnderIt) {
    const auto b1 = add_broker(1);
    const auto b2 = add_broker(2);
    {
        auto c = shared();  // site 9 left the cluster: its pending job goes to a member once all are new
        c.exec("INSERT INTO sites (site_id, name) VALUES (2, 's2'), (9, 'gone')");
        c.exec("INSERT INTO work_queue (site_id, job_type, status) VALUES (9, 'sync', 'pending')");
    }
    // Another broker of the cluster is upgrading: it holds the lease.
    leo::installer::UpgradeLease::Options o;
    o.wait = std::chrono::seconds(0);
    o.ttl = std::chrono::seconds(300);
    o.purpose = "upgrade 9.0.7 -> 9.1.2";
    o.renew_in_background = false;
    auto holder = leo::installer::UpgradeLease::acquire(conninfo(), "another-broker", o);
    const auto token = holder.token();

    rpm_upgrade(b1);
    leo::subprocess::Result first;
    std::thread run([&] { first = posttrans(b1, {"--allow-remote-upgrade"}); });
    // It registers as waiting and changes nothing while the lease is another's.
    bool waiting = false;
    for (int i = 0; i < 300 && !waiting; ++i) {
        waiting = scalar("SELECT count(*)::text FROM leo_installer.cluster_members WHERE state = 'waiting'") == "1";
        if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(waiting) << "the posttrans hook never registered as waiting for the lease";
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_EQ(history_rows(), "0") << "the shared schema changed while another broker held the lease";
    holder.release();
    run.join();
    ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
    EXPECT_TRUE(contains(first.out, "waiting for the cluster's upgrade lease: another-broker")) << first.out;
    EXPECT_TRUE(contains(first.out, "(upgrade 9.0.7 -> 9.1.2;")) << first.out;
    EXPECT_TRUE(contains(first.out, "migrating the shared database")) << first.out;
    EXPECT_EQ(history_rows(), "2");  // 9.1.0.1 and 9.1.0.2, once each
    EXPECT_EQ(scalar("SELECT token::text FROM leo_installer.upgrade_lease"), std::to_string(token + 1));
    EXPECT_EQ(scalar("SELECT coalesce(holder, '')  FROM leo_installer.upgrade_lease"), "") << "lease not given back";
    EXPECT_EQ(scalar("SELECT count(*)::text FROM leo_installer.cluster_members WHERE broker_version = '9.1.2' AND "
                     "state = 'running'"),
              "1");
    // The journal holds the lease's token, as upgrade's does, for recover.
    const auto journal = leo::test::slurp(b1 / "var/lib/leo-installer/journal");
    EXPECT_TRUE(contains(journal, "\"lease_token\":" + std::to_string(token + 1))) << journal;

    // The second broker's posttrans finds the schema migrated: nothing applied, and as the
    // last member on the new version it moves the retired site's job.
    rpm_upgrade(b2);
    auto second = posttrans(b2);
    ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
    EXPECT_EQ(history_rows(), "2");
    EXPECT_TRUE(contains(second.out, "moved pending job")) << second.out;
    EXPECT_EQ(scalar("SELECT count(*)::text FROM work_queue WHERE site_id = 9"), "0");
    EXPECT_EQ(scalar("SELECT token::text FROM leo_installer.upgrade_lease"), std::to_string(token + 2));
    // Run again: idempotent, one more lease, nothing applied.
    auto again = posttrans(b1);
    EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
    EXPECT_EQ(history_rows(), "2");
}

TEST_F(HooksCluster, WithoutTheRemoteUpgradeFlagTheSharedSchemaIsLeftAloneAndRecoverFinishesWithIt) {
    const auto b1 = add_broker(1);
    rpm_upgrade(b1);
    auto refused = posttrans(b1);
    EXPECT_EQ(refused.exit_code, 3) << refused.out << refused.err;  // refused: the consent is missing
    EXPECT_TRUE(contains(refused.err, "THE BROKER IS INSTALLED BUT NOT READY")) << refused.err;
    EXPECT_TRUE(contains(refused.err, "is older than this broker's schema")) << refused.err;
    EXPECT_TRUE(contains(refused.err, "run again with LEO_ALLOW_REMOTE_UPGRADE=1 in the environment (`"
                                      "LEO_ALLOW_REMOTE_UPGRADE=1 leo-installer recover --root " +
                                          b1.string() + "`"))
        << refused.err;
    EXPECT_TRUE(contains(refused.err, "leo-installer recover")) << refused.err;
    EXPECT_EQ(history_rows(), "0");
    EXPECT_EQ(scalar("SELECT coalesce(holder, '') FROM leo_installer.upgrade_lease"), "") << "lease kept";
    // recover finishes it with the variable the scriptlets read.
    auto rec = recover_with_consent(b1);
    EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_EQ(history_rows(), "2");
    EXPECT_EQ(scalar("SELECT count(*)::text FROM leo_installer.cluster_members WHERE broker_version = '9.1.2' AND "
                     "state = 'running'"),
              "1");
}

TEST_F(HooksCluster, KilledBetweenTwoMigrationsHoldingTheLeaseThenRecoverTakesItOverAndFinishes) {
    const auto b1 = add_broker(1);
    const auto b2 = add_broker(2);
    rpm_upgrade(b1);
    leo::subprocess::Options fault;
    fault.env = {{"LEO_FAULT_INJECT", "migrate.between"}};
    auto killed = posttrans(b1, {"--allow-remote-upgrade"}, fault);
    ASSERT_EQ(killed.signal, SIGKILL) << killed.out << killed.err;
    EXPECT_EQ(history_rows(), "1");  // the first 9.1 migration committed, the second not begun
    const auto token = scalar("SELECT token::text FROM leo_installer.upgrade_lease");
    EXPECT_NE(scalar("SELECT coalesce(holder, '') FROM leo_installer.upgrade_lease"), "") << "the dead run's lease";
    // Another broker's posttrans waits for the dead run's lease rather than migrating beside it.
    rpm_upgrade(b2);
    auto waits = posttrans(b2, {"--allow-remote-upgrade"}, {}, 2);
    EXPECT_EQ(waits.exit_code, 3) << waits.out << waits.err;
    EXPECT_TRUE(contains(waits.out, "waiting for the cluster's upgrade lease")) << waits.out;
    EXPECT_EQ(history_rows(), "1");
    // recover on the broker that died takes its own dead run's lease over at once and finishes.
    auto rec = recover_with_consent(b1);
    EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_EQ(history_rows(), "2");
    EXPECT_EQ(scalar("SELECT token::text FROM leo_installer.upgrade_lease"), std::to_string(std::stoll(token) + 1));
    EXPECT_EQ(scalar("SELECT coalesce(holder, '') FROM leo_installer.upgrade_lease"), "") << "lease not given back";
    // Now the second broker goes through without migrating.
    auto second = posttrans(b2);
    EXPECT_EQ(second.exit_code, 0) << second.out << second.err;
    EXPECT_EQ(history_rows(), "2");
}

// SIGTERM while the posttrans migrates the shared database under the lease (the run's
// journal defers it): the migrations finish, the lease goes back at once (another broker
// does not wait for its expiry), the run, with nothing to undo, completes and exits 128+N;
// recover then has nothing left to do.
TEST_F(HooksCluster, SignalWhileMigratingUnderTheLeaseFinishesTheStepGivesTheLeaseBackAndRecoverFinishes) {
    const auto b1 = add_broker(1);
    const auto b2 = add_broker(2);
    rpm_upgrade(b1);
    const auto token = std::stoll(scalar("SELECT token::text FROM leo_installer.upgrade_lease"));
    leo::subprocess::Options fault;
    fault.env = {{"LEO_FAULT_INJECT", "migrate.between"}, {"LEO_FAULT_SIGNAL", std::to_string(SIGTERM)}};
    auto r = posttrans(b1, {"--allow-remote-upgrade"}, fault);
    EXPECT_EQ(r.signal, 0) << "killed by the signal: " << r.out << r.err;
    EXPECT_EQ(r.exit_code, 128 + SIGTERM) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "SIGTERM")) << r.err;
    EXPECT_EQ(history_rows(), "2");  // the step (both 9.1 migrations) finished
    EXPECT_EQ(scalar("SELECT coalesce(holder, '') FROM leo_installer.upgrade_lease"), "") << "lease kept";
    EXPECT_EQ(scalar("SELECT token::text FROM leo_installer.upgrade_lease"), std::to_string(token + 1));
    EXPECT_EQ(scalar("SELECT count(*)::text FROM leo_installer.cluster_members WHERE state IN ('upgrading', "
                     "'waiting')"),
              "0");
    // Another broker does not wait for the interrupted run's lease.
    rpm_upgrade(b2);
    auto second = posttrans(b2, {}, {}, 5);
    EXPECT_EQ(second.exit_code, 0) << second.out << second.err;
    // recover finishes the interrupted posttrans.
    auto rec = run_installer({"recover", "--root", b1.string(), "-y"});
    EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_EQ(history_rows(), "2");
}

// SIGINT inside the first migration's transaction: the same.
TEST_F(HooksCluster, SigintInsideAMigrationUnderTheLeaseGivesTheLeaseBack) {
    const auto b1 = add_broker(1);
    rpm_upgrade(b1);
    leo::subprocess::Options fault;
    fault.env = {{"LEO_FAULT_INJECT", "migrate.inside"}, {"LEO_FAULT_SIGNAL", std::to_string(SIGINT)}};
    auto r = posttrans(b1, {"--allow-remote-upgrade"}, fault);
    EXPECT_EQ(r.signal, 0) << "killed by the signal: " << r.out << r.err;
    EXPECT_EQ(r.exit_code, 128 + SIGINT) << r.out << r.err;
    EXPECT_EQ(history_rows(), "2");
    EXPECT_EQ(scalar("SELECT coalesce(holder, '') FROM leo_installer.upgrade_lease"), "") << "lease kept";
    auto rec = run_installer({"recover", "--root", b1.string(), "-y"});
    EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
}

// A posttrans that fails (the consent missing, the lease row edited by hand so that it is
// never free) does not leave the registry saying it is upgrading or waiting: it says
// failed (the components were stopped, the broker is installed but not ready) until
// recover finishes it.
TEST_F(HooksCluster, AFailedPosttransLeavesItsRegistryRowFailedNotUpgradingOrWaiting) {
    const auto b1 = add_broker(1);
    rpm_upgrade(b1);
    const auto state = [&] {
        return scalar("SELECT state FROM leo_installer.cluster_members WHERE site_id = 1");
    };
    auto refused = posttrans(b1);
    EXPECT_EQ(refused.exit_code, 3) << refused.out << refused.err;
    EXPECT_EQ(state(), "failed");
    // The lease row edited by hand: held by another broker with no expiry.
    shared().exec("UPDATE leo_installer.upgrade_lease SET holder = 'by-hand', holder_application = 'elsewhere', "
                  "holder_pid = 1, acquired_at = now(), expires_at = 'infinity' WHERE id = 1");
    auto edited = posttrans(b1, {"--allow-remote-upgrade"});
    EXPECT_EQ(edited.exit_code, 3) << edited.out << edited.err;
    EXPECT_TRUE(contains(edited.err, "no expiry")) << edited.err;
    EXPECT_EQ(state(), "failed");
    EXPECT_EQ(history_rows(), "0");
    shared().exec("UPDATE leo_installer.upgrade_lease SET holder = NULL, expires_at = NULL WHERE id = 1");
    auto rec = recover_with_consent(b1);
    EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_EQ(state(), "running");
    EXPECT_EQ(history_rows(), "2");
}

// Attacks that held (kept as tests): two brokers' posttrans at once migrate the shared
// schema once, one after the other under the lease; a wrong password in database.conf
// (the role's password changed on the server) is a clear error that names no secret, in
// the terminal, the log and the journal, and takes no lease.
TEST_F(HooksCluster, TwoPosttransAtOnceMigrateOnceAndAWrongPasswordNamesNoSecret) {
    const auto b1 = add_broker(1);
    const auto b2 = add_broker(2);
    rpm_upgrade(b1);
    rpm_upgrade(b2);
    const auto token = std::stoll(scalar("SELECT token::text FROM leo_installer.upgrade_lease"));
    leo::subprocess::Result r1;
    leo::subprocess::Result r2;
    std::thread t1([&] { r1 = posttrans(b1, {"--allow-remote-upgrade"}); });
    std::thread t2([&] { r2 = posttrans(b2, {"--allow-remote-upgrade"}); });
    t1.join();
    t2.join();
    EXPECT_EQ(r1.exit_code, 0) << r1.out << r1.err;
    EXPECT_EQ(r2.exit_code, 0) << r2.out << r2.err;
    EXPECT_EQ(history_rows(), "2");
    EXPECT_EQ(scalar("SELECT token::text FROM leo_installer.upgrade_lease"), std::to_string(token + 2));
    EXPECT_EQ(scalar("SELECT coalesce(holder, '') FROM leo_installer.upgrade_lease"), "");
    EXPECT_EQ(contains(r1.out, "(0 migrations applied") + contains(r2.out, "(0 migrations applied"), 1)
        << r1.out << r2.out;

    ext->admin("postgres").exec("ALTER ROLE broker PASSWORD 'another-one'");
    auto wrong = posttrans(b1);
    EXPECT_NE(wrong.exit_code, 0) << wrong.out << wrong.err;
    EXPECT_TRUE(contains(wrong.err, "password authentication failed")) << wrong.err;
    const auto log = leo::test::slurp(b1 / "var/log/leo-installer/installer.log");
    const auto journal = leo::test::slurp(b1 / "var/lib/leo-installer/journal");
    for (const auto& text : {wrong.out, wrong.err, log, journal})
        EXPECT_FALSE(contains(text, k_password)) << "the password is shown: " << text;
    ext->admin("postgres").exec(std::string("ALTER ROLE broker PASSWORD '") + k_password + "'");
    EXPECT_EQ(scalar("SELECT token::text FROM leo_installer.upgrade_lease"), std::to_string(token + 2));
}

/// The pid of the leo-installer whose session on the shared database is not this test's.
int installer_pid_on(leo::migrations::Connection& c) {
    const auto rows = c.query("SELECT application_name FROM pg_catalog.pg_stat_activity WHERE datname = "
                              "current_database() AND application_name LIKE '% pid %'");
    for (size_t r = 0; r < rows.rows.size(); ++r) {
        const auto name = rows.at(r, 0);
        const int pid = std::stoi(name.substr(name.rfind(" pid ") + 5));
        if (pid != ::getpid()) return pid;
    }
    return 0;
}

// Ctrl-C (SIGINT) while the posttrans waits for the lease another broker holds: the wait
// ends at once with nothing changed and no lease taken (the run's journal defers signals,
// so it used to wait on, up to --lease-wait, and then migrate the shared database after
// the administrator had asked it to stop). recover finishes it later.
TEST_F(HooksCluster, SigintWhileWaitingForTheLeaseStopsTheWaitAndChangesNothing) {
    const auto b1 = add_broker(1);
    leo::installer::UpgradeLease::Options o;
    o.wait = std::chrono::seconds(0);
    o.ttl = std::chrono::seconds(300);
    o.purpose = "upgrade 9.0.7 -> 9.1.2";
    o.renew_in_background = false;
    std::optional<leo::installer::UpgradeLease> holder;
    holder.emplace(leo::installer::UpgradeLease::acquire(conninfo(), "another-broker", o));
    const auto token = holder->token();
    rpm_upgrade(b1);
    leo::subprocess::Result r;
    std::thread run([&] { r = posttrans(b1, {"--allow-remote-upgrade"}, {}, 40); });
    int pid = 0;
    for (int i = 0; i < 300 && pid == 0; ++i) {
        if (scalar("SELECT count(*)::text FROM leo_installer.cluster_members WHERE state = 'waiting'") == "1") {
            auto c = shared();
            pid = installer_pid_on(c);
        }
        if (pid == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_NE(pid, 0) << "the posttrans hook never waited for the lease";
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto sent = std::chrono::steady_clock::now();
    ::kill(pid, SIGINT);
    run.join();
    const auto took = std::chrono::steady_clock::now() - sent;
    EXPECT_LT(took, std::chrono::seconds(10)) << "the wait went on after SIGINT";
    EXPECT_EQ(r.exit_code, 128 + SIGINT) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "SIGINT received while waiting for the cluster's upgrade lease")) << r.err;
    EXPECT_TRUE(contains(r.err, "leo-installer recover")) << r.err;
    EXPECT_EQ(history_rows(), "0");
    EXPECT_EQ(scalar("SELECT holder FROM leo_installer.upgrade_lease"), "another-broker");
    EXPECT_EQ(scalar("SELECT token::text FROM leo_installer.upgrade_lease"), std::to_string(token));
    EXPECT_EQ(scalar("SELECT state FROM leo_installer.cluster_members WHERE site_id = 1"), "failed");
    holder->release();
    holder.reset();
    auto rec = recover_with_consent(b1);
    EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_EQ(history_rows(), "2");
}

// Attack that held: the lease row edited by hand while the posttrans migrates (its token
// moved on, as if another broker had taken it): the next migration is fenced off, the
// shared schema keeps what committed, the registry says failed, and recover (which takes
// over the dead run's lease) finishes.
TEST_F(HooksCluster, LeaseTokenEditedByHandMidMigrationFencesTheNextMigrationAndRecoverFinishes) {
    const auto b1 = add_broker(1);
    rpm_upgrade(b1);
    leo::subprocess::Result r;
    std::thread run([&] { r = posttrans(b1, {"--allow-remote-upgrade"}, paused_at("migrate.between", 4)); });
    EXPECT_TRUE(wait_until_paused());
    shared().exec("UPDATE leo_installer.upgrade_lease SET token = token + 100 WHERE id = 1");
    run.join();
    EXPECT_NE(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "lease")) << r.err;
    EXPECT_EQ(history_rows(), "1");
    EXPECT_EQ(scalar("SELECT state FROM leo_installer.cluster_members WHERE site_id = 1"), "failed");
    auto rec = recover_with_consent(b1);
    EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_EQ(history_rows(), "2");
    EXPECT_EQ(scalar("SELECT coalesce(holder, '') FROM leo_installer.upgrade_lease"), "");
}

// Attack that held: a posttrans while another broker runs `upgrade` (holding the lease
// from before its restore point): the posttrans waits for it, then finds the shared
// schema migrated and applies nothing.
TEST_F(HooksCluster, PosttransWhileAnotherBrokerUpgradesWaitsAndAppliesNothing) {
    const auto b1 = add_broker(1);
    const auto b2 = add_broker(2);
    rpm_upgrade(b1);
    leo::subprocess::Result up;
    std::thread upgrading(
        [&] { up = run_installer(upgrade_args(b2, true), paused_at("upgrade.after_restore_point", 6)); });
    EXPECT_TRUE(wait_until_paused()) << "the upgrade never reached its restore point";
    auto hook = posttrans(b1, {"--allow-remote-upgrade"});
    upgrading.join();
    EXPECT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_EQ(hook.exit_code, 0) << hook.out << hook.err;
    EXPECT_TRUE(contains(hook.out, "waiting for the cluster's upgrade lease")) << hook.out;
    EXPECT_TRUE(contains(hook.out, "(0 migrations applied")) << hook.out;
    EXPECT_EQ(history_rows(), "2");
    EXPECT_EQ(scalar("SELECT coalesce(holder, '') FROM leo_installer.upgrade_lease"), "");
}

// Attack that held: SIGKILL inside the first migration's transaction (the server rolls it
// back): nothing of 9.1 is applied, the dead run's lease stays until recover on that
// broker takes it over and finishes.
TEST_F(HooksCluster, KilledInsideAMigrationRecoverTakesTheLeaseOverAndFinishes) {
    const auto b1 = add_broker(1);
    rpm_upgrade(b1);
    leo::subprocess::Options fault;
    fault.env = {{"LEO_FAULT_INJECT", "migrate.inside"}};
    auto killed = posttrans(b1, {"--allow-remote-upgrade"}, fault);
    ASSERT_EQ(killed.signal, SIGKILL) << killed.out << killed.err;
    EXPECT_EQ(history_rows(), "0");
    EXPECT_NE(scalar("SELECT coalesce(holder, '') FROM leo_installer.upgrade_lease"), "");
    auto rec = recover_with_consent(b1);
    EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_EQ(history_rows(), "2");
    EXPECT_EQ(scalar("SELECT coalesce(holder, '') FROM leo_installer.upgrade_lease"), "");
    EXPECT_EQ(scalar("SELECT state FROM leo_installer.cluster_members WHERE site_id = 1"), "running");
}

} // namespace
