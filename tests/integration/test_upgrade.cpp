// check-update, upgrade, rollback and restore points end to end: a yum repository made
// by createrepo_c from signed broker packages, served over HTTP on 127.0.0.1, a real
// PostgreSQL, real librpm transactions into a sandbox root.
#include "http_server.hpp"
#include "test_support.hpp"

#include "leo/common/fs.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"

#include <fstream>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;

class UpgradeTest : public ::testing::Test {
protected:
    void SetUp() override {
        pkgs = leo::test::test_packages_dir();
        root = tmp.path() / "root";
        leo::test::make_sandbox_root(root);
        server = std::make_unique<leo::test::HttpServer>(pkgs);
        auto r = run_installer({"install", "--rpm", (pkgs / "repo/leostream-broker-9.0.7-1.x86_64.rpm").string(),
                                "--root", root.string(), "--gpgkey", key().string(), "-y"});
        ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
        write_repo("leo", server->url() + "/repo", true);
        // Data written before the upgrade: 9.1 moves "attempts=N" from the payload to a column.
        sql("INSERT INTO work_queue (site_id, job_type, status, payload) VALUES "
            "(1, 'sync', 'failed', 'attempts=3'), (1, 'sync', 'pending', NULL), (1, 'power', 'done', 'attempts=1')");
        sql("INSERT INTO support_licence (licence_key, customer, expires_on) VALUES ('K-1', 'Acme', '2027-12-31')");
    }
    void TearDown() override {
        if (stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"))
            (void)run_installer({"db", "stop", "--root", root.string()});
    }

    stdfs::path key() const { return pkgs / "RPM-GPG-KEY-leo-test"; }
    void write_repo(const std::string& id, const std::string& url, bool gpgcheck) {
        stdfs::create_directories(root / "etc/yum.repos.d");
        std::ofstream(root / "etc/yum.repos.d" / (id + ".repo"))
            << "[" << id << "]\nname=Broker " << id << "\nbaseurl=" << url << "\nenabled=1\ngpgcheck="
            << (gpgcheck ? 1 : 0) << "\ngpgkey=file://" << key().string() << "\n";
    }
    leo::migrations::Rows sql(const std::string& text) {
        leo::migrations::InternalDatabase db(root);
        auto conn = leo::migrations::Connection::open(db.conninfo());
        return conn.query(text);
    }
    std::string installed() {
        return leo::subprocess::last_line(leo::test::rpm_query(root, "leostream-broker").out);
    }
    std::string schema() { return sql("SELECT max(version) FROM leo_schema_history WHERE success").at(0, 0); }

    leo::test::TempDir tmp;
    stdfs::path pkgs;
    stdfs::path root;
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
    EXPECT_NE(older.err.find("does not downgrade"), std::string::npos) << older.err;
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
        << "[leo]\nname=Broker\nbaseurl=" << server->url() << "/repo\ngpgcheck=1\ngpgkey=file://" << other.string()
        << "\n";
    expect_refused({"upgrade", "--root", root.string(), "-y"}, 1, "NOKEY");
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

TEST_F(HookTest, VmSnapshotIdIsRecordedAndRetentionKeepsTheNewest) {
    write_conf("[restore_points]\nkeep = 1\n[vm_snapshot]\ncreate_command = echo \"snap-for-$LEO_RESTORE_POINT_ID\"\n");
    auto c1 = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
    ASSERT_EQ(c1.exit_code, 0) << c1.err;
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // ids are per second
    auto c2 = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
    ASSERT_EQ(c2.exit_code, 0) << c2.err;
    EXPECT_NE(c2.out.find("deleted restore point"), std::string::npos) << c2.out;
    auto l = nlohmann::json::parse(run_installer({"snapshot", "list", "--root", root.string(), "--json"}).out);
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0]["vm_snapshot"]["id"], "snap-for-" + l[0]["id"].get<std::string>());
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
    const std::string lockfile = (root / "var/lib/leo-installer/lock").string();
    auto holder = std::async(std::launch::async, [&] {
        return leo::subprocess::run({"flock", lockfile, "sleep", "5"});
    });
    std::this_thread::sleep_for(std::chrono::seconds(1));
    auto up = run_installer({"upgrade", "--root", root.string(), "-y"});
    EXPECT_EQ(up.exit_code, 3) << up.out << up.err;
    EXPECT_NE(up.err.find("another leo-installer run is working on"), std::string::npos) << up.err;
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
