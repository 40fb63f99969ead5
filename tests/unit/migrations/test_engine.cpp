// Unit tests of the migration engine's pure parts: versions, file names, checksums.
#include "leo/migrations/engine.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sys/stat.h>
#include <unistd.h>

namespace leo::migrations {
namespace {

namespace stdfs = std::filesystem;

void write(const stdfs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary);
    out << text;
}

std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const MigrationError& e) {
        return e.what();
    }
    return "<no MigrationError>";
}

TEST(CompareVersions, OrdersNumericallyNotLexically) {
    EXPECT_GT(compare_versions("9.0.10", "9.0.9"), 0);
    EXPECT_LT(compare_versions("9.0.9", "9.0.10"), 0);
    EXPECT_LT(compare_versions("9.1.0.1", "9.1.0.2"), 0);
    EXPECT_GT(compare_versions("10", "9.9.9.9"), 0);
    EXPECT_EQ(compare_versions("9.1.0.2", "9.1.0.2"), 0);
}

TEST(CompareVersions, MissingTrailingPartsAreZero) {
    EXPECT_EQ(compare_versions("9.1", "9.1.0"), 0);
    EXPECT_EQ(compare_versions("9.1.0.0", "9.1"), 0);
    EXPECT_LT(compare_versions("9.1", "9.1.0.1"), 0);
    EXPECT_GT(compare_versions("9.1.0.1", "9.1"), 0);
}

TEST(CompareVersions, RejectsWhatIsNotDottedIntegers) {
    for (const char* bad : {"", "9.", ".9", "9..1", "9.x", "v9", "9.1-2", "-1", "9.1 "}) {
        EXPECT_THROW((void)compare_versions(bad, "1"), MigrationError) << bad;
        EXPECT_THROW((void)compare_versions("1", bad), MigrationError) << bad;
    }
    EXPECT_NE(message_of([] { (void)compare_versions("9.x", "1"); }).find("'9.x'"), std::string::npos);
}

TEST(MigrationChecksum, IsSha256OfTheText) {
    EXPECT_EQ(migration_checksum("SELECT 1;\n"), crypto::digest_hex("sha256", "SELECT 1;\n"));
    EXPECT_EQ(migration_checksum(""), crypto::digest_hex("sha256", ""));
}

TEST(MigrationChecksum, IgnoresByteOrderMarkAndLineEndings) {
    const std::string lf = "CREATE TABLE a (x int);\nINSERT INTO a VALUES (1);\n";
    EXPECT_EQ(migration_checksum("\xEF\xBB\xBF" + lf), migration_checksum(lf));
    EXPECT_EQ(migration_checksum("CREATE TABLE a (x int);\r\nINSERT INTO a VALUES (1);\r\n"), migration_checksum(lf));
    EXPECT_EQ(migration_checksum("CREATE TABLE a (x int);\rINSERT INTO a VALUES (1);\r"), migration_checksum(lf));
    EXPECT_EQ(migration_checksum("\xEF\xBB\xBF"
                                 "CREATE TABLE a (x int);\r\nINSERT INTO a VALUES (1);\r"),
              migration_checksum(lf));
    // CR CR LF is two line ends, not one.
    EXPECT_EQ(migration_checksum("a\r\r\nb"), migration_checksum("a\n\nb"));
}

TEST(MigrationChecksum, SeesRealChanges) {
    EXPECT_NE(migration_checksum("SELECT 1;\n"), migration_checksum("SELECT 2;\n"));
    EXPECT_NE(migration_checksum("SELECT 1;\n"), migration_checksum("SELECT 1;\n\n"));
    // Only a leading BOM is dropped.
    EXPECT_NE(migration_checksum("SELECT 1;\xEF\xBB\xBF"), migration_checksum("SELECT 1;"));
}

TEST(LoadMigrations, SortsByVersionAndFillsFields) {
    test::TempDir dir;
    write(dir.path() / "V9.0.10__later.sql", "SELECT 10;\n");
    write(dir.path() / "V9.0.9__earlier_one.sql", "SELECT 9;\n");
    write(dir.path() / "V9.1__short.sql", "SELECT 91;\r\n");
    const auto ms = load_migrations(dir.path());
    ASSERT_EQ(ms.size(), 3U);
    EXPECT_EQ(ms[0].version, "9.0.9");
    EXPECT_EQ(ms[0].version_parts, (std::vector<long>{9, 0, 9}));
    EXPECT_EQ(ms[0].description, "earlier one");
    EXPECT_EQ(ms[0].script, "V9.0.9__earlier_one.sql");
    EXPECT_EQ(ms[0].path, dir.path() / "V9.0.9__earlier_one.sql");
    EXPECT_EQ(ms[0].checksum, migration_checksum("SELECT 9;\n"));
    EXPECT_EQ(ms[1].version, "9.0.10");
    EXPECT_EQ(ms[2].version, "9.1");
    EXPECT_EQ(ms[2].checksum, migration_checksum("SELECT 91;\n"));
}

TEST(LoadMigrations, IgnoresFilesThatAreNotMigrations) {
    test::TempDir dir;
    write(dir.path() / "V1__x.txt", "x");
    write(dir.path() / "README.md", "x");
    write(dir.path() / "v1__lowercase.sql", "x");
    write(dir.path() / "U1__undo.sql", "x");
    write(dir.path() / "R__repeatable.sql", "x");
    stdfs::create_directory(dir.path() / "V2__a_directory.sql");
    write(dir.path() / "V1__real.sql", "SELECT 1;");
    const auto ms = load_migrations(dir.path());
    ASSERT_EQ(ms.size(), 1U);
    EXPECT_EQ(ms[0].script, "V1__real.sql");
}

TEST(LoadMigrations, RejectsBadNames) {
    for (const char* name :
         {"V1.x__bad.sql", "V1_bad.sql", "V__no_version.sql", "V1.__bad.sql", "V1__.sql", "V.sql", "V-1__neg.sql"}) {
        test::TempDir dir;
        write(dir.path() / name, "SELECT 1;");
        const auto msg = message_of([&] { (void)load_migrations(dir.path()); });
        EXPECT_NE(msg.find(name), std::string::npos) << name << ": " << msg;
        EXPECT_NE(msg.find("V<version>__<description>.sql"), std::string::npos) << msg;
    }
}

TEST(LoadMigrations, RejectsDuplicateVersions) {
    test::TempDir dir;
    write(dir.path() / "V9.1__one.sql", "SELECT 1;");
    write(dir.path() / "V9.1.0__two.sql", "SELECT 2;");
    const auto msg = message_of([&] { (void)load_migrations(dir.path()); });
    EXPECT_NE(msg.find("V9.1__one.sql"), std::string::npos) << msg;
    EXPECT_NE(msg.find("V9.1.0__two.sql"), std::string::npos) << msg;
}

TEST(LoadMigrations, RejectsAMissingDirectory) {
    const auto msg = message_of([] { (void)load_migrations("/nonexistent/leo-migrations"); });
    EXPECT_NE(msg.find("/nonexistent/leo-migrations"), std::string::npos) << msg;
}

TEST(LoadMigrations, EmptyDirectoryGivesNothing) {
    test::TempDir dir;
    EXPECT_TRUE(load_migrations(dir.path()).empty());
}

TEST(LoadMigrations, ReadsTheShippedMigrations) {
    const auto ms = load_migrations(test::source_dir() / "migrations/sql");
    ASSERT_GE(ms.size(), 4U);
    EXPECT_EQ(ms.front().version, "9.0.0.1");
    EXPECT_EQ(ms[3].version, "9.1.0.2");
    for (size_t i = 1; i < ms.size(); ++i)
        EXPECT_LT(compare_versions(ms[i - 1].version, ms[i].version), 0);
}

TEST(BrokerPart, IsTheFirstThreeNumbers) {
    EXPECT_EQ(broker_part("9.1.0.2"), "9.1.0");
    EXPECT_EQ(broker_part("9.1"), "9.1.0");
    EXPECT_EQ(broker_part("10.2.3.4.5"), "10.2.3");
    EXPECT_THROW((void)broker_part("9.x"), MigrationError);
}

TEST(NoTransactionMarker, IsALineOfItsOwn) {
    EXPECT_TRUE(has_no_transaction_marker("-- leo:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);\n"));
    EXPECT_TRUE(has_no_transaction_marker("\xEF\xBB\xBF-- leo:no-transaction\r\nSELECT 1;\r\n"));
    EXPECT_TRUE(has_no_transaction_marker("-- what it does\n  -- leo:no-transaction  \nSELECT 1;"));
    EXPECT_FALSE(has_no_transaction_marker("SELECT 1; -- leo:no-transaction\n"));
    EXPECT_FALSE(has_no_transaction_marker("-- leo:no-transactions\n"));
    EXPECT_FALSE(has_no_transaction_marker("SELECT 1;\n"));
}

TEST(LoadMigrations, ReadsTheNoTransactionMarker) {
    test::TempDir dir;
    write(dir.path() / "V1__a.sql", "SELECT 1;\n");
    write(dir.path() / "V2__b.sql", "-- leo:no-transaction\r\nCREATE INDEX CONCURRENTLY i ON t (x);\r\n");
    const auto ms = load_migrations(dir.path());
    ASSERT_EQ(ms.size(), 2U);
    EXPECT_TRUE(ms[0].transactional);
    EXPECT_FALSE(ms[1].transactional);
}

TEST(SplitStatements, SplitsAtTopLevelSemicolonsOnly) {
    EXPECT_EQ(split_statements("SELECT 1; SELECT 2;\n"), (std::vector<std::string>{"SELECT 1", "SELECT 2"}));
    EXPECT_EQ(split_statements("SELECT 'a;b'; SELECT \"x;y\" FROM t"),
              (std::vector<std::string>{"SELECT 'a;b'", "SELECT \"x;y\" FROM t"}));
    EXPECT_EQ(split_statements("SELECT 'it''s;'; SELECT E'\\';'"),
              (std::vector<std::string>{"SELECT 'it''s;'", "SELECT E'\\';'"}));
    EXPECT_EQ(split_statements("-- a; comment\nSELECT 1 /* x; /* nested; */ y; */ ; /* only; */ ; -- end;"),
              (std::vector<std::string>{"SELECT 1 /* x; /* nested; */ y; */ "}));
    EXPECT_EQ(split_statements("CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;"
                               "DO $$ BEGIN PERFORM 1; END $$"),
              (std::vector<std::string>{"CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
                                        "DO $$ BEGIN PERFORM 1; END $$"}));
    EXPECT_EQ(split_statements("SELECT $1::int; SELECT 2"), (std::vector<std::string>{"SELECT $1::int", "SELECT 2"}));
    EXPECT_TRUE(split_statements(" \n-- only a comment\n;;").empty());
}

// validate() and decide_upgrade() are pure: states built by hand.

std::vector<Migration> files_of(const std::vector<std::string>& versions) {
    std::vector<Migration> out;
    for (const auto& v : versions) {
        Migration m;
        m.version = v;
        m.script = "V" + v + "__m.sql";
        m.checksum = migration_checksum("SELECT '" + v + "';\n");
        out.push_back(m);
    }
    return out;
}

SchemaState state_of(const std::vector<Migration>& applied, const std::string& broker = "9.1.2") {
    SchemaState s;
    s.has_history = true;
    s.history_format = k_history_format;
    for (const auto& m : applied)
    {
        AppliedMigration a;
        a.version = m.version;
        a.description = "m";
        a.checksum = m.checksum;
        a.broker_version = broker;
        a.script = m.script;
        a.checksum_algorithm = k_checksum_algorithm;
        s.applied.push_back(a);
    }
    if (!applied.empty()) {
        s.schema_version = applied.back().version;
        s.broker_version = broker;
        s.min_broker_version = broker_part(applied.back().version);
    }
    return s;
}

TEST(Validate, PendingAreTheUnappliedNewerFiles) {
    const auto files = files_of({"9.0.0.1", "9.0.0.2", "9.1.0.1"});
    const auto v = validate(state_of({files[0], files[1]}), files, "9.1.2");
    EXPECT_TRUE(v.ok()) << v.message();
    ASSERT_EQ(v.pending.size(), 1U);
    EXPECT_EQ(v.pending[0]->version, "9.1.0.1");
    EXPECT_EQ(validate(SchemaState{}, files, "9.1.2").pending.size(), 3U);
}

TEST(Validate, EveryFailedEntryIsAProblemNamingWhereAndTheWayOut) {
    const auto files = files_of({"9.0.0.1", "9.0.0.2", "9.1.0.1"});
    auto state = state_of({files[0], files[1]});
    FailedMigration recorded;
    recorded.installed_rank = 7;
    recorded.version = "9.1.0.1";
    recorded.script = "V9.1.0.1__m.sql";
    recorded.broker_version = "9.1.2";
    recorded.installed_host = "broker1";
    recorded.installed_on = "2026-11-30T23:46:33Z";
    recorded.failure = "at statement 2 of 3 (line 5): ERROR: boom; its first 1 statement(s) had completed";
    FailedMigration older; // written by a broker of history format 2: no failure text
    older.installed_rank = 3;
    older.version = "9.0.0.9";
    older.script = "V9.0.0.9__x.sql";
    state.failed = {older, recorded};
    const auto v = validate(state, files, "9.1.2");
    ASSERT_EQ(v.problems.size(), 2U) << v.message();
    EXPECT_EQ(v.problems[0].kind, ValidationProblem::Kind::failed_migration);
    EXPECT_EQ(v.problems[0].version, "9.0.0.9");
    EXPECT_NE(v.problems[0].message.find("migration V9.0.0.9__x.sql (version 9.0.0.9) failed part-way: "
                                         "leo_schema_history records it as failed (installed_rank 3)"),
              std::string::npos)
        << v.problems[0].message;
    EXPECT_TRUE(v.problems[1].message.starts_with(
        "migration V9.1.0.1__m.sql (version 9.1.0.1) failed part-way by broker 9.1.2 on broker1 at "
        "2026-11-30T23:46:33Z: at statement 2 of 3 (line 5): ERROR: boom; its first 1 statement(s) had "
        "completed; leo_schema_history records it as failed (installed_rank 7); "))
        << v.problems[1].message;
    for (const auto& p : v.problems) {
        EXPECT_NE(p.message.find("undo by hand what the migration changed (it runs again from its first statement), "
                                 "then remove the failed entry with `leo-installer migrate --repair`"),
                  std::string::npos)
            << p.message;
        EXPECT_EQ(p.message.find("restore point"), std::string::npos) << p.message;
    }
}

TEST(Validate, ChangedFileShowsBothChecksums) {
    auto files = files_of({"9.0.0.1", "9.0.0.2"});
    const auto state = state_of(files);
    const auto recorded = files[1].checksum;
    files[1].checksum = migration_checksum("edited");
    const auto v = validate(state, files, "9.1.2");
    ASSERT_EQ(v.problems.size(), 1U);
    EXPECT_EQ(v.problems[0].kind, ValidationProblem::Kind::changed_file);
    EXPECT_NE(v.message().find(recorded), std::string::npos) << v.message();
    EXPECT_NE(v.message().find(files[1].checksum), std::string::npos) << v.message();
    EXPECT_NE(v.message().find("V9.0.0.2__m.sql"), std::string::npos) << v.message();
}

TEST(Validate, MissingAppliedFileIsRefused) {
    const auto files = files_of({"9.0.0.1", "9.0.0.2", "9.1.0.1"});
    const auto v = validate(state_of(files), {files[0], files[2]}, "9.1.2");
    ASSERT_EQ(v.problems.size(), 1U);
    EXPECT_EQ(v.problems[0].kind, ValidationProblem::Kind::missing_file);
    EXPECT_NE(v.message().find("V9.0.0.2__m.sql (version 9.0.0.2)"), std::string::npos) << v.message();
    EXPECT_NE(v.message().find("missing"), std::string::npos) << v.message();
}

TEST(Validate, AppliedVersionUnknownToTheCodeIsRefused) {
    const auto files = files_of({"9.0.0.1", "9.2.0.1"});
    const auto v = validate(state_of(files, "9.2.0"), {files[0]}, "9.1.2");
    ASSERT_EQ(v.problems.size(), 1U);
    EXPECT_EQ(v.problems[0].kind, ValidationProblem::Kind::database_newer);
    EXPECT_NE(v.message().find("database schema 9.2.0.1 is newer than this broker's newest migration 9.0.0.1 "
                               "(broker 9.1.2): a broker cannot run an unknown schema; install broker 9.2.0 or newer"),
              std::string::npos)
        << v.message();
}

TEST(Validate, BaselineSkipsOlderFiles) {
    const auto files = files_of({"9.0.0.1", "9.0.0.2", "9.1.0.1"});
    SchemaState s;
    s.has_history = true;
    AppliedMigration b;
    b.version = "9.0.0.2";
    b.type = "BASELINE";
    s.applied.push_back(b);
    s.baseline = "9.0.0.2";
    s.schema_version = "9.0.0.2";
    const auto v = validate(s, files, "9.1.2");
    EXPECT_TRUE(v.ok()) << v.message();
    ASSERT_EQ(v.pending.size(), 1U);
    EXPECT_EQ(v.pending[0]->version, "9.1.0.1");
}

TEST(Validate, IsLinearInTheHistory) {
    // 20,000 applied migrations validate in well under a second even in a debug build:
    // no quadratic scan.
    std::vector<std::string> versions;
    for (int i = 1; i <= 20000; ++i)
        versions.push_back(fmt::format("9.{}.{}.{}", i / 1000, (i / 10) % 100, i % 10));
    const auto files = files_of(versions);
    const auto state = state_of(files);
    const auto start = std::chrono::steady_clock::now();
    const auto v = validate(state, files, "9.9.9");
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(v.ok()) << v.message();
    EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 1000);
}

TEST(DecideUpgrade, FollowsDesignMd) {
    using Action = UpgradeDecision::Action;
    const auto files = files_of({"9.0.0.1", "9.0.0.2", "9.1.0.1"});
    const auto older = state_of({files[0], files[1]}, "9.0.40");
    const auto equal = state_of(files);
    for (auto kind : {DatabaseKind::internal, DatabaseKind::external})
        for (auto allow : {AllowRemoteUpgrade::no, AllowRemoteUpgrade::yes}) {
            EXPECT_EQ(decide_upgrade(SchemaState{}, files, "9.1.2", kind, allow).action, Action::initialise);
            EXPECT_EQ(decide_upgrade(equal, files, "9.1.2", kind, allow).action, Action::none);
            const auto newer = decide_upgrade(equal, {files[0], files[1]}, "9.0.40", kind, allow);
            EXPECT_EQ(newer.action, Action::refuse_newer);
            EXPECT_TRUE(newer.refused());
            EXPECT_NE(newer.message.find("9.1.0.1"), std::string::npos) << newer.message;
        }
    EXPECT_EQ(decide_upgrade(older, files, "9.1.2", DatabaseKind::internal, AllowRemoteUpgrade::no).action,
              Action::upgrade);
    EXPECT_EQ(decide_upgrade(older, files, "9.1.2", DatabaseKind::external, AllowRemoteUpgrade::yes).action,
              Action::upgrade);
    const auto refused = decide_upgrade(older, files, "9.1.2", DatabaseKind::external, AllowRemoteUpgrade::no);
    EXPECT_EQ(refused.action, Action::refuse_remote);
    EXPECT_NE(refused.message.find("9.0.0.2"), std::string::npos) << refused.message;
    EXPECT_NE(refused.message.find("9.1.0.1"), std::string::npos) << refused.message;
    EXPECT_NE(refused.message.find("--allow-remote-upgrade"), std::string::npos) << refused.message;
}

TEST(MigrationName, ParsedWithoutReadingTheFile) {
    const auto m = parse_migration_name("V9.1.0.2__jobs_site_index.sql", "/m");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->version, "9.1.0.2");
    EXPECT_EQ(m->version_parts, (std::vector<long>{9, 1, 0, 2}));
    EXPECT_EQ(m->description, "jobs site index");
    EXPECT_EQ(m->script, "V9.1.0.2__jobs_site_index.sql");
    EXPECT_FALSE(parse_migration_name("README.md", "/m"));
    EXPECT_FALSE(parse_migration_name("U9.1__undo.sql", "/m"));
    EXPECT_THROW((void)parse_migration_name("V9.1__.sql", "/m"), leo::MigrationError);
    EXPECT_THROW((void)parse_migration_name("V9.x__a.sql", "/m"), leo::MigrationError);
    EXPECT_THROW((void)parse_migration_name("V9.1_a.sql", "/m"), leo::MigrationError);
}

} // namespace
} // namespace leo::migrations

namespace leo::migrations {
namespace {

// The shipped migrations live in ROOT/home/leo/share/migrations, which leo owns: a link
// leo puts there is refused rather than read as root (load_migrations reads through a
// SystemRoot of "/").
TEST(LoadMigrations, RefusesALinkInADirectoryAnotherUserOwns) {
    test::TempDir dir;
    const auto leo_dir = dir.path() / "migrations";
    std::filesystem::create_directories(leo_dir);
    std::ofstream(dir.path() / "secret.sql") << "root's secret";
    ASSERT_EQ(::chmod((dir.path() / "secret.sql").c_str(), 0600), 0);
    std::filesystem::create_symlink(dir.path() / "secret.sql", leo_dir / "V1__x.sql");
    ASSERT_EQ(::chown(leo_dir.c_str(), 65534, 65534), 0);
    try {
        (void)load_migrations(leo_dir);
        FAIL() << "no exception";
    } catch (const MigrationError& e) {
        EXPECT_NE(std::string(e.what()).find("refusing to follow the symbolic link " + (leo_dir / "V1__x.sql").string()),
                  std::string::npos)
            << e.what();
    }
    // The same directory reached through a link in the other user's directory.
    const auto home = dir.path() / "home";
    std::filesystem::create_directories(home);
    ASSERT_EQ(::chown(home.c_str(), 65534, 65534), 0);
    std::filesystem::create_symlink(dir.path(), home / "share");
    try {
        (void)load_migrations(home / "share");
        FAIL() << "no exception";
    } catch (const MigrationError& e) {
        EXPECT_NE(std::string(e.what()).find("cannot read the migrations directory " + (home / "share").string()),
                  std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("refusing to follow"), std::string::npos) << e.what();
    }
}

TEST(LoadMigrations, FollowsALinkInARootOnlyDirectory) {
    test::TempDir dir;
    std::filesystem::create_directories(dir.path() / "real");
    std::ofstream(dir.path() / "real/V1__one.sql") << "SELECT 1;";
    std::filesystem::create_symlink(dir.path() / "real", dir.path() / "migrations");
    const auto ms = load_migrations(dir.path() / "migrations");
    ASSERT_EQ(ms.size(), 1U);
    EXPECT_EQ(ms[0].script, "V1__one.sql");
}

} // namespace
} // namespace leo::migrations
