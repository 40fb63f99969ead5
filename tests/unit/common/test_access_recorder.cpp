// fs::AccessRecorder and fs::file_identity: what a run read (its inputs, with their identity
// when first reached) and what it wrote, for answers kept while their inputs are unchanged.
#include "leo/common/system_root.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

namespace {
namespace stdfs = std::filesystem;

const leo::fs::AccessRecorder::Access* find(const std::vector<leo::fs::AccessRecorder::Access>& all,
                                            const std::string& inside) {
    const auto it = std::find_if(all.begin(), all.end(), [&](const auto& a) { return a.inside == inside; });
    return it == all.end() ? nullptr : &*it;
}

TEST(AccessRecorder, RecordsReadsWithTheirFirstIdentityAndWritesAsOutputs) {
    leo::test::TempDir dir;
    stdfs::create_directories(dir.path() / "etc");
    std::ofstream(dir.path() / "etc/a.conf") << "a=1\n";
    const leo::fs::SystemRoot root(dir.path());
    const std::string before = leo::fs::file_identity(root, "/etc/a.conf");
    std::vector<leo::fs::AccessRecorder::Access> all;
    {
        leo::fs::AccessRecorder recorder;
        EXPECT_THROW(leo::fs::AccessRecorder second, std::logic_error);
        (void)root.read("/etc/a.conf");
        (void)root.try_read("/etc/missing.conf");
        (void)root.list("/etc");
        root.make_dirs("/var/out", 0755);
        root.write_atomic("/var/out/answer", "x", 0600);
        root.write_atomic("/etc/a.conf", "a=2\n", 0644);  // read first, then written
        all = recorder.accesses();
    }
    const auto* a = find(all, "/etc/a.conf");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->root, root.path());
    EXPECT_EQ(a->first, before) << "the identity before the run wrote it";
    EXPECT_TRUE(a->written);
    EXPECT_FALSE(a->output) << "it was read first: an input";
    const auto* missing = find(all, "/etc/missing.conf");
    ASSERT_NE(missing, nullptr);
    EXPECT_EQ(missing->first, "absent");
    EXPECT_FALSE(missing->output);
    const auto* etc = find(all, "/etc");
    ASSERT_NE(etc, nullptr);
    EXPECT_TRUE(etc->written) << "a name replaced in it changes the directory";
    EXPECT_FALSE(etc->output);
    const auto* out = find(all, "/var/out/answer");
    ASSERT_NE(out, nullptr);
    EXPECT_TRUE(out->output);
    // No recorder: nothing is noted, and a new one may start.
    (void)root.read("/etc/a.conf");
    leo::fs::AccessRecorder again;
    EXPECT_TRUE(again.accesses().empty());
}

TEST(AccessRecorder, FileIdentityChangesWithContentNamesAndReplacement) {
    leo::test::TempDir dir;
    stdfs::create_directories(dir.path() / "d");
    const leo::fs::SystemRoot root(dir.path());
    EXPECT_EQ(leo::fs::file_identity(root, "/d/f"), "absent");
    const std::string empty_dir = leo::fs::file_identity(root, "/d");
    root.write_atomic("/d/f", "one", 0644);
    const std::string one = leo::fs::file_identity(root, "/d/f");
    EXPECT_NE(one, "absent");
    EXPECT_NE(leo::fs::file_identity(root, "/d"), empty_dir) << "a name added";
    EXPECT_EQ(leo::fs::file_identity(root, "/d/f"), one) << "unchanged: the same identity";
    root.write_atomic("/d/f", "one", 0644);  // the same bytes, a new file
    EXPECT_NE(leo::fs::file_identity(root, "/d/f"), one);
    // A link in a directory others can write is not followed: unreadable, never an identity.
    stdfs::create_directories(dir.path() / "open");
    stdfs::permissions(dir.path() / "open", stdfs::perms::all);
    stdfs::create_symlink("/d/f", dir.path() / "open/link");
    EXPECT_EQ(leo::fs::file_identity(root, "/open/link"), "unreadable");
}

TEST(AccessRecorder, KeepsTheDigestOfWhatWasReadAndListedAndMarksAChangeBetweenTwoReads) {
    leo::test::TempDir dir;
    stdfs::create_directories(dir.path() / "etc");
    std::ofstream(dir.path() / "etc/a.conf") << "a=1\n";
    const leo::fs::SystemRoot root(dir.path());
    leo::fs::AccessRecorder recorder;
    (void)root.read("/etc/a.conf");
    (void)root.list("/etc");
    (void)root.lstat("/etc/b.conf");
    auto all = recorder.accesses();
    const auto* a = find(all, "/etc/a.conf");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->content.size(), 64u);
    EXPECT_FALSE(a->unsteady);
    EXPECT_EQ(find(all, "/etc")->names, leo::fs::names_digest({"a.conf"}));
    EXPECT_TRUE(find(all, "/etc/b.conf")->content.empty()) << "only looked at";
    std::ofstream(dir.path() / "etc/a.conf") << "a=2\n";
    (void)root.read("/etc/a.conf");
    all = recorder.accesses();
    EXPECT_TRUE(find(all, "/etc/a.conf")->unsteady) << "read twice, two different contents";
}

} // namespace
