#include "leo/preflight/facts.hpp"
#include "text.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <limits>
#include <string_view>
#include <system_error>

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

namespace leo::preflight {
namespace stdfs = std::filesystem;
using nlohmann::json;
using namespace text_detail;

namespace {

bool is_live(const stdfs::path& root) { return root.empty() || root == "/"; }

/// Most symlinks followed while resolving one path, as the kernel's MAXSYMLINKS.
constexpr int k_max_symlink_hops = 40;

/// `path` resolved inside `root` as if `root` were "/": every component's symlink is
/// followed with an absolute target taken relative to the root and ".." stopping at the
/// root, so the result never leaves the root.
struct InRoot {
    stdfs::path file;      ///< the resolved host path (valid when `error` is empty)
    stdfs::path existing;  ///< deepest existing directory reached (host path, inside the root)
    std::string in_root;   ///< the resolved path as seen inside the root ("/etc/os-release")
    bool missing = false;  ///< no such file (a component does not exist): fallbacks may apply
    std::string error;     ///< "" when resolved; "missing", "symlink loop", strerror text...
    std::vector<std::string> rest; ///< components after the missing one, not looked at
};

stdfs::path join(const stdfs::path& root, const std::vector<std::string>& parts) {
    stdfs::path p = root;
    for (const auto& c : parts) p /= c;
    return p;
}

std::string inside_path(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& c : parts) out += "/" + c;
    return out.empty() ? "/" : out;
}

InRoot resolve_in_root(const stdfs::path& root, const stdfs::path& path) {
    InRoot r;
    std::vector<std::string> done;
    std::deque<std::string> todo;
    const std::string path_text = path.string(); // components() returns views into it
    for (auto c : components(path_text)) todo.emplace_back(c);
    int hops = 0;
    const auto finish = [&] {
        r.in_root = inside_path(done);
        if (r.existing.empty()) r.existing = join(root, done);
        return r;
    };
    while (!todo.empty()) {
        const std::string c = std::move(todo.front());
        todo.pop_front();
        if (c == ".") continue;
        if (c == "..") {
            if (!done.empty()) done.pop_back(); // ".." at the root is the root
            continue;
        }
        const stdfs::path host = join(root, done) / c;
        struct stat st {};
        if (::lstat(host.c_str(), &st) != 0) {
            const int err = errno;
            r.existing = join(root, done);
            r.missing = err == ENOENT || err == ENOTDIR;
            r.error = r.missing ? "missing" : std::strerror(err);
            done.push_back(c);
            r.rest.assign(todo.begin(), todo.end());
            return finish();
        }
        if (S_ISLNK(st.st_mode)) {
            if (++hops > k_max_symlink_hops) {
                r.existing = join(root, done);
                r.error = "symlink loop";
                done.push_back(c);
                return finish();
            }
            std::error_code ec;
            const auto target = stdfs::read_symlink(host, ec);
            if (ec) {
                r.existing = join(root, done);
                r.error = ec.message();
                done.push_back(c);
                return finish();
            }
            if (target.is_absolute()) done.clear();
            const std::string target_text = target.string();
            const auto parts = components(target_text);
            for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.emplace_front(*it);
            continue;
        }
        done.push_back(c);
        if (!todo.empty() && !S_ISDIR(st.st_mode)) {
            // "ROOT/etc" is a file: there is no ROOT/etc/os-release.
            done.pop_back();
            r.existing = join(root, done);
            r.missing = true;
            r.error = "missing";
            done.push_back(c);
            r.rest.assign(todo.begin(), todo.end());
            return finish();
        }
    }
    r.file = join(root, done);
    return finish();
}

/// A file-based fact's file, read from inside the root.
struct FileRead {
    std::optional<std::string> text; ///< content when read
    bool missing = false;            ///< no such file at all: the fallbacks may apply
    std::string error;               ///< why it could not be read ("" when read)
};

/// The most a fact file (os-release, meminfo, mountinfo, cgroup files) may hold: 16 MiB.
constexpr std::size_t k_max_fact_file = std::size_t{16} << 20;

/// Read the regular file `p` (symlinks followed by the kernel unless `nofollow`).
FileRead read_regular(const stdfs::path& p, bool nofollow) {
    FileRead out;
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (nofollow ? O_NOFOLLOW : 0));
    if (fd < 0) {
        const int err = errno;
        out.missing = err == ENOENT || err == ENOTDIR;
        out.error = out.missing ? "missing" : err == ELOOP ? "symlink loop" : std::strerror(err);
        return out;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        out.error = std::strerror(errno);
    } else if (S_ISDIR(st.st_mode)) {
        out.error = "is a directory";
    } else if (!S_ISREG(st.st_mode)) {
        out.error = "is not a regular file";
    } else {
        std::string text;
        char buf[65536];
        for (;;) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n > 0) {
                text.append(buf, static_cast<std::size_t>(n));
                if (text.size() > k_max_fact_file) { // a fact file is a few KiB; /proc files report size 0
                    out.error = fmt::format("larger than {} bytes", k_max_fact_file);
                    break;
                }
            } else if (n == 0) {
                out.text = std::move(text);
                break;
            } else if (errno != EINTR) {
                out.error = std::strerror(errno);
                break;
            }
        }
    }
    ::close(fd);
    return out;
}

/// `path` (absolute, as seen inside the root) read under `root`, never from outside it.
FileRead read_in_root(const stdfs::path& root, const stdfs::path& path) {
    if (is_live(root)) return read_regular(path, false);
    const InRoot r = resolve_in_root(root, path);
    if (!r.error.empty()) {
        FileRead out;
        out.missing = r.missing;
        out.error = r.error;
        return out;
    }
    // O_NOFOLLOW: the last component was checked not to be a symlink; if it became one
    // since, refuse it rather than follow it out of the root.
    return read_regular(r.file, true);
}

/// "FILE (reason)" for a fact's source when FILE exists but could not be read.
std::string unreadable_source(const stdfs::path& shown, const std::string& error) {
    return fmt::format("{} ({})", shown.string(), error);
}

OsFacts gather_os(const stdfs::path& root) {
    struct Candidate {
        const char* path;
        OsFacts (*parse)(const std::string&);
    };
    static constexpr Candidate k_candidates[] = {
        {"/etc/os-release", parse_os_release},
        {"/usr/lib/os-release", parse_os_release},
        {"/etc/redhat-release", parse_redhat_release},
    };
    for (const auto& c : k_candidates) {
        const auto shown = leo::fs::under_root(root, c.path);
        const FileRead read = read_in_root(root, c.path);
        if (read.text) {
            OsFacts os = c.parse(*read.text);
            os.source = shown.string();
            return os;
        }
        if (read.missing) continue; // only a file that is not there at all falls back
        OsFacts os;
        os.source = unreadable_source(shown, read.error);
        os.error = fmt::format("{}: {}", shown.string(), read.error);
        return os;
    }
    OsFacts os;
    os.error = fmt::format("{}: missing (so are {} and {})",
                           leo::fs::under_root(root, k_candidates[0].path).string(),
                           leo::fs::under_root(root, k_candidates[1].path).string(),
                           leo::fs::under_root(root, k_candidates[2].path).string());
    return os;
}

/// A /proc file for a file-based fact: ROOT's when the root has one (and then only
/// ROOT's, readable or not), the live one when it has none. `source` is set to the file
/// read, or "FILE (reason)" when it could not be read.
std::optional<std::string> read_proc_fact(const stdfs::path& root, const char* path, std::string& source) {
    if (!is_live(root)) {
        const auto shown = leo::fs::under_root(root, path);
        FileRead read = read_in_root(root, path);
        if (read.text) {
            source = shown.string();
            return std::move(read.text);
        }
        if (!read.missing) {
            source = unreadable_source(shown, read.error);
            return std::nullopt;
        }
    }
    FileRead read = read_regular(path, false);
    if (read.text) {
        source = path;
        return std::move(read.text);
    }
    source = read.missing ? std::string() : unreadable_source(path, read.error);
    return std::nullopt;
}

std::string live_arch() {
    struct utsname u {};
    if (::uname(&u) != 0) return {};
    return u.machine;
}

unsigned live_vcpus() {
    // CPU_ALLOC so that machines with more than CPU_SETSIZE (1024) CPUs count right.
    for (int ncpus = 1024; ncpus <= (1 << 20); ncpus *= 2) {
        cpu_set_t* set = CPU_ALLOC(ncpus);
        if (set == nullptr) return 0;
        const std::size_t size = CPU_ALLOC_SIZE(ncpus);
        CPU_ZERO_S(size, set);
        if (::sched_getaffinity(0, size, set) == 0) {
            const int count = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return count > 0 ? static_cast<unsigned>(count) : 0U;
        }
        const int err = errno;
        CPU_FREE(set);
        if (err != EINVAL) return 0;
    }
    return 0;
}

/// On the live system, make the automounter mount /home/leo if a map provides it: a
/// lookup (stat) of the path triggers an indirect map's key, opening the nearest existing
/// ancestor triggers a direct or browsable map. Harmless where there is no autofs.
void trigger_automount(const stdfs::path& path) {
    struct stat st {};
    (void)::stat(path.c_str(), &st);
    const auto ancestor = leo::fs::nearest_existing_ancestor(path);
    (void)::stat(ancestor.c_str(), &st);
    if (DIR* d = ::opendir(ancestor.c_str())) {
        (void)::readdir(d);
        ::closedir(d);
    }
}

std::string join_inside(std::string base, const std::vector<std::string>& rest) {
    for (const auto& c : rest) {
        if (c == "." || c.empty()) continue;
        if (base.empty() || base.back() != '/') base += '/';
        base += c;
    }
    return base.empty() ? "/" : base;
}

/// The first directory above `resolved` (a path inside `root`), up to the root itself,
/// that others cannot search: "/home (mode 0700)", shown as a host path. "" when every
/// existing one can (or `resolved` is unknown). The broker and its database run as leo,
/// which owns none of them. (The directories above a sandbox root are the sandbox's
/// business: `install` checks them before its database step.)
std::string first_untraversable(const stdfs::path& root, const std::string& resolved) {
    if (resolved.empty()) return "";
    stdfs::path top = is_live(root) ? stdfs::path("/") : root.lexically_normal();
    if (!top.has_filename() && top != top.root_path()) top = top.parent_path();  // "/r/" -> "/r"
    const stdfs::path host = leo::fs::under_root(top, resolved);
    for (stdfs::path p = host.parent_path();; p = p.parent_path()) {
        struct stat st {};
        if (::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & S_IXOTH) == 0)
            return fmt::format("{} (mode {:04o})", p.string(), st.st_mode & 07777);
        if (p == top || p == p.root_path() || p.empty() || p == p.parent_path()) break;
    }
    return "";
}

MountFacts gather_home(const stdfs::path& root) {
    MountFacts m;
    const bool live_root = is_live(root);
    constexpr const char* k_home = "/home/leo";
    m.requested = k_home;
    // The path judged: inside a root, /home/leo resolved inside the root (a symlink such
    // as ROOT/home -> /home must not measure the live /home), or its deepest existing
    // ancestor there; live, the nearest existing ancestor (after triggering autofs).
    stdfs::path live;
    std::string inside = "/";
    if (live_root) {
        trigger_automount(k_home);
        live = leo::fs::nearest_existing_ancestor(k_home);
        const InRoot r = resolve_in_root("/", k_home);
        m.resolved = r.error.empty() ? r.in_root : r.missing ? join_inside(r.in_root, r.rest) : "";
    } else {
        const InRoot r = resolve_in_root(root, k_home);
        live = r.error.empty() ? r.file : r.existing;
        const auto rel = live.lexically_relative(root);
        if (!rel.empty() && rel != ".") inside = (stdfs::path("/") / rel).lexically_normal().string();
        if (inside.size() > 1 && inside.back() == '/') inside.pop_back();
        m.resolved = r.error.empty() ? r.in_root : r.missing ? join_inside(r.in_root, r.rest) : "";
    }
    m.path = live.string();
    m.untraversable = first_untraversable(root, m.resolved);

    struct statvfs vfs {};
    if (::statvfs(live.c_str(), &vfs) == 0) {
        m.total_bytes = static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize;
        m.available_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    }
    struct statfs sfs {};
    if (::statfs(live.c_str(), &sfs) == 0) {
        // f_type is a signed word; filesystem magics are 32-bit values.
        m.statfs_magic = static_cast<std::uint32_t>(sfs.f_type);
    }

    // Which path to match against mountinfo's mount points: with the root's own
    // mountinfo, the path inside the root; with the live one, the live (canonical) path.
    const std::optional<std::string> text = read_proc_fact(root, "/proc/self/mountinfo", m.source);
    if (!text) return m;
    std::string match;
    if (!live_root && m.source != "/proc/self/mountinfo") {
        match = inside;
    } else {
        std::error_code ec;
        const auto canonical = stdfs::canonical(live, ec);
        match = (ec ? live : canonical).string();
    }
    const auto entries = parse_mountinfo(*text);
    if (entries.empty()) {
        m.source = unreadable_source(m.source, "no valid mountinfo lines");
        return m;
    }
    if (auto entry = find_mount(entries, match)) {
        m.mount_point = entry->mount_point;
        m.fstype = entry->fstype;
        m.mount_source = entry->source;
        m.mount_root = entry->root;
    }
    return m;
}

/// A file read for a fact from `root` (when `from_root`) or from the live system;
/// `shown` is the path to put in the report.
struct SourcedRead {
    FileRead read;
    std::string shown;
};

SourcedRead read_fact_file(const stdfs::path& root, bool from_root, const std::string& path) {
    if (from_root) return {read_in_root(root, path), leo::fs::under_root(root, path).string()};
    return {read_regular(path, false), path};
}

bool dir_in(const stdfs::path& root, bool from_root, const std::string& path) {
    if (!from_root) {
        struct stat st {};
        return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    const InRoot r = resolve_in_root(root, path);
    struct stat st {};
    return r.error.empty() && ::stat(r.file.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// The cgroup CPU bandwidth limit of this process (see HostFacts::cpu_quota_millicpus).
/// Files come from the root when it has /sys/fs/cgroup, otherwise from the live system.
/// The process's cgroup is read from /proc/self/cgroup (the root's copy when it has one;
/// "/" when none); every level from that cgroup up to the hierarchy's root that exists
/// is read and the smallest limit wins (a parent's limit caps its children). A cgroup
/// path that does not exist under the mount (a container sees its own cgroup as the
/// mount's root) is walked from its nearest existing ancestor.
void gather_cpu_quota(const stdfs::path& root, HostFacts& f) {
    const bool from_root = !is_live(root) && dir_in(root, true, "/sys/fs/cgroup");
    std::string v1_path = "/", v2_path = "/";
    {
        // The root's copy when the cgroup files are the root's; a root without one is "/".
        const SourcedRead sr = read_fact_file(root, from_root, "/proc/self/cgroup");
        if (sr.read.text) {
            CgroupPaths paths = parse_proc_cgroup(*sr.read.text);
            v1_path = std::move(paths.v1_cpu);
            v2_path = std::move(paths.v2);
        } else if (!sr.read.missing) {
            f.cpu_quota_error = fmt::format("{}: {}", sr.shown, sr.read.error);
        }
    }

    // cgroup v1 (CentOS 7): the cpu controller's own hierarchy; v2: the unified one.
    std::string base;
    bool v2 = false;
    for (const char* dir : {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct,cpu"}) {
        if (dir_in(root, from_root, dir)) {
            base = dir;
            break;
        }
    }
    if (base.empty() && dir_in(root, from_root, "/sys/fs/cgroup")) {
        base = "/sys/fs/cgroup";
        v2 = true;
    }
    const std::string shown_root = from_root ? leo::fs::under_root(root, "/").string() : "";
    if (base.empty()) {
        f.cpu_quota_source = fmt::format("no cgroup CPU controller under {}sys/fs/cgroup",
                                         from_root ? shown_root : "/");
        return;
    }
    // Levels from the process's cgroup up to the hierarchy's root.
    std::vector<std::string> levels;
    {
        std::string rel = v2 ? v2_path : v1_path;
        std::vector<std::string> parts;
        for (auto c : components(rel)) parts.emplace_back(c);
        for (;;) {
            std::string dir = base;
            for (const auto& c : parts) dir += "/" + c;
            if (dir_in(root, from_root, dir)) levels.push_back(dir);
            if (parts.empty()) break;
            parts.pop_back();
        }
    }
    std::uint64_t best = 0;
    std::vector<std::string> looked;
    for (const auto& dir : levels) {
        std::optional<std::uint64_t> milli;
        std::string shown;
        if (v2) {
            const SourcedRead sr = read_fact_file(root, from_root, dir + "/cpu.max");
            if (sr.read.missing) continue;
            if (!sr.read.text) {
                f.cpu_quota_error = fmt::format("{}: {}", sr.shown, sr.read.error);
                continue;
            }
            milli = parse_cpu_max(*sr.read.text);
            shown = fmt::format("{}: {}", sr.shown, trim(*sr.read.text));
            if (!milli) {
                f.cpu_quota_error = fmt::format("{}: malformed (expected \"max PERIOD\" or \"QUOTA PERIOD\"): {}",
                                                sr.shown, trim(*sr.read.text));
                continue;
            }
        } else {
            const SourcedRead q = read_fact_file(root, from_root, dir + "/cpu.cfs_quota_us");
            const SourcedRead p = read_fact_file(root, from_root, dir + "/cpu.cfs_period_us");
            if (q.read.missing) continue;
            if (!q.read.text || !p.read.text) {
                const SourcedRead& bad = q.read.text ? p : q;
                f.cpu_quota_error = fmt::format("{}: {}", bad.shown, bad.read.error);
                continue;
            }
            shown = fmt::format("{}: {}, cpu.cfs_period_us: {}", q.shown, trim(*q.read.text), trim(*p.read.text));
            milli = parse_cfs_quota(*q.read.text, *p.read.text);
            if (!milli) {
                f.cpu_quota_error = fmt::format("{}: malformed (expected a number of microseconds or -1)", shown);
                continue;
            }
        }
        looked.push_back(shown);
        if (*milli > 0 && (best == 0 || *milli < best)) {
            best = *milli;
            f.cpu_quota_source = shown;
        }
    }
    f.cpu_quota_millicpus = best;
    if (best == 0) {
        f.cpu_quota_source = looked.empty()
                                 ? fmt::format("no CPU limit file in {}{}", from_root ? shown_root : "",
                                               levels.empty() ? base : levels.front())
                                 : looked.front();
    }
}

/// Installed memory from the online memory blocks (see HostFacts::installed_mem_bytes).
void gather_installed_memory(const stdfs::path& root, bool from_root, HostFacts& f) {
    const std::string dir = "/sys/devices/system/memory";
    const SourcedRead bs = read_fact_file(root, from_root, dir + "/block_size_bytes");
    if (bs.read.missing) return; // not readable here (no memory hotplug support): unknown
    if (!bs.read.text) {
        f.installed_mem_source = unreadable_source(bs.shown, bs.read.error);
        return;
    }
    std::uint64_t block = 0;
    const auto hex = trim(*bs.read.text);
    const auto [ptr, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), block, 16);
    if (ec != std::errc{} || ptr != hex.data() + hex.size() || block == 0) {
        f.installed_mem_source = unreadable_source(bs.shown, "malformed: expected a hexadecimal size");
        return;
    }
    stdfs::path host = dir;
    if (from_root) {
        const InRoot r = resolve_in_root(root, dir);
        if (!r.error.empty()) return;
        host = r.file;
    }
    std::error_code ec2;
    std::uint64_t online = 0, blocks = 0;
    for (const auto& e : stdfs::directory_iterator(host, ec2)) {
        const std::string name = e.path().filename().string();
        if (name.size() <= 6 || name.substr(0, 6) != "memory" || !parse_uint(name.substr(6))) continue;
        ++blocks;
        const SourcedRead st = read_fact_file(root, from_root, dir + "/" + name + "/state");
        if (st.read.text && trim(*st.read.text) == "online") ++online;
    }
    if (ec2 || online == 0) {
        f.installed_mem_source = unreadable_source(from_root ? leo::fs::under_root(root, dir).string() : dir,
                                                   ec2 ? ec2.message() : "no online memory blocks");
        return;
    }
    f.installed_mem_bytes = online * block;
    f.installed_mem_source = fmt::format("{} ({} online of {} blocks of {} MiB)",
                                         from_root ? leo::fs::under_root(root, dir).string() : dir, online,
                                         blocks, block >> 20);
}

} // namespace

std::uint64_t usable_millicpus(const HostFacts& f) {
    const std::uint64_t affinity = static_cast<std::uint64_t>(f.vcpus) * 1000;
    if (f.cpu_quota_millicpus == 0) return affinity;
    return std::min(affinity, f.cpu_quota_millicpus);
}

HostFacts gather_facts(const stdfs::path& root_arg) {
    // "/tmp/r/" and "/tmp/r/." name the same root as "/tmp/r".
    stdfs::path root = root_arg.empty() ? stdfs::path("/") : root_arg.lexically_normal();
    while (root != root.root_path() && !root.has_filename()) root = root.parent_path();
    HostFacts f;
    f.os = gather_os(root);
    f.arch = live_arch();
    f.vcpus = live_vcpus();
    f.vcpus_source = "sched_getaffinity";

    gather_cpu_quota(root, f);
    if (auto text = read_proc_fact(root, "/proc/cpuinfo", f.cpuinfo_source)) {
        f.cpuinfo_cpus = parse_cpuinfo_count(*text);
        if (f.cpuinfo_cpus == 0) f.cpuinfo_source = unreadable_source(f.cpuinfo_source, "no processor lines");
    }

    std::string mem_source;
    if (auto text = read_proc_fact(root, "/proc/meminfo", mem_source)) {
        if (auto kib = parse_meminfo_total_kib(*text)) {
            f.mem_total_kib = *kib;
            f.mem_source = mem_source;
        } else {
            f.mem_source = unreadable_source(mem_source, "no valid MemTotal line");
        }
    } else {
        f.mem_source = mem_source; // "" or "FILE (reason)"
    }
    // Installed memory from the same system as MemTotal: the root's /sys when the
    // root's meminfo was read, the live /sys when the live meminfo was.
    const bool mem_from_root = !is_live(root) && !mem_source.empty() && mem_source.rfind("/proc/meminfo", 0) != 0;
    gather_installed_memory(root, mem_from_root, f);
    f.home = gather_home(root);
    return f;
}

HostFacts read_facts_file(const stdfs::path& file) {
    const FileRead read = read_regular(file, false);
    if (!read.text)
        throw PreflightError(fmt::format("facts file {}: cannot be read: {}", file.string(), read.error));
    return parse_facts_text(*read.text, file.string());
}

} // namespace leo::preflight
