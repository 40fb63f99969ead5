#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace {
namespace stdfs = std::filesystem;

TEST(Fs, UnderRoot) {
    EXPECT_EQ(leo::fs::under_root("/", "/home/leo"), stdfs::path("/home/leo"));
    EXPECT_EQ(leo::fs::under_root("/tmp/r", "/home/leo"), stdfs::path("/tmp/r/home/leo"));
}

TEST(Fs, AtomicWriteReplacesWithMode) {
    leo::test::TempDir t;
    const auto f = t.path() / "conf";
    leo::fs::write_file_atomic(f, "one", 0600);
    leo::fs::write_file_atomic(f, "two", 0600);
    EXPECT_EQ(leo::fs::read_file(f), "two");
    struct stat st {};
    ASSERT_EQ(::stat(f.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // no temporary file left behind
    EXPECT_EQ(std::distance(stdfs::directory_iterator(t.path()), stdfs::directory_iterator()), 1);
}

TEST(Fs, AtomicWriteIntoMissingDirectoryThrows) {
    leo::test::TempDir t;
    EXPECT_THROW(leo::fs::write_file_atomic(t.path() / "no/such/file", "x"), leo::SystemError);
}

TEST(Fs, NearestExistingAncestor) {
    leo::test::TempDir t;
    EXPECT_EQ(leo::fs::nearest_existing_ancestor(t.path() / "a/b/c"), t.path());
    EXPECT_EQ(leo::fs::nearest_existing_ancestor(t.path()), t.path());
}

TEST(Fs, CopyFileDurable) {
    leo::test::TempDir t;
    leo::fs::write_file_atomic(t.path() / "a", std::string(100000, 'x'));
    leo::fs::copy_file_durable(t.path() / "a", t.path() / "b", 0600);
    EXPECT_EQ(leo::fs::read_file(t.path() / "b"), std::string(100000, 'x'));
    EXPECT_THROW(leo::fs::copy_file_durable(t.path() / "missing", t.path() / "c"), leo::SystemError);
}

} // namespace
