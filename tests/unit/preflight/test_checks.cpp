#include "leo/preflight/checks.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <ostream>

using leo::preflight::CheckResult;
using leo::preflight::HostFacts;
using leo::preflight::parse_os_release;
using leo::preflight::Profile;
using leo::preflight::Report;
using leo::preflight::run_checks;
using leo::preflight::Verdict;

namespace leo::preflight {
// Readable verdicts in assertion failures.
void PrintTo(Verdict v, std::ostream* os) { *os << to_string(v); }
} // namespace leo::preflight

namespace {

constexpr std::uint64_t k_gib = 1ULL << 30;

leo::preflight::OsFacts os_fixture(const std::string& name) {
    auto os = parse_os_release(
        leo::fs::read_file(leo::test::source_dir() / "tests/data/preflight" / name));
    os.source = "/etc/os-release";
    return os;
}

/// A host that passes every check: CentOS 7, x86_64, 2 CPUs, an 8 GiB VM, 50 GiB xfs /home.
HostFacts good() {
    HostFacts f;
    f.os = os_fixture("os-release-centos7");
    f.arch = "x86_64";
    f.vcpus = 2;
    f.vcpus_source = "sched_getaffinity";
    f.mem_total_kib = 7990000;
    f.mem_source = "/proc/meminfo";
    f.home.path = "/home";
    f.home.mount_point = "/home";
    f.home.fstype = "xfs";
    f.home.mount_source = "/dev/mapper/centos-home";
    f.home.statfs_magic = 0x58465342; // XFS_SUPER_MAGIC
    f.home.total_bytes = 50 * k_gib;
    f.home.available_bytes = 30 * k_gib;
    f.home.source = "/proc/self/mountinfo";
    return f;
}

CheckResult result(const Report& r, const std::string& id) {
    const auto it = std::find_if(r.results.begin(), r.results.end(),
                                 [&](const CheckResult& c) { return c.id == id; });
    if (it == r.results.end()) throw std::runtime_error("no result " + id);
    return *it;
}

CheckResult check(const HostFacts& f, const std::string& id, Profile p = Profile::install) {
    return result(run_checks(f, p), id);
}

Verdict verdict(const HostFacts& f, const std::string& id, Profile p = Profile::install) {
    return check(f, id, p).verdict;
}

std::string usage_error(const HostFacts& f, const std::map<std::string, std::string>& skips) {
    try {
        (void)run_checks(f, Profile::install, skips);
    } catch (const leo::UsageError& e) {
        return e.what();
    }
    return "(no error)";
}

} // namespace

TEST(Checks, GoodHostPassesEverythingInOrder) {
    const auto r = run_checks(good(), Profile::install);
    ASSERT_EQ(r.results.size(), 8U);
    const std::vector<std::string> ids = {"os",           "arch",         "vcpus",           "memory", "disk",
                                          "home-not-nfs", "home-symlink", "home-traversable"};
    for (std::size_t i = 0; i < ids.size(); ++i) {
        EXPECT_EQ(r.results[i].id, ids[i]);
        EXPECT_EQ(r.results[i].verdict, Verdict::pass) << ids[i] << ": " << r.results[i].measured;
        EXPECT_EQ(r.results[i].remediation, "") << ids[i];
        EXPECT_FALSE(r.results[i].required.empty()) << ids[i];
    }
    EXPECT_FALSE(r.inhibited());
    EXPECT_EQ(r.profile, Profile::install);
    const auto ids_view = leo::preflight::check_ids(Profile::install);
    EXPECT_EQ(std::vector<std::string>(ids_view.begin(), ids_view.end()), ids);
    const auto all = leo::preflight::check_ids();
    EXPECT_EQ(std::vector<std::string>(all.begin(), all.end()),
              (std::vector<std::string>{"os", "arch", "vcpus", "memory", "disk", "upgrade-space",
                                        "home-not-nfs", "home-symlink", "home-traversable"}));
    const auto rest = leo::preflight::check_ids(Profile::rest_api);
    EXPECT_EQ(std::vector<std::string>(rest.begin(), rest.end()), std::vector<std::string>{"memory"});
    const auto fixed = leo::preflight::non_skippable_check_ids();
    EXPECT_EQ(std::vector<std::string>(fixed.begin(), fixed.end()), std::vector<std::string>{"home-not-nfs"});
    EXPECT_TRUE(leo::preflight::all_pass(r));
}

// ---- os ----

TEST(CheckOs, Centos7AndRhel79Pass) {
    auto f = good();
    const auto c = check(f, "os");
    EXPECT_EQ(c.verdict, Verdict::pass);
    EXPECT_EQ(c.measured, "CentOS Linux 7 (Core) (ID=centos ID_LIKE=\"rhel fedora\" VERSION_ID=7)");
    EXPECT_EQ(c.evidence, "/etc/os-release");
    f.os = os_fixture("os-release-rhel79");
    EXPECT_EQ(verdict(f, "os"), Verdict::pass);
    f.os = leo::preflight::parse_redhat_release("CentOS Linux release 7.9.2009 (Core)");
    f.os.source = "/etc/redhat-release";
    EXPECT_EQ(verdict(f, "os"), Verdict::pass);
}

TEST(CheckOs, OtherVersionsAndDistributionsAreInhibitors) {
    auto f = good();
    for (const char* name : {"os-release-centos8", "os-release-centos-stream9", "os-release-rocky8",
                             "os-release-debian12"}) {
        f.os = os_fixture(name);
        const auto c = check(f, "os");
        EXPECT_EQ(c.verdict, Verdict::inhibitor) << name;
        EXPECT_NE(c.remediation.find("CentOS Linux 7.x or Red Hat Enterprise Linux 7.x, x86_64"),
                  std::string::npos)
            << name << ": " << c.remediation;
    }
    f.os = os_fixture("os-release-rocky8");
    const auto rocky = check(f, "os");
    EXPECT_EQ(rocky.measured,
              "Rocky Linux 8.9 (Green Obsidian) (ID=rocky ID_LIKE=\"rhel centos fedora\" VERSION_ID=8.9)");
    EXPECT_NE(rocky.remediation.find("look-alike of RHEL (ID_LIKE="), std::string::npos);
    f.os = os_fixture("os-release-centos8");
    EXPECT_NE(check(f, "os").remediation.find("is version 8, not 7.x"), std::string::npos);
}

TEST(CheckOs, MajorVersionIsExactlySeven) {
    auto f = good();
    f.os.version_id = "7.9";
    EXPECT_EQ(verdict(f, "os"), Verdict::pass);
    f.os.version_id = "70";
    EXPECT_EQ(verdict(f, "os"), Verdict::inhibitor);
    f.os.version_id = "";
    EXPECT_EQ(verdict(f, "os"), Verdict::inhibitor);
    f.os.version_id = "6.10";
    EXPECT_EQ(verdict(f, "os"), Verdict::inhibitor);
}

TEST(CheckOs, NameAndVersionWhenNoPrettyName) {
    auto f = good();
    f.os.pretty_name = "";
    f.os.id_like = "";
    EXPECT_EQ(check(f, "os").measured, "CentOS Linux 7 (ID=centos VERSION_ID=7)");
}

TEST(CheckOs, UnknownOsIsAnInhibitor) {
    auto f = good();
    f.os = {};
    const auto c = check(f, "os");
    EXPECT_EQ(c.verdict, Verdict::inhibitor);
    EXPECT_EQ(c.measured, "could not read /etc/os-release");
    EXPECT_NE(c.remediation.find("CentOS Linux 7.x"), std::string::npos);
    f.os = {};
    f.os.source = "/r/etc/os-release";
    f.os.name = "Something";
    // Read, but no ID: not "could not read".
    EXPECT_EQ(check(f, "os").measured, "/r/etc/os-release has no ID=");
    EXPECT_EQ(check(f, "os").evidence, "/r/etc/os-release");
    EXPECT_EQ(check(f, "os").verdict, Verdict::inhibitor);
    f.os.source = "/r/etc/redhat-release";
    EXPECT_EQ(check(f, "os").measured, "/r/etc/redhat-release names no known release");
}

TEST(CheckOs, SaysWhyTheOsReleaseCouldNotBeRead) {
    auto f = good();
    f.os = {};
    f.os.source = "/r/etc/os-release (Permission denied)";
    f.os.error = "/r/etc/os-release: Permission denied";
    auto c = check(f, "os");
    EXPECT_EQ(c.verdict, Verdict::inhibitor);
    EXPECT_EQ(c.measured, "could not read /r/etc/os-release: Permission denied");
    EXPECT_EQ(c.evidence, "/r/etc/os-release (Permission denied)");

    f.os = {};
    f.os.error = "/r/etc/os-release: missing (so are /r/usr/lib/os-release and /r/etc/redhat-release)";
    c = check(f, "os");
    EXPECT_EQ(c.verdict, Verdict::inhibitor);
    EXPECT_EQ(c.measured, "could not read /r/etc/os-release: missing (so are /r/usr/lib/os-release "
                          "and /r/etc/redhat-release)");
    EXPECT_EQ(c.evidence, f.os.error);

    // An error wins even if a parser left something behind.
    f.os.id = "centos";
    f.os.version_id = "7";
    EXPECT_EQ(verdict(f, "os"), Verdict::inhibitor);
}

// ---- arch, vcpus ----

TEST(CheckArch, OnlyX86_64) {
    auto f = good();
    EXPECT_EQ(check(f, "arch").measured, "x86_64");
    for (const char* arch : {"aarch64", "i686", "ppc64le", ""}) {
        f.arch = arch;
        EXPECT_EQ(verdict(f, "arch"), Verdict::inhibitor) << arch;
    }
}

TEST(CheckVcpus, AtLeastTwo) {
    auto f = good();
    f.vcpus = 2;
    EXPECT_EQ(verdict(f, "vcpus"), Verdict::pass);
    EXPECT_EQ(check(f, "vcpus").measured, "2 usable CPUs (affinity 2, no cgroup CPU quota)");
    f.vcpus = 64;
    EXPECT_EQ(verdict(f, "vcpus"), Verdict::pass);
    f.vcpus = 1;
    EXPECT_EQ(verdict(f, "vcpus"), Verdict::inhibitor);
    f.vcpus = 0;
    EXPECT_EQ(check(f, "vcpus").measured, "could not count the CPUs");
    EXPECT_EQ(verdict(f, "vcpus"), Verdict::inhibitor);
}

TEST(CheckVcpus, CgroupQuotaCapsTheAffinityCount) {
    auto f = good();
    f.vcpus = 8;
    f.cpuinfo_cpus = 8;
    f.cpu_quota_millicpus = 1500;
    f.cpu_quota_source = "/sys/fs/cgroup/cpu.max: 150000 100000";
    const auto c = check(f, "vcpus");
    EXPECT_EQ(c.verdict, Verdict::inhibitor);
    EXPECT_EQ(c.measured, "1.5 usable CPUs (affinity 8, cgroup quota 1.5 CPUs, cpuinfo 8)");
    EXPECT_NE(c.evidence.find("/sys/fs/cgroup/cpu.max: 150000 100000"), std::string::npos);
    EXPECT_NE(c.remediation.find("cgroup CPU quota"), std::string::npos);
    f.cpu_quota_millicpus = 2000;
    EXPECT_EQ(verdict(f, "vcpus"), Verdict::pass);
    f.cpu_quota_millicpus = 16000; // a quota above the affinity count does not add CPUs
    f.vcpus = 1;
    EXPECT_EQ(leo::preflight::usable_millicpus(f), 1000U);
    EXPECT_EQ(verdict(f, "vcpus"), Verdict::inhibitor);
    f.vcpus = 4;
    f.cpu_quota_millicpus = 0;
    f.cpu_quota_error = "/sys/fs/cgroup/cpu.max: malformed";
    EXPECT_EQ(verdict(f, "vcpus"), Verdict::warning);
}

// ---- memory ----

TEST(CheckMemory, BoundaryIsStrictlyAboveSevenGiB) {
    auto f = good();
    f.mem_total_kib = 7340032; // exactly 7 GiB: a 7 GiB machine can never report more
    EXPECT_EQ(verdict(f, "memory"), Verdict::inhibitor);
    f.mem_total_kib = 7340033;
    EXPECT_EQ(verdict(f, "memory"), Verdict::pass);
    f.mem_total_kib = 7990000; // a realistic 8 GiB VM
    EXPECT_EQ(verdict(f, "memory"), Verdict::pass);
    f.mem_total_kib = 7500000; // an "8 GB" = 8e9-byte machine (7.45 GiB) less ~300 MiB
    EXPECT_EQ(verdict(f, "memory"), Verdict::pass);
    f.mem_total_kib = 7000000; // a 7 GiB machine less its reservations
    EXPECT_EQ(verdict(f, "memory"), Verdict::inhibitor);
    f.mem_total_kib = 3880000; // a 4 GiB machine
    EXPECT_EQ(verdict(f, "memory"), Verdict::inhibitor);
}

TEST(CheckMemory, MeasuredRequiredAndProfileWording) {
    auto f = good();
    const auto c = check(f, "memory");
    EXPECT_EQ(c.measured, "7.6 GiB MemTotal (7990000 KiB)");
    EXPECT_EQ(c.evidence, "/proc/meminfo");
    EXPECT_NE(c.required.find("the broker needs >= 8 GB RAM"), std::string::npos) << c.required;
    EXPECT_NE(c.required.find("MemTotal > 7 GiB (7340032 KiB)"), std::string::npos) << c.required;

    f.mem_total_kib = 4000000;
    const auto api = check(f, "memory", Profile::rest_api);
    EXPECT_EQ(api.verdict, Verdict::inhibitor);
    EXPECT_NE(api.required.find("the REST API needs >= 8 GB"), std::string::npos) << api.required;
    EXPECT_NE(api.remediation.find("the REST API needs at least 8 GB"), std::string::npos);
    f.mem_total_kib = 7340033;
    EXPECT_EQ(verdict(f, "memory", Profile::rest_api), Verdict::pass);
}

TEST(CheckMemory, UnreadableIsAnInhibitor) {
    auto f = good();
    f.mem_total_kib = 0;
    const auto c = check(f, "memory");
    EXPECT_EQ(c.verdict, Verdict::inhibitor);
    EXPECT_EQ(c.measured.rfind("could not read MemTotal", 0), 0U) << c.measured;
}

// ---- disk ----

TEST(CheckDisk, TotalSizeBoundaryAt18GiB) {
    auto f = good();
    f.home.total_bytes = 18 * k_gib;
    f.home.available_bytes = 1;
    EXPECT_EQ(verdict(f, "disk"), Verdict::pass) << "free space does not matter for install";
    f.home.total_bytes = 18 * k_gib - 1;
    EXPECT_EQ(verdict(f, "disk"), Verdict::inhibitor);
    f.home.total_bytes = 20'000'000'000ULL * 97 / 100; // a 20 GB disk less 3% overhead
    EXPECT_EQ(verdict(f, "disk"), Verdict::pass);
    f.home.total_bytes = 16'000'000'000ULL;
    const auto c = check(f, "disk");
    EXPECT_EQ(c.verdict, Verdict::inhibitor);
    EXPECT_NE(c.remediation.find("at least 20 GB"), std::string::npos) << c.remediation;
}

TEST(CheckDisk, MeasuredAndRequiredText) {
    auto f = good();
    f.home.mount_point = "/";
    f.home.fstype = "ext4";
    f.home.total_bytes = 251 * k_gib;
    f.home.available_bytes = 80 * k_gib + k_gib / 5 + 1;
    const auto c = check(f, "disk");
    EXPECT_EQ(c.measured, "251.0 GiB total, 80.2 GiB free on / (ext4)");
    EXPECT_EQ(c.evidence, "statvfs(3) on /home");
    EXPECT_NE(c.required.find("total size >= 18 GiB"), std::string::npos);
    EXPECT_NE(c.required.find("size, not free space"), std::string::npos);
    EXPECT_EQ(c.required.find("2 GiB available"), std::string::npos);
}

TEST(CheckUpgradeSpace, UpgradeNeedsTwoGiBAvailable) {
    auto f = good();
    f.home.available_bytes = 2 * k_gib;
    EXPECT_EQ(verdict(f, "upgrade-space", Profile::upgrade), Verdict::pass);
    EXPECT_NE(check(f, "upgrade-space", Profile::upgrade).required.find(">= 2 GiB available"), std::string::npos);
    f.home.available_bytes = 2 * k_gib - 1;
    const auto c = check(f, "upgrade-space", Profile::upgrade);
    EXPECT_EQ(c.verdict, Verdict::inhibitor);
    EXPECT_NE(c.remediation.find("free at least 2 GiB on /home"), std::string::npos) << c.remediation;
    EXPECT_EQ(verdict(f, "disk", Profile::upgrade), Verdict::pass);
    // Not part of the install profile.
    const auto ids = leo::preflight::check_ids(Profile::install);
    EXPECT_EQ(std::find(ids.begin(), ids.end(), "upgrade-space"), ids.end());
}

TEST(CheckDisk, UnmeasuredIsAnInhibitor) {
    auto f = good();
    f.home.total_bytes = 0;
    EXPECT_EQ(verdict(f, "disk"), Verdict::inhibitor);
}

TEST(FormatGib, OneDecimalRoundedDown) {
    EXPECT_EQ(leo::preflight::format_gib(0), "0.0 GiB");
    EXPECT_EQ(leo::preflight::format_gib(18 * k_gib), "18.0 GiB");
    EXPECT_EQ(leo::preflight::format_gib(18 * k_gib - 1), "17.9 GiB");
    EXPECT_EQ(leo::preflight::format_gib(k_gib / 2), "0.5 GiB");
    EXPECT_EQ(leo::preflight::format_gib(20'000'000'000ULL), "18.6 GiB");
    EXPECT_EQ(leo::preflight::format_gib(UINT64_MAX), "17179869183.9 GiB");
}

// ---- home-not-nfs ----

TEST(CheckHomeNotNfs, LocalPasses) {
    const auto c = check(good(), "home-not-nfs");
    EXPECT_EQ(c.verdict, Verdict::pass);
    EXPECT_FALSE(c.skippable);
    EXPECT_EQ(c.measured, "xfs mounted on /home from /dev/mapper/centos-home");
}

TEST(CheckHomeNotNfs, NfsFstypesAreInhibitors) {
    auto f = good();
    f.home.mount_source = "filer.example.com:/export/home";
    for (const char* type : {"nfs", "nfs3", "nfs4"}) {
        f.home.fstype = type;
        const auto c = check(f, "home-not-nfs");
        EXPECT_EQ(c.verdict, Verdict::inhibitor) << type;
        EXPECT_NE(c.evidence.find("/proc/self/mountinfo"), std::string::npos) << c.evidence;
        EXPECT_NE(c.evidence.find("mount point /home"), std::string::npos) << c.evidence;
        EXPECT_NE(c.evidence.find("filer.example.com:/export/home"), std::string::npos) << c.evidence;
        EXPECT_NE(c.remediation.find("/home/leo cannot be on NFS"), std::string::npos);
    }
    // NFS server pseudo-filesystems are not NFS mounts.
    for (const char* type : {"nfsd", "rpc_pipefs"}) {
        f.home.fstype = type;
        EXPECT_EQ(verdict(f, "home-not-nfs"), Verdict::pass) << type;
    }
}

TEST(CheckHomeNotNfs, StatfsMagicAloneIsEnough) {
    auto f = good();
    f.home.mount_point = "";
    f.home.fstype = "";
    f.home.mount_source = "";
    f.home.statfs_magic = 0x6969;
    const auto c = check(f, "home-not-nfs");
    EXPECT_EQ(c.verdict, Verdict::inhibitor);
    EXPECT_NE(c.evidence.find("0x6969"), std::string::npos) << c.evidence;
    // Even when mountinfo (e.g. the root's copy) says something local.
    f = good();
    f.home.statfs_magic = 0x6969;
    EXPECT_EQ(verdict(f, "home-not-nfs"), Verdict::inhibitor);
}

TEST(CheckHomeNotNfs, MeasuredSaysWhenMountinfoAndStatfsDisagree) {
    auto f = good();
    f.home.fstype = "ext4";
    f.home.mount_source = "/dev/sda3";
    f.home.statfs_magic = 0x6969;
    auto c = check(f, "home-not-nfs");
    EXPECT_EQ(c.verdict, Verdict::inhibitor);
    EXPECT_EQ(c.measured, "ext4 per mountinfo, but statfs says NFS (0x6969): mounted on /home from /dev/sda3");
    EXPECT_NE(c.remediation.find("statfs(2) on /home reports NFS although mountinfo says ext4"),
              std::string::npos)
        << c.remediation;

    // The other way round: still judged NFS (mountinfo), and the measurement says so.
    f.home.fstype = "nfs4";
    f.home.mount_source = "filer:/export/home";
    f.home.statfs_magic = 0xEF53; // EXT4_SUPER_MAGIC
    c = check(f, "home-not-nfs");
    EXPECT_EQ(c.verdict, Verdict::inhibitor);
    EXPECT_EQ(c.measured,
              "nfs4 per mountinfo, but statfs says not NFS (0xef53): mounted on /home from filer:/export/home");

    // Agreement keeps the plain text.
    f.home.statfs_magic = 0x6969;
    EXPECT_EQ(check(f, "home-not-nfs").measured, "nfs4 mounted on /home from filer:/export/home");
    f = good();
    EXPECT_EQ(check(f, "home-not-nfs").measured, "xfs mounted on /home from /dev/mapper/centos-home");
}

TEST(CheckHomeNotNfs, OtherNetworkFilesystemsWarn) {
    auto f = good();
    for (const char* type : {"cifs", "smb3", "smbfs", "glusterfs", "fuse.glusterfs", "ceph",
                             "fuse.sshfs", "9p", "afs", "autofs"}) {
        f.home.fstype = type;
        EXPECT_EQ(verdict(f, "home-not-nfs"), Verdict::warning) << type;
    }
    f.home.fstype = "ext4";
    EXPECT_EQ(verdict(f, "home-not-nfs"), Verdict::pass);
    f.home.statfs_magic = 0xFF534D42; // CIFS_MAGIC_NUMBER
    EXPECT_EQ(verdict(f, "home-not-nfs"), Verdict::warning);
}

TEST(CheckHomeNotNfs, UnknownFilesystemWarns) {
    auto f = good();
    f.home.mount_point = "";
    f.home.fstype = "";
    f.home.statfs_magic = 0;
    f.home.source = "";
    EXPECT_EQ(verdict(f, "home-not-nfs"), Verdict::warning);
}

TEST(CheckHomeNotNfs, FromMountinfoFixtures) {
    const auto dir = leo::test::source_dir() / "tests/data/preflight";
    auto judge = [&](const std::string& fixture) {
        auto f = good();
        const auto m = leo::preflight::find_mount(
            leo::preflight::parse_mountinfo(leo::fs::read_file(dir / fixture)), "/home/leo");
        f.home.mount_point = m->mount_point;
        f.home.fstype = m->fstype;
        f.home.mount_source = m->source;
        f.home.statfs_magic = 0;
        return check(f, "home-not-nfs");
    };
    EXPECT_EQ(judge("mountinfo-nfs-server.txt").verdict, Verdict::pass);
    EXPECT_EQ(judge("mountinfo-nfs4-home.txt").verdict, Verdict::inhibitor);
    const auto autofs = judge("mountinfo-autofs-home.txt");
    EXPECT_EQ(autofs.verdict, Verdict::inhibitor);
    EXPECT_EQ(autofs.measured, "nfs4 mounted on /home/leo from filer.example.com:/export/home/leo");
    EXPECT_EQ(judge("mountinfo-stacked.txt").verdict, Verdict::inhibitor);
}

// ---- skips ----

TEST(Skips, SkippedCheckKeepsItsMeasurementsAndDoesNotInhibit) {
    auto f = good();
    f.mem_total_kib = 4000000;
    EXPECT_TRUE(run_checks(f, Profile::install).inhibited());
    const auto r = run_checks(f, Profile::install, {{"memory", "lab machine, ticket OPS-12"}});
    const auto c = result(r, "memory");
    EXPECT_EQ(c.verdict, Verdict::skipped);
    EXPECT_EQ(c.skip_reason, "lab machine, ticket OPS-12");
    EXPECT_EQ(c.measured, "3.8 GiB MemTotal (4000000 KiB)");
    EXPECT_FALSE(c.required.empty());
    EXPECT_FALSE(r.inhibited());
    // Other checks are untouched.
    EXPECT_EQ(result(r, "os").verdict, Verdict::pass);
    EXPECT_EQ(result(r, "os").skip_reason, "");
}

TEST(Skips, UnknownIdIsAUsageError) {
    EXPECT_EQ(usage_error(good(), {{"ram", "x"}}),
              "unknown check id 'ram' in --skip (known: os, arch, vcpus, memory, disk, upgrade-space, "
              "home-not-nfs, home-symlink, home-traversable)");
    try {
        (void)run_checks(good(), Profile::install, {{"ram", "x"}});
        FAIL();
    } catch (const leo::Error& e) {
        EXPECT_EQ(e.code(), leo::ExitCode::usage);
    }
}

TEST(Skips, NfsCheckCannotBeSkipped) {
    auto f = good();
    f.home.fstype = "nfs4";
    EXPECT_EQ(usage_error(f, {{"home-not-nfs", "we know"}}),
              "check 'home-not-nfs' cannot be skipped: /home/leo cannot be on NFS");
    EXPECT_EQ(usage_error(f, {{"memory", "ok"}, {"home-not-nfs", "we know"}}),
              "check 'home-not-nfs' cannot be skipped: /home/leo cannot be on NFS");
}

TEST(Skips, ReasonIsRequired) {
    EXPECT_EQ(usage_error(good(), {{"os", ""}}),
              "--skip os needs a --reason (it is recorded in the report)");
}

// ---- profiles, verdict strings ----

TEST(Profiles, ParseAndPrint) {
    EXPECT_EQ(leo::preflight::parse_profile("install"), Profile::install);
    EXPECT_EQ(leo::preflight::parse_profile("upgrade"), Profile::upgrade);
    EXPECT_EQ(leo::preflight::parse_profile("rest-api"), Profile::rest_api);
    EXPECT_EQ(leo::preflight::to_string(Profile::rest_api), "rest-api");
    EXPECT_EQ(leo::preflight::to_string(Profile::upgrade), "upgrade");
    EXPECT_THROW((void)leo::preflight::parse_profile("rest_api"), leo::UsageError);
    EXPECT_THROW((void)leo::preflight::parse_profile(""), leo::UsageError);
    EXPECT_EQ(leo::preflight::to_string(Verdict::pass), "pass");
    EXPECT_EQ(leo::preflight::to_string(Verdict::inhibitor), "inhibitor");
    EXPECT_EQ(leo::preflight::to_string(Verdict::warning), "warning");
    EXPECT_EQ(leo::preflight::to_string(Verdict::info), "info");
    EXPECT_EQ(leo::preflight::to_string(Verdict::skipped), "skipped");
}

TEST(Report, InhibitedOnlyByInhibitors) {
    const auto with = [](const char* id, Verdict v) {
        CheckResult c;
        c.id = id;
        c.verdict = v;
        return c;
    };
    Report r;
    EXPECT_FALSE(r.inhibited());
    r.results.push_back(with("a", Verdict::warning));
    r.results.push_back(with("b", Verdict::skipped));
    r.results.push_back(with("c", Verdict::info));
    EXPECT_FALSE(r.inhibited());
    r.results.push_back(with("d", Verdict::inhibitor));
    EXPECT_TRUE(r.inhibited());
}

// ---- output ----

TEST(ReportJson, AllFields) {
    auto f = good();
    f.arch = "aarch64";
    const auto r = run_checks(f, Profile::upgrade, {{"vcpus", "reason x"}});
    const auto j = leo::preflight::to_json(r);
    EXPECT_EQ(j.at("profile"), "upgrade");
    EXPECT_EQ(j.at("inhibited"), true);
    ASSERT_EQ(j.at("results").size(), 9U);
    const auto& arch = j.at("results").at(1);
    EXPECT_EQ(arch.at("id"), "arch");
    EXPECT_EQ(arch.at("verdict"), "inhibitor");
    EXPECT_EQ(arch.at("measured"), "aarch64");
    EXPECT_EQ(arch.at("evidence"), "uname(2) machine");
    EXPECT_FALSE(arch.at("required").get<std::string>().empty());
    EXPECT_FALSE(arch.at("remediation").get<std::string>().empty());
    EXPECT_EQ(arch.at("skippable"), true);
    EXPECT_EQ(arch.at("skip_reason"), "");
    EXPECT_EQ(j.at("results").at(2).at("verdict"), "skipped");
    EXPECT_EQ(j.at("results").at(2).at("skip_reason"), "reason x");
    EXPECT_EQ(j.at("results").at(2).at("judged"), "pass");
    EXPECT_EQ(j.at("results").at(5).at("id"), "upgrade-space");
    EXPECT_EQ(j.at("results").at(6).at("skippable"), false);
    EXPECT_FALSE(j.at("results").at(3).at("tolerance").get<std::string>().empty());
    EXPECT_EQ(j.at("counts").at("inhibitor"), 1);
    EXPECT_EQ(j.at("counts").at("skipped"), 1);
}

// The texts of a report come from the host's files and from --reason, so they may be bytes
// that are not UTF-8; `preflight --json` must still write them (see FactsJson.NotUtf8IsReplaced).
TEST(ReportJson, TextThatIsNotUtf8IsReplaced) {
    auto f = good();
    f.arch = "x86\xff";
    const auto j = leo::preflight::to_json(run_checks(f, Profile::install, {{"vcpus", "caf\xe9"}}));
    EXPECT_NO_THROW((void)j.dump());
    EXPECT_EQ(j.at("results").at(1).at("measured"), "x86\xEF\xBF\xBD");
    EXPECT_EQ(j.at("results").at(2).at("skip_reason"), "caf\xEF\xBF\xBD");
}

namespace {
std::vector<std::string> split(const std::string& table) {
    std::vector<std::string> lines;
    for (std::size_t pos = 0; pos < table.size();) {
        const auto nl = table.find('\n', pos);
        lines.push_back(table.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return lines;
}
} // namespace

TEST(ReportTable, ColumnsWrapToTheWidthWithIndentedDetailLines) {
    auto f = good();
    f.mem_total_kib = 4000000;
    f.home.fstype = "cifs";
    const auto r = run_checks(f, Profile::install, {{"vcpus", "test rig"}});
    const std::string table = leo::preflight::to_table(r);
    const auto lines = split(table);
    EXPECT_EQ(table.back(), '\n');
    for (const auto& l : lines) EXPECT_LE(l.size(), 100U) << l;
    EXPECT_EQ(lines[0].rfind("ID", 0), 0U);
    const auto col_verdict = lines[0].find("VERDICT");
    const auto col_measured = lines[0].find("MEASURED");
    const auto col_required = lines[0].find("REQUIRED");
    ASSERT_NE(col_verdict, std::string::npos);
    ASSERT_LT(col_verdict, col_measured);
    ASSERT_LT(col_measured, col_required);
    EXPECT_EQ(lines[1].rfind("os ", 0), 0U);
    EXPECT_EQ(lines[1].substr(col_verdict, 4), "pass");
    const auto find_row = [&](const std::string& id) {
        for (std::size_t i = 0; i < lines.size(); ++i)
            if (lines[i].rfind(id + " ", 0) == 0) return i;
        return lines.size();
    };
    const auto vcpus = find_row("vcpus");
    ASSERT_LT(vcpus, lines.size());
    EXPECT_EQ(lines[vcpus].substr(col_verdict, 7), "skipped");
    EXPECT_NE(table.find(std::string(col_verdict, ' ') + "skipped: test rig (would have been: pass)"),
              std::string::npos)
        << table;
    const auto memory = find_row("memory");
    ASSERT_LT(memory, lines.size());
    EXPECT_EQ(lines[memory].substr(col_verdict, 9), "inhibitor");
    EXPECT_EQ(lines[memory].substr(col_measured, 14), "3.8 GiB MemTot");
    EXPECT_NE(table.find(std::string(col_verdict, ' ') + "fix: the broker needs at least 8 GB"), std::string::npos)
        << table;
    EXPECT_NE(table.find(std::string(col_verdict, ' ') + "from: /proc/meminfo"), std::string::npos);
    EXPECT_NE(table.find(std::string(col_verdict, ' ') + "tolerance: MemTotal may be"), std::string::npos);
    const auto home = find_row("home-not-nfs");
    ASSERT_LT(home, lines.size());
    EXPECT_EQ(lines[home].substr(col_verdict, 7), "warning");

    // Narrow terminals wrap more; nothing is cut.
    for (const auto& l : split(leo::preflight::to_table(r, {.width = 72}))) EXPECT_LE(l.size(), 72U) << l;

    // The problems-only form for install/upgrade: failing rows, then the passes in one line.
    const auto problems = leo::preflight::to_table(r, {.width = 100, .rows = leo::preflight::TableOptions::Rows::problems});
    EXPECT_EQ(problems.find("\nos "), std::string::npos) << problems;
    EXPECT_NE(problems.find("\nmemory "), std::string::npos);
    EXPECT_NE(problems.find("passed: os, arch, disk, home-symlink"), std::string::npos) << problems;
    EXPECT_FALSE(leo::preflight::all_pass(r));
}

TEST(Checks, HomeParentOthersCannotSearchIsAnInhibitor) {
    auto f = good();
    f.home.untraversable = "/r/home (mode 0700)";
    const auto r = run_checks(f, Profile::install);
    const auto& t = result(r, "home-traversable");
    EXPECT_EQ(t.verdict, Verdict::inhibitor);
    EXPECT_EQ(t.measured, "user leo cannot traverse /r/home (mode 0700)");
    EXPECT_EQ(t.remediation, "make it searchable: chmod o+x /r/home");
    EXPECT_TRUE(r.inhibited());
    EXPECT_EQ(leo::preflight::summary_line(r),
              "preflight (install profile): 7 passed, 0 warnings, 1 inhibitor: refused (not passed: home-traversable)");
    // Skippable, with a reason, as the other host checks.
    const auto skipped = run_checks(f, Profile::install, {{"home-traversable", "leo's home is reached otherwise"}});
    EXPECT_FALSE(skipped.inhibited());
    EXPECT_EQ(leo::preflight::summary_line(skipped),
              "preflight (install profile): 7 passed, 0 warnings, 0 inhibitors, 1 skipped: passed");
}

TEST(Checks, SummaryLineOfAGoodHost) {
    EXPECT_EQ(leo::preflight::summary_line(run_checks(good(), Profile::upgrade)),
              "preflight (upgrade profile): 9 passed, 0 warnings, 0 inhibitors: passed");
}
