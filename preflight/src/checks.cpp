#include "leo/preflight/checks.hpp"

#include "leo/common/error.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>

namespace leo::preflight {
namespace {

constexpr std::string_view k_supported_os = "CentOS Linux 7.x or Red Hat Enterprise Linux 7.x, x86_64";

// statfs(2) f_type values of network filesystems that are not NFS (linux/magic.h,
// fs/smb/client/cifsglob.h). They only raise a warning.
constexpr std::uint64_t k_cifs_magic = 0xFF534D42;
constexpr std::uint64_t k_smb2_magic = 0xFE534D42;
constexpr std::uint64_t k_smb_magic = 0x517B;

std::string os_display(const OsFacts& os) {
    std::string name = !os.pretty_name.empty() ? os.pretty_name
                       : os.version_id.empty() ? os.name
                                               : fmt::format("{} {}", os.name, os.version_id);
    std::string ids = fmt::format("ID={}", os.id.empty() ? "(none)" : os.id);
    if (!os.id_like.empty()) ids += fmt::format(" ID_LIKE=\"{}\"", os.id_like);
    ids += fmt::format(" VERSION_ID={}", os.version_id.empty() ? "(none)" : os.version_id);
    if (!os.variant_id.empty()) ids += fmt::format(" VARIANT_ID={}", os.variant_id);
    return name.empty() ? ids : fmt::format("{} ({})", name, ids);
}

/// "Rocky Linux 8.9", "CentOS Linux 8", "Red Hat Enterprise Linux 7.9 (server)".
std::string os_short(const OsFacts& os) {
    std::string out = os.name.empty() ? os.id : os.name;
    if (!os.version_id.empty()) out += " " + os.version_id;
    if (!os.variant_id.empty()) out += fmt::format(" ({})", os.variant_id);
    return out;
}

bool id_like_contains(const std::string& id_like, std::string_view word) {
    std::size_t pos = 0;
    while (pos < id_like.size()) {
        const auto begin = id_like.find_first_not_of(' ', pos);
        if (begin == std::string::npos) break;
        auto end = id_like.find(' ', begin);
        if (end == std::string::npos) end = id_like.size();
        if (std::string_view(id_like).substr(begin, end - begin) == word) return true;
        pos = end;
    }
    return false;
}

/// "os": the broker RPM is built for and supported on CentOS Linux 7 and RHEL 7 only
/// (DESIGN.md: "an RPM installed on 64-bit CentOS/RHEL 7"). Rule: os-release ID is
/// exactly "centos" or "rhel" and the major part of VERSION_ID is 7 ("7", "7.0", "7.9"),
/// any VARIANT_ID (server, workstation, client, computenode). ID_LIKE is not identity:
/// Rocky, Alma and Oracle Linux (ID_LIKE "rhel ..." or "fedora") are refused, and so are
/// CentOS 8 and CentOS Stream (ID "centos", VERSION_ID 8 / 9). Inhibitor otherwise, and
/// when no os-release (nor redhat-release) could be read; `remediation` names what was
/// found and what is supported.
CheckResult check_os(const HostFacts& f, Profile /*profile*/) {
    CheckResult r;
    r.id = "os";
    r.required = fmt::format("{} (os-release ID centos or rhel, VERSION_ID 7.x, any variant)",
                             k_supported_os);
    r.tolerance = "any 7.x minor release and any RHEL 7 variant; ID_LIKE is not identity";
    r.evidence = f.os.source;
    if (!f.os.error.empty()) {
        // Why nothing could be read: missing, a directory, permission denied, a symlink
        // loop... ("could not read /r/etc/os-release: Permission denied").
        r.verdict = Verdict::inhibitor;
        r.measured = fmt::format("could not read {}", f.os.error);
        if (r.evidence.empty()) r.evidence = f.os.error;
        r.remediation = fmt::format("the OS could not be identified; install on {}", k_supported_os);
        return r;
    }
    if (f.os.source.empty()) {
        // A facts file from before OsFacts::error: no reason recorded.
        r.verdict = Verdict::inhibitor;
        r.measured = "could not read /etc/os-release";
        r.evidence = "/etc/os-release, /usr/lib/os-release, /etc/redhat-release: none found";
        r.remediation = fmt::format("the OS could not be identified; install on {}", k_supported_os);
        return r;
    }
    if (f.os.id.empty()) {
        // The file was read: it just does not say which OS this is.
        const std::string_view src = f.os.source;
        const bool redhat = src.size() >= 14 && src.substr(src.size() - 14) == "redhat-release";
        r.verdict = Verdict::inhibitor;
        r.measured = redhat ? fmt::format("{} names no known release", f.os.source)
                            : fmt::format("{} has no ID=", f.os.source);
        r.remediation = fmt::format("the OS could not be identified; install on {}", k_supported_os);
        return r;
    }
    r.measured = os_display(f.os);
    const bool known_id = f.os.id == "centos" || f.os.id == "rhel";
    const std::string major = f.os.version_id.substr(0, f.os.version_id.find('.'));
    if (known_id && major == "7") return r;

    r.verdict = Verdict::inhibitor;
    const std::string found = os_short(f.os);
    std::string why;
    if (known_id && (f.os.name.find("Stream") != std::string::npos ||
                     f.os.pretty_name.find("Stream") != std::string::npos)) {
        why = fmt::format("{} is CentOS Stream, which is not supported", found);
    } else if (known_id) {
        why = fmt::format("{} is version {}, not 7.x: {} 8 and later are not supported", found,
                          f.os.version_id.empty() ? "(unknown)" : f.os.version_id,
                          f.os.id == "rhel" ? "RHEL" : "CentOS");
    } else if (id_like_contains(f.os.id_like, "rhel") || id_like_contains(f.os.id_like, "centos") ||
               id_like_contains(f.os.id_like, "fedora")) {
        why = fmt::format("{} (ID={}) is a rebuild or look-alike of RHEL (ID_LIKE=\"{}\"), which is "
                          "not supported",
                          found, f.os.id, f.os.id_like);
    } else {
        why = fmt::format("{} (ID={}) is not supported", found, f.os.id);
    }
    r.remediation = fmt::format("{}; install on {}", why, k_supported_os);
    return r;
}

/// "arch": the broker RPM is built for x86_64 only ("64-bit CentOS/RHEL 7", DESIGN.md).
/// Rule: uname(2) machine is exactly "x86_64". Inhibitor otherwise.
CheckResult check_arch(const HostFacts& f, Profile /*profile*/) {
    CheckResult r;
    r.id = "arch";
    r.required = "x86_64 (the broker RPM is built for 64-bit x86 only)";
    r.evidence = "uname(2) machine";
    r.measured = f.arch.empty() ? "could not read the machine architecture" : f.arch;
    if (f.arch != "x86_64") {
        r.verdict = Verdict::inhibitor;
        r.remediation = fmt::format("install on an x86_64 machine running {}", k_supported_os);
    }
    return r;
}

/// 2000 -> "2", 1500 -> "1.5", 1250 -> "1.25".
std::string format_cpus(std::uint64_t milli) {
    if (milli % 1000 == 0) return fmt::format("{}", milli / 1000);
    std::string frac = fmt::format("{:03}", milli % 1000);
    while (frac.back() == '0') frac.pop_back();
    return fmt::format("{}.{}", milli / 1000, frac);
}

/// "vcpus": at least 2 CPUs (broker hardware requirements). Rule: usable CPUs >= 2, where
/// usable = min(CPUs in this process's sched_getaffinity(2) mask, the cgroup CPU quota
/// (v1 cpu.cfs_quota_us / cpu.cfs_period_us, v2 cpu.max)). A cpuset, taskset or container
/// limit is what the broker can actually use; a quota of 1.5 CPUs is 1.5 CPUs and fails.
/// /proc/cpuinfo's count is shown as evidence only (it ignores every limit).
/// Inhibitor when fewer; warning when a cgroup file was present but could not be read.
CheckResult check_vcpus(const HostFacts& f, Profile /*profile*/) {
    CheckResult r;
    r.id = "vcpus";
    r.required = ">= 2 usable CPUs (broker hardware requirements): min(sched_getaffinity mask, "
                 "cgroup CPU quota)";
    r.tolerance = "none: a fractional quota counts as it is (1.5 CPUs < 2)";
    r.evidence = f.vcpus_source.empty() ? "sched_getaffinity" : f.vcpus_source;
    if (!f.cpu_quota_source.empty()) r.evidence += "; " + f.cpu_quota_source;
    if (!f.cpu_quota_error.empty()) r.evidence += "; " + f.cpu_quota_error;
    if (!f.cpuinfo_source.empty()) r.evidence += "; " + f.cpuinfo_source;
    const std::uint64_t usable = usable_millicpus(f);
    if (f.vcpus == 0) {
        r.measured = "could not count the CPUs";
    } else {
        r.measured = fmt::format("{} usable CPUs (affinity {}", format_cpus(usable), f.vcpus);
        r.measured += f.cpu_quota_millicpus == 0
                          ? ", no cgroup CPU quota"
                          : fmt::format(", cgroup quota {} CPUs", format_cpus(f.cpu_quota_millicpus));
        if (f.cpuinfo_cpus != 0) r.measured += fmt::format(", cpuinfo {}", f.cpuinfo_cpus);
        r.measured += ")";
    }
    if (usable < k_min_usable_millicpus) {
        r.verdict = Verdict::inhibitor;
        r.remediation = f.cpu_quota_millicpus != 0 && f.cpu_quota_millicpus < k_min_usable_millicpus
                            ? "raise the cgroup CPU quota (container or systemd CPUQuota=) to at least 2 CPUs"
                            : "give this machine at least 2 vCPUs (and no cpuset/taskset limit below 2)";
    } else if (!f.cpu_quota_error.empty()) {
        r.verdict = Verdict::warning;
        r.remediation = fmt::format("could not read the cgroup CPU limit ({}); make sure the broker "
                                    "may use at least 2 CPUs",
                                    f.cpu_quota_error);
    }
    return r;
}

/// "memory": 8 GB of RAM (broker hardware requirements; enabling the REST API needs the
/// same 8 GB). Two rules, the first that can be applied decides:
/// 1. Installed memory (online memory blocks in /sys/devices/system/memory, which count
///    the RAM the firmware gave the kernel, reservations included) >= 8 GiB: pass.
/// 2. Otherwise (installed unknown or below 8 GiB): MemTotal > 7 GiB (7340032 KiB).
/// Why not "MemTotal >= 8 GiB": the kernel reports MemTotal below the installed RAM
/// (kernel image, page tables, the crashkernel reservation, firmware-reserved ranges:
/// typically 150-450 MiB on an 8 GiB VM), so an 8 GiB VM reports about 7.6-7.85 GiB and
/// an "8 GB" = 8e9-byte machine (7.45 GiB) about 7.1-7.3 GiB. A machine with 7 GiB or
/// less installed can never report more than 7 GiB, so rule 2 accepts every 8 GB machine
/// and refuses every machine of 7 GiB or less. Inhibitor otherwise.
CheckResult check_memory(const HostFacts& f, Profile profile) {
    CheckResult r;
    r.id = "memory";
    const std::string_view who = profile == Profile::rest_api ? "the REST API needs" : "the broker needs";
    r.required = fmt::format("{} >= 8 GB RAM (broker hardware requirements): installed >= 8 GiB, "
                             "or else MemTotal > 7 GiB ({} KiB)",
                             who, k_min_mem_total_kib_exclusive);
    r.tolerance = "MemTotal may be up to 1 GiB below 8 GiB: the kernel and crashkernel reserve "
                  "150-450 MiB of an 8 GiB VM (MemTotal 7.6-7.85 GiB) and an 8e9-byte \"8 GB\" "
                  "is 7.45 GiB; 7 GiB or less installed can never exceed 7 GiB MemTotal";
    r.evidence = f.mem_source.empty() ? "/proc/meminfo (not found)" : f.mem_source;
    if (!f.installed_mem_source.empty()) r.evidence += "; " + f.installed_mem_source;
    const std::string installed = f.installed_mem_bytes == 0
                                      ? std::string()
                                      : fmt::format(", installed {}", format_gib(f.installed_mem_bytes));
    if (f.installed_mem_bytes >= k_min_installed_mem_bytes) {
        r.measured = f.mem_total_kib == 0
                         ? fmt::format("installed {} (MemTotal unreadable)", format_gib(f.installed_mem_bytes))
                         : fmt::format("{} MemTotal ({} KiB){}", format_gib(f.mem_total_kib * 1024),
                                       f.mem_total_kib, installed);
        return r;
    }
    if (f.mem_total_kib == 0) {
        r.verdict = Verdict::inhibitor;
        r.measured = fmt::format("could not read MemTotal from {}{}", r.evidence, installed);
        r.remediation = "make /proc/meminfo readable (is /proc mounted?)";
        return r;
    }
    r.measured = fmt::format("{} MemTotal ({} KiB){}", format_gib(f.mem_total_kib * 1024), f.mem_total_kib,
                             installed);
    if (f.mem_total_kib <= k_min_mem_total_kib_exclusive) {
        r.verdict = Verdict::inhibitor;
        r.remediation = fmt::format(
            "{} at least 8 GB of RAM; give this machine 8 GB or more (a MemTotal of 7 GiB or "
            "less means less than 8 GB is usable, e.g. a large crashkernel= reservation)",
            who);
    }
    return r;
}

std::string home_where(const MountFacts& m) { return m.mount_point.empty() ? m.path : m.mount_point; }

/// For the checks that read statvfs(3) of the filesystem holding /home/leo: sets the
/// evidence, and when it could not be measured, the inhibitor verdict; false then.
bool home_measured(const HostFacts& f, CheckResult& r) {
    r.evidence = fmt::format("statvfs(3) on {}", f.home.path.empty() ? "/home/leo" : f.home.path);
    if (f.home.total_bytes != 0) return true;
    r.verdict = Verdict::inhibitor;
    r.measured = "could not measure the filesystem (statvfs failed)";
    r.remediation = fmt::format("check that {} is accessible", f.home.path);
    return false;
}

/// "disk": 20 GB of disk (broker hardware requirements) for the filesystem holding
/// /home/leo. Rule: its TOTAL size (statvfs f_blocks * f_frsize) >= 18 GiB. This is
/// about the size of the filesystem, not its free space (free space is "upgrade-space"):
/// a disk sold as 20 GB is 20e9 bytes = 18.6 GiB, and ext4/xfs keep 1-3% of it for
/// metadata, so a 20 GB disk shows 18.1-18.4 GiB total, while a filesystem under
/// 19.33e9 bytes (18 GiB), such as a 15 GB disk (13.6-13.9 GiB), fails. Inhibitor.
CheckResult check_disk(const HostFacts& f, Profile /*profile*/) {
    CheckResult r;
    r.id = "disk";
    r.required = "filesystem holding /home/leo >= 20 GB in size (broker hardware requirements): "
                 "total size >= 18 GiB; size, not free space";
    r.tolerance = "20 GB as sold is 20e9 bytes = 18.6 GiB, less 1-3% filesystem metadata: "
                  "18 GiB is accepted";
    if (!home_measured(f, r)) return r;
    const std::string where = home_where(f.home);
    r.measured = fmt::format("{} total, {} free on {}", format_gib(f.home.total_bytes),
                             format_gib(f.home.available_bytes), where);
    if (!f.home.fstype.empty()) r.measured += fmt::format(" ({})", f.home.fstype);
    if (f.home.total_bytes < k_min_home_total_bytes) {
        r.verdict = Verdict::inhibitor;
        r.remediation = fmt::format("put /home/leo on a filesystem of at least 20 GB (this one "
                                    "on {} is {}); grow the disk or mount a larger one on /home",
                                    where, format_gib(f.home.total_bytes));
    }
    return r;
}

/// "upgrade-space" (upgrade profile): free space on the filesystem holding /home/leo for
/// what the upgrade writes before it changes anything. Rule: available (f_bavail *
/// f_frsize, what a non-root writer gets) >= 2 GiB = the staged broker RPM and metadata
/// (<= 0.5 GiB) + the previous RPM kept for rollback (<= 0.5 GiB) + the config and
/// secrets archive (a few MiB) + the internal database's restore-point dump (1 GiB
/// budget). Inhibitor.
CheckResult check_upgrade_space(const HostFacts& f, Profile /*profile*/) {
    CheckResult r;
    r.id = "upgrade-space";
    r.required = ">= 2 GiB available on the filesystem holding /home/leo: staged RPM and "
                 "metadata 0.5 GiB + previous RPM kept for rollback 0.5 GiB + restore point "
                 "(config archive and database dump) 1 GiB";
    r.tolerance = "none (free space, measured as an unprivileged writer sees it)";
    if (!home_measured(f, r)) return r;
    const std::string where = home_where(f.home);
    r.measured = fmt::format("{} free on {}", format_gib(f.home.available_bytes), where);
    if (f.home.available_bytes < k_min_upgrade_available_bytes) {
        r.verdict = Verdict::inhibitor;
        r.remediation = fmt::format("free at least 2 GiB on {} for the upgrade ({} free): remove "
                                    "old snapshots (snapshot delete) or clean /var/cache/leo-installer",
                                    where, format_gib(f.home.available_bytes));
    }
    return r;
}

bool is_nfs_fstype(const std::string& fstype) {
    return fstype == "nfs" || fstype == "nfs3" || fstype == "nfs4";
}

bool is_nfs(const MountFacts& m) {
    return is_nfs_fstype(m.fstype) || m.statfs_magic == k_nfs_super_magic;
}

bool is_other_network_fs(const MountFacts& m) {
    static constexpr std::array<std::string_view, 11> k_types = {
        "cifs", "smb3", "smbfs", "glusterfs", "fuse.glusterfs", "ceph", "fuse.sshfs", "9p", "afs",
        // An automounter on /home mounts home directories from the network on demand.
        "autofs", "fuse.ceph-fuse"};
    if (std::find(k_types.begin(), k_types.end(), m.fstype) != k_types.end()) return true;
    return m.statfs_magic == k_cifs_magic || m.statfs_magic == k_smb2_magic ||
           m.statfs_magic == k_smb_magic;
}

/// "home-not-nfs": /home/leo cannot be on NFS (DESIGN.md "Paths under the root": the
/// application lives in /home/leo, which cannot move and cannot be on NFS).
/// Rule: the mount holding /home/leo (longest mount-point prefix in mountinfo) is not
/// nfs, nfs3 or nfs4, and statfs(2) f_type is not NFS_SUPER_MAGIC (0x6969).
/// Inhibitor, and it cannot be skipped. Other network filesystems (cifs, smb3, smbfs,
/// glusterfs, ceph, sshfs, 9p, afs, an autofs automount point) are a warning.
/// When mountinfo's type and statfs(2) disagree ("ext4" but 0x6969), `measured` says so.
CheckResult check_home_not_nfs(const HostFacts& f, Profile /*profile*/) {
    CheckResult r;
    r.id = "home-not-nfs";
    r.skippable = false;
    r.required = "/home/leo on a local filesystem, not NFS (nfs, nfs3, nfs4; statfs magic 0x6969), "
                 "also not behind autofs or a bind mount; other network filesystems warn";
    r.tolerance = "none: the documentation says /home/leo cannot be an NFS location";
    const auto& m = f.home;
    const std::string magic = m.statfs_magic == 0 ? std::string("unknown")
                                                  : fmt::format("{:#x}", m.statfs_magic);
    const bool nfs_type = is_nfs_fstype(m.fstype);
    const bool nfs_magic = m.statfs_magic == k_nfs_super_magic;
    if (!m.mount_point.empty()) {
        r.measured = fmt::format("{} mounted on {} from {}", m.fstype, m.mount_point,
                                 m.mount_source.empty() ? "(none)" : m.mount_source);
        // mountinfo and statfs(2) disagree (e.g. the root's copy of mountinfo is stale,
        // or /home/leo is not where mountinfo says): say so rather than only "ext4".
        if (!m.fstype.empty() && !nfs_type && nfs_magic)
            r.measured = fmt::format("{} per mountinfo, but statfs says NFS ({}): mounted on {} from {}",
                                     m.fstype, magic, m.mount_point,
                                     m.mount_source.empty() ? "(none)" : m.mount_source);
        else if (nfs_type && m.statfs_magic != 0 && !nfs_magic)
            r.measured = fmt::format("{} per mountinfo, but statfs says not NFS ({}): mounted on {} from {}",
                                     m.fstype, magic, m.mount_point,
                                     m.mount_source.empty() ? "(none)" : m.mount_source);
        if (!m.mount_root.empty() && m.mount_root != "/")
            r.measured += fmt::format(" (bind mount of {})", m.mount_root);
        r.evidence = fmt::format("{}: mount point {} source {}; statfs(2) f_type {} on {}", m.source,
                                 m.mount_point, m.mount_source.empty() ? "(none)" : m.mount_source,
                                 magic, m.path);
        if (!m.resolved.empty() && m.resolved != m.requested)
            r.evidence += fmt::format("; {} resolves to {}", m.requested, m.resolved);
    } else {
        r.measured = fmt::format("mount unknown, statfs f_type {}", magic);
        r.evidence = fmt::format("{}: no mount found for {}; statfs(2) f_type {} on {}",
                                 m.source.empty() ? "/proc/self/mountinfo (unreadable)" : m.source,
                                 m.path, magic, m.path);
    }
    if (is_nfs(m)) {
        r.verdict = Verdict::inhibitor;
        r.remediation = fmt::format("/home/leo cannot be on NFS: put /home/leo on a local disk "
                                    "(mount a local filesystem on /home/leo or /home)");
        if (!m.fstype.empty() && !nfs_type)
            r.remediation += fmt::format("; statfs(2) on {} reports NFS although mountinfo says {}: "
                                         "check what is mounted there",
                                         m.path.empty() ? "/home/leo" : m.path, m.fstype);
    } else if (is_other_network_fs(m)) {
        r.verdict = Verdict::warning;
        r.remediation = m.fstype == "autofs"
                            ? fmt::format("{} is an automount point: make sure /home/leo is a "
                                          "local directory, not mounted from the network",
                                          m.mount_point)
                            : "/home/leo is on a network filesystem; a local disk is strongly "
                              "recommended";
    } else if (m.mount_point.empty()) {
        // statfs alone says "not NFS", but the mount (autofs? a bind?) is unknown.
        r.verdict = Verdict::warning;
        r.remediation = fmt::format("could not find the mount holding /home/leo ({}); make sure it "
                                    "is not NFS",
                                    m.source.empty() ? "no mountinfo" : m.source);
    }
    return r;
}

/// "home-symlink": /home/leo (or one of its parents) is a symlink. The other checks
/// judge the target (resolved inside the root); this one warns because the broker's
/// location cannot change: moving or removing the link's target breaks the broker.
/// Warning; pass when /home/leo resolves to itself.
CheckResult check_home_symlink(const HostFacts& f, Profile /*profile*/) {
    CheckResult r;
    r.id = "home-symlink";
    r.required = "/home/leo is a real directory (or will be created as one), not a symlink";
    r.tolerance = "a symlink is allowed (its target is judged by disk and home-not-nfs) but warned";
    r.evidence = f.home.resolved.empty()
                     ? fmt::format("{}: could not be resolved", f.home.requested)
                     : fmt::format("symlinks of {} resolved inside the root", f.home.requested);
    if (f.home.resolved.empty() || f.home.resolved == f.home.requested) {
        r.measured = f.home.resolved.empty() ? "unknown" : fmt::format("{} is not a symlink", f.home.requested);
        return r;
    }
    r.verdict = Verdict::warning;
    r.measured = fmt::format("{} -> {}", f.home.requested, f.home.resolved);
    r.remediation = fmt::format("/home/leo cannot move: keep {} in place for the life of the broker, "
                                "or make /home/leo a real directory (or a mount point)",
                                f.home.resolved);
    return r;
}

/// "home-traversable": every directory above /home/leo can be searched by others. The
/// broker's daemons and its internal PostgreSQL run as leo, which owns none of them:
/// /home at mode 0700 (a hardened image) passes every other check, then initdb fails
/// (PostgreSQL: "could not access directory"). Inhibitor.
CheckResult check_home_traversable(const HostFacts& f, Profile /*profile*/) {
    CheckResult r;
    r.id = "home-traversable";
    r.required = "every directory above /home/leo searchable by others (o+x): leo runs the broker and its database";
    r.evidence = f.home.resolved.empty() ? fmt::format("{}: could not be resolved", f.home.requested)
                                         : fmt::format("stat(2) of each directory above {}", f.home.resolved);
    if (f.home.untraversable.empty()) {
        r.measured = f.home.resolved.empty() ? "unknown" : "every directory above it is searchable by others";
        return r;
    }
    r.verdict = Verdict::inhibitor;
    r.measured = fmt::format("user leo cannot traverse {}", f.home.untraversable);
    const auto dir = f.home.untraversable.substr(0, f.home.untraversable.find(" (mode"));
    r.remediation = fmt::format("make it searchable: chmod o+x {}", dir);
    return r;
}

enum : unsigned { k_in_install = 1, k_in_upgrade = 2, k_in_rest_api = 4 };

struct Check {
    std::string_view id;
    std::string_view title;
    bool skippable;
    std::string_view not_skippable_because;
    unsigned profiles;
    CheckResult (*judge)(const HostFacts&, Profile);
};

constexpr unsigned k_host = k_in_install | k_in_upgrade;
constexpr std::array<Check, 9> k_checks = {{
    {"os", "CentOS Linux 7 or RHEL 7", true, "", k_host, check_os},
    {"arch", "x86_64", true, "", k_host, check_arch},
    {"vcpus", ">= 2 usable CPUs", true, "", k_host, check_vcpus},
    {"memory", ">= 8 GB RAM", true, "", k_host | k_in_rest_api, check_memory},
    {"disk", ">= 20 GB filesystem for /home/leo", true, "", k_host, check_disk},
    {"upgrade-space", ">= 2 GiB free for staging and the restore point", true, "", k_in_upgrade,
     check_upgrade_space},
    {"home-not-nfs", "/home/leo is not on NFS", false,
     "/home/leo cannot be on NFS", k_host, check_home_not_nfs},
    {"home-symlink", "/home/leo is not a symlink", true, "", k_host, check_home_symlink},
    {"home-traversable", "leo can reach /home/leo (its parents are o+x)", true, "", k_host, check_home_traversable},
}};

unsigned profile_bit(Profile p) {
    switch (p) {
    case Profile::install: return k_in_install;
    case Profile::upgrade: return k_in_upgrade;
    case Profile::rest_api: return k_in_rest_api;
    }
    return 0;
}

std::string known_ids() {
    std::string out;
    for (const auto& c : k_checks) {
        if (!out.empty()) out += ", ";
        out += c.id;
    }
    return out;
}

std::string pad(const std::string& s, std::size_t width) {
    return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

} // namespace

Profile parse_profile(std::string_view text) {
    if (text == "install") return Profile::install;
    if (text == "upgrade") return Profile::upgrade;
    if (text == "rest-api") return Profile::rest_api;
    throw UsageError(fmt::format("unknown profile '{}' (expected install, upgrade or rest-api)", text));
}

std::string_view to_string(Profile p) {
    switch (p) {
    case Profile::install: return "install";
    case Profile::upgrade: return "upgrade";
    case Profile::rest_api: return "rest-api";
    }
    return "unknown";
}

std::string_view to_string(Verdict v) {
    switch (v) {
    case Verdict::pass: return "pass";
    case Verdict::inhibitor: return "inhibitor";
    case Verdict::warning: return "warning";
    case Verdict::info: return "info";
    case Verdict::skipped: return "skipped";
    }
    return "unknown";
}

bool Report::inhibited() const {
    return std::any_of(results.begin(), results.end(),
                       [](const CheckResult& r) { return r.verdict == Verdict::inhibitor; });
}

std::vector<std::string_view> check_ids() {
    std::vector<std::string_view> ids;
    for (const auto& c : k_checks) ids.push_back(c.id);
    return ids;
}

std::vector<std::string_view> check_ids(Profile profile) {
    std::vector<std::string_view> ids;
    for (const auto& c : k_checks)
        if ((c.profiles & profile_bit(profile)) != 0) ids.push_back(c.id);
    return ids;
}

const std::vector<CheckInfo>& check_catalog() {
    static const std::vector<CheckInfo> catalog = [] {
        std::vector<CheckInfo> out;
        for (const auto& c : k_checks) out.push_back({c.id, c.title, c.skippable, c.not_skippable_because});
        return out;
    }();
    return catalog;
}

std::vector<std::string_view> non_skippable_check_ids() {
    std::vector<std::string_view> ids;
    for (const auto& c : k_checks)
        if (!c.skippable) ids.push_back(c.id);
    return ids;
}

bool all_pass(const Report& report) {
    return std::all_of(report.results.begin(), report.results.end(),
                       [](const CheckResult& r) { return r.verdict == Verdict::pass; });
}

std::string format_gib(std::uint64_t bytes) {
    constexpr std::uint64_t gib = 1ULL << 30;
    const std::uint64_t whole = bytes / gib;
    const std::uint64_t tenth = (bytes % gib) * 10 / gib; // < 10, no overflow: (2^30) * 10 < 2^64
    return fmt::format("{}.{} GiB", whole, tenth);
}

Report run_checks(const HostFacts& facts, Profile profile,
                  const std::map<std::string, std::string>& skips) {
    // Validate every skip before judging anything.
    for (const auto& [id, reason] : skips) {
        // an init-capture: clang 14 cannot capture a structured binding
        const auto it = std::find_if(k_checks.begin(), k_checks.end(),
                                     [&wanted = id](const Check& c) { return c.id == wanted; });
        if (it == k_checks.end())
            throw UsageError(fmt::format("unknown check id '{}' in --skip (known: {})", id, known_ids()));
        if (!it->skippable)
            throw UsageError(fmt::format("check '{}' cannot be skipped: {}", id, it->not_skippable_because));
        if (reason.empty())
            throw UsageError(fmt::format("--skip {} needs a --reason (it is recorded in the report)", id));
    }

    Report report;
    report.profile = profile;
    for (const auto& c : k_checks) {
        if ((c.profiles & profile_bit(profile)) == 0) continue;
        CheckResult r = c.judge(facts, profile);
        r.skippable = c.skippable;
        r.judged = r.verdict;
        if (const auto it = skips.find(std::string(c.id)); it != skips.end()) {
            r.verdict = Verdict::skipped;
            r.skip_reason = it->second;
        }
        report.results.push_back(std::move(r));
    }
    return report;
}

nlohmann::json to_json(const Report& report) {
    nlohmann::json results = nlohmann::json::array();
    nlohmann::json counts = {{"pass", 0}, {"inhibitor", 0}, {"warning", 0}, {"info", 0}, {"skipped", 0}};
    for (const auto& r : report.results) {  // texts come from the host's files and --reason: valid_utf8
        counts[std::string(to_string(r.verdict))] = counts[std::string(to_string(r.verdict))].get<int>() + 1;
        results.push_back({
            {"id", r.id},
            {"verdict", to_string(r.verdict)},
            {"judged", to_string(r.judged)},
            {"measured", valid_utf8(r.measured)},
            {"evidence", valid_utf8(r.evidence)},
            {"required", valid_utf8(r.required)},
            {"tolerance", valid_utf8(r.tolerance)},
            {"remediation", valid_utf8(r.remediation)},
            {"skippable", r.skippable},
            {"skip_reason", valid_utf8(r.skip_reason)},
        });
    }
    return {
        {"profile", to_string(report.profile)},
        {"inhibited", report.inhibited()},
        {"counts", std::move(counts)},
        {"results", std::move(results)},
    };
}

namespace {

/// `text` wrapped into lines of at most `width` characters, at spaces where possible.
std::vector<std::string> wrap(const std::string& text, std::size_t width) {
    std::vector<std::string> lines;
    std::string line;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto begin = text.find_first_not_of(' ', pos);
        if (begin == std::string::npos) break;
        auto end = text.find(' ', begin);
        if (end == std::string::npos) end = text.size();
        std::string word = text.substr(begin, end - begin);
        pos = end;
        while (!word.empty()) {
            const std::size_t need = line.empty() ? word.size() : line.size() + 1 + word.size();
            if (need <= width) {
                line += (line.empty() ? "" : " ") + word;
                word.clear();
            } else if (!line.empty()) {
                lines.push_back(std::move(line));
                line.clear();
            } else { // a word longer than the line: break it
                lines.push_back(word.substr(0, width));
                word.erase(0, width);
            }
        }
    }
    if (!line.empty()) lines.push_back(std::move(line));
    if (lines.empty()) lines.emplace_back();
    return lines;
}

} // namespace

std::string to_table(const Report& report, const TableOptions& options) {
    const std::size_t width = std::max<std::size_t>(options.width, 60);
    std::size_t w_id = 2;
    for (const auto& r : report.results) w_id = std::max(w_id, r.id.size());
    w_id += 2;
    const std::size_t w_verdict = std::string_view("inhibitor").size() + 2;
    const std::size_t rest = width - w_id - w_verdict;
    const std::size_t w_measured = rest * 9 / 20; // 45% measured, the rest required
    const std::size_t w_required = rest - w_measured - 2;
    const std::string indent(w_id, ' ');

    const auto row = [&](const std::string& id, std::string_view verdict, const std::string& measured,
                         const std::string& required) {
        const auto m = wrap(measured, w_measured);
        const auto q = wrap(required, w_required);
        std::string out;
        for (std::size_t i = 0; i < std::max(m.size(), q.size()); ++i) {
            std::string line = pad(i == 0 ? id : "", w_id) + pad(i == 0 ? std::string(verdict) : "", w_verdict) +
                               (q.size() > i ? pad(m.size() > i ? m[i] : "", w_measured + 2) + q[i]
                                             : (m.size() > i ? m[i] : ""));
            while (!line.empty() && line.back() == ' ') line.pop_back();
            out += line + "\n";
        }
        return out;
    };
    const auto detail = [&](std::string_view label, const std::string& text) {
        std::string out;
        const std::string head = std::string(label) + " ";
        const std::string hang(head.size(), ' ');
        bool first = true;
        for (const auto& l : wrap(text, width - w_id - head.size())) {
            out += indent + (first ? head : hang) + l + "\n";
            first = false;
        }
        return out;
    };

    std::string out = row("ID", "VERDICT", "MEASURED", "REQUIRED");
    std::vector<std::string> passed;
    for (const auto& r : report.results) {
        if (options.rows == TableOptions::Rows::problems && r.verdict == Verdict::pass) {
            passed.push_back(r.id);
            continue;
        }
        out += row(r.id, to_string(r.verdict), r.measured, r.required);
        if (!r.evidence.empty()) out += detail("from:", r.evidence);
        if (options.rows == TableOptions::Rows::all && !r.tolerance.empty())
            out += detail("tolerance:", r.tolerance);
        if (r.verdict == Verdict::skipped)
            out += detail("skipped:", fmt::format("{} (would have been: {})", r.skip_reason, to_string(r.judged)));
        if (r.verdict != Verdict::pass && !r.remediation.empty()) out += detail("fix:", r.remediation);
    }
    if (!passed.empty()) {
        std::string names;
        for (const auto& p : passed) names += (names.empty() ? "" : ", ") + p;
        for (const auto& l : wrap(fmt::format("passed: {}", names), width)) out += l + "\n";
    }
    return out;
}

std::string inhibitor_summary(const Report& report) {
    std::string out;
    for (const auto& r : report.results)
        if (r.verdict == Verdict::inhibitor) out += (out.empty() ? "" : ", ") + r.id + " (" + r.measured + ")";
    return out;
}

std::string summary_line(const Report& report) {
    std::size_t passed = 0, warnings = 0, inhibitors = 0, infos = 0, skipped = 0;
    std::string failed;
    for (const auto& r : report.results) {
        switch (r.verdict) {
        case Verdict::pass: ++passed; break;
        case Verdict::warning: ++warnings; break;
        case Verdict::inhibitor: ++inhibitors; break;
        case Verdict::info: ++infos; break;
        case Verdict::skipped: ++skipped; break;
        }
        if (r.verdict == Verdict::inhibitor || r.verdict == Verdict::warning)
            failed += (failed.empty() ? "" : ", ") + r.id;
    }
    auto n = [](std::size_t count, const char* one, const char* many) {
        return fmt::format("{} {}", count, count == 1 ? one : many);
    };
    std::string out = fmt::format("preflight ({} profile): {} passed, {}, {}", to_string(report.profile), passed,
                                  n(warnings, "warning", "warnings"), n(inhibitors, "inhibitor", "inhibitors"));
    if (infos > 0) out += fmt::format(", {} info", infos);
    if (skipped > 0) out += fmt::format(", {} skipped", skipped);
    out += inhibitors > 0 ? ": refused" : ": passed";
    if (!failed.empty()) out += fmt::format(" (not passed: {})", failed);
    return out;
}

} // namespace leo::preflight
