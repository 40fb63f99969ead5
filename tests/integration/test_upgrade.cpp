// check-update, upgrade, rollback and restore points end to end: a yum repository made
// by createrepo_c from signed broker packages, served over HTTP on 127.0.0.1, a real
// PostgreSQL, real librpm transactions into a sandbox root.
#include "http_server.hpp"
#include "repo_support.hpp"
#include "sandbox_root.hpp"
#include "test_support.hpp"

#include "leo/common/fs.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"

#include <fstream>
#include <functional>
#include <future>
#include <thread>

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using leo::test::mode_of;
using leo::test::owner_of;
using leo::test::slurp;
using leo::test::run_installer;

/// A sandbox root with the broker 9.0.7 installed from its RPM, data in its database, a
/// valid support licence, and the test repository served on loopback as repository leo.
class UpgradeTest : public leo::test::SandboxRootTest {
protected:
    void SetUp() override {
        SandboxRootTest::SetUp();
        server = std::make_unique<leo::test::HttpServer>(pkgs);
        auto r = run_installer({"install", "--rpm", (pkgs / "repo/leostream-broker-9.0.7-1.x86_64.rpm").string(),
                                "--root", root.string(), "--gpgkey", key().string(), "-y"});
        ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
        write_repo("leo", server->url() + "/repo", true);
        // Data written before the upgrade: 9.1 moves "attempts=N" from the payload to a column.
        sql("INSERT INTO work_queue (site_id, job_type, status, payload) VALUES "
            "(1, 'sync', 'failed', 'attempts=3'), (1, 'sync', 'pending', NULL), (1, 'power', 'done', 'attempts=1')");
        leo::test::add_support_licence(root);
    }

    /// ROOT/etc/yum.repos.d/ID.repo: the test repository at `url`, signed packages checked or not.
    void write_repo(const std::string& id, const std::string& url, bool gpgcheck) {
        leo::test::write_repo_file(root, id, leo::test::signed_repo_lines(root, url, id, gpgcheck));
    }
    leo::migrations::Rows sql(const std::string& text) {
        leo::migrations::InternalDatabase db(root);
        auto conn = leo::migrations::Connection::open(db.conninfo());
        return conn.query(text);
    }
    std::string schema() { return sql("SELECT max(version) FROM leo_schema_history WHERE success").at(0, 0); }

    std::unique_ptr<leo::test::HttpServer> server;
};

TEST_F(UpgradeTest, CheckUpdatePicksWhatRpmPicks) {
    auto r = run_installer({"check-update", "--root", root.string(), "--json"});
    EXPECT_EQ(r.exit_code, 100) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["installed"], "leostream-broker-9.0.7-1.x86_64");
    EXPECT_EQ(j["update"], "leostream-broker-9.2.0-1.x86_64");
    std::vector<std::string> order;
    for (const auto& a : j["available"]) order.push_back(a["nevra"]);
    // rpm's order: 9.2.0 > 9.2.0~rc1 > 9.1.10 > 9.1.2 > 9.0.7
    EXPECT_EQ(order, (std::vector<std::string>{"leostream-broker-9.2.0-1.x86_64", "leostream-broker-9.2.0~rc1-1.x86_64",
                                               "leostream-broker-9.1.10-1.x86_64", "leostream-broker-9.1.2-1.x86_64",
                                               "leostream-broker-9.0.7-1.x86_64"}));
    auto text = run_installer({"check-update", "--root", root.string()});
    EXPECT_EQ(text.exit_code, 100);
    EXPECT_NE(text.out.find("update available: leostream-broker-9.2.0-1.x86_64"), std::string::npos) << text.out;
}

TEST_F(UpgradeTest, AnExcludedVersionIsNeverInstalled) {
    // The reported fault: exclude= was ignored and `upgrade -y` installed the excluded 9.2.0.
    std::ofstream(root / "etc/yum.repos.d/leo.repo", std::ios::app) << "exclude=leostream-broker-9.2.0*\n";
    auto up = run_installer({"upgrade", "--root", root.string(), "-y"});
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_EQ(installed(), "leostream-broker-9.1.10-1.x86_64") << "9.2.0 and 9.2.0~rc1 are excluded";
    // [main]'s exclude counts as well: nothing newer than 9.1.10 is left
    std::ofstream(root / "etc/yum.conf") << "[main]\ngpgcheck=1\nexclude=leostream-broker-9.2*\n";
    auto again = run_installer({"upgrade", "--root", root.string(), "-y"});
    EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
    EXPECT_NE(again.out.find("is already the newest: nothing to do"), std::string::npos) << again.out;
    EXPECT_EQ(installed(), "leostream-broker-9.1.10-1.x86_64");
}

TEST_F(UpgradeTest, EpochWinsAcrossRepositories) {
    write_repo("epoch", server->url() + "/epoch", true);
    auto r = run_installer({"check-update", "--root", root.string(), "--json"});
    EXPECT_EQ(r.exit_code, 100) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["update"], "leostream-broker-1:9.0.1-1.x86_64");
    // --repo narrows the choice to one repository
    auto only = run_installer({"check-update", "--root", root.string(), "--repo", "leo", "--json"});
    EXPECT_EQ(nlohmann::json::parse(only.out)["update"], "leostream-broker-9.2.0-1.x86_64");
    auto up = run_installer({"upgrade", "--root", root.string(), "-y"});
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_EQ(installed(), "leostream-broker-9.0.1-1.x86_64");  // rpm -q omits the epoch
    auto q = leo::subprocess::run({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-q", "--qf",
                                   "%{EPOCH}:%{VERSION}", "leostream-broker"});
    EXPECT_EQ(q.out, "1:9.0.1");
}

TEST_F(UpgradeTest, UpgradeToNewestThenRollbackRestoresEverything) {
    const std::string before = leo::test::table_checksums(root);
    const std::string conf_before = leo::fs::read_file(root / "home/leo/etc/broker.conf");
    auto up = run_installer({"upgrade", "--root", root.string(), "-y"});
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_EQ(installed(), "leostream-broker-9.2.0-1.x86_64");
    EXPECT_EQ(schema(), "9.1.0.2");
    // every row is still there, and the data moved as 9.1's migration says
    auto rows = sql("SELECT count(*), sum(attempts) FROM work_queue");
    EXPECT_EQ(rows.at(0, 0), "3");
    EXPECT_EQ(rows.at(0, 1), "4");
    EXPECT_EQ(sql("SELECT customer FROM support_licence").at(0, 0), "Acme");
    // exactly one broker in the rpmdb, and its files match
    auto v = leo::subprocess::run({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-V", "leostream-broker"});
    EXPECT_EQ(v.exit_code, 0) << v.out;

    auto again = run_installer({"check-update", "--root", root.string()});
    EXPECT_EQ(again.exit_code, 0) << again.out << again.err;

    auto list = run_installer({"snapshot", "list", "--root", root.string(), "--json"});
    ASSERT_EQ(list.exit_code, 0);
    auto snaps = nlohmann::json::parse(list.out);
    ASSERT_EQ(snaps.size(), 1u);
    EXPECT_EQ(snaps[0]["package"]["nevra"], "leostream-broker-9.0.7-1.x86_64");

    std::ofstream(root / "home/leo/etc/broker.conf", std::ios::app) << "changed_after_upgrade = 1\n";
    auto rb = run_installer({"rollback", "--root", root.string(), "-y"});
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_EQ(installed(), "leostream-broker-9.0.7-1.x86_64");
    EXPECT_EQ(schema(), "9.0.0.2");
    EXPECT_EQ(leo::test::table_checksums(root), before);
    EXPECT_EQ(leo::fs::read_file(root / "home/leo/etc/broker.conf"), conf_before);
    auto v2 = leo::subprocess::run({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-V", "leostream-broker"});
    EXPECT_EQ(v2.exit_code, 0) << v2.out;
}

TEST_F(UpgradeTest, UpgradeToAVersionAskedFor) {
    auto up = run_installer({"upgrade", "--root", root.string(), "--version", "9.1.10", "-y"});
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_EQ(installed(), "leostream-broker-9.1.10-1.x86_64");
    auto missing = run_installer({"upgrade", "--root", root.string(), "--version", "9.9.9", "-y"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("version 9.9.9 of leostream-broker is not in the repositories"), std::string::npos)
        << missing.err;
    auto older = run_installer({"upgrade", "--root", root.string(), "--version", "9.1.2", "-y"});
    EXPECT_EQ(older.exit_code, 1);
    EXPECT_NE(older.err.find("neither `install` nor `upgrade` downgrades; go back with"), std::string::npos) << older.err;
    EXPECT_EQ(installed(), "leostream-broker-9.1.10-1.x86_64");
}

TEST_F(UpgradeTest, FailingMigrationRollsBackByItself) {
    const std::string before = leo::test::table_checksums(root);
    auto up = run_installer({"upgrade", "--root", root.string(), "--rpm",
                             (pkgs / "bad/leostream-broker-9.3.0-1.x86_64.rpm").string(), "--gpgkey", key().string(),
                             "-y"});
    EXPECT_EQ(up.exit_code, 1) << up.out;
    EXPECT_NE(up.err.find("V9.3.0.1__broken.sql"), std::string::npos) << up.err;
    EXPECT_NE(up.err.find("rolled back to leostream-broker-9.0.7-1.x86_64"), std::string::npos) << up.err;
    EXPECT_EQ(installed(), "leostream-broker-9.0.7-1.x86_64");
    EXPECT_EQ(schema(), "9.0.0.2");
    EXPECT_EQ(leo::test::table_checksums(root), before);
}

// ---- bad input: a clear message and nothing changed ----------------------------------

class UpgradeRefusalTest : public UpgradeTest {
protected:
    void expect_refused(const std::vector<std::string>& args, int code, const std::string& message) {
        const std::string tables = leo::test::table_checksums(root);
        // (the journal records the refused run, like a log)
        const std::vector<std::string> ignore{"var/log", "var/cache", "home/leo/pgsql", "var/lib/leo-installer/lock",
                                              "var/lib/leo-installer/journal", "var/lib/rpm/rpmdb.sqlite-shm"};
        const std::string files = leo::test::snapshot_tree(root, ignore);
        auto r = run_installer(args);
        EXPECT_EQ(r.exit_code, code) << r.out << r.err;
        EXPECT_NE(r.err.find(message), std::string::npos) << "stderr: " << r.err;
        EXPECT_EQ(leo::test::snapshot_tree(root, ignore), files) << "the root changed";
        EXPECT_EQ(leo::test::table_checksums(root), tables) << "the database changed";
        EXPECT_EQ(installed(), "leostream-broker-9.0.7-1.x86_64");
        EXPECT_FALSE(stdfs::exists(root / "var/lib/leo-installer/snapshots") &&
                     !stdfs::is_empty(root / "var/lib/leo-installer/snapshots"))
            << "a restore point was left behind";
    }
};

TEST_F(UpgradeRefusalTest, UnreachableRepository) {
    write_repo("leo", "http://127.0.0.1:9/repo", true);  // the discard port: nothing listens
    expect_refused({"upgrade", "--root", root.string(), "-y"}, 1, "127.0.0.1:9");
    expect_refused({"check-update", "--root", root.string()}, 1, "127.0.0.1:9");
}

TEST_F(UpgradeRefusalTest, MissingRepomd) {
    server->fail("repodata/repomd.xml", 404);
    expect_refused({"upgrade", "--root", root.string(), "-y"}, 1, "404");
}

TEST_F(UpgradeRefusalTest, MalformedRepomd) {
    const auto copy = tmp.path() / "broken-repo";
    stdfs::copy(pkgs / "repo", copy, stdfs::copy_options::recursive);
    std::ofstream(copy / "repodata/repomd.xml") << "<repomd><data type=\"primary\"><location";
    write_repo("leo", "file://" + copy.string(), true);
    expect_refused({"check-update", "--root", root.string()}, 1, "repomd");
}

TEST_F(UpgradeRefusalTest, TruncatedPrimary) {
    server->truncate("-primary.xml.gz", 100);
    expect_refused({"upgrade", "--root", root.string(), "-y"}, 1, "primary");
}

TEST_F(UpgradeRefusalTest, PackageChecksumMismatch) {
    server->corrupt("leostream-broker-9.2.0-1.x86_64.rpm", 5000);
    expect_refused({"upgrade", "--root", root.string(), "-y"}, 1, "checksum mismatch");
    EXPECT_FALSE(stdfs::exists(root / "var/cache/leo-installer/packages/leostream-broker-9.2.0-1.x86_64.rpm"));
}

TEST_F(UpgradeRefusalTest, UnsignedPackageWithGpgcheckOn) {
    write_repo("leo", server->url() + "/unsigned", true);
    expect_refused({"upgrade", "--root", root.string(), "-y"}, 1, "is not signed and signatures are required");
}

TEST_F(UpgradeRefusalTest, NokeyWhenTheRepositoryKeyIsWrong) {
    const auto other = leo::test::make_signing_key(tmp.path(), "leo-other");
    stdfs::create_directories(root / "etc/yum.repos.d");
    std::ofstream(root / "etc/yum.repos.d/leo.repo")
        << "[leo]\nname=Broker\nbaseurl=" << server->url() << "/repo\ngpgcheck=1\ngpgkey="
        << leo::test::key_in_root(root, other) << "\n";
    // the package's key is in the rpmdb since `install --gpgkey`: out with it, so that the
    // repository's (wrong) key is all there is
    leo::test::run_ok({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-e", "--allmatches", "gpg-pubkey"});
    // with consent (-y) the repository's key is imported; the package still has no key
    const auto r = run_installer({"upgrade", "--root", root.string(), "-y"});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("NOKEY: signed with key "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("the rpmdb of " + root.string()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("gpgkey file:///etc/pki/rpm-gpg/leo-other.pub of repository leo"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("check gpgkey= of repository leo in"), std::string::npos) << r.err;
    EXPECT_EQ(installed(), "leostream-broker-9.0.7-1.x86_64");
}

TEST_F(UpgradeRefusalTest, UnknownRepositoryId) {
    expect_refused({"check-update", "--root", root.string(), "--repo", "nope"}, 2, "--repo nope: no such repository");
}

TEST_F(UpgradeRefusalTest, NoTerminalWithoutAssumeyes) {
    expect_refused({"upgrade", "--root", root.string()}, 3, "pass -y");
}

TEST(UpgradeWithoutBroker, NoBrokerInstalledYet) {
    leo::test::TempDir tmp;
    const auto root = tmp.path() / "root";
    leo::test::make_sandbox_root(root);
    auto r = run_installer({"check-update", "--root", root.string(), "--repofrompath", "x,file:///nonexistent"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no broker is installed"), std::string::npos) << r.err;
    auto u = run_installer({"upgrade", "--root", root.string(), "-y"});
    EXPECT_EQ(u.exit_code, 1);
    EXPECT_NE(u.err.find("no broker is installed"), std::string::npos) << u.err;
}

TEST_F(UpgradeTest, SnapshotCreateListDelete) {
    auto c = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    auto l = nlohmann::json::parse(run_installer({"snapshot", "list", "--root", root.string(), "--json"}).out);
    ASSERT_EQ(l.size(), 1u);
    const std::string id = l[0]["id"];
    EXPECT_EQ(l[0]["database"]["schema_version"], "9.0.0.2");
    auto bad = run_installer({"snapshot", "delete", "nope", "--root", root.string(), "-y"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("there is no restore point nope"), std::string::npos) << bad.err;
    auto d = run_installer({"snapshot", "delete", id, "--root", root.string(), "-y"});
    EXPECT_EQ(d.exit_code, 0) << d.err;
    EXPECT_EQ(nlohmann::json::parse(run_installer({"snapshot", "list", "--root", root.string(), "--json"}).out).size(),
              0u);
}

} // namespace

namespace {
class HookTest : public UpgradeTest {
protected:
    void write_conf(const std::string& text) {
        std::filesystem::create_directories(root / "etc/leo-installer");
        std::ofstream(root / "etc/leo-installer/installer.conf") << text;
    }
};

TEST_F(HookTest, VmSnapshotIdIsRecordedAndRetentionNeverDeletesManualOnes) {
    write_conf("[restore_points]\nkeep = 1\n[vm_snapshot]\ncreate_command = echo \"snap-for-$LEO_RESTORE_POINT_ID\"\n");
    auto c1 = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
    ASSERT_EQ(c1.exit_code, 0) << c1.err;
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // ids are per second
    auto c2 = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
    ASSERT_EQ(c2.exit_code, 0) << c2.err;
    EXPECT_EQ(c2.out.find("deleted restore point"), std::string::npos) << c2.out;
    auto l = nlohmann::json::parse(run_installer({"snapshot", "list", "--root", root.string(), "--json"}).out);
    ASSERT_EQ(l.size(), 2u) << "manual restore points are never deleted by retention";
    for (const auto& e : l) {
        EXPECT_EQ(e["vm_snapshot"]["id"], "snap-for-" + e["id"].get<std::string>());
        EXPECT_EQ(e["kind"], "manual");
    }
    // Automatic ones are: two upgrades with keep = 1 leave the newest before-upgrade one.
    for (const char* v : {"9.1.2", "9.2.0"}) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1100));
        auto up = run_installer({"upgrade", "--version", v, "--root", root.string(), "-y"});
        ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    }
    l = nlohmann::json::parse(run_installer({"snapshot", "list", "--root", root.string(), "--json"}).out);
    ASSERT_EQ(l.size(), 3u) << l.dump(2);
    EXPECT_EQ(l[2]["kind"], "before-upgrade");
    EXPECT_EQ(l[2]["package"]["nevra"], "leostream-broker-9.1.2-1.x86_64");
}

TEST_F(HookTest, FailingHookStopsTheUpgradeBeforeAnyChange) {
    write_conf("[vm_snapshot]\ncreate_command = echo 'vSphere: no such VM' >&2; exit 7\n");
    const std::string tables = leo::test::table_checksums(root);
    auto up = run_installer({"upgrade", "--root", root.string(), "-y"});
    EXPECT_EQ(up.exit_code, 1) << up.out;
    EXPECT_NE(up.err.find("VM-snapshot hook"), std::string::npos) << up.err;
    EXPECT_NE(up.err.find("vSphere: no such VM"), std::string::npos) << up.err;
    EXPECT_NE(up.err.find("nothing was changed"), std::string::npos) << up.err;
    EXPECT_EQ(installed(), "leostream-broker-9.0.7-1.x86_64");
    EXPECT_EQ(leo::test::table_checksums(root), tables);
    auto l = nlohmann::json::parse(run_installer({"snapshot", "list", "--root", root.string(), "--json"}).out);
    EXPECT_EQ(l.size(), 0u);
    // The journal recorded the run as abandoned: nothing to recover.
    auto rec = run_installer({"recover", "--root", root.string(), "-y"});
    EXPECT_NE(rec.out.find("nothing to recover"), std::string::npos) << rec.out;
}

TEST_F(HookTest, OptionalHookOnlyWarns) {
    write_conf("[vm_snapshot]\ncreate_command = exit 3\noptional = yes\n");
    auto up = run_installer({"upgrade", "--root", root.string(), "-y"});
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_NE(up.err.find("optional: going on without a VM snapshot"), std::string::npos) << up.err;
    EXPECT_EQ(installed(), "leostream-broker-9.2.0-1.x86_64");
}

TEST_F(HookTest, BadSettingIsAUsageErrorNamingFileAndLine) {
    write_conf("[restore_points]\n# comment\nkeep = 0\n");
    auto up = run_installer({"upgrade", "--root", root.string(), "-y"});
    EXPECT_EQ(up.exit_code, 2) << up.out << up.err;
    EXPECT_NE(up.err.find("installer.conf:3: [restore_points] keep = 0"), std::string::npos) << up.err;
    EXPECT_EQ(installed(), "leostream-broker-9.0.7-1.x86_64");
}
} // namespace

namespace {
TEST_F(UpgradeTest, DatabaseServerStoppingDuringAMigrationRollsBack) {
    const std::string before = leo::test::table_checksums(root);
    auto up = run_installer({"upgrade", "--root", root.string(), "--rpm",
                             (pkgs / "crash/leostream-broker-9.3.1-1.x86_64.rpm").string(), "--gpgkey", key().string(),
                             "-y"});
    EXPECT_EQ(up.exit_code, 1) << up.out;
    EXPECT_NE(up.err.find("V9.3.1.1__server_stops.sql"), std::string::npos) << up.err;
    EXPECT_NE(up.err.find("rolled back to leostream-broker-9.0.7-1.x86_64"), std::string::npos) << up.err;
    EXPECT_EQ(installed(), "leostream-broker-9.0.7-1.x86_64");
    EXPECT_EQ(schema(), "9.0.0.2");
    EXPECT_EQ(leo::test::table_checksums(root), before);
}

TEST_F(UpgradeTest, TwoUpgradesAtOnceTheSecondRefuses) {
    // The run lock is an flock on the state directory (as another leo-installer holds it).
    const std::string lockdir = (root / "var/lib/leo-installer").string();
    auto holder = std::async(std::launch::async, [&] {
        return leo::subprocess::run({"flock", lockdir, "sleep", "5"});
    });
    std::this_thread::sleep_for(std::chrono::seconds(1));
    auto up = run_installer({"upgrade", "--root", root.string(), "-y"});
    EXPECT_EQ(up.exit_code, 3) << up.out << up.err;
    EXPECT_NE(up.err.find("another leo-installer run is in progress on"), std::string::npos) << up.err;
    EXPECT_EQ(installed(), "leostream-broker-9.0.7-1.x86_64");
    holder.wait();
}

class FullDiskTest : public UpgradeRefusalTest {
protected:
    void TearDown() override {
        if (mounted) (void)leo::subprocess::run({"umount", "-l", snaps.string()});
        UpgradeRefusalTest::TearDown();
    }
    stdfs::path snaps;
    bool mounted = false;
};

TEST_F(FullDiskTest, RestorePointThatDoesNotFitChangesNothing) {
    snaps = root / "var/lib/leo-installer/snapshots";
    // mode=0700: the snapshots directory is root-only; the run would otherwise correct a 1777 mount point.
    stdfs::create_directories(snaps);
    auto m = leo::subprocess::run({"mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", snaps.string()});
    if (!m.ok()) GTEST_SKIP() << "cannot mount a small tmpfs here: " << m.err;
    mounted = true;
    expect_refused({"upgrade", "--root", root.string(), "-y"}, 1, "not enough free space for a restore point");
}
} // namespace

namespace {
TEST_F(HookTest, VmSnapshotRestoreHookGetsTheRecordedId) {
    const auto marker = tmp.path() / "reverted";
    write_conf("[vm_snapshot]\ncreate_command = echo vm-42\nrestore_command = echo \"$LEO_VM_SNAPSHOT_ID\" > " +
               marker.string() + "\n");
    auto c = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    auto r = run_installer({"rollback", "--vm-snapshot", "--root", root.string(), "-y"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(leo::fs::read_file(marker), "vm-42\n");
    write_conf("[vm_snapshot]\nrestore_command = exit 4\n");
    auto failing = run_installer({"rollback", "--vm-snapshot", "--root", root.string(), "-y"});
    EXPECT_EQ(failing.exit_code, 1);
    EXPECT_NE(failing.err.find("restore hook `exit 4` exited 4"), std::string::npos) << failing.err;
}
} // namespace

// ---- safe as root: the cache another user may have prepared, umask 000, secrets -----------

namespace {
constexpr uid_t k_other_uid = 54321;

/// Run `plant` in a child process that is a real unprivileged user (uid and gid 54321, no
/// supplementary groups). `plant` makes system calls only (the parent has threads).
/// True when it returned true.
bool as_unprivileged_user(const std::function<bool()>& plant) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (::setgroups(0, nullptr) != 0 || ::setresgid(k_other_uid, k_other_uid, k_other_uid) != 0 ||
            ::setresuid(k_other_uid, k_other_uid, k_other_uid) != 0)
            ::_exit(2);
        ::_exit(plant() ? 0 : 1);
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/// leo-installer under `umask 000` (a careless administrator's shell).
leo::subprocess::Result run_installer_umask0(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"bash", "-c", "umask 000; exec \"$0\" \"$@\"", LEO_INSTALLER_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    return leo::subprocess::run(argv);
}

class CacheSafetyTest : public UpgradeTest {
protected:
    void SetUp() override {
        UpgradeTest::SetUp();
        if (HasFatalFailure()) return;
        // the unprivileged user must reach the root's directories, as on a real host
        for (const auto& d : {tmp.path(), root, root / "var", root / "var/cache"}) {
            stdfs::create_directories(d);
            ASSERT_EQ(::chmod(d.c_str(), 0755), 0) << d;
        }
        leo::fs::write_file_atomic(victim(), "precious bytes\n");
        ASSERT_EQ(::chmod(victim().c_str(), 0600), 0);
        stdfs::remove_all(cache());
    }
    stdfs::path cache() const { return root / "var/cache/leo-installer"; }
    stdfs::path victim() const { return tmp.path() / "victim"; }
    static std::string primary_name(const stdfs::path& repo) {
        for (const auto& e : stdfs::directory_iterator(repo / "repodata"))
            if (e.path().filename().string().find("-primary.xml") != std::string::npos)
                return e.path().filename().string();
        return {};
    }
    void expect_victim_unchanged() {
        EXPECT_EQ(leo::fs::read_file(victim()), "precious bytes\n");
        EXPECT_EQ(mode_of(victim()), 0600u);
        EXPECT_EQ(owner_of(victim()), 0u);
    }
};

TEST_F(CacheSafetyTest, PlantedLinksAndFilesInAnotherUsersCacheAreNeverWrittenThrough) {
    // The administrator's cache directory was given to another user (or made by one), who
    // plants the partial download of the package as a link to a file root owns elsewhere,
    // a link where repomd.xml goes, and garbage where primary's partial download goes.
    stdfs::create_directories(cache());
    ASSERT_EQ(::chown(cache().c_str(), k_other_uid, k_other_uid), 0);
    const std::string rpm = "leostream-broker-9.2.0-1.x86_64.rpm";
    const std::string primary = primary_name(pkgs / "repo");
    ASSERT_FALSE(primary.empty());
    const std::string packages = (cache() / "packages").string();
    const std::string metadata = (cache() / "metadata").string();
    const std::string leo_dir = (cache() / "metadata/leo").string();
    const std::string part_link = (cache() / "packages" / (rpm + ".part")).string();
    const std::string repomd_link = (cache() / "metadata/leo/repomd.xml").string();
    const std::string primary_part = (cache() / "metadata/leo" / (primary + ".part")).string();
    const std::string target = victim().string();
    ASSERT_TRUE(as_unprivileged_user([&] {
        if (::mkdir(packages.c_str(), 0777) != 0 || ::mkdir(metadata.c_str(), 0777) != 0 ||
            ::mkdir(leo_dir.c_str(), 0777) != 0)
            return false;
        if (::symlink(target.c_str(), part_link.c_str()) != 0 || ::symlink(target.c_str(), repomd_link.c_str()) != 0)
            return false;
        const int fd = ::open(primary_part.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd < 0) return false;
        const bool ok = ::write(fd, "garbage", 7) == 7;
        return ::close(fd) == 0 && ok;
    })) << "planting as uid " << k_other_uid;

    auto check = run_installer({"check-update", "--root", root.string()});
    EXPECT_EQ(check.exit_code, 100) << check.out << check.err;
    auto dry = run_installer({"upgrade", "--dry-run", "--root", root.string(), "-y"});
    EXPECT_EQ(dry.exit_code, 0) << dry.out << dry.err;
    expect_victim_unchanged();
    // the cache is root's again, and holds what the repository serves
    for (const auto& d : {cache(), cache() / "packages", cache() / "metadata", cache() / "metadata/leo"}) {
        EXPECT_EQ(owner_of(d), 0u) << d;
        EXPECT_EQ(mode_of(d), 0755u) << d;
    }
    EXPECT_EQ(leo::fs::read_file(cache() / "packages" / rpm), leo::fs::read_file(pkgs / "repo" / rpm));
    EXPECT_EQ(mode_of(cache() / "packages" / rpm), 0644u);
    EXPECT_FALSE(stdfs::exists(cache() / "packages" / (rpm + ".part")));
    EXPECT_FALSE(stdfs::is_symlink(cache() / "metadata/leo/repomd.xml"));
    // primary is scanned as it arrives, never kept; what was planted in its place is removed
    EXPECT_FALSE(stdfs::exists(cache() / "metadata/leo" / primary));
    EXPECT_TRUE(stdfs::is_regular_file(cache() / "metadata/leo/entries.json"));
    EXPECT_FALSE(stdfs::exists(primary_part));
    EXPECT_EQ(installed(), "leostream-broker-9.0.7-1.x86_64") << "--dry-run changes nothing";
}

TEST_F(CacheSafetyTest, CacheLinkInAWorldWritableDirectoryIsRefusedNamingIt) {
    // /var/cache writable by everyone: a user replaces the cache with a link elsewhere.
    const auto elsewhere = tmp.path() / "elsewhere";
    stdfs::create_directories(elsewhere);
    ASSERT_EQ(::chmod((root / "var/cache").c_str(), 01777), 0);
    const std::string link = cache().string();
    const std::string target = elsewhere.string();
    ASSERT_TRUE(as_unprivileged_user([&] { return ::symlink(target.c_str(), link.c_str()) == 0; }));
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"check-update", "--root", root.string()},
          std::vector<std::string>{"upgrade", "--dry-run", "--root", root.string(), "-y"}}) {
        auto r = run_installer(args);
        EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
        EXPECT_NE(r.err.find(link), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
    }
    EXPECT_TRUE(stdfs::is_empty(elsewhere)) << "nothing was written through the link";
    EXPECT_TRUE(stdfs::is_symlink(cache()));
    expect_victim_unchanged();
}

TEST_F(CacheSafetyTest, UmaskZeroStillGivesRootOnlyDirectoriesAndReadOnlyFiles) {
    stdfs::create_directories(cache() / "packages");
    ASSERT_EQ(::chmod(cache().c_str(), 0777), 0);  // left by an earlier careless run
    ASSERT_EQ(::chmod((cache() / "packages").c_str(), 0777), 0);
    auto check = run_installer_umask0({"check-update", "--root", root.string()});
    EXPECT_EQ(check.exit_code, 100) << check.out << check.err;
    auto dry = run_installer_umask0({"upgrade", "--dry-run", "--root", root.string(), "-y"});
    EXPECT_EQ(dry.exit_code, 0) << dry.out << dry.err;
    std::size_t files = 0;
    for (const auto& e : stdfs::recursive_directory_iterator(cache())) {
        if (e.path().parent_path() == cache() / "answers") {  // check-update's kept answers: root's alone
            EXPECT_EQ(mode_of(e.path()), 0600u) << e.path();
        } else if (e.path() == cache() / "answers") {
            EXPECT_EQ(mode_of(e.path()), 0700u) << e.path();
        } else if (e.is_directory()) {
            EXPECT_EQ(mode_of(e.path()), 0755u) << e.path();
        } else {
            EXPECT_EQ(mode_of(e.path()), 0644u) << e.path();
            ++files;
        }
        EXPECT_EQ(owner_of(e.path()), 0u) << e.path();
    }
    EXPECT_EQ(mode_of(cache()), 0755u);
    EXPECT_GE(files, 3u) << "repomd.xml, primary and the package";
}

TEST_F(CacheSafetyTest, PasswordsInUrlsNeverReachTheOutputOrTheLog) {
    const std::string port = std::to_string(server->port());
    const auto log = root / "var/log/leo-installer/installer.log";
    // credentials that work (the test server ignores them): --json shows them redacted
    write_repo("leo", "http://user:secretpw@127.0.0.1:" + port + "/repo", true);
    auto ok = run_installer({"check-update", "--root", root.string(), "--json"});
    EXPECT_EQ(ok.exit_code, 100) << ok.err;
    EXPECT_EQ(ok.out.find("secretpw"), std::string::npos) << ok.out;
    EXPECT_NE(ok.out.find("http://user:***@127.0.0.1:" + port + "/repo/"), std::string::npos) << ok.out;
    // a failing one (404): the error names the URL without its password
    write_repo("leo", "http://user:secretpw@127.0.0.1:" + port + "/missing", true);
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"check-update", "--root", root.string()},
          std::vector<std::string>{"check-update", "--root", root.string(), "--json"},
          std::vector<std::string>{"upgrade", "--dry-run", "--root", root.string(), "-y"}}) {
        auto r = run_installer(args);
        EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
        EXPECT_NE(r.err.find("404"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("user:***@127.0.0.1"), std::string::npos) << r.err;
        EXPECT_EQ((r.out + r.err).find("secretpw"), std::string::npos) << r.out << r.err;
    }
    // a proxy that cannot be reached, with its password in the URL and in proxy_password
    std::ofstream(root / "etc/yum.repos.d/leo.repo")
        << "[leo]\nbaseurl=http://user:secretpw@127.0.0.1:" << port << "/repo\ngpgcheck=0\n"
        << "proxy=http://pu:proxysecret@127.0.0.1:9\nproxy_username=pu\nproxy_password=proxypass3\n";
    // (--refresh: the metadata of this baseurl is cached and fresh; a proxy is no part of the
    // cache's key, as in dnf)
    auto proxied = run_installer({"check-update", "--root", root.string(), "--refresh"});
    EXPECT_EQ(proxied.exit_code, 1) << proxied.out << proxied.err;
    for (const char* secret : {"secretpw", "proxysecret", "proxypass3"}) {
        EXPECT_EQ((proxied.out + proxied.err).find(secret), std::string::npos) << proxied.err;
        EXPECT_EQ(leo::fs::read_file(log).find(secret), std::string::npos) << "the log holds " << secret;
    }
    EXPECT_NE(leo::fs::read_file(log).find("user:***@127.0.0.1"), std::string::npos) << "the failures are logged";
    // Nor the cache (world-readable: entries.json, kept answers) nor the staged packages.
    for (const auto& e : stdfs::recursive_directory_iterator(root / "var/cache"))
        if (e.is_regular_file()) {
            for (const char* secret : {"secretpw", "proxysecret", "proxypass3"}) {
                EXPECT_EQ(leo::fs::read_file(e.path()).find(secret), std::string::npos) << e.path() << " holds " << secret;
            }
        }
}
} // namespace
