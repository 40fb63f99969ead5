#pragma once
/// Host facts that preflight judges (DESIGN.md "Where it runs", issue "facts").
///
/// File-based facts (os-release, meminfo, mountinfo) for a root other than "/" are read
/// only from inside the root: symlinks are resolved as if the root were "/" (an absolute
/// target is relative to the root, ".." stops at the root, a loop or more than 40 hops
/// makes the fact unreadable). A file that exists in the root but cannot be resolved or
/// read is never replaced by another file: the fact stays empty and `source` records the
/// reason, e.g. "/r/etc/os-release (symlink loop)". Only when the root has no such file
/// at all does the documented fallback apply: os-release -> ROOT/usr/lib/os-release ->
/// ROOT/etc/redhat-release (never the live files); meminfo and mountinfo -> the live /proc.
/// Measured facts (statvfs, statfs, sched affinity, uname) always come from the live
/// system. Every fact records where it was read (`source`), so the report can show its
/// evidence.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace leo::preflight {

/// Version of the facts JSON format written by `to_json`. `facts_from_json` reads this
/// version and version 1 (written before the CPU quota, cpuinfo, installed-memory and
/// symlink facts existed: they read as "unknown"), and refuses any other.
/// Version 2 added: os.variant_id, cpu_quota_millicpus, cpu_quota_source, cpuinfo_cpus,
/// cpuinfo_source, installed_mem_bytes, installed_mem_source, home.mount_root,
/// home.requested, home.resolved.
inline constexpr int k_facts_format_version = 2;

struct OsFacts {
    std::string id;          ///< os-release ID, e.g. "centos", "rhel" ("" when unknown)
    std::string version_id;  ///< os-release VERSION_ID, e.g. "7"
    std::string id_like;     ///< os-release ID_LIKE (informational: not identity)
    std::string name;        ///< os-release NAME, e.g. "CentOS Linux"
    std::string pretty_name; ///< os-release PRETTY_NAME
    std::string variant_id;  ///< os-release VARIANT_ID, e.g. "server", "workstation" ("" when absent)
    std::string source;      ///< file it was read from, e.g. "/r/etc/os-release"; "" when none was
                             ///< found; "FILE (reason)" when FILE exists but could not be read
    std::string error;       ///< why no file could be read, "" when one was: e.g.
                             ///< "/r/etc/os-release: Permission denied", "/r/etc/os-release: is a
                             ///< directory", "/r/etc/os-release: symlink loop", "/r/etc/os-release:
                             ///< missing (so are /r/usr/lib/os-release and /r/etc/redhat-release)"
};

struct MountFacts {
    std::string path;         ///< the path judged (/home/leo or its nearest existing ancestor), live path
    std::string mount_point;  ///< mount point holding it, from mountinfo ("" when unknown)
    std::string fstype;       ///< filesystem type from mountinfo, e.g. "xfs", "nfs4"
    std::string mount_source; ///< the mount's source, e.g. "server:/export"
    std::uint64_t statfs_magic = 0; ///< f_type from statfs(2) on `path`
    std::uint64_t total_bytes = 0;  ///< f_blocks * f_frsize from statvfs(3)
    std::uint64_t available_bytes = 0; ///< f_bavail * f_frsize
    std::string source;       ///< mountinfo file read; "FILE (reason)" when it could not be read
    std::string mount_root;   ///< mountinfo field 4: the directory of the filesystem mounted there
                              ///< ("/" normally; "/exports/home" for a bind mount of a subtree)
    std::string requested = "/home/leo"; ///< the location the broker needs
    std::string resolved;     ///< `requested` with every symlink resolved, as seen inside the root
                              ///< (e.g. "/data/leo" when /home/leo -> /data/leo); "" when unknown
    /// The first directory above `resolved`, up to the root itself, that others cannot
    /// search, with its mode: "/home (mode 0700)"; "" when every one can (or unknown). The
    /// broker and its internal database run as leo, which must traverse them.
    std::string untraversable;
};

struct HostFacts {
    OsFacts os;
    std::string arch;               ///< uname(2) machine, e.g. "x86_64"
    unsigned vcpus = 0;             ///< CPUs in the sched affinity mask (what `nproc` counts)
    std::string vcpus_source;       ///< e.g. "sched_getaffinity"
    /// The cgroup CPU bandwidth limit in thousandths of a CPU (quota / period * 1000, the
    /// smallest over the process's cgroup and its ancestors); 0 when there is none.
    /// cgroup v2 "cpu.max" ("150000 100000" -> 1500), v1 "cpu.cfs_quota_us" / "cpu.cfs_period_us".
    std::uint64_t cpu_quota_millicpus = 0;
    /// The file the limit was read from ("/sys/fs/cgroup/cpu.max: 150000 100000"), what was
    /// looked at when there is none ("/sys/fs/cgroup/cpu.max: max 100000", "no cgroup CPU
    /// controller found"), or "FILE (reason)" when a file could not be read or parsed.
    std::string cpu_quota_source;
    /// "" normally; "FILE: reason" when a cgroup file was present but unreadable or malformed.
    std::string cpu_quota_error;
    unsigned cpuinfo_cpus = 0;      ///< "processor" entries in cpuinfo (evidence only: ignores limits)
    std::string cpuinfo_source;     ///< cpuinfo file read; "FILE (reason)" when it could not be read
    std::uint64_t mem_total_kib = 0; ///< MemTotal from meminfo, KiB
    std::string mem_source;         ///< meminfo file read; "FILE (reason)" when it could not be read
    /// Installed memory in bytes, 0 when unknown: the online memory blocks of
    /// /sys/devices/system/memory (block_size_bytes * blocks whose "online" is 1). Memory
    /// blocks cover the RAM the firmware handed to the kernel, including what the kernel
    /// and the crashkernel reserve, in blocks of 128 MiB or more, so an 8 GiB VM reads
    /// 8 GiB there while MemTotal reads about 7.6-7.8 GiB. Read from the same place as
    /// meminfo (the root's /sys when meminfo came from the root, otherwise the live /sys).
    std::uint64_t installed_mem_bytes = 0;
    std::string installed_mem_source; ///< e.g. "/sys/devices/system/memory (64 online blocks of 128 MiB)"
    MountFacts home;                ///< facts for /home/leo
};

/// Usable CPUs in thousandths: the affinity count, capped by the cgroup quota
/// (`vcpus` 4 and a quota of 1.5 CPUs -> 1500). 0 when the CPUs could not be counted.
[[nodiscard]] std::uint64_t usable_millicpus(const HostFacts& facts);

/// Parse cgroup v2 "cpu.max" text ("max 100000" -> 0 = no limit, "150000 100000" -> 1500).
/// nullopt when malformed.
[[nodiscard]] std::optional<std::uint64_t> parse_cpu_max(const std::string& text);

/// Parse cgroup v1 "cpu.cfs_quota_us" and "cpu.cfs_period_us" texts ("150000", "100000" ->
/// 1500; quota "-1" -> 0 = no limit). nullopt when malformed (not numbers, period 0).
[[nodiscard]] std::optional<std::uint64_t> parse_cfs_quota(const std::string& quota_text,
                                                           const std::string& period_text);

/// The process's cgroups, from /proc/self/cgroup text ("ID:CONTROLLERS:PATH" lines).
struct CgroupPaths {
    std::string v1_cpu = "/"; ///< path of the v1 hierarchy holding the "cpu" controller
    std::string v2 = "/";     ///< path in the v2 unified hierarchy ("0::PATH")
};

/// Parse /proc/self/cgroup text; lines without two colons are skipped, absent paths are "/".
[[nodiscard]] CgroupPaths parse_proc_cgroup(const std::string& text);

/// Count "processor" lines of /proc/cpuinfo text.
[[nodiscard]] unsigned parse_cpuinfo_count(const std::string& text);

/// Gather facts for `root` ("/" for the live system). Never throws for a missing
/// file: the fact stays empty and its check reports that it could not be read; a file
/// that is present but unreadable or malformed is named in the fact's source as
/// "FILE (reason)", e.g. "/r/proc/meminfo (no MemTotal line)".
/// On the live system the automounter is triggered first for /home/leo and its nearest
/// existing ancestor (stat and opendir), so an autofs map shows its real mount.
[[nodiscard]] HostFacts gather_facts(const std::filesystem::path& root);

/// Parse os-release text ("KEY=value" lines, values optionally quoted, shell escapes).
[[nodiscard]] OsFacts parse_os_release(const std::string& text);

/// Parse /etc/redhat-release text, the fallback when there is no os-release:
/// "CentOS Linux release 7.9.2009 (Core)" -> id "centos", version_id "7.9";
/// "Red Hat Enterprise Linux Server release 7.9 (Maipo)" -> id "rhel", version_id "7.9".
/// `name` and `pretty_name` are filled from the text; `source` is left empty.
[[nodiscard]] OsFacts parse_redhat_release(const std::string& text);

/// MemTotal in KiB from /proc/meminfo text; nullopt when absent or malformed.
[[nodiscard]] std::optional<std::uint64_t> parse_meminfo_total_kib(const std::string& text);

/// One line of /proc/self/mountinfo (proc(5)), octal escapes (\040 ...) decoded.
struct MountEntry {
    std::string mount_point; ///< field 5, e.g. "/home"
    std::string fstype;      ///< first field after "-", e.g. "nfs4"
    std::string source;      ///< second field after "-", e.g. "server:/export"
    std::string root;        ///< field 4: the directory mounted ("/", or a subtree for a bind mount)
};

/// Parse mountinfo text in file order; malformed lines are skipped.
[[nodiscard]] std::vector<MountEntry> parse_mountinfo(const std::string& text);

/// The entry whose mount point is the longest component-wise prefix of `path` (absolute;
/// "/home" is a prefix of "/home/leo", not of "/homer"). Among entries with the same
/// mount point the last one wins (it is mounted on top). nullopt when none matches.
[[nodiscard]] std::optional<MountEntry> find_mount(const std::vector<MountEntry>& entries,
                                                   const std::string& path);

/// `text` with every byte sequence that is not UTF-8 replaced by U+FFFD (one for each
/// longest invalid prefix): what a JSON string can hold. Facts read from files may be
/// any bytes (a Latin-1 os-release), and nlohmann::json's dump() throws on them.
[[nodiscard]] std::string valid_utf8(std::string_view text);

/// Serialise with "format_version"; every text passes through valid_utf8().
[[nodiscard]] nlohmann::json to_json(const HostFacts& facts);
/// Parse a saved `facts --json` output. Throws leo::PreflightError naming the problem
/// (not JSON, wrong format_version, a missing or mistyped field).
[[nodiscard]] HostFacts facts_from_json(const nlohmann::json& json);
/// Read and parse a saved `facts --json` file (`--facts FILE`). Throws leo::PreflightError
/// naming the file (unreadable, not JSON), with facts_from_json's error nested.
[[nodiscard]] HostFacts read_facts_file(const std::filesystem::path& file);
/// Parse the text of a saved `facts --json` file (what read_facts_file runs on the file's
/// content); `file` names it in errors. Throws leo::PreflightError as read_facts_file does.
[[nodiscard]] HostFacts parse_facts_text(const std::string& text, const std::string& file);

} // namespace leo::preflight
