// `leo-installer migrate` on an installed broker: validate, dry run, apply, refusals.
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>

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
