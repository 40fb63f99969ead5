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
    return name.empty() ? ids : fmt::format("{} ({})", name, ids);
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
/// exactly "centos" or "rhel" and the major part of VERSION_ID is 7 ("7", "7.9").
/// ID_LIKE is not identity: Rocky Linux 8 (ID_LIKE "rhel centos fedora") is refused,
/// and so are CentOS 8 and CentOS Stream 9 (ID "centos", VERSION_ID 8 / 9).
/// Inhibitor otherwise, and when no os-release (nor redhat-release) could be read.
CheckResult check_os(const HostFacts& f, Profile /*profile*/) {
    CheckResult r;
    r.id = "os";
    r.required = fmt::format("{} (os-release ID centos or rhel, VERSION_ID 7.x; "
                             "ID_LIKE does not count; the broker RPM targets EL7)",
                             k_supported_os);
    r.evidence = f.os.source;
    if (!f.os.error.empty()) {
        // Why nothing could be read: missing, a directory, permission denied, a symlink
        // loop... ("could not read /r/etc/os-release: Permission denied").
        r.verdict = Verdict::inhibitor;
        r.measured = fmt::format("could not read {}", f.os.error);
        if (r.evidence.empty()) r.evidence = f.os.error;
        r.remediation = fmt::format("install on {}; the OS could not be identified", k_supported_os);
        return r;
    }
    if (f.os.source.empty()) {
        // A facts file from before OsFacts::error: no reason recorded.
        r.verdict = Verdict::inhibitor;
        r.measured = "could not read /etc/os-release";
        r.evidence = "/etc/os-release, /usr/lib/os-release, /etc/redhat-release: none found";
        r.remediation = fmt::format("install on {}; the OS could not be identified", k_supported_os);
        return r;
    }
    if (f.os.id.empty()) {
        // The file was read: it just does not say which OS this is.
        const std::string_view src = f.os.source;
        const bool redhat = src.size() >= 14 && src.substr(src.size() - 14) == "redhat-release";
        r.verdict = Verdict::inhibitor;
        r.measured = redhat ? fmt::format("{} names no known release", f.os.source)
                            : fmt::format("{} has no ID=", f.os.source);
        r.remediation = fmt::format("install on {}; the OS could not be identified", k_supported_os);
        return r;
    }
    r.measured = os_display(f.os);
    const bool known_id = f.os.id == "centos" || f.os.id == "rhel";
    const std::string major = f.os.version_id.substr(0, f.os.version_id.find('.'));
    if (known_id && major == "7") return r;

    r.verdict = Verdict::inhibitor;
    if (known_id) {
        r.remediation = fmt::format("version {} is not supported; install on {}",
                                    f.os.version_id.empty() ? "(unknown)" : f.os.version_id,
                                    k_supported_os);
    } else if (id_like_contains(f.os.id_like, "rhel") || id_like_contains(f.os.id_like, "centos")) {
        r.remediation = fmt::format("'{}' is only like RHEL/CentOS (ID_LIKE), which is not "
                                    "supported; install on {}",
                                    f.os.id, k_supported_os);
    } else {
        r.remediation = fmt::format("'{}' is not supported; install on {}", f.os.id, k_supported_os);
    }
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

/// "vcpus": at least 2 CPUs (broker hardware requirements). Rule: CPUs in this process's
/// sched_getaffinity(2) mask >= 2 (what the broker can actually run on, so a cpuset or
/// taskset limit counts). Inhibitor when fewer.
CheckResult check_vcpus(const HostFacts& f, Profile /*profile*/) {
    CheckResult r;
    r.id = "vcpus";
    r.required = ">= 2 CPUs (broker hardware requirements), counted in the sched_getaffinity mask";
    r.evidence = f.vcpus_source;
    r.measured = f.vcpus == 0 ? "could not count the CPUs" : fmt::format("{} CPUs", f.vcpus);
    if (f.vcpus < 2) {
        r.verdict = Verdict::inhibitor;
        r.remediation = "give this machine at least 2 vCPUs (and no cpuset/taskset limit below 2)";
    }
    return r;
}

/// "memory": 8 GB of RAM (broker hardware requirements; the REST API needs the same 8 GB).
/// Rule: MemTotal > 7 GiB (7340032 KiB).
/// Why not ">= 8 GiB": the kernel reports MemTotal below the installed RAM (kernel image,
/// page tables, the crashkernel reservation, firmware-reserved ranges: typically
/// 150-450 MiB on an 8 GiB VM), so an 8 GiB machine reports about 7.5-7.85 GiB and an
/// "8 GB" = 8e9-byte machine (7.45 GiB) about 7.1-7.3 GiB. A machine with 7 GiB or less
/// installed can never report more than 7 GiB, so the rule accepts every 8 GB machine
/// and refuses every machine of 7 GiB or less. Inhibitor otherwise.
/// (A later issue refines this with the DMI installed-memory size.)
CheckResult check_memory(const HostFacts& f, Profile profile) {
    CheckResult r;
    r.id = "memory";
    const std::string_view who = profile == Profile::rest_api ? "the REST API needs" : "the broker needs";
    r.required = fmt::format("{} >= 8 GB RAM (broker hardware requirements): MemTotal > 7 GiB "
                             "({} KiB), as the kernel reports 150-450 MiB less than installed",
                             who, k_min_mem_total_kib_exclusive);
    r.evidence = f.mem_source.empty() ? "/proc/meminfo" : f.mem_source;
    if (f.mem_total_kib == 0) {
        r.verdict = Verdict::inhibitor;
        r.measured = "could not read MemTotal";
        r.remediation = "make /proc/meminfo readable (is /proc mounted?)";
        return r;
    }
    r.measured = fmt::format("{} MemTotal ({} KiB)", format_gib(f.mem_total_kib * 1024), f.mem_total_kib);
    if (f.mem_total_kib <= k_min_mem_total_kib_exclusive) {
        r.verdict = Verdict::inhibitor;
        r.remediation = fmt::format(
            "{} at least 8 GB of RAM; give this machine 8 GB or more (a MemTotal of 7 GiB or "
            "less means less than 8 GB is usable, e.g. a large crashkernel= reservation)",
            profile == Profile::rest_api ? "the REST API needs" : "the broker needs");
    }
    return r;
}

/// "disk": 20 GB of disk (broker hardware requirements) for the filesystem holding
/// /home/leo. Rule: its TOTAL size (statvfs f_blocks * f_frsize) >= 18 GiB. This is
/// about the size of the filesystem, not its free space: a disk sold as 20 GB is 20e9
/// bytes = 18.6 GiB, and ext4/xfs keep 1-3% of it for metadata, so a 20 GB disk shows
/// 18.1-18.4 GiB total, while a filesystem under 19.33e9 bytes (18 GiB) fails.
/// Profile upgrade also needs >= 2 GiB available (f_bavail * f_frsize) for the staged
/// packages and the restore point (a later issue refines this from the actual sizes).
/// Inhibitor when failing.
CheckResult check_disk(const HostFacts& f, Profile profile) {
    CheckResult r;
    r.id = "disk";
    r.required = "filesystem holding /home/leo >= 20 GB in size (broker hardware requirements): "
                 "total size >= 18 GiB (20e9 bytes = 18.6 GiB less 1-3% filesystem overhead); "
                 "size, not free space";
    if (profile == Profile::upgrade)
        r.required += "; upgrade: also >= 2 GiB available for staging and the restore point";
    r.evidence = fmt::format("statvfs(3) on {}", f.home.path.empty() ? "/home/leo" : f.home.path);
    if (f.home.total_bytes == 0) {
        r.verdict = Verdict::inhibitor;
        r.measured = "could not measure the filesystem (statvfs failed)";
        r.remediation = fmt::format("check that {} is accessible", f.home.path);
        return r;
    }
    const std::string where = f.home.mount_point.empty() ? f.home.path : f.home.mount_point;
    r.measured = fmt::format("{} total, {} free on {}", format_gib(f.home.total_bytes),
                             format_gib(f.home.available_bytes), where);
    if (!f.home.fstype.empty()) r.measured += fmt::format(" ({})", f.home.fstype);

    std::vector<std::string> fixes;
    if (f.home.total_bytes < k_min_home_total_bytes)
        fixes.push_back(fmt::format("put /home/leo on a filesystem of at least 20 GB (this one "
                                    "on {} is {}); grow the disk or mount a larger one on /home",
                                    where, format_gib(f.home.total_bytes)));
    if (profile == Profile::upgrade && f.home.available_bytes < k_min_upgrade_available_bytes)
        fixes.push_back(fmt::format("free at least 2 GiB on {} for the upgrade ({} free)", where,
                                    format_gib(f.home.available_bytes)));
    if (!fixes.empty()) {
        r.verdict = Verdict::inhibitor;
        r.remediation = fixes.front();
        for (std::size_t i = 1; i < fixes.size(); ++i) r.remediation += "; " + fixes[i];
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
    r.required = "/home/leo on a local filesystem, not NFS (nfs, nfs3, nfs4; statfs magic 0x6969); "
                 "other network filesystems warn";
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
        r.evidence = fmt::format("{}: mount point {} source {}; statfs(2) f_type {} on {}", m.source,
                                 m.mount_point, m.mount_source.empty() ? "(none)" : m.mount_source,
                                 magic, m.path);
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
    } else if (m.mount_point.empty() && m.statfs_magic == 0) {
        r.verdict = Verdict::warning;
        r.remediation = "could not determine the filesystem of /home/leo; make sure it is not NFS";
    }
    return r;
}

struct Check {
    std::string_view id;
    bool skippable;
    CheckResult (*judge)(const HostFacts&, Profile);
};

constexpr std::array<Check, 6> k_checks = {{
    {"os", true, check_os},
    {"arch", true, check_arch},
    {"vcpus", true, check_vcpus},
    {"memory", true, check_memory},
    {"disk", true, check_disk},
    {"home-not-nfs", false, check_home_not_nfs},
}};

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
        const auto it = std::find_if(k_checks.begin(), k_checks.end(),
                                     [&](const Check& c) { return c.id == id; });
        if (it == k_checks.end())
            throw UsageError(fmt::format("unknown check id '{}' in --skip (known: {})", id, known_ids()));
        if (!it->skippable)
            throw UsageError(fmt::format("check '{}' cannot be skipped: /home/leo cannot be on NFS", id));
        if (reason.empty())
            throw UsageError(fmt::format("--skip {} needs a --reason (it is recorded in the report)", id));
    }

    Report report;
    report.profile = profile;
    for (const auto& c : k_checks) {
        CheckResult r = c.judge(facts, profile);
        r.skippable = c.skippable;
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
    for (const auto& r : report.results) {
        results.push_back({
            {"id", r.id},
            {"verdict", to_string(r.verdict)},
            {"measured", r.measured},
            {"evidence", r.evidence},
            {"required", r.required},
            {"remediation", r.remediation},
            {"skippable", r.skippable},
            {"skip_reason", r.skip_reason},
        });
    }
    return {
        {"profile", to_string(report.profile)},
        {"inhibited", report.inhibited()},
        {"results", std::move(results)},
    };
}

std::string to_table(const Report& report) {
    std::size_t w_id = 2, w_verdict = 7, w_measured = 8;
    for (const auto& r : report.results) {
        w_id = std::max(w_id, r.id.size());
        w_verdict = std::max(w_verdict, to_string(r.verdict).size());
        w_measured = std::max(w_measured, r.measured.size());
    }
    const auto row = [&](const std::string& id, std::string_view verdict, const std::string& measured,
                         const std::string& required) {
        return pad(id, w_id + 2) + pad(std::string(verdict), w_verdict + 2) +
               pad(measured, w_measured + 2) + required + "\n";
    };
    std::string out = row("ID", "VERDICT", "MEASURED", "REQUIRED");
    const std::string indent(w_id + 2, ' ');
    for (const auto& r : report.results) {
        out += row(r.id, to_string(r.verdict), r.measured, r.required);
        if (r.verdict == Verdict::skipped)
            out += indent + "skipped: " + r.skip_reason + "\n";
        else if (r.verdict != Verdict::pass && !r.remediation.empty())
            out += indent + "-> " + r.remediation + "\n";
    }
    return out;
}

} // namespace leo::preflight
