// SystemRoot against the real file system: links in directories other users can write are
// refused, links in root-only directories are followed inside the root, modes are explicit.
// Runs as root (as the test suite does); the "other user" is a uid with no passwd entry.
#include "leo/common/error.hpp"
#include "leo/common/system_root.hpp"
#include "test_support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {
namespace stdfs = std::filesystem;
using leo::test::mode_of;
using leo::test::owner_of;
using leo::test::slurp;
using leo::fs::SystemRoot;

constexpr uid_t k_other_uid = 54321;

/// Every case runs twice: with openat2, and walking per component as on EL7's kernel.
class SystemRootTest : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        m_openat2_was = leo::fs::set_openat2_enabled(GetParam());
        if (::geteuid() != 0)
            GTEST_SKIP() << "needs root (ownership of directories)";
        m_old_umask = ::umask(022);
    }
    void TearDown() override {
        leo::fs::set_openat2_enabled(m_openat2_was);
        if (::geteuid() == 0)
            ::umask(m_old_umask);
    }
    void write_host(const stdfs::path& p, const std::string& text) {
        stdfs::create_directories(p.parent_path());
        std::ofstream(p) << text;
    }
    leo::test::TempDir m_dir;
    stdfs::path m_host = m_dir.path() / "root";
    mode_t m_old_umask = 022;
    bool m_openat2_was = true;
};

TEST_P(SystemRootTest, HostPathsAndStandardPaths) {
    EXPECT_EQ(SystemRoot("/").host("/home/leo"), stdfs::path("/home/leo"));
    EXPECT_EQ(SystemRoot("/tmp/r/").host("/home/leo"), stdfs::path("/tmp/r/home/leo"));
    EXPECT_TRUE(SystemRoot("/").is_host());
    EXPECT_FALSE(SystemRoot("/tmp/r").is_host());
    EXPECT_THROW((void)SystemRoot("/").try_read("relative"), std::invalid_argument);
    EXPECT_THROW((void)SystemRoot("/").try_read("/etc/../etc/passwd"), std::invalid_argument);
}

TEST_P(SystemRootTest, ModesAreExplicitUnderUmaskZero) {
    stdfs::create_directories(m_host);
    ::umask(0);
    SystemRoot root(m_host);
    root.make_dirs("/var/lib/leo-installer/snapshots", 0700);
    EXPECT_EQ(mode_of(m_host / "var"), 0755u);
    EXPECT_EQ(mode_of(m_host / "var/lib/leo-installer"), 0755u);
    EXPECT_EQ(mode_of(m_host / "var/lib/leo-installer/snapshots"), 0700u);
    root.write_atomic("/var/lib/leo-installer/snapshots/m.json", "{}", 0600);
    EXPECT_EQ(mode_of(m_host / "var/lib/leo-installer/snapshots/m.json"), 0600u);
    EXPECT_EQ(root.read("/var/lib/leo-installer/snapshots/m.json"), "{}");
    // An existing directory is brought back to its mode (a run under umask 000 left 0777).
    ::chmod((m_host / "var/lib/leo-installer/snapshots").c_str(), 0777);
    root.make_dirs("/var/lib/leo-installer/snapshots", 0700);
    EXPECT_EQ(mode_of(m_host / "var/lib/leo-installer/snapshots"), 0700u);
    auto fd = root.open_append("/var/lib/leo-installer/journal", 0600);
    EXPECT_EQ(mode_of(m_host / "var/lib/leo-installer/journal"), 0600u);
}

TEST_P(SystemRootTest, OpenAppendThatMustNotCreateLeavesAMissingFileMissing) {
    // `log clear` of a log removed meanwhile: an error, never a new root-owned empty file.
    stdfs::create_directories(m_host);
    SystemRoot root(m_host);
    root.make_dirs("/var/log/broker", 0755);
    try {
        (void)root.open_append("/var/log/broker/broker.log", 0640, leo::fs::WhenMissing::refuse);
        FAIL() << "opened a missing file";
    } catch (const leo::SystemError& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr("No such file or directory"));
    }
    EXPECT_FALSE(stdfs::exists(m_host / "var/log/broker/broker.log"));
    write_host(m_host / "var/log/broker/broker.log", "line\n");
    auto fd = root.open_append("/var/log/broker/broker.log", 0640, leo::fs::WhenMissing::refuse);
    EXPECT_EQ(::write(fd.get(), "more\n", 5), 5);
    EXPECT_EQ(slurp(m_host / "var/log/broker/broker.log"), "line\nmore\n");
}

TEST_P(SystemRootTest, LinkInADirectoryAnotherUserOwnsIsRefused) {
    // The attack of issue "leo can take over root": /home/leo/pgsql -> /etc.
    write_host(m_host / "etc/shadow", "secret");
    stdfs::create_directories(m_host / "home/leo");
    ::chown((m_host / "home/leo").c_str(), k_other_uid, k_other_uid);
    stdfs::create_directory_symlink("/etc", m_host / "home/leo/pgsql");
    SystemRoot root(m_host);
    try {
        root.make_dirs("/home/leo/pgsql/data", 0700, leo::fs::Owner{k_other_uid, k_other_uid});
        FAIL() << "followed the link";
    } catch (const leo::SystemError& e) {
        EXPECT_NE(std::string(e.what()).find((m_host / "home/leo/pgsql").string()), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
    }
    EXPECT_THROW(root.set_owner_mode("/home/leo/pgsql", leo::fs::Owner{k_other_uid, k_other_uid}, 0700),
                 leo::SystemError);
    EXPECT_THROW((void)root.try_read("/home/leo/pgsql/shadow"), leo::SystemError);
    EXPECT_THROW(root.write_atomic("/home/leo/pgsql/shadow", "x", 0644), leo::SystemError);
    EXPECT_THROW((void)root.checked_host("/home/leo/pgsql/data"), leo::SystemError);
    EXPECT_THROW((void)root.stat("/home/leo/pgsql"), leo::SystemError); // a last-component link too
    // Nothing changed where the link pointed.
    EXPECT_EQ(mode_of(m_host / "etc"), mode_of(m_host / "etc"));
    struct stat st {};
    ASSERT_EQ(::stat((m_host / "etc").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_FALSE(stdfs::exists(m_host / "etc/data"));
    EXPECT_EQ(slurp(m_host / "etc/shadow"), "secret");
}

TEST_P(SystemRootTest, GroupWritableDirectoryCountsAsAnotherUsers) {
    stdfs::create_directories(m_host / "var/cache");
    stdfs::create_directories(m_host / "target");
    ::chmod((m_host / "var/cache").c_str(), 0775);
    stdfs::create_directory_symlink("/target", m_host / "var/cache/leo-installer");
    SystemRoot root(m_host);
    EXPECT_THROW(root.make_dirs("/var/cache/leo-installer/packages", 0755), leo::SystemError);
    EXPECT_FALSE(stdfs::exists(m_host / "target/packages"));
}

TEST_P(SystemRootTest, LinksInRootOnlyDirectoriesAreFollowedInsideTheRoot) {
    // /home -> /data/home made by the administrator; an absolute target means the root's.
    stdfs::create_directories(m_host / "data/home/leo");
    stdfs::create_directory_symlink("/data/home", m_host / "home");
    write_host(m_host / "data/home/leo/x.conf", "inside");
    SystemRoot root(m_host);
    EXPECT_EQ(root.read("/home/leo/x.conf"), "inside");
    root.write_atomic("/home/leo/y.conf", "new", 0644);
    EXPECT_EQ(slurp(m_host / "data/home/leo/y.conf"), "new");
    // A link that climbs out stays inside the root (chroot semantics).
    stdfs::create_directories(m_host / "etc");
    write_host(m_host / "etc/os-release", "ID=centos\n");
    stdfs::create_symlink("../../../../../../../../etc/os-release", m_host / "data/escape");
    EXPECT_EQ(root.read("/data/escape"), "ID=centos\n");
    EXPECT_NO_THROW((void)root.checked_host("/home/leo/x.conf"));
}

TEST_P(SystemRootTest, AppendRefusesAFifoOrADirectoryWithoutBlocking) {
    // A FIFO planted at a log or lock path: open(O_WRONLY) would wait for a reader forever.
    stdfs::create_directories(m_host / "var/log/leo-installer/dir.log");
    ASSERT_EQ(::mkfifo((m_host / "var/log/leo-installer/installer.log").c_str(), 0600), 0);
    SystemRoot root(m_host);
    try {
        (void)root.open_append("/var/log/leo-installer/installer.log", 0640);
        ADD_FAILURE() << "a FIFO was opened for appending";
    } catch (const leo::SystemError& e) {
        EXPECT_NE(std::string(e.what()).find("installer.log: it is not a regular file"), std::string::npos)
            << e.what();
    }
    // With a reader it would open: still refused, as not a regular file.
    const int reader = ::open((m_host / "var/log/leo-installer/installer.log").c_str(), O_RDONLY | O_NONBLOCK);
    ASSERT_GE(reader, 0);
    EXPECT_THROW((void)root.open_append("/var/log/leo-installer/installer.log", 0640), leo::SystemError);
    ::close(reader);
    EXPECT_THROW((void)root.open_append("/var/log/leo-installer/dir.log", 0640), leo::SystemError);
    // A regular file is still appended to in blocking mode.
    auto fd = root.open_append("/var/log/leo-installer/ok.log", 0640);
    EXPECT_EQ(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK, 0);
}

TEST_P(SystemRootTest, FinalLinksAreNotWrittenThrough) {
    stdfs::create_directories(m_host / "var/log/leo-installer");
    write_host(m_host / "victim", "keep");
    stdfs::create_symlink("/victim", m_host / "var/log/leo-installer/installer.log");
    SystemRoot root(m_host);
    EXPECT_THROW((void)root.open_append("/var/log/leo-installer/installer.log", 0640), leo::SystemError);
    EXPECT_THROW((void)root.create_exclusive("/var/log/leo-installer/installer.log", 0640), leo::SystemError);
    EXPECT_EQ(slurp(m_host / "victim"), "keep");
    // write_atomic replaces the link itself, never the target.
    root.write_atomic("/var/log/leo-installer/installer.log", "log", 0640);
    EXPECT_FALSE(stdfs::is_symlink(m_host / "var/log/leo-installer/installer.log"));
    EXPECT_EQ(slurp(m_host / "victim"), "keep");
}

TEST_P(SystemRootTest, HardLinkedFileIsNotAppendedTo) {
    stdfs::create_directories(m_host / "var/log");
    write_host(m_host / "victim", "keep");
    stdfs::create_hard_link(m_host / "victim", m_host / "var/log/file");
    SystemRoot root(m_host);
    try {
        (void)root.open_append("/var/log/file", 0600);
        FAIL() << "appended to a hard link";
    } catch (const leo::SystemError& e) {
        EXPECT_NE(std::string(e.what()).find("hard links"), std::string::npos) << e.what();
    }
}

TEST_P(SystemRootTest, ReadIsBoundedAndRegularOnly) {
    write_host(m_host / "etc/big", std::string(1000, 'x'));
    ASSERT_EQ(::mkfifo((m_host / "etc/fifo").c_str(), 0600), 0);
    SystemRoot root(m_host);
    EXPECT_THROW((void)root.read("/etc/big", 999), leo::SystemError);
    EXPECT_EQ(root.read("/etc/big", 1000).size(), 1000u);
    EXPECT_THROW((void)root.read("/etc/fifo"), leo::SystemError); // does not block
    EXPECT_FALSE(root.try_read("/etc/missing").has_value());
    EXPECT_FALSE(root.try_read("/no/such/dir/file").has_value());
    EXPECT_THROW((void)root.read("/etc/missing"), leo::SystemError);
}

TEST_P(SystemRootTest, RemoveAllDoesNotFollowLinks) {
    stdfs::create_directories(m_host / "var/lib/leo-installer/snapshots/a");
    write_host(m_host / "precious/file", "keep");
    stdfs::create_directory_symlink(m_host / "precious", m_host / "var/lib/leo-installer/snapshots/a/link");
    SystemRoot root(m_host);
    EXPECT_TRUE(root.remove_all("/var/lib/leo-installer/snapshots/a"));
    EXPECT_FALSE(stdfs::exists(m_host / "var/lib/leo-installer/snapshots/a"));
    EXPECT_EQ(slurp(m_host / "precious/file"), "keep");
    EXPECT_FALSE(root.remove_all("/var/lib/leo-installer/snapshots/a"));
}

TEST_P(SystemRootTest, RenameListLstatAndSymlink) {
    stdfs::create_directories(m_host / "d");
    SystemRoot root(m_host);
    root.write_atomic("/d/b", "1", 0644);
    root.write_atomic("/d/a", "2", 0644);
    EXPECT_EQ(root.list("/d"), (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(root.list("/nope").empty());
    root.rename("/d/a", "/d/c");
    EXPECT_FALSE(root.exists("/d/a"));
    EXPECT_EQ(root.read("/d/c"), "2");
    root.symlink("/usr/bin/leo-installer", "/d/tool");
    auto st = root.lstat("/d/tool");
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(S_ISLNK(st->st_mode));
    EXPECT_TRUE(root.remove("/d/tool"));
    EXPECT_FALSE(root.remove("/d/tool"));
}

TEST_P(SystemRootTest, AFileWhereADirectoryIsExpectedIsNamed) {
    write_host(m_host / "var/lib", "not a dir");
    SystemRoot root(m_host);
    try {
        root.make_dirs("/var/lib/leo-installer", 0700);
        FAIL();
    } catch (const leo::SystemError& e) {
        EXPECT_NE(std::string(e.what()).find((m_host / "var/lib").string()), std::string::npos) << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(Kernels, SystemRootTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "openat2" : "walk"; });

} // namespace
