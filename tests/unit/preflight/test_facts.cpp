#include "leo/preflight/facts.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include <sys/utsname.h>
#include <unistd.h>

namespace stdfs = std::filesystem;
using leo::preflight::facts_from_json;
using leo::preflight::find_mount;
using leo::preflight::gather_facts;
using leo::preflight::HostFacts;
using leo::preflight::MountEntry;
using leo::preflight::parse_meminfo_total_kib;
using leo::preflight::parse_mountinfo;
using leo::preflight::parse_os_release;
using leo::preflight::parse_redhat_release;
using nlohmann::json;

namespace {

stdfs::path data_dir() { return leo::test::source_dir() / "tests" / "data" / "preflight"; }

std::string data(const std::string& name) { return leo::fs::read_file(data_dir() / name); }

void write(const stdfs::path& path, const std::string& content) {
    stdfs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out << content;
    ASSERT_TRUE(out.good()) << path;
}

std::vector<MountEntry> mounts(const std::string& fixture) { return parse_mountinfo(data(fixture)); }

} // namespace

// ---- os-release ----

TEST(OsRelease, ParsesCentos7File) {
    const auto os = parse_os_release(data("os-release-centos7"));
    EXPECT_EQ(os.id, "centos");
    EXPECT_EQ(os.version_id, "7");
    EXPECT_EQ(os.id_like, "rhel fedora");
    EXPECT_EQ(os.name, "CentOS Linux");
    EXPECT_EQ(os.pretty_name, "CentOS Linux 7 (Core)");
    EXPECT_EQ(os.source, "");
}

TEST(OsRelease, UnquotedSingleAndDoubleQuotedValues) {
    const auto os = parse_os_release("ID=debian\nVERSION_ID='12'\nNAME=\"Debian GNU/Linux\"\n");
    EXPECT_EQ(os.id, "debian");
    EXPECT_EQ(os.version_id, "12");
    EXPECT_EQ(os.name, "Debian GNU/Linux");
}

TEST(OsRelease, BackslashEscapesInsideDoubleQuotes) {
    const auto os = parse_os_release(R"(PRETTY_NAME="Say \"hi\" \\ cost \$5 \`x\` a\b")");
    // \" \\ \$ \` are escapes; \b is not, so the backslash stays.
    EXPECT_EQ(os.pretty_name, R"(Say "hi" \ cost $5 `x` a\b)");
}

TEST(OsRelease, SingleQuotesAreLiteral) {
    const auto os = parse_os_release(R"(NAME='A \"literal\" $name')");
    EXPECT_EQ(os.name, R"(A \"literal\" $name)");
}

TEST(OsRelease, CommentsBlankLinesAndJunkAreIgnored) {
    const auto os = parse_os_release("# ID=wrong\n\n   \n  ID=centos  # trailing comment\n"
                                     "not a line\n=novalue\n1BAD=x\nVERSION_ID=\"7\"\r\n");
    EXPECT_EQ(os.id, "centos");
    EXPECT_EQ(os.version_id, "7");
    EXPECT_EQ(os.name, "");
}

TEST(OsRelease, UnquotedBackslashEscapesAndLaterAssignmentWins) {
    const auto os = parse_os_release("NAME=My\\ Linux\nID=first\nID=second\n");
    EXPECT_EQ(os.name, "My Linux");
    EXPECT_EQ(os.id, "second");
}

TEST(OsRelease, Rhel79AndRocky8) {
    const auto rhel = parse_os_release(data("os-release-rhel79"));
    EXPECT_EQ(rhel.id, "rhel");
    EXPECT_EQ(rhel.version_id, "7.9");
    EXPECT_EQ(rhel.pretty_name, "Red Hat Enterprise Linux Server 7.9 (Maipo)");
    const auto rocky = parse_os_release(data("os-release-rocky8"));
    EXPECT_EQ(rocky.id, "rocky");
    EXPECT_EQ(rocky.id_like, "rhel centos fedora");
    EXPECT_EQ(rocky.version_id, "8.9");
}

// ---- redhat-release ----

TEST(RedhatRelease, Centos79) {
    const auto os = parse_redhat_release("CentOS Linux release 7.9.2009 (Core)\n");
    EXPECT_EQ(os.id, "centos");
    EXPECT_EQ(os.version_id, "7.9");
    EXPECT_EQ(os.name, "CentOS Linux");
    EXPECT_EQ(os.pretty_name, "CentOS Linux release 7.9.2009 (Core)");
}

TEST(RedhatRelease, Rhel79) {
    const auto os = parse_redhat_release("Red Hat Enterprise Linux Server release 7.9 (Maipo)\n");
    EXPECT_EQ(os.id, "rhel");
    EXPECT_EQ(os.version_id, "7.9");
    EXPECT_EQ(os.name, "Red Hat Enterprise Linux Server");
}

TEST(RedhatRelease, OtherShapes) {
    EXPECT_EQ(parse_redhat_release("CentOS release 6.10 (Final)").version_id, "6.10");
    EXPECT_EQ(parse_redhat_release("CentOS release 6.10 (Final)").id, "centos");
    EXPECT_EQ(parse_redhat_release("CentOS Stream release 8").version_id, "8");
    EXPECT_EQ(parse_redhat_release("Rocky Linux release 8.9 (Green Obsidian)").id, "rocky");
    EXPECT_EQ(parse_redhat_release("Foo OS release 3.1.4").id, "foo");
    EXPECT_EQ(parse_redhat_release("").id, "");
}

// ---- meminfo ----

TEST(Meminfo, MemTotal) {
    EXPECT_EQ(parse_meminfo_total_kib(data("meminfo-8gib-vm")), 7990000U);
    EXPECT_EQ(parse_meminfo_total_kib("MemFree: 1 kB\nMemTotal:   16265688 kB\n"), 16265688U);
    EXPECT_EQ(parse_meminfo_total_kib("MemFree: 1 kB\n"), std::nullopt);
    EXPECT_EQ(parse_meminfo_total_kib("MemTotal: lots kB\n"), std::nullopt);
    EXPECT_EQ(parse_meminfo_total_kib("MemTotal: 12 MB\n"), std::nullopt);
}

// ---- mountinfo ----

TEST(Mountinfo, ParsesFieldsWithAndWithoutOptionalFields) {
    const auto m = mounts("mountinfo-nfs-server.txt");
    ASSERT_EQ(m.size(), 12U);
    EXPECT_EQ(m[4].mount_point, "/");
    EXPECT_EQ(m[4].fstype, "xfs");
    EXPECT_EQ(m[4].source, "/dev/mapper/centos-root");
    // /boot has no optional fields before the "-".
    EXPECT_EQ(m[7].mount_point, "/boot");
    EXPECT_EQ(m[7].fstype, "xfs");
    EXPECT_EQ(m[7].source, "/dev/sda1");
}

TEST(Mountinfo, SkipsMalformedLines) {
    const auto m = parse_mountinfo("garbage\n1 2 3:4 / /x rw shared:1 xfs /dev/sda\n"
                                   "41 1 253:0 / / rw - xfs /dev/sda rw\n");
    ASSERT_EQ(m.size(), 1U);
    EXPECT_EQ(m[0].mount_point, "/");
}

TEST(Mountinfo, DecodesOctalEscapes) {
    const auto m = mounts("mountinfo-stacked.txt");
    ASSERT_EQ(m.size(), 5U);
    EXPECT_EQ(m[3].mount_point, "/data/leo home");
    EXPECT_EQ(m[3].source, "/dev/disk/by-label/leo\\data");
    EXPECT_EQ(m[4].mount_point, "/srv/tab\tdir");
    EXPECT_EQ(m[4].source, "my tmp");
}

TEST(Mountinfo, NfsServerEntriesElsewhereDoNotCount) {
    const auto m = mounts("mountinfo-nfs-server.txt");
    const auto home = find_mount(m, "/home/leo");
    ASSERT_TRUE(home);
    EXPECT_EQ(home->mount_point, "/home");
    EXPECT_EQ(home->fstype, "xfs");
    EXPECT_EQ(home->source, "/dev/mapper/centos-home");
    // The nfsd and rpc_pipefs entries hold their own paths only.
    EXPECT_EQ(find_mount(m, "/proc/fs/nfsd")->fstype, "nfsd");
    EXPECT_EQ(find_mount(m, "/var/lib/nfs/rpc_pipefs/nfs")->fstype, "rpc_pipefs");
}

TEST(Mountinfo, LongestPrefixIsComponentWise) {
    const auto m = mounts("mountinfo-nfs-server.txt");
    // "/home/leo-backup" is not a prefix of "/home/leo", nor "/homer" of "/home".
    EXPECT_EQ(find_mount(m, "/home/leo")->mount_point, "/home");
    EXPECT_EQ(find_mount(m, "/home")->mount_point, "/home");
    EXPECT_EQ(find_mount(m, "/home/leo-backup/x")->fstype, "nfs4");
    EXPECT_EQ(find_mount(m, "/homer")->mount_point, "/homer");
    EXPECT_EQ(find_mount(m, "/hom")->mount_point, "/");
    EXPECT_EQ(find_mount(m, "/")->mount_point, "/");
    EXPECT_EQ(find_mount(m, "/home//leo/")->mount_point, "/home");
}

TEST(Mountinfo, Nfs4Home) {
    const auto home = find_mount(mounts("mountinfo-nfs4-home.txt"), "/home/leo");
    ASSERT_TRUE(home);
    EXPECT_EQ(home->mount_point, "/home");
    EXPECT_EQ(home->fstype, "nfs4");
    EXPECT_EQ(home->source, "filer.example.com:/export/home");
}

TEST(Mountinfo, AutofsHomeWithNfs4LeoOnTop) {
    const auto m = mounts("mountinfo-autofs-home.txt");
    const auto leo = find_mount(m, "/home/leo");
    ASSERT_TRUE(leo);
    EXPECT_EQ(leo->mount_point, "/home/leo");
    EXPECT_EQ(leo->fstype, "nfs4");
    EXPECT_EQ(leo->source, "filer.example.com:/export/home/leo");
    EXPECT_EQ(find_mount(m, "/home/other")->fstype, "autofs");
}

TEST(Mountinfo, SameMountPointLastWins) {
    const auto m = mounts("mountinfo-stacked.txt");
    const auto home = find_mount(m, "/home/leo");
    ASSERT_TRUE(home);
    EXPECT_EQ(home->fstype, "nfs4");
    EXPECT_EQ(home->source, "filer.example.com:/export/home");
    EXPECT_EQ(find_mount(m, "/data/leo home/x")->fstype, "ext4");
    EXPECT_EQ(find_mount(m, "/data/leo")->mount_point, "/");
}

TEST(Mountinfo, NoEntries) {
    EXPECT_FALSE(find_mount({}, "/home/leo"));
    EXPECT_FALSE(find_mount({{"relative", "xfs", "x", "/"}}, "/home/leo"));
}

// ---- gather_facts on a sandbox root ----

class GatherFacts : public ::testing::Test {
protected:
    leo::test::TempDir tmp;
    stdfs::path root = tmp.path() / "root";
    void SetUp() override {
        write(root / "etc/os-release", data("os-release-centos7"));
        write(root / "proc/meminfo", data("meminfo-8gib-vm"));
        write(root / "proc/self/mountinfo", data("mountinfo-autofs-home.txt"));
    }
};

TEST_F(GatherFacts, ReadsFileFactsUnderTheRoot) {
    stdfs::create_directories(root / "home/leo");
    const HostFacts f = gather_facts(root);
    EXPECT_EQ(f.os.id, "centos");
    EXPECT_EQ(f.os.version_id, "7");
    EXPECT_EQ(f.os.source, (root / "etc/os-release").string());
    EXPECT_EQ(f.mem_total_kib, 7990000U);
    EXPECT_EQ(f.mem_source, (root / "proc/meminfo").string());

    EXPECT_EQ(f.home.path, (root / "home/leo").string());
    EXPECT_EQ(f.home.source, (root / "proc/self/mountinfo").string());
    EXPECT_EQ(f.home.mount_point, "/home/leo");
    EXPECT_EQ(f.home.fstype, "nfs4");
    EXPECT_EQ(f.home.mount_source, "filer.example.com:/export/home/leo");
}

TEST_F(GatherFacts, MeasuredFactsAreLive) {
    const HostFacts f = gather_facts(root);
    struct utsname u {};
    ASSERT_EQ(uname(&u), 0);
    EXPECT_EQ(f.arch, u.machine);
    EXPECT_GE(f.vcpus, 1U);
    EXPECT_EQ(f.vcpus_source, "sched_getaffinity");
    // statvfs/statfs of the temporary directory's filesystem.
    EXPECT_GT(f.home.total_bytes, 0U);
    EXPECT_LE(f.home.available_bytes, f.home.total_bytes);
    EXPECT_NE(f.home.statfs_magic, 0U);
}

TEST_F(GatherFacts, NearestExistingAncestorIsMatchedInsideTheRoot) {
    stdfs::create_directories(root / "home");
    auto f = gather_facts(root);
    EXPECT_EQ(f.home.path, (root / "home").string());
    EXPECT_EQ(f.home.mount_point, "/home");
    EXPECT_EQ(f.home.fstype, "autofs");

    stdfs::remove(root / "home");
    f = gather_facts(root);
    EXPECT_EQ(f.home.path, root.string());
    EXPECT_EQ(f.home.mount_point, "/");
    EXPECT_EQ(f.home.fstype, "xfs");
}

TEST_F(GatherFacts, ADirectoryAboveHomeLeoOthersCannotSearchIsNamed) {
    stdfs::create_directories(root / "home");
    ::chmod(root.c_str(), 0755);
    ::chmod((root / "home").c_str(), 0700);
    auto f = gather_facts(root);
    EXPECT_EQ(f.home.untraversable, (root / "home").string() + " (mode 0700)");
    ::chmod((root / "home").c_str(), 0755);
    f = gather_facts(root);
    EXPECT_EQ(f.home.untraversable, "");
    // It survives a saved `facts --json`.
    ::chmod((root / "home").c_str(), 0711);
    ::chmod(root.c_str(), 0750);
    f = gather_facts(root);
    EXPECT_EQ(f.home.untraversable, root.string() + " (mode 0750)");
    EXPECT_EQ(leo::preflight::facts_from_json(leo::preflight::to_json(f)).home.untraversable, f.home.untraversable);
    ::chmod(root.c_str(), 0755);
    // Above the root is the sandbox's business, not the judged system's.
    ::chmod(tmp.path().c_str(), 0700);
    f = gather_facts(root.string() + "/");
    ::chmod(tmp.path().c_str(), 0755);
    EXPECT_EQ(f.home.untraversable, "");
}

TEST_F(GatherFacts, TrailingSlashOnTheRootIsTheSameRoot) {
    stdfs::create_directories(root / "home");
    const auto f = gather_facts(root.string() + "/");
    EXPECT_EQ(f.home.path, (root / "home").string());
    EXPECT_EQ(f.home.mount_point, "/home");
}

TEST_F(GatherFacts, UsrLibOsReleaseWhenEtcHasNone) {
    stdfs::remove(root / "etc/os-release");
    write(root / "usr/lib/os-release", data("os-release-rhel79"));
    const auto f = gather_facts(root);
    EXPECT_EQ(f.os.id, "rhel");
    EXPECT_EQ(f.os.source, (root / "usr/lib/os-release").string());
}

TEST_F(GatherFacts, AbsoluteOsReleaseSymlinkStaysInsideTheRoot) {
    stdfs::remove(root / "etc/os-release");
    write(root / "usr/lib/os-release", data("os-release-rhel79"));
    stdfs::create_symlink("/usr/lib/os-release", root / "etc/os-release");
    const auto f = gather_facts(root);
    EXPECT_EQ(f.os.id, "rhel");
    EXPECT_EQ(f.os.version_id, "7.9");
}

TEST_F(GatherFacts, RedhatReleaseFallback) {
    stdfs::remove(root / "etc/os-release");
    write(root / "etc/redhat-release", "CentOS Linux release 7.9.2009 (Core)\n");
    const auto f = gather_facts(root);
    EXPECT_EQ(f.os.id, "centos");
    EXPECT_EQ(f.os.version_id, "7.9");
    EXPECT_EQ(f.os.source, (root / "etc/redhat-release").string());
}

TEST_F(GatherFacts, NoOsFilesLeavesOsEmpty) {
    stdfs::remove(root / "etc/os-release");
    const auto f = gather_facts(root);
    EXPECT_EQ(f.os.id, "");
    EXPECT_EQ(f.os.source, "");
}

TEST_F(GatherFacts, NoOsFilesRecordsWhy) {
    stdfs::remove(root / "etc/os-release");
    const auto f = gather_facts(root);
    EXPECT_EQ(f.os.error, fmt::format("{}: missing (so are {} and {})", (root / "etc/os-release").string(),
                                      (root / "usr/lib/os-release").string(),
                                      (root / "etc/redhat-release").string()));
    EXPECT_EQ(f.os.name, "");
}

// A symlinked os-release is resolved inside the root; when it cannot be, the fact is
// unreadable with the reason, never the live /etc/os-release and never a fallback.
TEST_F(GatherFacts, SelfReferencingOsReleaseIsASymlinkLoopNotTheHostFile) {
    stdfs::remove(root / "etc/os-release");
    stdfs::create_symlink("/etc/os-release", root / "etc/os-release");
    write(root / "usr/lib/os-release", data("os-release-rhel79")); // no fallback to it
    const auto f = gather_facts(root);
    EXPECT_EQ(f.os.id, "");
    EXPECT_EQ(f.os.version_id, "");
    EXPECT_EQ(f.os.pretty_name, "");
    EXPECT_EQ(f.os.source, (root / "etc/os-release").string() + " (symlink loop)");
    EXPECT_EQ(f.os.error, (root / "etc/os-release").string() + ": symlink loop");
}

TEST_F(GatherFacts, OsReleaseLoopInsideTheRootIsUnreadable) {
    stdfs::remove(root / "etc/os-release");
    stdfs::create_symlink("os-release.a", root / "etc/os-release");
    stdfs::create_symlink("/etc/os-release.b", root / "etc/os-release.a");
    stdfs::create_symlink("../etc/./os-release", root / "etc/os-release.b");
    const auto f = gather_facts(root);
    EXPECT_EQ(f.os.id, "");
    EXPECT_EQ(f.os.source, (root / "etc/os-release").string() + " (symlink loop)");
}

TEST_F(GatherFacts, DotDotCannotLeaveTheRoot) {
    // "../../../../etc/os-release" from ROOT/etc is ROOT/etc/os-release itself: a loop.
    stdfs::remove(root / "etc/os-release");
    stdfs::create_symlink("../../../../../../../../etc/os-release", root / "etc/os-release");
    auto f = gather_facts(root);
    EXPECT_EQ(f.os.id, "");
    EXPECT_EQ(f.os.error, (root / "etc/os-release").string() + ": symlink loop");

    // ".." stops at the root, as in a chroot: this names ROOT/usr/lib/os-release.
    stdfs::remove(root / "etc/os-release");
    stdfs::create_symlink("../../../../../../../../usr/lib/os-release", root / "etc/os-release");
    write(root / "usr/lib/os-release", data("os-release-rhel79"));
    f = gather_facts(root);
    EXPECT_EQ(f.os.id, "rhel");
    EXPECT_EQ(f.os.version_id, "7.9");
    EXPECT_EQ(f.os.source, (root / "etc/os-release").string());
    EXPECT_EQ(f.os.error, "");
}

TEST_F(GatherFacts, SymlinkedDirectoriesAreResolvedInsideTheRoot) {
    // ROOT/etc -> /data/etc is ROOT/data/etc, not the live /data/etc.
    stdfs::remove_all(root / "etc");
    write(root / "data/etc/os-release", data("os-release-rhel79"));
    stdfs::create_symlink("/data/etc", root / "etc");
    auto f = gather_facts(root);
    EXPECT_EQ(f.os.id, "rhel");
    EXPECT_EQ(f.os.source, (root / "etc/os-release").string());

    // ROOT/etc -> ../../../../usr/lib escapes nowhere: it is ROOT/usr/lib.
    stdfs::remove(root / "etc");
    write(root / "usr/lib/os-release", data("os-release-centos8"));
    stdfs::create_symlink("../../../../../../../usr/lib", root / "etc");
    f = gather_facts(root);
    EXPECT_EQ(f.os.id, "centos");
    EXPECT_EQ(f.os.version_id, "8");
}

TEST_F(GatherFacts, DanglingSymlinkInsideTheRootIsMissingSoTheFallbackApplies) {
    stdfs::remove(root / "etc/os-release");
    stdfs::create_symlink("../usr/lib/os-release", root / "etc/os-release"); // absent at first
    write(root / "etc/redhat-release", "CentOS Linux release 7.9.2009 (Core)\n");
    const auto f = gather_facts(root);
    EXPECT_EQ(f.os.id, "centos");
    EXPECT_EQ(f.os.version_id, "7.9");
    EXPECT_EQ(f.os.source, (root / "etc/redhat-release").string());
    EXPECT_EQ(f.os.error, "");
}

TEST_F(GatherFacts, OsReleaseDirectoryIsUnreadableWithoutFallback) {
    stdfs::remove(root / "etc/os-release");
    stdfs::create_directories(root / "etc/os-release");
    write(root / "usr/lib/os-release", data("os-release-rhel79"));
    const auto f = gather_facts(root);
    EXPECT_EQ(f.os.id, "");
    EXPECT_EQ(f.os.source, (root / "etc/os-release").string() + " (is a directory)");
    EXPECT_EQ(f.os.error, (root / "etc/os-release").string() + ": is a directory");
}

TEST_F(GatherFacts, OsReleasePermissionDeniedIsRecorded) {
    if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
    const auto file = root / "etc/os-release";
    stdfs::permissions(file, stdfs::perms::none);
    const auto f = gather_facts(root);
    stdfs::permissions(file, stdfs::perms::owner_read | stdfs::perms::owner_write);
    EXPECT_EQ(f.os.id, "");
    EXPECT_EQ(f.os.source, file.string() + " (Permission denied)");
    EXPECT_EQ(f.os.error, file.string() + ": Permission denied");
}

TEST_F(GatherFacts, UnresolvableProcFilesAreUnreadableNotLive) {
    stdfs::remove(root / "proc/meminfo");
    stdfs::create_symlink("/proc/meminfo", root / "proc/meminfo");
    stdfs::remove(root / "proc/self/mountinfo");
    stdfs::create_symlink("../../../../../../proc/self/mountinfo", root / "proc/self/mountinfo");
    const auto f = gather_facts(root);
    EXPECT_EQ(f.mem_total_kib, 0U);
    EXPECT_EQ(f.mem_source, (root / "proc/meminfo").string() + " (symlink loop)");
    EXPECT_EQ(f.home.source, (root / "proc/self/mountinfo").string() + " (symlink loop)");
    EXPECT_EQ(f.home.mount_point, "");
    EXPECT_EQ(f.home.fstype, "");
}

TEST_F(GatherFacts, HomeSymlinkIsResolvedInsideTheRoot) {
    // ROOT/home -> /srv/home is ROOT/srv/home; /home/leo inside the root is /srv/home/leo.
    stdfs::create_directories(root / "srv/home/leo");
    stdfs::create_symlink("/srv/home", root / "home");
    const auto f = gather_facts(root);
    EXPECT_EQ(f.home.path, (root / "srv/home/leo").string());
    EXPECT_EQ(f.home.mount_point, "/");
    EXPECT_EQ(f.home.fstype, "xfs");
    EXPECT_GT(f.home.total_bytes, 0U);
}

TEST_F(GatherFacts, LiveFilesWhenTheRootHasNone) {
    stdfs::remove(root / "proc/meminfo");
    stdfs::remove(root / "proc/self/mountinfo");
    const auto f = gather_facts(root);
    EXPECT_EQ(f.mem_source, "/proc/meminfo");
    EXPECT_GT(f.mem_total_kib, 0U);
    EXPECT_EQ(f.home.source, "/proc/self/mountinfo");
    // The live mountinfo is matched against the live path: some mount holds it.
    EXPECT_FALSE(f.home.mount_point.empty());
    EXPECT_FALSE(f.home.fstype.empty());
}

TEST(GatherFactsLive, SlashIsTheLiveSystem) {
    const auto f = gather_facts("/");
    EXPECT_EQ(f.mem_source, "/proc/meminfo");
    EXPECT_GT(f.mem_total_kib, 0U);
    EXPECT_EQ(f.home.source, "/proc/self/mountinfo");
    EXPECT_FALSE(f.home.mount_point.empty());
    EXPECT_EQ(f.home.path, leo::fs::nearest_existing_ancestor("/home/leo").string());
    if (stdfs::exists("/etc/os-release")) {
        EXPECT_EQ(f.os.source, "/etc/os-release");
        EXPECT_FALSE(f.os.id.empty());
    }
}

// ---- JSON ----

namespace {
HostFacts sample() {
    HostFacts f;
    f.os = parse_os_release(data("os-release-rhel79"));
    f.os.source = "/etc/os-release";
    f.arch = "x86_64";
    f.vcpus = 4;
    f.vcpus_source = "sched_getaffinity";
    f.mem_total_kib = 7990000;
    f.mem_source = "/proc/meminfo";
    f.home = {"/home", "/home", "nfs4", "filer:/export/home", 0x6969,
              50ULL << 30, 12ULL << 30, "/proc/self/mountinfo", "/", "/home/leo", "/home/leo", "/home (mode 0700)"};
    return f;
}
} // namespace

TEST(FactsJson, RoundTrip) {
    const HostFacts f = sample();
    const json j = leo::preflight::to_json(f);
    EXPECT_EQ(j.at("format_version"), leo::preflight::k_facts_format_version);
    EXPECT_EQ(j.at("home").at("fstype"), "nfs4");
    // Through text, as `facts --json` and `--facts FILE` do.
    const HostFacts back = facts_from_json(json::parse(j.dump()));
    EXPECT_EQ(leo::preflight::to_json(back), j);
    EXPECT_EQ(back.os.pretty_name, f.os.pretty_name);
    EXPECT_EQ(back.vcpus, 4U);
    EXPECT_EQ(back.mem_total_kib, 7990000U);
    EXPECT_EQ(back.home.statfs_magic, 0x6969U);
    EXPECT_EQ(back.home.total_bytes, 50ULL << 30);
    EXPECT_EQ(back.home.available_bytes, 12ULL << 30);
    EXPECT_EQ(back.home.mount_source, "filer:/export/home");
    EXPECT_EQ(back.home.untraversable, "/home (mode 0700)");
    // Saved before the fact existed: absent is "" (every directory searchable or unknown).
    json old = j;
    old["home"].erase("untraversable");
    EXPECT_EQ(facts_from_json(old).home.untraversable, "");
}

namespace {
std::string error_of(const json& j) {
    try {
        (void)facts_from_json(j);
    } catch (const leo::PreflightError& e) {
        return e.what();
    }
    return "(no error)";
}
} // namespace

TEST(FactsJson, OsErrorRoundTripsAndIsOptional) {
    HostFacts f = sample();
    f.os = {};
    f.os.source = "/r/etc/os-release (symlink loop)";
    f.os.error = "/r/etc/os-release: symlink loop";
    json j = leo::preflight::to_json(f);
    EXPECT_EQ(j.at("os").at("error"), "/r/etc/os-release: symlink loop");
    EXPECT_EQ(facts_from_json(json::parse(j.dump())).os.error, "/r/etc/os-release: symlink loop");
    // A facts file written before the field existed.
    j["os"].erase("error");
    EXPECT_EQ(facts_from_json(j).os.error, "");
    j["os"]["error"] = 1;
    EXPECT_EQ(error_of(j), "facts file: field 'os.error' must be a string, not number");
}

TEST(FactsJson, RefusesAnotherVersion) {
    json j = leo::preflight::to_json(sample());
    j["format_version"] = 3;
    EXPECT_EQ(error_of(j), "facts file: format_version 3 is not supported (this installer reads 1 and 2); "
                           "gather the facts again with this installer's 'facts --json'");
    j.erase("format_version");
    EXPECT_EQ(error_of(j), "facts file: field 'format_version' missing");
    j["format_version"] = "1";
    EXPECT_EQ(error_of(j), "facts file: field 'format_version' must be an integer, not string");
}

TEST(FactsJson, NamesMissingAndMistypedFields) {
    json j = leo::preflight::to_json(sample());
    j["home"].erase("fstype");
    EXPECT_EQ(error_of(j), "facts file: field 'home.fstype' missing");

    j = leo::preflight::to_json(sample());
    j["vcpus"] = "4";
    EXPECT_EQ(error_of(j), "facts file: field 'vcpus' must be a non-negative integer, not string");
    j["vcpus"] = -1;
    EXPECT_EQ(error_of(j), "facts file: field 'vcpus' must be a non-negative integer, not -1");
    j["vcpus"] = 1ULL << 40;
    EXPECT_EQ(error_of(j), "facts file: field 'vcpus' is out of range (1099511627776 > 4294967295)");

    j = leo::preflight::to_json(sample());
    j["os"]["id"] = 7;
    EXPECT_EQ(error_of(j), "facts file: field 'os.id' must be a string, not number");
    j = leo::preflight::to_json(sample());
    j["home"] = "nope";
    EXPECT_EQ(error_of(j), "facts file: field 'home' must be an object, not string");
    EXPECT_EQ(error_of(json::array()), "facts file: expected a JSON object, not array");
}

TEST(FactsJson, ReadFactsFileNamesTheFile) {
    leo::test::TempDir tmp;
    const auto file = tmp.path() / "facts.json";
    write(file, "{ not json");
    try {
        (void)leo::preflight::read_facts_file(file);
        FAIL() << "no error";
    } catch (const leo::PreflightError& e) {
        EXPECT_NE(std::string(e.what()).find("facts file " + file.string() + ": not JSON"), std::string::npos)
            << e.what();
    }
    json j = leo::preflight::to_json(sample());
    j["home"].erase("total_bytes");
    write(file, j.dump());
    try {
        (void)leo::preflight::read_facts_file(file);
        FAIL() << "no error";
    } catch (const leo::PreflightError& e) {
        EXPECT_EQ(leo::describe(e),
                  "cannot use " + file.string() + ": facts file: field 'home.total_bytes' missing");
    }
    write(file, leo::preflight::to_json(sample()).dump(2));
    EXPECT_EQ(leo::preflight::read_facts_file(file).home.fstype, "nfs4");
    EXPECT_THROW((void)leo::preflight::read_facts_file(tmp.path() / "absent.json"), leo::PreflightError);
}

TEST(FactsJson, ParseFactsTextNamesTheGivenFile) {
    EXPECT_EQ(leo::preflight::parse_facts_text(leo::preflight::to_json(sample()).dump(), "f.json").home.fstype,
              "nfs4");
    try {
        (void)leo::preflight::parse_facts_text("[]", "f.json");
        FAIL() << "no error";
    } catch (const leo::PreflightError& e) {
        EXPECT_EQ(leo::describe(e), "cannot use f.json: facts file: expected a JSON object, not array");
    }
}

// Found by fuzz_state_json (fuzz/corpus/state_json/crash-facts-number-overflow, this text):
// a number too large for a double made json::parse throw out_of_range, which escaped
// parse_facts_text (it caught parse_error only) instead of "not JSON".
TEST(FactsJson, NumberOverflowIsNotJson) {
    const std::string text =
        "{\"format_version\": 1, \"os\": {\"id\": \"centos\", \"version_id\": \"7\", \"id_like\": \"rhel fedora\", "
        "\"name\": \"Ceinity\", \"mem_total_kib\": 7e990000, \"mem_source\": \"\xf6" "proc/meminfo\", \"home\": "
        "{\"path\": \"/home/leo\", \"mount_p\x7f" "int\": \"/hagic\": 1481003842, \"total_bytes\": 53687091200, "
        "\"available_bytes\": 42949672960, \"source\": \"/proc/self/%ountinfo\"}}\n";
    ASSERT_EQ(text.size(), 329u);
    try {
        (void)leo::preflight::parse_facts_text(text, "f.json");
        FAIL() << "no error";
    } catch (const leo::PreflightError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "facts file f.json: not JSON: [json.exception.out_of_range.406] number overflow parsing '7e990000'");
    }
}

// Found by fuzz_host_facts (fuzz/corpus/host_facts/crash-redhat-release-not-utf8: the
// redhat-release "\xeb"): text read from the host that is not UTF-8 (a Latin-1 os-release
// PRETTY_NAME, a mount point) made to_json(facts).dump() throw nlohmann's type_error 316,
// so `facts --json` and `preflight --json` failed on that host.
TEST(FactsJson, NotUtf8IsReplaced) {
    HostFacts f;
    f.os = parse_redhat_release("\xeb");
    EXPECT_EQ(f.os.pretty_name, "\xeb");  // the fact keeps the bytes; its JSON cannot
    EXPECT_EQ(leo::preflight::to_json(f).at("os").at("pretty_name"), "\xEF\xBF\xBD");
    f.os = parse_os_release("PRETTY_NAME=\"Caf\xe9 Linux\"\n");
    f.home.mount_point = "/srv/\xff\xfe";
    const json j = leo::preflight::to_json(f);
    std::string text;
    ASSERT_NO_THROW(text = j.dump(2));
    EXPECT_EQ(j.at("os").at("pretty_name"), "Caf\xEF\xBF\xBD Linux");
    EXPECT_EQ(j.at("home").at("mount_point"), "/srv/\xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(leo::preflight::to_json(leo::preflight::parse_facts_text(text, "f.json")), j);
}

TEST(FactsJson, ValidUtf8) {
    using leo::preflight::valid_utf8;
    const std::string fffd = "\xEF\xBF\xBD";
    EXPECT_EQ(valid_utf8("plain ascii\n"), "plain ascii\n");
    EXPECT_EQ(valid_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));
    EXPECT_EQ(valid_utf8("\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e \xf4\x8f\xbf\xbf"),
              "\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e \xf4\x8f\xbf\xbf");  // é € 𝄞 U+10FFFF
    EXPECT_EQ(valid_utf8("\xc0\xaf"), fffd + fffd);                // overlong '/'
    EXPECT_EQ(valid_utf8("\xe0\x80\xaf"), fffd + fffd + fffd);     // overlong, 3 bytes
    EXPECT_EQ(valid_utf8("\xed\xa0\x80"), fffd + fffd + fffd);     // a surrogate
    EXPECT_EQ(valid_utf8("\xf4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // above U+10FFFF
    EXPECT_EQ(valid_utf8("x\xe2\x82"), "x" + fffd);                // cut short: one for the prefix
    EXPECT_EQ(valid_utf8("\xe2\x82x"), fffd + "x");
    EXPECT_EQ(valid_utf8("\x80\xbf"), fffd + fffd);                // lone continuation bytes
}

// ---- cgroup files ----

TEST(Cgroup, CfsQuotaAndPeriod) {
    using leo::preflight::parse_cfs_quota;
    EXPECT_EQ(parse_cfs_quota("150000\n", "100000\n"), 1500U);
    EXPECT_EQ(parse_cfs_quota("-1\n", "100000\n"), 0U);  // no limit
    EXPECT_FALSE(parse_cfs_quota("150000", "0"));
    EXPECT_FALSE(parse_cfs_quota("lots", "100000"));
    EXPECT_FALSE(parse_cfs_quota("-1", ""));
}

TEST(Cgroup, ProcSelfCgroup) {
    using leo::preflight::parse_proc_cgroup;
    const auto v1 = parse_proc_cgroup("11:memory:/docker/abc\n4:cpuacct,cpu:/docker/abc\n1:name=systemd:/x\n");
    EXPECT_EQ(v1.v1_cpu, "/docker/abc");
    EXPECT_EQ(v1.v2, "/");
    const auto v2 = parse_proc_cgroup("0::/machine.slice/leo.scope\n");
    EXPECT_EQ(v2.v1_cpu, "/");
    EXPECT_EQ(v2.v2, "/machine.slice/leo.scope");
    EXPECT_EQ(parse_proc_cgroup("junk\n").v2, "/");
}
