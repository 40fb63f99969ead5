// Unit tests of the migration engine's pure parts: versions, file names, checksums.
#include "leo/migrations/engine.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>

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

} // namespace
} // namespace leo::migrations
