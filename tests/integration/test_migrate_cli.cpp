// `leo-installer migrate` on an installed broker: validate, dry run, apply, refusals.
#include "db_support.hpp"
#include "test_support.hpp"

#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;

class MigrateCli : public ::testing::Test {
protected:
    void SetUp() override {
        const auto pkgs = leo::test::test_packages_dir();
        leo::test::make_sandbox_root(root);
        auto r = run_installer({"install", "--rpm", (pkgs / "repo/leostream-broker-9.0.7-1.x86_64.rpm").string(),
                                "--root", root.string(), "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    void TearDown() override { (void)run_installer({"db", "stop", "--root", root.string()}); }
    leo::test::TempDir tmp;
    stdfs::path root = tmp.path() / "root";
};

TEST_F(MigrateCli, ValidateDryRunAndApply) {
    auto v = run_installer({"migrate", "--root", root.string(), "--validate"});
    EXPECT_EQ(v.exit_code, 0) << v.err;
    EXPECT_NE(v.out.find("0 pending"), std::string::npos) << v.out;

    const auto all = (leo::test::source_dir() / "migrations/sql").string();
    const auto before = leo::test::table_checksums(root);
    auto dry = run_installer({"migrate", "--root", root.string(), "--migrations", all, "--dry-run"});
    EXPECT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_NE(dry.out.find("would apply V9.1.0.1__jobs_attempts.sql"), std::string::npos) << dry.out;
    EXPECT_NE(dry.out.find("ALTER TABLE work_queue ADD COLUMN attempts"), std::string::npos) << dry.out;
    EXPECT_EQ(leo::test::table_checksums(root), before) << "a dry run changed the database";

    auto apply = run_installer({"migrate", "--root", root.string(), "--migrations", all});
    EXPECT_EQ(apply.exit_code, 0) << apply.err;
    EXPECT_NE(apply.out.find("schema 9.0.0.2 -> 9.1.0.2"), std::string::npos) << apply.out;

    // The package's own files now know less than the database: a refusal, exit 3.
    auto newer = run_installer({"migrate", "--root", root.string(), "--validate"});
    EXPECT_EQ(newer.exit_code, 3) << newer.out;
    EXPECT_NE(newer.err.find("is newer than this broker's newest migration"), std::string::npos) << newer.err;
}

TEST_F(MigrateCli, TransactionalMigrationThatCommitsIsRefusedWithItsLine) {
    leo::test::TempDir dir;
    for (const auto& e : stdfs::directory_iterator(leo::test::source_dir() / "migrations/sql"))
        stdfs::copy_file(e.path(), dir.path() / e.path().filename());
    {
        std::ofstream(dir.path() / "V9.1.0.3__split.sql") << "CREATE TABLE first_half (x integer);\n"
                                                            "COMMIT;\n"
                                                            "CREATE TABLE second_half (x integer);\n";
    }
    const auto before = leo::test::table_checksums(root);
    for (const char* mode : {"--dry-run", "--validate", ""}) {
        std::vector<std::string> args{"migrate", "--root", root.string(), "--migrations", dir.path().string()};
        if (*mode != '\0') args.emplace_back(mode);
        auto r = run_installer(args);
        EXPECT_EQ(r.exit_code, 3) << mode << ": " << r.out << r.err;
        EXPECT_NE(r.err.find("migration V9.1.0.3__split.sql, line 2: COMMIT"), std::string::npos) << mode << r.err;
        EXPECT_EQ(r.out.find("would apply"), std::string::npos) << mode << r.out;
        EXPECT_EQ(leo::test::table_checksums(root), before) << mode << ": the database changed";
    }
}

TEST_F(MigrateCli, FailedNoTransactionMigrationIsRepairedAfterConfirmation) {
    leo::test::TempDir dir;
    for (const auto& e : stdfs::directory_iterator(leo::test::source_dir() / "migrations/sql"))
        stdfs::copy_file(e.path(), dir.path() / e.path().filename());
    {
        std::ofstream(dir.path() / "V9.1.0.3__two_steps.sql")
            << "-- leo:no-transaction\n"
               "CREATE TABLE step_one (x integer);\n"
               "CREATE INDEX CONCURRENTLY step_two_idx ON later_table (x);\n";
    }
    const std::vector<std::string> migrate{"migrate", "--root", root.string(), "--migrations", dir.path().string()};
    auto with = [&](std::vector<std::string> extra) {
        auto args = migrate;
        args.insert(args.end(), extra.begin(), extra.end());
        return run_installer(args);
    };
    auto sql = [&](const std::string& statement) {
        auto conn = leo::migrations::Connection::open(leo::migrations::InternalDatabase(root).conninfo());
        conn.exec(statement);
    };

    auto first = with({});
    EXPECT_EQ(first.exit_code, 1) << first.out << first.err;
    EXPECT_NE(first.err.find("V9.1.0.3__two_steps.sql (no transaction) failed at statement 2 of 2"), std::string::npos)
        << first.err;
    EXPECT_NE(first.err.find("`leo-installer migrate --repair --root " + root.string() + "`"), std::string::npos) << first.err;
    EXPECT_EQ(first.err.find("restore point"), std::string::npos) << "there is none: " << first.err;

    // The next runs refuse (exit 3), --validate too, and nothing changes.
    const auto broken = leo::test::table_checksums(root);
    for (const std::vector<std::string>& extra : {std::vector<std::string>{}, {"--validate"}, {"--dry-run"}}) {
        auto r = with(extra);
        EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
        EXPECT_NE(r.err.find("migration V9.1.0.3__two_steps.sql (version 9.1.0.3) failed part-way"), std::string::npos)
            << r.err;
        EXPECT_NE(r.err.find("`leo-installer migrate --repair --root " + root.string() + "`"), std::string::npos) << r.err;
        EXPECT_EQ(r.err.find("restore point"), std::string::npos) << r.err;
    }
    EXPECT_EQ(leo::test::table_checksums(root), broken);

    // A restore point taken after the failure holds the half-done schema: not advice.
    auto snap = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
    ASSERT_EQ(snap.exit_code, 0) << snap.err;
    auto after = with({});
    EXPECT_EQ(after.exit_code, 3) << after.err;
    EXPECT_EQ(after.err.find("restore point"), std::string::npos) << after.err;
    const auto broken_with_snapshot = leo::test::table_checksums(root);

    // --repair: without -y and without a terminal it refuses; --dry-run lists; nothing changes.
    auto no_tty = with({"--repair"});
    EXPECT_EQ(no_tty.exit_code, 3) << no_tty.out << no_tty.err;
    EXPECT_NE(no_tty.err.find("no terminal to ask for confirmation on; pass -y"), std::string::npos) << no_tty.err;
    EXPECT_NE(no_tty.out.find("failed entry: V9.1.0.3__two_steps.sql (version 9.1.0.3, installed_rank"),
              std::string::npos)
        << no_tty.out;
    auto dry = with({"--repair", "--dry-run"});
    EXPECT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_NE(dry.out.find("would remove V9.1.0.3__two_steps.sql (version 9.1.0.3"), std::string::npos) << dry.out;
    EXPECT_EQ(leo::test::table_checksums(root), broken_with_snapshot);
    EXPECT_EQ(with({"--repair", "--validate"}).exit_code, 2);

    // Put right by hand, then repaired: exactly the failed entry goes, and the run applies it.
    sql("DROP TABLE step_one; CREATE TABLE later_table (x integer)");
    auto repaired = with({"--repair", "-y"});
    EXPECT_EQ(repaired.exit_code, 0) << repaired.err;
    EXPECT_NE(repaired.out.find("removed the failed entry of V9.1.0.3__two_steps.sql (version 9.1.0.3"),
              std::string::npos)
        << repaired.out;
    auto nothing = with({"--repair", "-y"});
    EXPECT_EQ(nothing.exit_code, 0) << nothing.err;
    EXPECT_NE(nothing.out.find("nothing to repair"), std::string::npos) << nothing.out;
    auto applied = with({});
    EXPECT_EQ(applied.exit_code, 0) << applied.err;
    EXPECT_NE(applied.out.find("applied V9.1.0.3__two_steps.sql (no transaction)"), std::string::npos) << applied.out;
    EXPECT_NE(applied.out.find("schema 9.1.0.2 -> 9.1.0.3"), std::string::npos) << applied.out;

    // A later failure: the restore point taken before it is named, with how to go back
    // (a second later at least: restore points and history rows are stamped in seconds).
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    {
        std::ofstream(dir.path() / "V9.1.0.4__fails_again.sql") << "-- leo:no-transaction\n"
                                                                    "CREATE TABLE again_one (x integer);\n"
                                                                    "SELECT * FROM no_such_table;\n";
    }
    auto again = with({});
    EXPECT_EQ(again.exit_code, 1) << again.err;
    EXPECT_NE(again.err.find("; or put the whole broker back to restore point "), std::string::npos) << again.err;
    EXPECT_NE(again.err.find("taken before the migration failed: `leo-installer rollback "), std::string::npos)
        << again.err;
    auto refused = with({"--validate"});
    EXPECT_EQ(refused.exit_code, 3) << refused.err;
    EXPECT_NE(refused.err.find("taken before the migration failed: `leo-installer rollback "), std::string::npos)
        << refused.err;
}

TEST_F(MigrateCli, MigratorKilledHalfwayThroughANoTransactionMigrationLeavesAFailedEntry) {
    leo::test::TempDir dir;
    for (const auto& e : stdfs::directory_iterator(leo::test::source_dir() / "migrations/sql"))
        stdfs::copy_file(e.path(), dir.path() / e.path().filename());
    {
        std::ofstream(dir.path() / "V9.1.0.3__two_steps.sql") << "-- leo:no-transaction\n"
                                                                 "CREATE TABLE step_one (x integer);\n"
                                                                 "CREATE TABLE step_two (x integer);\n";
    }
    const std::vector<std::string> migrate{"migrate", "--root", root.string(), "--migrations", dir.path().string()};
    leo::subprocess::Options kill_after_first;
    kill_after_first.env["LEO_FAULT_INJECT"] = "migrate.no_transaction.after_statement";
    auto killed = run_installer(migrate, kill_after_first);
    EXPECT_EQ(killed.signal, SIGKILL) << killed.out << killed.err;

    // The next run does not run step one again: it refuses, naming how far it got.
    const auto before = leo::test::table_checksums(root);
    auto r = run_installer(migrate);
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_NE(r.err.find("migration V9.1.0.3__two_steps.sql (version 9.1.0.3) failed part-way by broker 9.0.7"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("did not finish: 1 of its 2 statement(s) had completed when the migrator stopped or lost its "
                         "connection"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(leo::test::table_checksums(root), before);
}

TEST_F(MigrateCli, UnreachableExternalDatabase) {
    auto r = run_installer({"migrate", "--root", root.string(), "--db",
                            "host=127.0.0.1 port=9 dbname=leo user=leo connect_timeout=3", "--validate"});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.err.find("127.0.0.1"), std::string::npos) << r.err;
}
} // namespace

namespace {
TEST_F(MigrateCli, StatusWarnsWhenTheSchemaIsNotThePackages) {
    auto ok = run_installer({"status", "--root", root.string(), "--json"});
    EXPECT_NE(ok.out.find("\"schema_matches_package\": true"), std::string::npos) << ok.out;
    const auto all = (leo::test::source_dir() / "migrations/sql").string();
    ASSERT_EQ(run_installer({"migrate", "--root", root.string(), "--migrations", all}).exit_code, 0);
    auto st = run_installer({"status", "--root", root.string()});
    EXPECT_NE(st.out.find("the schema (9.1.0.2) is not the package's (9.0.0.2)"), std::string::npos) << st.out;
}
} // namespace
