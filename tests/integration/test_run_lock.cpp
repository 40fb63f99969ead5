// One run at a time, and a plan that is still true when it runs: the run lock survives an
// administrator who removes its file, refuses a FIFO planted at its path, keeps the
// database commands out of a live run; the plan confirmed at the question is checked again
// before the first change; rollback waits for another rpm transaction before changing
// anything; a read-only command as another user changes nothing of root's; a journal that
// cannot be used says what to do; usage errors are JSON with --json. The real binary, a real
// PostgreSQL, real rpm transactions, real terminals.
#include "broker_runs.hpp"
#include "test_support.hpp"

#include "leo/common/fs.hpp"

#include <csignal>
#include <fstream>
#include <future>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;
using namespace leo::test::runs;

/// A `snapshot create` in the background whose VM-snapshot hook takes `seconds`; returns
/// once the hook has started (the run holds the lock from then until the hook ends).
Background slow_run(const stdfs::path& root, const stdfs::path& dir, int seconds) {
    stdfs::create_directories(root / "etc/leo-installer");
    const auto marker = dir / "hook-started";
    std::ofstream(root / "etc/leo-installer/installer.conf")
        << "[vm_snapshot]\ncreate_command = touch " << marker.string() << "; sleep " << seconds
        << "; echo snap-1\n";
    auto bg = start_background({"snapshot", "create", "-y", "--root", root.string()}, dir);
    EXPECT_TRUE(wait_for_file(marker, std::chrono::seconds(60))) << leo::test::slurp(bg.err);
    return bg;
}

TEST_F(Broker, RemovingTheLockFileUnderALiveRunAdmitsNoSecondRun) {
    auto bg = slow_run(root, tmp.path(), 4);
    // An administrator "cleans up a stale lock" (yum's habit with its pid file).
    stdfs::remove(root / "var/lib/leo-installer/lock");
    auto second = run_installer(args({"upgrade", "-y"}));
    EXPECT_EQ(second.exit_code, 3) << second.out << second.err;
    EXPECT_TRUE(contains(second.err, "another leo-installer run is in progress")) << second.err;
    EXPECT_TRUE(contains(second.err, "pid " + std::to_string(bg.pid))) << second.err;
    auto st = run_installer(args({"status"}));
    EXPECT_EQ(st.exit_code, 7) << st.out;
    EXPECT_TRUE(contains(st.out, "in progress (pid " + std::to_string(bg.pid))) << st.out;
    EXPECT_EQ(bg.wait_exit(), 0) << leo::test::slurp(bg.err);
    EXPECT_EQ(installed(), k_old + "\n");
    // The next run writes its holder line again, root-only.
    ASSERT_EQ(run_installer(args({"snapshot", "create", "-y"})).exit_code, 0);
    EXPECT_EQ(leo::test::mode_of(root / "var/lib/leo-installer/lock") & 07777, 0600u);
}

TEST_F(Broker, AFifoAtTheLockOrLogPathIsRefusedNotWaitedOn) {
    const auto lock = root / "var/lib/leo-installer/lock";
    stdfs::remove(lock);
    ASSERT_EQ(::mkfifo(lock.c_str(), 0600), 0);
    const std::vector<std::string> skip{"var/log", "home/leo/pgsql", "var/lib/leo-installer/lock",
                                        "var/lib/rpm/rpmdb.sqlite-shm"};
    const auto before = leo::test::snapshot_tree(root, skip);
    leo::subprocess::Options bounded;
    bounded.timeout = std::chrono::seconds(60);
    auto r = run_installer(args({"upgrade", "-y"}), bounded);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "lock: it is not a regular file")) << r.err;
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(leo::test::snapshot_tree(root, skip), before);
    stdfs::remove(lock);

    // The log: the run goes on without it (it never blocks on the FIFO).
    const auto log = root / "var/log/leo-installer/installer.log";
    stdfs::remove(log);
    ASSERT_EQ(::mkfifo(log.c_str(), 0600), 0);
    auto restart = run_installer(args({"db", "restart"}), bounded);
    EXPECT_FALSE(restart.timed_out);
    EXPECT_EQ(restart.exit_code, 0) << restart.err;
    EXPECT_TRUE(contains(restart.out, "started it again")) << restart.out;
    EXPECT_TRUE(contains(restart.err, "warning: the log cannot be written")) << restart.err << "never silently without it";
}

TEST_F(Broker, DatabaseCommandsWaitForALiveRun) {
    auto bg = slow_run(root, tmp.path(), 4);
    for (const char* action : {"stop", "restart", "start"}) {
        auto r = run_installer(args({"db", action}));
        EXPECT_EQ(r.exit_code, 3) << action << ": " << r.out << r.err;
        EXPECT_TRUE(contains(r.err, "another leo-installer run is in progress")) << r.err;
        EXPECT_TRUE(contains(r.err, "snapshot create")) << r.err;
    }
    EXPECT_EQ(leo::migrations::InternalDatabase(root).status().state, leo::migrations::DbState::running);
    // `db status` reads only: answered at once.
    EXPECT_EQ(run_installer(args({"db", "status"})).exit_code, 0);
    // With --wait it runs once the holder is done.
    auto waited = run_installer(args({"db", "stop", "--wait", "60"}));
    EXPECT_EQ(waited.exit_code, 0) << waited.err;
    EXPECT_TRUE(contains(waited.out, "stopped the internal database")) << waited.out;
    EXPECT_EQ(bg.wait_exit(), 0);
}

/// The broker package `nevra` installed by rpm itself, behind leo-installer's back.
void rpm_upgrade_behind_our_back(const stdfs::path& root, const std::string& nevra) {
    auto r = leo::subprocess::run({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-U", "--nodeps",
                                   "--noscripts", "--nosignature",
                                   (leo::test::test_packages_dir() / "repo" / (nevra + ".rpm")).string()});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(Broker, APlanMadeStaleWhileTheQuestionWaitedIsRefusedWithNothingChanged) {
    auto a = start_on_terminal(args({"upgrade", "--version", "9.2.0"}));
    ASSERT_TRUE(a.read_until("[y/N]")) << a.seen;
    rpm_upgrade_behind_our_back(root, "leostream-broker-9.1.2-1.x86_64");
    const auto snapshots = run_installer(args({"snapshot", "list", "--json"})).out;
    ASSERT_EQ(::write(a.master, "y\n", 2), 2);
    EXPECT_EQ(a.wait_exit(), 3) << a.seen;
    EXPECT_TRUE(contains(a.seen, "the installed broker changed while the question waited (planned for " + k_old +
                                     ", now leostream-broker-9.1.2-1.x86_64); nothing was changed"))
        << a.seen;
    EXPECT_EQ(installed(), "leostream-broker-9.1.2-1.x86_64\n");
    EXPECT_EQ(run_installer(args({"snapshot", "list", "--json"})).out, snapshots) << "no restore point was taken";
    auto rec = run_installer(args({"recover", "--dry-run"}));
    EXPECT_TRUE(contains(rec.out, "nothing to recover")) << rec.out;
}

TEST(FirstInstall, APackageInstalledWhileTheQuestionWaitedIsRefusedWithNothingChanged) {
    leo::test::TempDir tmp;
    const auto root = tmp.path() / "root";
    leo::test::make_sandbox_root(root);
    const auto pkgs = leo::test::test_packages_dir();
    auto a = start_on_terminal({"install", "--rpm", (pkgs / "repo" / (k_old + ".rpm")).string(), "--root",
                                root.string(), "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string()});
    ASSERT_TRUE(a.read_until("[y/N]")) << a.seen;
    rpm_upgrade_behind_our_back(root, k_old);
    ASSERT_EQ(::write(a.master, "y\n", 2), 2);
    EXPECT_EQ(a.wait_exit(), 3) << a.seen;
    EXPECT_TRUE(contains(a.seen, k_old + " was installed in " + root.string() +
                                     " by something else while the question waited; nothing was changed"))
        << a.seen;
    EXPECT_EQ(leo::fs::read_file(root / "etc/passwd").find("leo:"), std::string::npos) << "no leo user";
    EXPECT_FALSE(stdfs::exists(root / "home/leo/pgsql/data")) << "no database";
}

TEST_F(Broker, RollbackWaitsForAnotherRpmTransactionThenRefusesWithNothingChanged) {
    ASSERT_EQ(run_installer(args({"upgrade", "-y"})).exit_code, 0);
    const auto slow = leo::test::build_sleeping_package(tmp.path(), "slowpkg", 6);
    const std::vector<std::string> skip{"var/log", "home/leo/pgsql", "var/lib/leo-installer/lock", "var/cache",
                                        "var/lib/rpm"};
    const auto before = leo::test::snapshot_tree(root, skip);
    const auto tables = leo::test::table_checksums(root);
    const pid_t rpm = rpm_holding_the_lock(root, slow, tmp.path() / "rpm.log");
    auto r = run_installer(args({"rollback", "-y", "--rpmdb-wait", "1"}));
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "waiting up to 1 s for another rpm transaction to finish (pid " + std::to_string(rpm)))
        << r.out;
    EXPECT_TRUE(contains(r.err, "while another rpm transaction runs; nothing was changed")) << r.err;
    int status = 0;
    ::waitpid(rpm, &status, 0);
    EXPECT_EQ(installed(), k_new + "\n");
    EXPECT_EQ(leo::test::table_checksums(root), tables) << "the database was not touched";
    EXPECT_EQ(leo::test::snapshot_tree(root, skip), before);
    EXPECT_EQ(run_installer(args({"status"})).exit_code, 0);
    // Once the other transaction is done, the same rollback runs.
    auto again = run_installer(args({"rollback", "-y"}));
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(installed(), k_old + "\n");
}

TEST_F(Broker, CheckUpdateAsAnotherUserChangesNothingOfRoots) {
    const auto before = leo::test::snapshot_tree(root, {"var/log", "home/leo/pgsql"});
    auto r = as_nobody(args({"check-update"}));
    EXPECT_EQ(r.exit_code, 100) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "update available: " + k_new)) << r.out;
    EXPECT_EQ(leo::test::snapshot_tree(root, {"var/log", "home/leo/pgsql"}), before);
    // status as another user: what it could not read is "unknown", in JSON too.
    auto st = as_nobody(args({"status", "--json"}));
    EXPECT_EQ(st.exit_code, 4) << st.out << st.err;
    const auto sj = nlohmann::json::parse(st.out);
    EXPECT_EQ(sj["database"]["state"], "unknown") << st.out;
    EXPECT_EQ(sj["in_progress"], "unknown") << st.out;
    auto j = as_nobody(args({"check-update", "--json"}));
    EXPECT_EQ(j.exit_code, 100) << j.err;
    EXPECT_EQ(nlohmann::json::parse(j.out)["update"], k_new);
}

TEST_F(Broker, AJournalThatCannotBeUsedSaysWhatToDo) {
    const auto journal = root / "var/lib/leo-installer/journal";
    ASSERT_TRUE(stdfs::exists(journal));
    const auto kept = leo::test::slurp(journal);
    for (const std::string& bad : {std::string("{not json\n{}\n"),
                                   std::string(R"({"v": 99, "type": "begin", "run": "x", "command": "upgrade"})"
                                               "\n")}) {
        std::ofstream(journal, std::ios::app) << bad;
        auto st = run_installer(args({"status"}));
        EXPECT_EQ(st.exit_code, 5) << st.out << st.err;
        EXPECT_TRUE(contains(st.out, "the journal cannot be used, so whether a run is unfinished is unknown")) << st.out;
        EXPECT_TRUE(contains(st.out, "mv " + journal.string())) << st.out;
        EXPECT_FALSE(contains(st.out, "is unfinished: run")) << st.out;
        auto j = nlohmann::json::parse(run_installer(args({"status", "--json"})).out);
        EXPECT_TRUE(j["journal_error"].is_string()) << j.dump();
        EXPECT_TRUE(j["unfinished_run"].is_null()) << j.dump();
        auto rec = run_installer(args({"recover", "--dry-run"}));
        EXPECT_EQ(rec.exit_code, 1) << rec.out << rec.err;
        EXPECT_TRUE(contains(rec.err, "cannot tell from it whether a run was interrupted")) << rec.err;
        EXPECT_TRUE(contains(rec.err, ".damaged")) << rec.err;
        auto up = run_installer(args({"upgrade", "-y"}));
        EXPECT_NE(up.exit_code, 0);
        EXPECT_TRUE(contains(up.err, "move the journal aside")) << up.err;
        EXPECT_EQ(installed(), k_old + "\n");
        std::ofstream(journal, std::ios::trunc) << kept;
    }
}

TEST_F(Broker, UsageAndVerifyErrorsAreJsonWithJson) {
    auto r = run_installer(args({"status", "--json", "--no-such-flag"}));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["error"]["exit_code"], 2);
    EXPECT_EQ(j["error"]["command"], "status");
    EXPECT_TRUE(contains(j["error"]["message"].get<std::string>(), "--no-such-flag")) << r.out;
    auto bad_value = run_installer(args({"upgrade", "--json", "--wait", "many"}));
    EXPECT_EQ(bad_value.exit_code, 2);
    EXPECT_TRUE(nlohmann::json::parse(bad_value.out)["error"]["message"].is_string()) << bad_value.out;

    const auto unsigned_rpm = pkgs / "unsigned" / "leostream-broker-9.1.2-1.x86_64.rpm";
    auto v = run_installer({"verify", "--json", "--rpm", unsigned_rpm.string()});
    EXPECT_EQ(v.exit_code, 1) << v.err;
    const auto vj = nlohmann::json::parse(v.out);
    EXPECT_EQ(vj["signature"], "unsigned");
    EXPECT_EQ(vj["error"]["exit_code"], 1);
    EXPECT_TRUE(contains(vj["error"]["message"].get<std::string>(), "is not signed")) << v.out;
    auto ok = run_installer({"verify", "--json", "--rpm", (pkgs / "repo" / (k_new + ".rpm")).string(), "--gpgkey",
                             (pkgs / "RPM-GPG-KEY-leo-test").string()});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_FALSE(nlohmann::json::parse(ok.out).contains("error")) << ok.out;
}

TEST(FirstInstall, ASignalDuringTheDatabaseStepFinishesTheInstallAndSaysSo) {
    leo::test::TempDir tmp;
    const auto root = tmp.path() / "root";
    leo::test::make_sandbox_root(root);
    const auto pkgs = leo::test::test_packages_dir();
    leo::subprocess::Options at_step;
    at_step.env["LEO_FAULT_INJECT"] = "install.after_database_init";
    at_step.env["LEO_FAULT_SIGNAL"] = std::to_string(SIGINT);
    auto r = run_installer({"install", "--rpm", (pkgs / "repo" / (k_old + ".rpm")).string(), "--root",
                            root.string(), "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y"},
                           at_step);
    EXPECT_EQ(r.signal, 0) << r.err;
    EXPECT_EQ(r.exit_code, 130) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "SIGINT received: the package is installed; finishing its database step, which "
                                "will not be undone"))
        << r.err;
    EXPECT_FALSE(contains(r.err, "undoing")) << r.err;
    EXPECT_TRUE(contains(r.err, "had completed what it was doing; nothing was undone")) << r.err;
    EXPECT_EQ(run_installer({"status", "--root", root.string()}).exit_code, 0);
    (void)run_installer({"db", "stop", "--root", root.string()});
}

TEST_F(Broker, AStaleLockFileMovedAsideDuringAnUpgradeIsSaidOnItsOutput) {
    // A crash of the server: its postmaster.pid stays behind, naming a pid that has ended.
    const auto st = leo::migrations::InternalDatabase(root).status();
    ASSERT_EQ(st.state, leo::migrations::DbState::running);
    const auto postmaster = static_cast<pid_t>(*st.pid);
    ASSERT_EQ(::kill(postmaster, SIGKILL), 0);
    for (int i = 0; i < 200 && leo::migrations::InternalDatabase(root).status().state ==
                                   leo::migrations::DbState::running;
         ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto r = run_installer(args({"upgrade", "-y"}));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.out + r.err, "stale postmaster.pid names pid " + std::to_string(postmaster) +
                                            ", which is not running: moved it aside to"))
        << r.out << r.err;
    EXPECT_EQ(installed(), k_new + "\n");
}

TEST_F(Broker, ARollbackThatStopsPartWaySaysThatRecoverFinishesIt) {
    ASSERT_EQ(run_installer(args({"upgrade", "-y"})).exit_code, 0);
    // A server that cannot start is found before anything changes: refused, nothing to recover.
    ASSERT_EQ(run_installer(args({"db", "stop"})).exit_code, 0);
    const auto pgconf = root / "home/leo/pgsql/data/postgresql.conf";
    const auto kept = leo::test::slurp(pgconf);
    std::ofstream(pgconf, std::ios::app) << "this is not a setting\n";
    auto early = run_installer(args({"rollback", "-y"}));
    EXPECT_EQ(early.exit_code, 3) << early.out << early.err;
    EXPECT_TRUE(contains(early.err, "nothing was changed")) << early.err;
    EXPECT_TRUE(contains(early.err, "contains errors")) << early.err;
    EXPECT_FALSE(contains(early.err, "\\x0a")) << early.err;
    EXPECT_TRUE(contains(run_installer(args({"recover", "--dry-run"})).out, "nothing to recover"));
    std::ofstream(pgconf, std::ios::trunc) << kept;
    EXPECT_EQ(installed(), k_new + "\n");

    // A directory where the package puts a file: the package step fails after the state
    // being left was kept, so the rollback stopped part way.
    const auto conf = root / "home/leo/etc/broker.conf";
    const auto conf_text = leo::test::slurp(conf);
    stdfs::remove(conf);
    stdfs::create_directories(conf / "in-the-way");
    auto r = run_installer(args({"rollback", "-y"}));
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "stopped part way; once the cause below is fixed, run `leo-installer recover --root " +
                                    root.string() + "` to finish it"))
        << r.err;
    EXPECT_FALSE(contains(r.err, "\\x0a")) << r.err;
    stdfs::remove_all(conf);
    std::ofstream(conf) << conf_text;
    auto rec = run_installer(args({"recover", "-y"}));
    EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(schema(), "9.0.0.2");
}

TEST(FirstInstall, TwoInstallsRacingWithWaitLeaveTheWinnersInstallWhole) {
    // The loser waits, is refused at the lock, and must not remove what the winner made
    // meanwhile (the rpmdb, the state directory).
    leo::test::TempDir tmp;
    const auto root = tmp.path() / "root";
    leo::test::make_sandbox_root(root);
    const auto pkgs = leo::test::test_packages_dir();
    const std::vector<std::string> argv{"install", "--rpm", (pkgs / "repo" / (k_old + ".rpm")).string(), "--root",
                                        root.string(), "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y",
                                        "--wait", "1"};
    auto a = std::async(std::launch::async, [&] { return run_installer(argv); });
    auto b = std::async(std::launch::async, [&] { return run_installer(argv); });
    const auto ra = a.get();
    const auto rb = b.get();
    EXPECT_TRUE(ra.exit_code == 0 || rb.exit_code == 0) << ra.err << rb.err;
    EXPECT_EQ(leo::test::rpm_query(root, "leostream-broker").out, k_old + "\n") << ra.err << rb.err;
    EXPECT_EQ(run_installer({"status", "--root", root.string()}).exit_code, 0);
    (void)run_installer({"db", "stop", "--root", root.string()});
}

} // namespace
