// Runs that cannot be torn: every signal at every journal step of an upgrade (sent through
// the kernel at the step, by LEO_FAULT_SIGNAL), a Ctrl-C to the whole process group while
// a hook works, the run lock across the confirmation question, the terminal after Ctrl-C
// at the password prompt, `status` of a live run, `recover --dry-run`, a user who is not
// root, status exit codes, errors as JSON, and a rollback that leaves the database as it
// found it. The real binary, a real PostgreSQL, real rpm transactions, real terminals.
#include "broker_runs.hpp"
#include "test_support.hpp"

#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"

#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <pty.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;
using namespace leo::test::runs;

// --- every signal at every journal step -------------------------------------------------

struct SignalCase {
    int signal;
    std::string point;
    std::string expected;  ///< NEVRA after the run
};
std::ostream& operator<<(std::ostream& os, const SignalCase& c) { return os << c.signal << "@" << c.point; }

class SignalMatrix : public Broker, public ::testing::WithParamInterface<SignalCase> {};

TEST_P(SignalMatrix, UpgradeEndsOnOneVersionAndSaysSo) {
    const auto& c = GetParam();
    leo::subprocess::Options at_step;
    at_step.env["LEO_FAULT_INJECT"] = c.point;
    at_step.env["LEO_FAULT_SIGNAL"] = std::to_string(c.signal);
    auto r = run_installer(args({"upgrade", "-y"}), at_step);
    // Not killed: it finished the step, then ended by itself with 128+N and a message.
    EXPECT_EQ(r.signal, 0) << r.out << r.err;
    EXPECT_EQ(r.exit_code, 128 + c.signal) << r.out << r.err;
    EXPECT_EQ(installed(), c.expected + "\n") << r.out << r.err;
    if (c.expected == k_old) {
        EXPECT_TRUE(contains(r.err, "interrupted by")) << r.err;
        EXPECT_TRUE(contains(r.err, k_old)) << r.err;
        EXPECT_EQ(schema(), "9.0.0.2");
    } else {
        EXPECT_TRUE(contains(r.err, "had completed")) << r.err;
        EXPECT_EQ(schema(), "9.1.0.2");
    }
    // Nothing is left for recover, and the files are the package's.
    auto rec = run_installer(args({"recover", "--dry-run"}));
    EXPECT_EQ(rec.exit_code, 0) << rec.err;
    EXPECT_TRUE(contains(rec.out, "nothing to recover")) << rec.out;
    auto v = leo::subprocess::run(
        {"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-V", "--noconfig", "leostream-broker"});
    EXPECT_EQ(v.exit_code, 0) << v.out;
}

std::vector<SignalCase> signal_cases() {
    const std::vector<std::pair<std::string, std::string>> points = {
        {"upgrade.begin", k_old},          {"upgrade.after_restore_point", k_old},
        {"upgrade.before_transaction", k_old}, {"upgrade.after_transaction", k_old},
        {"upgrade.after_migrate", k_old},  {"upgrade.after_spot_check", k_old},
        {"upgrade.before_end", k_new},     {"upgrade.after_end", k_new}};
    std::vector<SignalCase> out;
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE})
        for (const auto& [point, expected] : points) out.push_back({sig, point, expected});
    return out;
}

INSTANTIATE_TEST_SUITE_P(EverySignalEveryStep, SignalMatrix, ::testing::ValuesIn(signal_cases()),
                         [](const ::testing::TestParamInfo<SignalCase>& p) {
                             std::string name = "sig" + std::to_string(p.param.signal) + "_" + p.param.point;
                             for (auto& ch : name)
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return name;
                         });

TEST_F(Broker, SignalDuringRollbackLetsItFinish) {
    ASSERT_EQ(run_installer(args({"upgrade", "-y"})).exit_code, 0);
    leo::subprocess::Options at_step;
    at_step.env["LEO_FAULT_INJECT"] = "restore.rpm";
    at_step.env["LEO_FAULT_SIGNAL"] = std::to_string(SIGTERM);
    auto r = run_installer(args({"rollback", "-y"}), at_step);
    EXPECT_EQ(r.exit_code, 128 + SIGTERM) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "rolled back to restore point")) << r.out;
    EXPECT_TRUE(contains(r.err, "had completed")) << r.err;
    EXPECT_EQ(installed(), k_old + "\n");
}

TEST_F(Broker, SignalAtFirstInstallTransactionUndoesIt) {
    const auto other = tmp.path() / "fresh";
    leo::test::make_sandbox_root(other);
    leo::subprocess::Options at_step;
    at_step.env["LEO_FAULT_INJECT"] = "install.after_transaction";
    at_step.env["LEO_FAULT_SIGNAL"] = std::to_string(SIGINT);
    auto r = run_installer({"install", "--rpm", (pkgs / "repo" / (k_old + ".rpm")).string(), "--root", other.string(),
                            "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y"},
                           at_step);
    EXPECT_EQ(r.exit_code, 130) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "undone")) << r.err;
    EXPECT_NE(leo::test::rpm_query(other, "leostream-broker").exit_code, 0);
    EXPECT_FALSE(stdfs::exists(other / "var/lib/leo-installer/packages" / (k_old + ".rpm"))) << "its kept copy too";
    auto rec = run_installer({"recover", "--dry-run", "--root", other.string()});
    EXPECT_TRUE(contains(rec.out, "nothing to recover")) << rec.out;
}

// --- a live run: Ctrl-C to the process group, status, the lock ----------------------------

TEST_F(Broker, CtrlCToTheProcessGroupDuringASlowHookEndsCleanlyAndALiveRunIsInProgress) {
    const auto marker = tmp.path() / "hook-started";
    const auto done = tmp.path() / "hook-done";
    stdfs::create_directories(root / "etc/leo-installer");
    std::ofstream(root / "etc/leo-installer/installer.conf")
        << "[vm_snapshot]\ncreate_command = touch " << marker.string() << "; sleep 3; touch " << done.string()
        << "; echo snap-1\n";
    stdfs::permissions(root / "etc/leo-installer/installer.conf", stdfs::perms(0644));
    auto bg = start_background(args({"upgrade", "-y"}), tmp.path());
    ASSERT_TRUE(wait_for_file(marker, std::chrono::seconds(60))) << leo::test::slurp(bg.err);

    // While it works: in progress, not "did not finish".
    auto st = run_installer(args({"status"}));
    EXPECT_EQ(st.exit_code, 7) << st.out << st.err;
    EXPECT_TRUE(contains(st.out, "in progress (pid " + std::to_string(bg.pid))) << st.out;
    EXPECT_FALSE(contains(st.out, "recover")) << st.out;
    auto second = run_installer(args({"upgrade", "-y"}));
    EXPECT_EQ(second.exit_code, 3) << second.err;
    EXPECT_TRUE(contains(second.err, "in progress")) << second.err;
    EXPECT_TRUE(contains(second.err, "pid " + std::to_string(bg.pid))) << second.err;
    EXPECT_TRUE(contains(second.err, "started ")) << second.err;
    EXPECT_FALSE(contains(second.err, "recover")) << second.err;
    auto dry = run_installer(args({"recover", "--dry-run"}));
    EXPECT_EQ(dry.exit_code, 3) << dry.out << dry.err;
    EXPECT_TRUE(contains(dry.err, "in progress")) << dry.err;

    // Ctrl-C as a terminal sends it: to the whole foreground process group. A second
    // Ctrl-C is told that the run is finishing and changes nothing.
    ASSERT_EQ(::kill(-bg.pid, SIGINT), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_EQ(::kill(-bg.pid, SIGINT), 0);
    EXPECT_EQ(bg.wait_exit(), 130);
    const auto err = leo::test::slurp(bg.err);
    EXPECT_TRUE(contains(err, "SIGINT received")) << err;
    EXPECT_TRUE(contains(err, "further signals are ignored")) << err;
    EXPECT_TRUE(contains(err, "before the package changed")) << err;
    // The hook was not killed with us: it is in its own process group and finished.
    EXPECT_TRUE(stdfs::exists(done)) << err;
    EXPECT_EQ(installed(), k_old + "\n");
    auto after = run_installer(args({"status"}));
    EXPECT_EQ(after.exit_code, 0) << after.out;
}

TEST_F(Broker, SecondRunWaitsWithWaitAndThenRefusesNamingTheHolder) {
    stdfs::create_directories(root / "etc/leo-installer");
    const auto marker = tmp.path() / "hook-started";
    std::ofstream(root / "etc/leo-installer/installer.conf")
        << "[vm_snapshot]\ncreate_command = touch " << marker.string() << "; sleep 4; echo snap-1\n";
    auto bg = start_background(args({"snapshot", "create", "-y"}), tmp.path());
    ASSERT_TRUE(wait_for_file(marker, std::chrono::seconds(60))) << leo::test::slurp(bg.err);
    const auto t0 = std::chrono::steady_clock::now();
    auto waited = run_installer(args({"rollback", "-y", "--wait", "1"}));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(900));
    EXPECT_EQ(waited.exit_code, 3) << waited.err;
    EXPECT_TRUE(contains(waited.err, "waiting for another run")) << waited.err;
    EXPECT_TRUE(contains(waited.err, "snapshot create")) << waited.err;
    EXPECT_TRUE(contains(waited.err, "within 1 s")) << waited.err;
    // With a long enough wait it runs after the holder.
    auto create = run_installer(args({"snapshot", "create", "-y", "--wait", "60"}));
    EXPECT_EQ(create.exit_code, 0) << create.err;
    EXPECT_EQ(bg.wait_exit(), 0);
}

TEST_F(Broker, AClosedPipeUndoesTheUpgradeInsteadOfTearingIt) {
    // `upgrade -y | head -3`: the reader goes away while the run changes the system.
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const auto err_file = tmp.path() / "pipe.err";
    auto argv = args({"upgrade", "-y"});
    argv.insert(argv.begin(), LEO_INSTALLER_BIN);
    std::vector<char*> p;
    for (auto& a : argv) p.push_back(a.data());
    p.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::signal(SIGPIPE, SIG_DFL);
        const int e = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(fds[1], 1);
        ::dup2(e, 2);
        ::close(fds[0]);
        ::execv(p[0], p.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    std::string seen;
    char buf[256];
    while (!contains(seen, "taking a restore point")) {
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        seen.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);  // head has what it wanted
    int status = 0;
    ::waitpid(pid, &status, 0);
    const auto err = leo::test::slurp(err_file);
    ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << ": " << err;
    EXPECT_EQ(WEXITSTATUS(status), 128 + SIGPIPE) << err;
    EXPECT_TRUE(contains(err, "interrupted by SIGPIPE")) << err;
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(schema(), "9.0.0.2");
    auto st = run_installer(args({"status"}));
    EXPECT_EQ(st.exit_code, 0) << st.out;
    // The log has what the pipe did not.
    const auto log = leo::test::slurp(root / "var/log/leo-installer/installer.log");
    EXPECT_TRUE(contains(log, "rolling back")) << log;
}

TEST_F(Broker, TheLockIsHeldAcrossTheQuestionAndTheConfirmedPlanRuns) {
    auto a = start_on_terminal(args({"upgrade", "--version", "9.2.0"}));
    ASSERT_TRUE(a.read_until("[y/N]")) << a.seen;
    // Meanwhile every other changing run is refused at once, naming A.
    for (const auto& other : std::vector<std::vector<std::string>>{
             {"upgrade", "-y", "--version", "9.1.2"}, {"rollback", "-y"}, {"snapshot", "create", "-y"}}) {
        auto r = run_installer(args(other));
        EXPECT_EQ(r.exit_code, 3) << other[0] << ": " << r.err;
        EXPECT_TRUE(contains(r.err, "pid " + std::to_string(a.pid))) << r.err;
        EXPECT_TRUE(contains(r.err, "upgrade to " + k_new)) << r.err;
    }
    EXPECT_EQ(installed(), k_old + "\n");
    ASSERT_EQ(::write(a.master, "y\n", 2), 2);
    EXPECT_EQ(a.wait_exit(), 0) << a.seen;
    EXPECT_TRUE(contains(a.seen, "upgraded " + k_old + " -> " + k_new)) << a.seen;
    EXPECT_EQ(installed(), k_new + "\n");
}

TEST_F(Broker, CtrlCAtThePasswordPromptLeavesTheTerminalAsItWas) {
    auto t = start_on_terminal(args({"switch-database", "--to_external", "existing", "--db_host", "127.0.0.1",
                                     "--db_name", "leo", "--username", "broker"}));
    ASSERT_TRUE(t.read_until("assword")) << t.seen;
    struct termios during {};
    ASSERT_EQ(::tcgetattr(t.master, &during), 0);
    EXPECT_EQ(during.c_lflag & ECHO, 0u) << "the prompt turns echo off";
    ASSERT_EQ(::write(t.master, "\x03", 1), 1);  // Ctrl-C, through the line discipline
    EXPECT_EQ(t.wait_exit(), 128 + SIGINT) << t.seen;
    struct termios after {};
    ASSERT_EQ(::tcgetattr(t.master, &after), 0);
    EXPECT_NE(after.c_lflag & ECHO, 0u) << "echo is back after Ctrl-C";
    EXPECT_NE(after.c_lflag & ICANON, 0u);
}

// --- another rpm transaction holds rpm's lock --------------------------------------------

TEST_F(Broker, UpgradeWaitsForAnotherRpmTransactionThenRuns) {
    const auto slow = leo::test::build_sleeping_package(tmp.path(), "slowpkg", 4);
    const pid_t rpm = rpm_holding_the_lock(root, slow, tmp.path() / "rpm.log");
    auto r = run_installer(args({"upgrade", "-y", "--rpmdb-wait", "30"}));
    int status = 0;
    ::waitpid(rpm, &status, 0);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "waiting up to 30 s for another rpm transaction to finish (pid " + std::to_string(rpm)))
        << r.out;
    EXPECT_EQ(installed(), k_new + "\n");
    EXPECT_TRUE(leo::test::rpm_query(root, "slowpkg").ok()) << "the other transaction completed too";
}

TEST_F(Broker, UpgradeRefusesWithNothingChangedWhenAnotherRpmTransactionGoesOn) {
    const auto slow = leo::test::build_sleeping_package(tmp.path(), "slowpkg", 6);
    const std::vector<std::string> skip{"var/log", "home/leo/pgsql", "var/lib/leo-installer/lock", "var/cache",
                                        "var/lib/rpm"};
    const auto before = leo::test::snapshot_tree(root, skip);
    const pid_t rpm = rpm_holding_the_lock(root, slow, tmp.path() / "rpm.log");
    auto r = run_installer(args({"upgrade", "-y", "--rpmdb-wait", "1"}));
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "another rpm transaction")) << r.err;
    EXPECT_TRUE(contains(r.err, "nothing was changed")) << r.err;
    EXPECT_TRUE(contains(r.err, "pid " + std::to_string(rpm))) << r.err;
    int status = 0;
    ::waitpid(rpm, &status, 0);
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(leo::test::snapshot_tree(root, skip), before) << "no restore point, no journal run";
    EXPECT_EQ(run_installer(args({"status"})).exit_code, 0);
}

// --- recover says what it will do ----------------------------------------------------------

TEST_F(Broker, RecoverDryRunSaysWhatAndWhyAndChangesNothing) {
    leo::test::make_sandbox_root(tmp.path() / "none");
    auto fresh = run_installer({"recover", "--root", (tmp.path() / "none").string(), "-y"});
    EXPECT_EQ(fresh.exit_code, 0) << fresh.err;
    EXPECT_TRUE(contains(fresh.out, "no run was ever recorded")) << fresh.out;

    leo::subprocess::Options killed;
    killed.env["LEO_FAULT_INJECT"] = "upgrade.after_migrate";
    ASSERT_EQ(run_installer(args({"upgrade", "-y"}), killed).signal, SIGKILL);
    // (the lock file is the run lock's bookkeeping: a refused run holds it for a moment)
    const std::vector<std::string> skip{"var/log", "home/leo/pgsql", "var/lib/leo-installer/lock"};
    const auto before = leo::test::snapshot_tree(root, skip);
    auto dry = run_installer(args({"recover", "--dry-run"}));
    EXPECT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_TRUE(contains(dry.out, "last step:       migrate (ended)")) << dry.out;
    EXPECT_TRUE(contains(dry.out, "before its spot-check had ended")) << dry.out;
    EXPECT_TRUE(contains(dry.out, "back:            return to " + k_old)) << dry.out;
    EXPECT_TRUE(contains(dry.out, "nothing was changed")) << dry.out;
    // Without -y and without a terminal: refused, nothing changed.
    auto asked = run_installer(args({"recover"}));
    EXPECT_EQ(asked.exit_code, 3) << asked.err;
    EXPECT_TRUE(contains(asked.err, "no terminal")) << asked.err;
    EXPECT_EQ(leo::test::snapshot_tree(root, skip), before);
    auto rec = run_installer(args({"recover", "-y"}));
    EXPECT_EQ(rec.exit_code, 0) << rec.err;
    EXPECT_EQ(installed(), k_old + "\n");
}

// --- root only; states told honestly -------------------------------------------------------

TEST_F(Broker, AnotherUserIsRefusedOrToldWhatCouldNotBeRead) {
    // Sandbox parents traversable by nobody, as on a real host.
    const auto before = leo::test::snapshot_tree(root, {"var/log", "home/leo/pgsql"});
    for (const auto& cmd : std::vector<std::vector<std::string>>{{"upgrade", "-y"},
                                                                {"rollback", "-y"},
                                                                {"recover", "-y"},
                                                                {"snapshot", "list"},
                                                                {"db", "stop"},
                                                                {"migrate"},
                                                                {"switch-database", "--to_internal", "-y"}}) {
        auto r = as_nobody(args(cmd));
        EXPECT_EQ(r.exit_code, 4) << cmd[0] << ": " << r.out << r.err;
        EXPECT_TRUE(contains(r.err, "you need to be root")) << r.err;
    }
    // The database is still running: nobody's `db stop` did nothing.
    EXPECT_EQ(leo::migrations::InternalDatabase(root).status().state, leo::migrations::DbState::running);
    EXPECT_EQ(leo::test::snapshot_tree(root, {"var/log", "home/leo/pgsql"}), before);

    auto dbst = as_nobody(args({"db", "status"}));
    EXPECT_EQ(dbst.exit_code, 4) << dbst.out << dbst.err;
    EXPECT_TRUE(contains(dbst.err, "cannot be read as this user")) << dbst.err;
    EXPECT_FALSE(contains(dbst.out, "stopped")) << dbst.out;
    auto show = as_nobody(args({"switch-database", "--show_current"}));
    EXPECT_EQ(show.exit_code, 4) << show.out << show.err;

    auto st = as_nobody(args({"status"}));
    EXPECT_EQ(st.exit_code, 4) << st.out << st.err;
    EXPECT_TRUE(contains(st.out, "unreadable:")) << st.out;
    EXPECT_TRUE(contains(st.out, "database:         unknown (cannot be read)")) << st.out;
    EXPECT_FALSE(contains(st.out, "stopped")) << st.out;
    EXPECT_FALSE(contains(st.out, "not initialised")) << st.out;
}

TEST_F(Broker, StatusExitCodesTellTheStates) {
    auto ok = run_installer(args({"status"}));
    EXPECT_EQ(ok.exit_code, 0) << ok.out;
    auto j = nlohmann::json::parse(run_installer(args({"status", "--json"})).out);
    EXPECT_EQ(j["schema_matches_package"], true);
    EXPECT_EQ(j["exit_code"], 0);

    // Stopped: not "none", not "matches", exit 6.
    ASSERT_EQ(run_installer(args({"db", "stop"})).exit_code, 0);
    auto stopped = run_installer(args({"status"}));
    EXPECT_EQ(stopped.exit_code, 6) << stopped.out;
    EXPECT_TRUE(contains(stopped.out, "database:         stopped")) << stopped.out;
    EXPECT_TRUE(contains(stopped.out, "unknown (the database is not running)")) << stopped.out;
    j = nlohmann::json::parse(run_installer(args({"status", "--json"})).out);
    EXPECT_TRUE(j["schema_matches_package"].is_null()) << j.dump();

    // An unfinished run: exit 5 and `recover`.
    leo::subprocess::Options killed;
    killed.env["LEO_FAULT_INJECT"] = "upgrade.after_transaction";
    ASSERT_EQ(run_installer(args({"upgrade", "-y"}), killed).signal, SIGKILL);
    auto unfinished = run_installer(args({"status"}));
    EXPECT_EQ(unfinished.exit_code, 5) << unfinished.out;
    EXPECT_TRUE(contains(unfinished.out, "run `leo-installer recover --root " + root.string() + "`")) << unfinished.out;
    ASSERT_EQ(run_installer(args({"recover", "-y"})).exit_code, 0);

    // Nothing installed: exit 3, and "not initialised" for a database never made.
    const auto empty = tmp.path() / "empty";
    leo::test::make_sandbox_root(empty);
    auto none = run_installer({"status", "--root", empty.string()});
    EXPECT_EQ(none.exit_code, 3) << none.out;
    EXPECT_TRUE(contains(none.out, "not installed")) << none.out;
    EXPECT_TRUE(contains(none.out, "not initialised")) << none.out;
}

TEST_F(Broker, ErrorsAreJsonWithJson) {
    auto r = run_installer({"status", "--json", "--root", (tmp.path() / "no-such-root").string()});
    EXPECT_NE(r.exit_code, 0);
    const auto j = nlohmann::json::parse(r.out);  // throws (fails the test) if not JSON
    EXPECT_TRUE(j["error"]["message"].is_string()) << r.out;
    EXPECT_EQ(j["error"]["exit_code"], r.exit_code);
    EXPECT_EQ(j["error"]["command"], "status");
    auto s = run_installer({"snapshot", "list", "--json", "--root", (tmp.path() / "no-such-root").string()});
    EXPECT_TRUE(nlohmann::json::accept(s.out)) << s.out;
}

TEST_F(Broker, RollbackLeavesTheDatabaseStoppedWhenItWasStopped) {
    ASSERT_EQ(run_installer(args({"upgrade", "-y"})).exit_code, 0);
    ASSERT_EQ(run_installer(args({"db", "stop"})).exit_code, 0);
    auto r = run_installer(args({"rollback", "-y"}));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(leo::migrations::InternalDatabase(root).status().state, leo::migrations::DbState::stopped) << r.out;
    // ... and running when it was running.
    ASSERT_EQ(run_installer(args({"upgrade", "-y"})).exit_code, 0);
    ASSERT_EQ(run_installer(args({"rollback", "-y"})).exit_code, 0);
    EXPECT_EQ(leo::migrations::InternalDatabase(root).status().state, leo::migrations::DbState::running);
}

} // namespace
