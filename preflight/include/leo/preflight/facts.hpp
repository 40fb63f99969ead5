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
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace leo::preflight {

/// Version of the facts JSON format; `from_json` refuses any other.
inline constexpr int k_facts_format_version = 1;

struct OsFacts {
    std::string id;          ///< os-release ID, e.g. "centos", "rhel" ("" when unknown)
    std::string version_id;  ///< os-release VERSION_ID, e.g. "7"
    std::string id_like;     ///< os-release ID_LIKE (informational: not identity)
    std::string name;        ///< os-release NAME, e.g. "CentOS Linux"
    std::string pretty_name; ///< os-release PRETTY_NAME
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
};

struct HostFacts {
    OsFacts os;
    std::string arch;               ///< uname(2) machine, e.g. "x86_64"
    unsigned vcpus = 0;             ///< CPUs in the sched affinity mask
    std::string vcpus_source;       ///< e.g. "sched_getaffinity"
    std::uint64_t mem_total_kib = 0; ///< MemTotal from meminfo, KiB
    std::string mem_source;         ///< meminfo file read; "FILE (reason)" when it could not be read
    MountFacts home;                ///< facts for /home/leo
};

/// Gather facts for `root` ("/" for the live system). Never throws for a missing
/// file: the fact stays empty and its check reports that it could not be read.
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
};

/// Parse mountinfo text in file order; malformed lines are skipped.
[[nodiscard]] std::vector<MountEntry> parse_mountinfo(const std::string& text);

/// The entry whose mount point is the longest component-wise prefix of `path` (absolute;
/// "/home" is a prefix of "/home/leo", not of "/homer"). Among entries with the same
/// mount point the last one wins (it is mounted on top). nullopt when none matches.
[[nodiscard]] std::optional<MountEntry> find_mount(const std::vector<MountEntry>& entries,
                                                   const std::string& path);

/// Serialise with "format_version".
[[nodiscard]] nlohmann::json to_json(const HostFacts& facts);
/// Parse a saved `facts --json` output. Throws leo::PreflightError naming the problem
/// (not JSON, wrong format_version, a missing or mistyped field).
[[nodiscard]] HostFacts facts_from_json(const nlohmann::json& json);
/// Read and parse a saved `facts --json` file (`--facts FILE`). Throws leo::PreflightError
/// naming the file (unreadable, not JSON), with facts_from_json's error nested.
[[nodiscard]] HostFacts read_facts_file(const std::filesystem::path& file);

} // namespace leo::preflight
