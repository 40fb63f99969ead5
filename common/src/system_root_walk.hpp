#pragma once
// Private to common/: the pieces SystemRoot's files share (the walk that resolves a path
// inside the root one component at a time, and small descriptor helpers).

#include "leo/common/error.hpp"
#include "leo/common/system_root.hpp"

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <deque>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace leo::fs {

/// What SystemRoot's operations share about the path they work on.
struct SystemRoot::Parent {
    UniqueFd root;       ///< keeps the root open while `dir` is used
    UniqueFd dir;        ///< the parent directory; empty when a parent is missing
    std::string name;    ///< the last component ("" for the root itself)
    std::filesystem::path shown;   ///< the host path, for messages
};


namespace detail {
namespace stdfs = std::filesystem;

/// Tell the live AccessRecorder (if any) that `root` reaches `inside` (access_recorder.cpp);
/// `written`: by a writing operation. Never throws.
void note_access(const SystemRoot& root, const stdfs::path& inside, bool written) noexcept;
/// Tell the live AccessRecorder the bytes the run read at `inside`, or the names it listed.
void note_content(const SystemRoot& root, const stdfs::path& inside, std::string_view bytes) noexcept;
void note_names(const SystemRoot& root, const stdfs::path& inside, const std::vector<std::string>& names) noexcept;

/// Set when the kernel has no openat2 (EL7): the walk is used at once after that.
extern std::atomic<bool> g_no_openat2;

/// POSIX's limit on links followed in one lookup (Linux: 40).
inline constexpr int k_max_link_hops = 40;

/// The components of an inside path; "." and empty ones dropped. ".." and relative paths
/// are programming errors (std::invalid_argument).
std::vector<std::string> components(const stdfs::path& inside);
/// The components of a link's target ("." and empty ones dropped).
std::deque<std::string> link_components(const std::string& target);
/// "0755" for a mode.
std::string mode_text(mode_t m);
/// write(2) all of `data`; throws SystemError naming `shown`.
void write_all(int fd, std::string_view data, const stdfs::path& shown);
/// The whole regular file open at `fd`, at most `limit` bytes; throws SystemError naming `shown`.
std::string read_all(int fd, size_t limit, const stdfs::path& shown);
/// Six random characters for a temporary name.
std::string random_suffix();
/// Throw unless `fd` is a regular file with one link.
void check_single_link(int fd, const stdfs::path& shown);
/// Remove `name` in `parent` and everything below it, never following a link.
void remove_tree_at(int parent, const std::string& name, const stdfs::path& shown);
/// fsync the directory open (O_PATH or not) at `dir_fd`; errors ignored.
void fsync_dir_fd(int dir_fd);

/// The resolution state: the chain of directories opened from the root.
class Walker {
public:
    Walker(const SystemRoot& root, int root_fd) : m_root(root), m_root_fd(root_fd) {}

    [[nodiscard]] int cur() const { return m_stack.empty() ? m_root_fd : m_stack.back().get(); }
    [[nodiscard]] stdfs::path inside() const {
        stdfs::path p = "/";
        for (const auto& n : m_names)
            p /= n;
        return p;
    }
    [[nodiscard]] stdfs::path host_of(const std::string& name) const { return m_root.host(inside() / name); }

    /// Try the whole parent chain in one openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS).
    bool try_openat2(const std::vector<std::string>& dirs) {
        if (dirs.empty() || g_no_openat2.load(std::memory_order_relaxed))
            return dirs.empty();
        std::string rel;
        for (const auto& d : dirs)
            rel += (rel.empty() ? "" : "/") + d;
        struct open_how how {};
        how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        const long fd = ::syscall(SYS_openat2, m_root_fd, rel.c_str(), &how, sizeof how);
        if (fd < 0) {
            if (errno == ENOSYS)
                g_no_openat2.store(true, std::memory_order_relaxed);
            return false; // a link, a missing directory, EXDEV...: the walk says which
        }
        m_stack.emplace_back(static_cast<int>(fd));
        m_names = dirs;
        return true;
    }

    /// Descend through `pending` as directories. Returns false when one is missing and
    /// `create` is not set. Links in root-only directories are followed (inside the root).
    bool descend(std::deque<std::string> pending, bool create) {
        while (!pending.empty()) {
            auto comp = std::move(pending.front());
            pending.pop_front();
            if (comp == "..") {
                if (!m_stack.empty()) {
                    m_stack.pop_back();
                    m_names.pop_back();
                }
                continue;
            }
            int fd = ::openat(cur(), comp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) {
                push(fd, comp);
                continue;
            }
            const int err = errno;
            struct stat st {};
            if (::fstatat(cur(), comp.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                if (errno != ENOENT)
                    throw system_error("cannot open " + host_of(comp).string(), errno);
                if (!create)
                    return false;
                make_dir(comp);
                continue;
            }
            if (S_ISLNK(st.st_mode)) {
                auto target = follow(comp);
                if (!target.empty() && target.front() == "/") {
                    target.pop_front();
                    reset();
                }
                pending.insert(pending.begin(), target.begin(), target.end());
                continue;
            }
            if (!S_ISDIR(st.st_mode))
                throw system_error(host_of(comp).string() + " is not a directory", ENOTDIR);
            throw system_error("cannot open " + host_of(comp).string(), err);
        }
        return true;
    }

    /// The target of the link `name` in the current directory as components (a leading
    /// "/" for an absolute one), after checking that following it is safe.
    std::deque<std::string> follow(const std::string& name) {
        struct stat dir {};
        if (::fstat(cur(), &dir) != 0)
            throw system_error("cannot stat " + m_root.host(inside()).string(), errno);
        if (writable_by_others(dir))
            throw SystemError(fmt::format(
                "refusing to follow the symbolic link {}: it is in {} (owner uid {}, mode {}), which a user other "
                "than root can write; it must be a real directory or file (remove the link and run again)",
                host_of(name).string(), m_root.host(inside()).string(), dir.st_uid, mode_text(dir.st_mode)));
        if (++m_hops > k_max_link_hops)
            throw system_error("cannot resolve " + host_of(name).string(), ELOOP);
        std::array<char, 4096> buf{};
        const ssize_t n = ::readlinkat(cur(), name.c_str(), buf.data(), buf.size() - 1);
        if (n < 0)
            throw system_error("cannot read the link " + host_of(name).string(), errno);
        const std::string target(buf.data(), static_cast<size_t>(n));
        auto comps = link_components(target);
        if (target.starts_with('/'))
            comps.push_front("/");
        return comps;
    }

    void reset() {
        m_stack.clear();
        m_names.clear();
    }

private:
    void push(int fd, const std::string& name) {
        m_stack.emplace_back(fd);
        m_names.push_back(name);
    }

    /// mkdir one directory (0755, root-owned) and make sure the one opened is ours.
    void make_dir(const std::string& name) {
        if (::mkdirat(cur(), name.c_str(), 0755) != 0 && errno != EEXIST)
            throw system_error("cannot create " + host_of(name).string(), errno);
        const int fd = ::openat(cur(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            throw system_error("cannot open " + host_of(name).string(), errno);
        UniqueFd guard(fd);
        struct stat st {};
        if (::fstat(fd, &st) != 0)
            throw system_error("cannot stat " + host_of(name).string(), errno);
        if (st.st_uid == ::geteuid() && ::fchmod(fd, 0755) != 0)
            throw system_error("cannot chmod " + host_of(name).string(), errno);
        push(guard.release(), name);
    }

    const SystemRoot& m_root;
    int m_root_fd;
    std::vector<UniqueFd> m_stack;
    std::vector<std::string> m_names;
    int m_hops = 0;
};

} // namespace detail
} // namespace leo::fs
