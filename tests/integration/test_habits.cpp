// The habits of yum/dnf users, through the real binary on sandbox roots: `history` (list,
// info) after install, upgrade, rollback and a recovered crash; --assumeno; `remove` with
// the database kept, and --purge-data asked twice; `install FILE.rpm`; global options before
// the command; the closest option for an unknown one; one advice for an older package.
#include "broker_runs.hpp"

#include <nlohmann/json.hpp>

#include <pwd.h>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;
using leo::test::runs::Broker;
using leo::test::runs::contains;
using leo::test::runs::k_new;
using leo::test::runs::k_old;

/// What snapshot_tree leaves out: the log (refusals are logged), the running database's own
/// files (PostgreSQL writes its statistics and WAL on its own), the run lock's holder file
/// (every run rewrites it) and the rpmdb's shared-memory index (sqlite touches it on reads).
const std::vector<std::string> k_volatile{"var/log", "home/leo/pgsql", "var/lib/leo-installer/lock",
                                          "var/lib/rpm/rpmdb.sqlite-shm"};

std::string user_name(long long uid) {
    const struct passwd* pw = ::getpwuid(static_cast<uid_t>(uid));
    return pw != nullptr ? pw->pw_name : "";
}

using History = Broker;

TEST_F(History, ListsInstallUpgradeRollbackAndARecoveredCrash) {
    auto up = run_installer(args({"upgrade", "-y"}));
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    auto rb = run_installer(args({"rollback", "-y"}));
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    leo::subprocess::Options faulty;
    faulty.env["LEO_FAULT_INJECT"] = "upgrade.after_migrate";
    auto crashed = run_installer(args({"upgrade", "-y"}), faulty);
    ASSERT_EQ(crashed.signal, 9) << "the fault point was not reached: " << crashed.out << crashed.err;

    // Before recover: the crashed run is "unfinished", and info says what to run.
    auto before = run_installer(args({"history", "info"}));
    ASSERT_EQ(before.exit_code, 0) << before.err;
    EXPECT_TRUE(contains(before.out, "unfinished (run `leo-installer recover")) << before.out;
    EXPECT_TRUE(contains(before.out, "(not ended)")) << before.out;

    auto rec = run_installer(args({"recover", "-y"}));
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;

    // The list: newest first, one line a run, with its command, result and versions.
    auto list = run_installer(args({"history"}));
    ASSERT_EQ(list.exit_code, 0) << list.err;
    const auto line_of = [&](const std::string& id) {
        const auto at = list.out.find("\n" + std::string(4 - id.size(), ' ') + id + " | ");
        return at == std::string::npos ? std::string() : list.out.substr(at + 1, list.out.find('\n', at + 1) - at - 1);
    };
    EXPECT_TRUE(contains(line_of("1"), "install")) << list.out;
    EXPECT_TRUE(contains(line_of("1"), "| ok")) << list.out;
    EXPECT_TRUE(contains(line_of("1"), k_old)) << list.out;
    EXPECT_TRUE(contains(line_of("2"), "upgrade")) << list.out;
    EXPECT_TRUE(contains(line_of("2"), k_old + " -> " + k_new)) << list.out;
    EXPECT_TRUE(contains(line_of("3"), "rollback")) << list.out;
    EXPECT_TRUE(contains(line_of("3"), "| ok")) << list.out;
    EXPECT_TRUE(contains(line_of("4"), "upgrade")) << list.out;
    EXPECT_TRUE(contains(line_of("4"), "recovered-back")) << list.out;
    EXPECT_EQ(line_of("5"), "") << list.out;
    EXPECT_LT(list.out.find("\n   4 | "), list.out.find("\n   1 | ")) << "newest first: " << list.out;

    // info of the recovered crash (by number, `last`, and the run id from --json).
    auto info = run_installer(args({"history", "info", "4"}));
    ASSERT_EQ(info.exit_code, 0) << info.err;
    EXPECT_TRUE(contains(info.out, "Result        : recovered-back")) << info.out;
    EXPECT_TRUE(contains(info.out, "Command       : upgrade")) << info.out;
    EXPECT_TRUE(contains(info.out, "Command line  : leo-installer upgrade -y --root " + root.string())) << info.out;
    EXPECT_TRUE(contains(info.out, "From          : " + k_old)) << info.out;
    EXPECT_TRUE(contains(info.out, "To            : " + k_new)) << info.out;
    EXPECT_FALSE(contains(info.out, "(not ended)")) << info.out;
    EXPECT_TRUE(contains(info.out, "migrate")) << "the steps it reached: " << info.out;
    EXPECT_EQ(run_installer(args({"history", "info", "last"})).out, info.out);
    EXPECT_EQ(run_installer(args({"history", "info", "last-3"})).out,
              run_installer(args({"history", "info", "1"})).out);

    auto js = run_installer(args({"history", "--json"}));
    ASSERT_EQ(js.exit_code, 0) << js.err;
    const auto j = nlohmann::json::parse(js.out);
    ASSERT_EQ(j.size(), 4U) << js.out;
    EXPECT_EQ(j[0]["id"], 4);
    EXPECT_EQ(j[0]["result"], "recovered-back");
    EXPECT_EQ(j[3]["command"], "install");
    EXPECT_EQ(j[3]["from"], "");
    EXPECT_EQ(j[3]["to"], k_old);
    for (const auto& run : j) {
        ASSERT_TRUE(run["uid"].is_number_integer()) << run.dump();
        EXPECT_EQ(run["user"], user_name(run["uid"].get<long long>())) << run.dump();
        EXPECT_FALSE(run["begin"].get<std::string>().empty()) << run.dump();
        EXPECT_TRUE(run["end"].is_string()) << "every run ended: " << run.dump();
        EXPECT_LE(run["begin"].get<std::string>(), run["end"].get<std::string>()) << run.dump();
    }
    auto by_id = run_installer(args({"history", "info", j[1]["run"].get<std::string>()}));
    EXPECT_EQ(by_id.out, run_installer(args({"history", "info", "3"})).out);

    // A run that does not exist: exit 1, the range named; `list` takes no run.
    auto none = run_installer(args({"history", "info", "9"}));
    EXPECT_EQ(none.exit_code, 1);
    EXPECT_TRUE(contains(none.err, "no run '9' in the journal of " + root.string() + " (runs 1 to 4)")) << none.err;
    auto bad = run_installer(args({"history", "list", "3"}));
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_TRUE(contains(bad.err, "history list takes no run")) << bad.err;
}

TEST(HistoryEmpty, ARootWithoutJournalHasNoRuns) {
    leo::test::TempDir tmp;
    auto r = run_installer({"history", "--root", tmp.path().string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "no runs recorded")) << r.out;
    auto info = run_installer({"history", "info", "--root", tmp.path().string()});
    EXPECT_EQ(info.exit_code, 1);
    EXPECT_TRUE(contains(info.err, "(it has none)")) << info.err;
    auto undo = run_installer({"history", "undo", "1", "--root", tmp.path().string()});
    EXPECT_EQ(undo.exit_code, 2);
    EXPECT_TRUE(contains(undo.err, "history undo is not supported: a run is undone by returning to the restore point"))
        << undo.err;
    EXPECT_TRUE(stdfs::is_empty(tmp.path())) << "history changed the root";
}

using AssumeNo = Broker;

TEST_F(AssumeNo, AnswersNoAndChangesNothing) {
    // The download cache is not a change: upgrade stages (downloads and verifies) before it
    // asks, as dnf --assumeno refreshes its metadata cache too.
    auto volatile_and_cache = k_volatile;
    volatile_and_cache.push_back("var/cache");
    const auto before = leo::test::snapshot_tree(root, volatile_and_cache);
    auto up = run_installer(args({"upgrade", "--assumeno"}));
    EXPECT_EQ(up.exit_code, 3) << up.out << up.err;  // as a typed "n": cancelled
    EXPECT_TRUE(contains(up.out, "[y/N]: no (--assumeno)")) << up.out;
    EXPECT_TRUE(contains(up.err, "upgrade cancelled: nothing was changed")) << up.err;
    EXPECT_EQ(installed(), k_old + "\n");
    // The global spelling, on remove: nothing removed either.
    auto rm = run_installer({"--root", root.string(), "--assumeno", "remove"});
    EXPECT_EQ(rm.exit_code, 3) << rm.out << rm.err;
    EXPECT_TRUE(contains(rm.err, "remove cancelled: nothing was changed")) << rm.err;
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(leo::test::snapshot_tree(root, volatile_and_cache), before);

    auto both = run_installer(args({"upgrade", "-y", "--assumeno"}));
    EXPECT_EQ(both.exit_code, 2) << both.err;
    EXPECT_EQ(leo::test::snapshot_tree(root, volatile_and_cache), before);
}

using Remove = Broker;

TEST_F(Remove, KeepsTheDatabaseAndConfiguration) {
    const auto tables = leo::test::table_checksums(root);
    auto rm = run_installer(args({"remove", "-y"}));
    ASSERT_EQ(rm.exit_code, 0) << rm.out << rm.err;
    EXPECT_TRUE(contains(rm.out, "removed " + k_old)) << rm.out;
    EXPECT_TRUE(contains(rm.out, "kept " + (root / "home/leo/pgsql").string())) << rm.out;
    EXPECT_NE(leo::test::rpm_query(root, "leostream-broker").exit_code, 0) << "still installed";
    EXPECT_TRUE(stdfs::exists(root / "home/leo/pgsql/data/PG_VERSION"));
    EXPECT_FALSE(stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid")) << "the database was left running";
    // The data are the same rows as before the removal (the kept data directory starts).
    auto start = run_installer(args({"db", "start"}));
    ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
    EXPECT_EQ(leo::test::table_checksums(root), tables);
    (void)run_installer(args({"db", "stop"}));
    auto hist = run_installer(args({"history", "info", "last"}));
    EXPECT_TRUE(contains(hist.out, "Command       : remove")) << hist.out;
    EXPECT_TRUE(contains(hist.out, "Result        : ok")) << hist.out;

    auto again = run_installer(args({"remove", "-y"}));
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_TRUE(contains(again.out, "not installed")) << again.out;
}

TEST_F(Remove, PurgeDataWithoutATerminalNeedsAssumeyes) {
    const auto before = leo::test::snapshot_tree(root, k_volatile);
    auto rm = run_installer(args({"remove", "--purge-data"}));
    EXPECT_EQ(rm.exit_code, 3) << rm.out << rm.err;
    EXPECT_TRUE(contains(rm.err, "no terminal to ask for confirmation on; pass -y")) << rm.err;
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(leo::test::snapshot_tree(root, k_volatile), before);
}

TEST_F(Remove, PurgeDataAsksTwiceOnATerminal) {
    const auto before = leo::test::snapshot_tree(root, k_volatile);
    {  // yes, then no: nothing changed
        auto t = leo::test::runs::start_on_terminal(args({"remove", "--purge-data"}));
        ASSERT_TRUE(t.read_until("[y/N]: ")) << t.seen;
        EXPECT_TRUE(contains(t.seen, "Remove " + k_old)) << t.seen;
        ASSERT_EQ(::write(t.master, "y\n", 2), 2);
        ASSERT_TRUE(t.read_until("for good?")) << t.seen;
        ASSERT_TRUE(t.read_until("cannot be recovered afterwards (no restore point is taken). [y/N]: ")) << t.seen;
        ASSERT_EQ(::write(t.master, "n\n", 2), 2);
        EXPECT_EQ(t.wait_exit(), 3) << t.seen;
        EXPECT_TRUE(contains(t.seen, "remove cancelled: nothing was changed")) << t.seen;
        EXPECT_EQ(installed(), k_old + "\n");
        EXPECT_EQ(leo::test::snapshot_tree(root, k_volatile), before);
    }
    {  // yes twice: removed and purged
        auto t = leo::test::runs::start_on_terminal(args({"remove", "--purge-data"}));
        ASSERT_TRUE(t.read_until("[y/N]: ")) << t.seen;
        ASSERT_EQ(::write(t.master, "y\n", 2), 2);
        ASSERT_TRUE(t.read_until("(no restore point is taken). [y/N]: ")) << t.seen;
        ASSERT_EQ(::write(t.master, "y\n", 2), 2);
        EXPECT_EQ(t.wait_exit(), 0) << t.seen;
        EXPECT_TRUE(contains(t.seen, "deleted " + (root / "home/leo/pgsql").string())) << t.seen;
    }
    EXPECT_NE(leo::test::rpm_query(root, "leostream-broker").exit_code, 0);
    EXPECT_FALSE(stdfs::exists(root / "home/leo/pgsql"));
    EXPECT_TRUE(stdfs::exists(root / "var/lib/leo-installer/journal")) << "history is kept";
}

TEST_F(Remove, PurgeDataWithAssumeyesAnswersBoth) {
    auto snap = run_installer(args({"snapshot", "create", "-y"}));
    ASSERT_EQ(snap.exit_code, 0) << snap.out << snap.err;
    auto rm = run_installer(args({"remove", "--purge-data", "-y"}));
    ASSERT_EQ(rm.exit_code, 0) << rm.out << rm.err;
    EXPECT_FALSE(stdfs::exists(root / "home/leo/pgsql"));
    EXPECT_FALSE(stdfs::exists(root / "var/lib/leo-installer/snapshots"));
    EXPECT_TRUE(stdfs::exists(root / "var/lib/leo-installer/journal")) << "history is kept";
}

using Spellings = Broker;

TEST_F(Spellings, OlderPackageGetsOneAdviceFromInstallAndUpgrade) {
    auto up = run_installer(args({"upgrade", "-y"}));
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    const auto old_rpm = (pkgs / "repo" / (k_old + ".rpm")).string();
    const auto key = (pkgs / "RPM-GPG-KEY-leo-test").string();
    const auto before = leo::test::snapshot_tree(root, k_volatile);
    auto inst = run_installer(args({"install", old_rpm, "--gpgkey", key, "-y"}));
    auto upg = run_installer(args({"upgrade", "--rpm", old_rpm, "--gpgkey", key, "-y"}));
    for (const auto* r : {&inst, &upg}) {
        EXPECT_EQ(r->exit_code, 1) << r->err;
        EXPECT_TRUE(contains(r->err, k_old + " is older than the installed " + k_new)) << r->err;
        EXPECT_TRUE(contains(r->err, "neither `install` nor `upgrade` downgrades; go back with `leo-installer "
                                     "rollback ID"))
            << r->err;
        EXPECT_TRUE(contains(r->err, "nothing was changed")) << r->err;
    }
    EXPECT_EQ(installed(), k_new + "\n");
    EXPECT_EQ(leo::test::snapshot_tree(root, k_volatile), before);
}

TEST_F(Spellings, NewerPackageToInstallNamesUpgrade) {
    const auto new_rpm = (pkgs / "repo" / (k_new + ".rpm")).string();
    auto inst = run_installer(args({"install", new_rpm, "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string()}));
    EXPECT_EQ(inst.exit_code, 1) << inst.err;
    EXPECT_TRUE(contains(inst.err, "upgrade to " + k_new + " with `leo-installer upgrade --rpm FILE")) << inst.err;
    EXPECT_EQ(installed(), k_old + "\n");
}

TEST(SpellingsFresh, PositionalPackageAndGlobalRoot) {
    leo::test::TempDir tmp;
    const auto root = tmp.path() / "root";
    leo::test::make_sandbox_root(root);
    const auto pkgs = leo::test::test_packages_dir();
    const auto key = (pkgs / "RPM-GPG-KEY-leo-test").string();
    const auto rpm = (pkgs / "repo" / (k_old + ".rpm")).string();

    // Bad positional spellings: usage errors, nothing changed.
    const auto before = leo::test::snapshot_tree(root);
    auto bogus = run_installer({"--root", root.string(), "install", "httpd", "-y"});
    EXPECT_EQ(bogus.exit_code, 2) << bogus.err;
    EXPECT_TRUE(contains(bogus.err, "'httpd' is neither a package file")) << bogus.err;
    auto twice = run_installer({"install", rpm, "--rpm", rpm, "--root", root.string(), "-y"});
    EXPECT_EQ(twice.exit_code, 2) << twice.err;
    EXPECT_TRUE(contains(twice.err, "the package is given twice")) << twice.err;
    auto two_roots = run_installer({"--root", root.string(), "status", "--root", tmp.path().string()});
    EXPECT_EQ(two_roots.exit_code, 2) << two_roots.err;
    EXPECT_TRUE(contains(two_roots.err, "--root is given twice with different values")) << two_roots.err;
    auto not_taken = run_installer({"--json", "install", rpm, "--root", root.string()});
    EXPECT_EQ(not_taken.exit_code, 2) << not_taken.err;
    EXPECT_TRUE(contains(not_taken.err, "`install` does not take --json")) << not_taken.err;
    EXPECT_EQ(leo::test::snapshot_tree(root), before);

    // `leo-installer --root R -y install FILE.rpm`, as dnf users write it.
    auto inst = run_installer({"--root", root.string(), "-y", "install", rpm, "--gpgkey", key});
    ASSERT_EQ(inst.exit_code, 0) << inst.out << inst.err;
    EXPECT_EQ(leo::test::rpm_query(root, "leostream-broker").out, k_old + "\n");
    auto global = run_installer({"--root", root.string(), "status"});
    auto local = run_installer({"status", "--root", root.string()});
    EXPECT_EQ(global.exit_code, local.exit_code);
    EXPECT_EQ(global.out, local.out);
    EXPECT_TRUE(contains(global.out, k_old)) << global.out;
    auto hist = run_installer({"--root", root.string(), "history", "info", "1"});
    EXPECT_TRUE(contains(hist.out, "Command line  : leo-installer --root " + root.string() + " -y install " + rpm))
        << hist.out;
    (void)run_installer({"db", "stop", "--root", root.string()});
}

TEST(UnknownOption, NamesTheClosestAndTheCommandsHelp) {
    leo::test::TempDir tmp;
    auto r = run_installer({"status", "--rot", tmp.path().string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_TRUE(contains(r.err, "unknown option '--rot' for `status`; did you mean '--root'?")) << r.err;
    EXPECT_TRUE(contains(r.err, "run 'leo-installer status --help' for its options")) << r.err;

    auto up = run_installer({"upgrade", "--allow-remote-upgrad", "--root", tmp.path().string()});
    EXPECT_EQ(up.exit_code, 2);
    EXPECT_TRUE(contains(up.err, "did you mean '--allow-remote-upgrade'?")) << up.err;

    auto far = run_installer({"status", "--frobnicate"});
    EXPECT_EQ(far.exit_code, 2);
    EXPECT_TRUE(contains(far.err, "unknown option '--frobnicate' for `status`; run 'leo-installer status --help'"))
        << far.err;

    auto global = run_installer({"--rot", tmp.path().string(), "status"});
    EXPECT_EQ(global.exit_code, 2);
    EXPECT_TRUE(contains(global.err, "did you mean '--root'?")) << global.err;
    EXPECT_TRUE(stdfs::is_empty(tmp.path()));
}

} // namespace
