// Restore points kept inside PostgreSQL: a frozen template copy taken with the broker's
// sessions ended (a client that stays is named, nothing changes), a rollback by renames that
// loses nothing it was not asked to lose (the state it leaves is a restore point of its own;
// edited configuration is kept as .rpmsave; database-level state comes back), a second
// rollback to the same restore point through its dump, verification on demand, and a disk
// that fills up in the middle of the copy. Real PostgreSQL, real rpm, the real binary.
#include "broker_runs.hpp"
#include "test_support.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/migrations/db_copy.hpp"

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace leo::test::runs;

class CopyTest : public Broker {
protected:
    leo::migrations::Rows sql(const std::string& text, const std::string& dbname = "leo") {
        leo::migrations::InternalDatabase db(root);
        auto conn = leo::migrations::Connection::open(db.conninfo(dbname));
        return conn.query(text);
    }
    void exec(const std::string& text, const std::string& dbname = "leo") {
        leo::migrations::InternalDatabase db(root);
        auto conn = leo::migrations::Connection::open(db.conninfo(dbname));
        conn.exec(text);
    }
    nlohmann::json snapshots() { return nlohmann::json::parse(run_installer(args({"snapshot", "list", "--json"})).out); }
    std::vector<std::string> copies() {
        auto rows = sql("SELECT datname FROM pg_database WHERE datname LIKE 'leo\\_%' ORDER BY 1", "postgres");
        std::vector<std::string> out;
        for (size_t i = 0; i < rows.rows.size(); ++i) out.push_back(rows.at(i, 0));
        return out;
    }
    leo::migrations::DatabaseState state() {
        leo::migrations::InternalDatabase db(root);
        auto admin = leo::migrations::Connection::open(db.conninfo("postgres"));
        return leo::migrations::read_database_state(admin, "leo");
    }
};

TEST_F(CopyTest, RollbackIsARenameAndTheStateItLeavesIsARestorePoint) {
    exec("INSERT INTO work_queue (site_id, job_type, status, payload) VALUES (1, 'sync', 'pending', 'before')");
    const auto before = leo::test::table_checksums(root);
    auto up = run_installer(args({"upgrade", "-y"}));
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_TRUE(contains(up.out, "dumping the database copy of restore point")) << up.out;
    auto j = snapshots();
    ASSERT_EQ(j.size(), 1u);
    const std::string rp = j[0]["id"];
    EXPECT_EQ(j[0]["kind"], "before-upgrade");
    EXPECT_EQ(j[0]["state"], "verified");
    EXPECT_EQ(j[0]["database"]["dump"]["state"], "complete");
    const std::string copy = j[0]["database"]["copy"]["name"];
    EXPECT_EQ(copies(), std::vector<std::string>{copy});
    // Nobody can connect to the frozen copy.
    EXPECT_EQ(sql("SELECT datallowconn FROM pg_database WHERE datname = '" + copy + "'", "postgres").at(0, 0), "f");

    // Data written after the upgrade.
    exec("INSERT INTO work_queue (site_id, job_type, status, payload) VALUES (1, 'sync', 'pending', 'after')");
    const auto after = leo::test::table_checksums(root);
    auto rb = run_installer(args({"rollback", "-y"}));
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_TRUE(contains(rb.out, "switching to the database copy " + copy + " (a rename)")) << rb.out;
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(leo::test::table_checksums(root), before) << "every row of every table as it was";
    const std::string marker = "the state before this rollback is restore point ";
    ASSERT_TRUE(contains(rb.out, marker)) << rb.out;
    const auto from = rb.out.find(marker) + marker.size();
    const std::string left = rb.out.substr(from, rb.out.find(' ', from) - from);

    j = snapshots();
    ASSERT_EQ(j.size(), 2u) << j.dump(2);
    EXPECT_EQ(j[0]["state"], "consumed") << "its copy is the live database now; its dump remains";
    EXPECT_EQ(j[0]["usable"], true);
    EXPECT_EQ(j[1]["id"], left);
    EXPECT_EQ(j[1]["kind"], "before-rollback");
    EXPECT_EQ(j[1]["package"]["nevra"], k_new);

    // The rollback can itself be rolled back: the row written after the upgrade is back.
    auto again = run_installer(args({"rollback", left, "-y"}));
    ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
    EXPECT_EQ(installed(), k_new + "\n");
    EXPECT_EQ(leo::test::table_checksums(root), after);
    EXPECT_EQ(sql("SELECT count(*) FROM work_queue WHERE payload = 'after'").at(0, 0), "1");

    // And the first restore point once more: its copy is used, so its dump restores it.
    auto dump = run_installer(args({"rollback", rp, "-y"}));
    ASSERT_EQ(dump.exit_code, 0) << dump.out << dump.err;
    EXPECT_TRUE(contains(dump.out, "(from its dump)")) << dump.out;
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(leo::test::table_checksums(root), before);
    EXPECT_EQ(sql("SELECT count(*) FROM pg_database WHERE datname = 'leo'", "postgres").at(0, 0), "1");
}

TEST_F(CopyTest, DeletingAConsumedRestorePointNeverDropsAnotherOnesCopy) {
    // Renames keep OIDs: after a rollback, then a rollback of that rollback, the OID the
    // first left restore point recorded belongs to the second one's copy. Deleting the
    // first must not drop it.
    ASSERT_EQ(run_installer(args({"upgrade", "-y"})).exit_code, 0);
    auto rb = run_installer(args({"rollback", "-y"}));
    ASSERT_EQ(rb.exit_code, 0) << rb.err;
    auto left_of = [](const std::string& out) {
        const std::string marker = "the state before this rollback is restore point ";
        const auto at = out.find(marker);
        return at == std::string::npos ? std::string()
                                       : out.substr(at + marker.size(), out.find(' ', at + marker.size()) - at -
                                                                            marker.size());
    };
    const auto left1 = left_of(rb.out);
    ASSERT_FALSE(left1.empty()) << rb.out;
    auto rb2 = run_installer(args({"rollback", left1, "-y"}));
    ASSERT_EQ(rb2.exit_code, 0) << rb2.err;
    const auto left2 = left_of(rb2.out);
    auto rb3 = run_installer(args({"rollback", left2, "-y"}));
    ASSERT_EQ(rb3.exit_code, 0) << rb3.err;
    const auto left3 = left_of(rb3.out);
    const auto before = copies();
    auto del = run_installer(args({"snapshot", "delete", left1, "-y"}));
    ASSERT_EQ(del.exit_code, 0) << del.err;
    EXPECT_EQ(copies(), before) << "the consumed restore point " << left1 << " owns no database copy any more";
    // The newest left restore point still rolls back by renames.
    auto back = run_installer(args({"rollback", left3, "-y"}));
    ASSERT_EQ(back.exit_code, 0) << back.err;
    EXPECT_THAT(back.out, Not(HasSubstr("from its dump")));
}

TEST_F(CopyTest, ACopyNameThatExistsIsRefusedAndThatDatabaseIsNeverDropped) {
    leo::migrations::InternalDatabase db(root);
    auto admin = leo::migrations::Connection::open(db.conninfo("postgres"));
    admin.exec("CREATE DATABASE leo_rp_planted");
    try {
        (void)leo::migrations::copy_database(admin, "leo", "leo_rp_planted", "x");
        ADD_FAILURE() << "a copy over an existing name was not refused";
    } catch (const leo::RefusedError& e) {
        EXPECT_THAT(std::string(e.what()), HasSubstr("a database of that name exists"));
    }
    EXPECT_TRUE(leo::migrations::find_database(admin, "leo_rp_planted").has_value());
    admin.exec("DROP DATABASE leo_rp_planted");
}

TEST_F(CopyTest, TheQuestionSaysHowOldTheRestorePointIsAndWhatIsDiscarded) {
    ASSERT_EQ(run_installer(args({"upgrade", "-y"})).exit_code, 0);
    auto a = start_on_terminal(args({"rollback"}));
    ASSERT_TRUE(a.read_until("[y/N]")) << a.seen;
    EXPECT_TRUE(contains(a.seen, "s ago, at ")) << a.seen;
    EXPECT_TRUE(contains(a.seen, "Everything changed since then (database rows, configuration) leaves the broker; it "
                                 "is kept as a new restore point"))
        << a.seen;
    ASSERT_EQ(::write(a.master, "n\n", 2), 2);
    EXPECT_EQ(a.wait_exit(), 3) << a.seen;
    EXPECT_EQ(installed(), k_new + "\n");
}

TEST_F(CopyTest, AClientThatStaysIsNamedAndNothingChanges) {
    leo::migrations::InternalDatabase db(root);
    auto client = leo::migrations::Connection::open(db.conninfo() + " application_name=broker-web");
    const int pid = client.backend_pid();
    const std::vector<std::string> skip{"var/log", "home/leo/pgsql", "var/lib/leo-installer/lock", "var/cache",
                                        "var/lib/rpm/rpmdb.sqlite-shm"};
    const auto before = leo::test::snapshot_tree(root, skip);
    for (const auto& cmd : std::vector<std::vector<std::string>>{{"snapshot", "create", "-y"}, {"upgrade", "-y"}}) {
        auto r = run_installer(args(cmd));
        EXPECT_EQ(r.exit_code, 3) << cmd[0] << ": " << r.out << r.err;
        EXPECT_TRUE(contains(r.err, "other sessions are connected to the broker database: pid " +
                                        std::to_string(pid) + " (user leo, application \"broker-web\", from local "
                                                              "socket, since "))
            << r.err;
        EXPECT_TRUE(contains(r.err, "nothing was changed")) << r.err;
    }
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(leo::test::snapshot_tree(root, skip), before);
    EXPECT_TRUE(copies().empty());
    EXPECT_EQ(client.query("SELECT 1").at(0, 0), "1") << "the client's session was not ended";
}

TEST_F(CopyTest, DatabaseLevelStateComesBackWithTheRollback) {
    exec("ALTER DATABASE leo SET work_mem = '8MB'", "postgres");
    exec("ALTER DATABASE leo SET search_path = \"$user\", public, \"Odd Schema\"", "postgres");
    exec("ALTER ROLE leo IN DATABASE leo SET statement_timeout = '5min'", "postgres");
    exec("COMMENT ON DATABASE leo IS 'broker data; don''t drop'", "postgres");
    exec("REVOKE CONNECT ON DATABASE leo FROM PUBLIC", "postgres");
    exec("GRANT CONNECT ON DATABASE leo TO leo WITH GRANT OPTION", "postgres");
    const auto before = state();
    ASSERT_EQ(run_installer(args({"upgrade", "-y"})).exit_code, 0);
    // Changed after the upgrade: a rollback must bring the recorded state back.
    exec("ALTER DATABASE leo RESET ALL", "postgres");
    exec("ALTER DATABASE leo SET work_mem = '64MB'", "postgres");
    exec("COMMENT ON DATABASE leo IS 'changed'", "postgres");
    exec("GRANT CONNECT, TEMPORARY ON DATABASE leo TO PUBLIC", "postgres");
    ASSERT_NE(state(), before);
    auto rb = run_installer(args({"rollback", "-y"}));
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_EQ(state(), before);
    EXPECT_EQ(sql("SHOW search_path").at(0, 0), "\"$user\", public, \"Odd Schema\"");
}

TEST_F(CopyTest, ConfigurationEditedAfterTheUpgradeIsKeptAsRpmsave) {
    ASSERT_EQ(run_installer(args({"upgrade", "-y"})).exit_code, 0);
    const auto conf = root / "home/leo/etc/broker.conf";
    const auto restored = leo::test::slurp(conf);
    std::ofstream(conf, std::ios::app) << "edited_after_upgrade = yes\n";
    const auto edited = leo::test::slurp(conf);
    stdfs::create_directories(root / "etc/leo-installer");
    std::ofstream(root / "etc/leo-installer/installer.conf") << "[restore_points]\nkeep = 5\n";
    auto rb = run_installer(args({"rollback", "-y"}));
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_TRUE(contains(rb.out, "kept your changed " + conf.string() + " as " + conf.string() + ".rpmsave"))
        << rb.out;
    EXPECT_EQ(leo::test::slurp(conf.string() + ".rpmsave"), edited);
    EXPECT_NE(leo::test::slurp(conf), edited);
    // installer.conf did not exist at the restore point: it stays (rpm leaves unknown files).
    EXPECT_TRUE(stdfs::exists(root / "etc/leo-installer/installer.conf"));
}

TEST_F(CopyTest, VerificationOnDemandAndAFailedOneIsNotUsedWithoutForce) {
    ASSERT_EQ(run_installer(args({"upgrade", "-y"})).exit_code, 0);
    auto j = snapshots();
    const std::string rp = j[0]["id"];
    const std::string copy = j[0]["database"]["copy"]["name"];
    auto v = run_installer(args({"snapshot", "verify", rp}));
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    EXPECT_TRUE(contains(v.out, "restoring the dump into a scratch database and comparing it")) << v.out;
    EXPECT_TRUE(contains(v.out, "restore point " + rp + ": verified")) << v.out;

    // Someone changes the frozen copy behind our back.
    exec("ALTER DATABASE " + copy + " ALLOW_CONNECTIONS true", "postgres");
    exec("UPDATE work_queue SET payload = 'tampered'", copy);
    exec("INSERT INTO work_queue (site_id, job_type, status) VALUES (1, 'sync', 'pending')", copy);
    exec("ALTER DATABASE " + copy + " ALLOW_CONNECTIONS false", "postgres");
    v = run_installer(args({"snapshot", "verify", rp}));
    EXPECT_EQ(v.exit_code, 1) << v.out;
    EXPECT_TRUE(contains(v.out, "differs from its checksums in: public.work_queue") ||
                contains(v.out, "differs from its checksums in: work_queue"))
        << v.out;
    auto list = run_installer(args({"snapshot", "list"}));
    EXPECT_TRUE(contains(list.out, "failed")) << list.out;
    auto refused = run_installer(args({"rollback", "-y"}));
    EXPECT_EQ(refused.exit_code, 3) << refused.out << refused.err;
    EXPECT_TRUE(contains(refused.err, "failed its verification")) << refused.err;
    EXPECT_TRUE(contains(refused.err, "--force")) << refused.err;
    EXPECT_EQ(installed(), k_new + "\n");
    auto forced = run_installer(args({"rollback", "-y", "--force"}));
    EXPECT_EQ(forced.exit_code, 0) << forced.out << forced.err;
    EXPECT_EQ(installed(), k_old + "\n");
}

TEST_F(CopyTest, DeletingARestorePointDropsItsCopyAndRecoverRemovesOrphans) {
    auto created = run_installer(args({"snapshot", "create", "-y", "--json"}));
    ASSERT_EQ(created.exit_code, 0) << created.err;
    EXPECT_EQ(nlohmann::json::parse(created.out)["created"]["kind"], "manual") << created.out;
    auto j = snapshots();
    auto verified = run_installer(args({"snapshot", "verify", j[0]["id"].get<std::string>(), "--json"}));
    EXPECT_EQ(verified.exit_code, 0) << verified.err;
    EXPECT_EQ(nlohmann::json::parse(verified.out)["verification"], "verified") << verified.out;
    ASSERT_EQ(j.size(), 1u);
    ASSERT_EQ(copies().size(), 1u);
    auto deleted = run_installer(args({"snapshot", "delete", j[0]["id"].get<std::string>(), "-y", "--json"}));
    ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
    EXPECT_EQ(nlohmann::json::parse(deleted.out)["deleted"][0], j[0]["id"]) << deleted.out;
    EXPECT_TRUE(copies().empty());
    // A copy no manifest names (a crash between the copy and the manifest) is listed and removed.
    exec("CREATE DATABASE leo_rp_20200101t000000z TEMPLATE leo", "postgres");
    auto list = run_installer(args({"snapshot", "list"}));
    EXPECT_TRUE(contains(list.out, "leftover: the database leo_rp_20200101t000000z")) << list.out;
    auto rec = run_installer(args({"recover", "-y"}));
    EXPECT_EQ(rec.exit_code, 0) << rec.err;
    EXPECT_TRUE(copies().empty()) << rec.out;
}

TEST_F(CopyTest, ADiskThatFillsUpDuringTheCopyLeavesTheBrokerDatabaseUntouched) {
    // The data directory on a small filesystem of its own (a tmpfs), with room for the
    // space check; the VM-snapshot hook (which runs after the check, before the copy) then
    // fills it up, as another process could.
    ASSERT_EQ(run_installer(args({"db", "stop"})).exit_code, 0);
    const auto pgsql = root / "home/leo/pgsql";
    const auto moved = root / "home/leo/pgsql.orig";
    stdfs::rename(pgsql, moved);
    stdfs::create_directory(pgsql);
    ASSERT_EQ(leo::subprocess::run({"mount", "-t", "tmpfs", "-o", "size=300m", "tmpfs", pgsql.string()}).exit_code, 0);
    struct Unmount {
        stdfs::path root, dir;
        ~Unmount() {
            (void)run_installer({"db", "stop", "--root", root.string()});
            (void)leo::subprocess::run({"umount", "-l", dir.string()});
        }
    } unmount{root, pgsql};
    ASSERT_EQ(leo::subprocess::run({"cp", "-a", moved.string() + "/.", pgsql.string()}).exit_code, 0);
    ASSERT_EQ(leo::subprocess::run({"chown", "--reference=" + moved.string(), pgsql.string()}).exit_code, 0);
    ASSERT_EQ(leo::subprocess::run({"chmod", "--reference=" + moved.string(), pgsql.string()}).exit_code, 0);
    ASSERT_EQ(run_installer(args({"db", "start"})).exit_code, 0);
    const auto before = leo::test::table_checksums(root);
    stdfs::create_directories(root / "etc/leo-installer");
    std::ofstream(root / "etc/leo-installer/installer.conf")
        << "[vm_snapshot]\ncreate_command = fallocate -l $(( $(df --output=avail -B1 " << pgsql.string()
        << " | tail -1) - 1048576 )) " << (pgsql / "filler").string() << "; echo snap-1\n";
    auto up = run_installer(args({"upgrade", "-y"}));
    EXPECT_EQ(up.exit_code, 1) << up.out << up.err;
    EXPECT_TRUE(contains(up.err, "the copy of the database leo into leo_rp_")) << up.err;
    EXPECT_TRUE(contains(up.err, "leo is untouched")) << up.err;
    EXPECT_TRUE(contains(up.err, "No space left on device") || contains(up.err, "could not")) << up.err;
    stdfs::remove(pgsql / "filler");
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(leo::test::table_checksums(root), before);
    EXPECT_TRUE(copies().empty());
    EXPECT_TRUE(snapshots().empty());
    EXPECT_EQ(run_installer(args({"status"})).exit_code, 0) << "no unfinished run";
}

TEST_F(CopyTest, AnRpmnewLeftByTheUpgradeIsSaidOnTheTerminal) {
    // The administrator edited broker.conf (%config(noreplace)); the new package ships a
    // changed one: rpm keeps the edited file and writes the new one as .rpmnew.
    const auto conf = root / "home/leo/etc/broker.conf";
    std::ofstream(conf, std::ios::app) << "local_setting = mine\n";
    leo::subprocess::Options env;
    env.env["CONF_LINE"] = "new_setting = yes";
    auto built = leo::subprocess::run(
        {(leo::test::source_dir() / "scripts/build-broker-rpm.sh").string(), "9.2.0", (tmp.path() / "changed").string()},
        env);
    ASSERT_EQ(built.exit_code, 0) << built.err;
    const auto rpm = tmp.path() / "changed/leostream-broker-9.2.0-1.x86_64.rpm";
    auto up = run_installer(args({"upgrade", "--rpm", rpm.string(), "--nogpgcheck", "-y"}));
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_TRUE(contains(up.out, conf.string() + " was edited here, so rpm kept it and wrote the new version as " +
                                     conf.string() + ".rpmnew"))
        << up.out;
    EXPECT_TRUE(contains(leo::test::slurp(conf), "local_setting = mine"));
    EXPECT_TRUE(contains(leo::test::slurp(conf.string() + ".rpmnew"), "new_setting = yes"));
}

} // namespace
