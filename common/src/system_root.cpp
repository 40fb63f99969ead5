#include "leo/common/system_root.hpp"

#include "leo/common/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <deque>
#include <limits>
#include <stdexcept>
#include <utility>

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace leo::fs {
namespace stdfs = std::filesystem;

namespace {
/// Set when the kernel has no openat2 (EL7): the walk is used at once after that.
std::atomic<bool> g_no_openat2{false};
} // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
        if (m_fd >= 0)
            ::close(m_fd);
        m_fd = other.release();
    }
    return *this;
}

UniqueFd::~UniqueFd() {
    if (m_fd >= 0)
        ::close(m_fd);
}

bool set_openat2_enabled(bool enabled) { return !g_no_openat2.exchange(!enabled); }

ScopedUmask::ScopedUmask(mode_t mask) : m_previous(::umask(mask)) {}
ScopedUmask::~ScopedUmask() { ::umask(m_previous); }

bool writable_by_others(const struct stat& dir) {
    return dir.st_uid != 0 || (dir.st_mode & (S_IWGRP | S_IWOTH)) != 0;
}

namespace {

/// POSIX's limit on links followed in one lookup (Linux: 40).
constexpr int k_max_link_hops = 40;


/// The components of an inside path; "." and empty ones dropped. ".." and relative paths
/// are programming errors: callers build inside paths from constants and checked names.
std::vector<std::string> components(const stdfs::path& inside) {
    if (!inside.is_absolute())
        throw std::invalid_argument("SystemRoot: not an absolute path inside the root: " + inside.string());
    std::vector<std::string> out;
    for (const auto& part : inside.relative_path()) {
        const auto s = part.string();
        if (s.empty() || s == ".")
            continue;
        if (s == "..")
            throw std::invalid_argument("SystemRoot: '..' in a path inside the root: " + inside.string());
        out.push_back(s);
    }
    return out;
}

std::deque<std::string> link_components(const std::string& target) {
    std::deque<std::string> out;
    size_t pos = 0;
    while (pos <= target.size()) {
        size_t slash = target.find('/', pos);
        if (slash == std::string::npos)
            slash = target.size();
        auto part = target.substr(pos, slash - pos);
        if (!part.empty() && part != ".")
            out.push_back(std::move(part));
        pos = slash + 1;
    }
    return out;
}

std::string mode_text(mode_t m) { return fmt::format("{:04o}", m & 07777); }

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

void write_all(int fd, std::string_view data, const stdfs::path& shown) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw system_error("cannot write " + shown.string(), errno);
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
}

std::string read_all(int fd, size_t limit, const stdfs::path& shown) {
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        throw system_error("cannot stat " + shown.string(), errno);
    if (static_cast<uintmax_t>(st.st_size) > limit)
        throw SystemError(fmt::format("{} is {} bytes, more than the {} bytes such a file may have", shown.string(),
                                      st.st_size, limit));
    std::string out;
    std::array<char, 65536> buf{};
    for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw system_error("cannot read " + shown.string(), errno);
        }
        if (n == 0)
            break;
        out.append(buf.data(), static_cast<size_t>(n));
        if (out.size() > limit)
            throw SystemError(
                fmt::format("{} has more than the {} bytes such a file may have", shown.string(), limit));
    }
    return out;
}

std::string random_suffix() {
    std::array<unsigned char, 6> bytes{};
    if (::getrandom(bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()))
        throw system_error("getrandom failed", errno);
    static constexpr char k_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::string s;
    for (auto b : bytes)
        s += k_chars[b % (sizeof k_chars - 1)];
    return s;
}

void check_single_link(int fd, const stdfs::path& shown) {
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        throw system_error("cannot stat " + shown.string(), errno);
    if (!S_ISREG(st.st_mode))
        throw SystemError(shown.string() + " is not a regular file");
    if (st.st_nlink > 1)
        throw SystemError(fmt::format("{} has {} hard links; refusing to write a file that is also elsewhere "
                                      "(remove the extra links)",
                                      shown.string(), st.st_nlink));
}

void remove_tree_at(int parent, const std::string& name, const stdfs::path& shown) {
    struct stat st {};
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return;
        throw system_error("cannot stat " + shown.string(), errno);
    }
    if (S_ISDIR(st.st_mode)) {
        const int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            throw system_error("cannot open " + shown.string(), errno);
        DIR* d = ::fdopendir(fd);
        if (d == nullptr) {
            ::close(fd);
            throw system_error("cannot read " + shown.string(), errno);
        }
        std::vector<std::string> names;
        while (const auto* e = ::readdir(d)) {
            const std::string n = e->d_name;
            if (n != "." && n != "..")
                names.push_back(n);
        }
        try {
            for (const auto& n : names)
                remove_tree_at(::dirfd(d), n, shown / n);
        } catch (...) {
            ::closedir(d);
            throw;
        }
        ::closedir(d);
        if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
            throw system_error("cannot remove " + shown.string(), errno);
        return;
    }
    if (::unlinkat(parent, name.c_str(), 0) != 0 && errno != ENOENT)
        throw system_error("cannot remove " + shown.string(), errno);
}

void fsync_dir_fd(int dir_fd) {
    const int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

} // namespace

struct SystemRoot::Parent {
    UniqueFd root;       ///< keeps the root open while `dir` is used
    UniqueFd dir;        ///< the parent directory; empty when a parent is missing
    std::string name;    ///< the last component ("" for the root itself)
    stdfs::path shown;   ///< the host path, for messages
};

SystemRoot::SystemRoot(stdfs::path root) {
    if (root.empty())
        root = "/";
    m_root = stdfs::absolute(root).lexically_normal();
    if (m_root != "/" && m_root.filename().empty())
        m_root = m_root.parent_path();
}

stdfs::path SystemRoot::host(const stdfs::path& inside) const {
    if (is_host())
        return inside;
    if (inside.relative_path().empty())
        return m_root;
    return m_root / inside.relative_path();
}

UniqueFd SystemRoot::open_root() const {
    const int fd = ::open(m_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        throw system_error("cannot open the root " + m_root.string(), errno);
    return UniqueFd(fd);
}

SystemRoot::Parent SystemRoot::walk_parent(const stdfs::path& inside, bool create, bool must_exist) const {
    auto comps = components(inside);
    Parent p;
    p.root = open_root();
    p.shown = host(inside);
    if (comps.empty()) {
        p.dir = UniqueFd(::dup(p.root.get()));
        p.name = ".";
        return p;
    }
    p.name = comps.back();
    comps.pop_back();
    Walker w(*this, p.root.get());
    if (!w.try_openat2(comps)) {
        w.reset();
        if (!w.descend(std::deque<std::string>(comps.begin(), comps.end()), create)) {
            if (must_exist)
                throw system_error("cannot open " + p.shown.parent_path().string(), ENOENT);
            return p;
        }
    }
    p.dir = UniqueFd(::openat(w.cur(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!p.dir)
        throw system_error("cannot open " + p.shown.parent_path().string(), errno);
    return p;
}

/// Open the last component with `flags` (O_NOFOLLOW added), following a link only when it
/// sits in a root-only directory. Returns an empty fd when it does not exist and O_CREAT is
/// not in `flags`.
UniqueFd SystemRoot::open_final(const stdfs::path& inside, int flags, mode_t mode) const {
    auto p = walk_parent(inside, false, (flags & O_CREAT) != 0);
    if (!p.dir)
        return {};
    int dir = p.dir.get();
    std::string name = p.name;
    UniqueFd holder;
    for (int hops = 0;; ++hops) {
        const int fd = ::openat(dir, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
        int err = errno;
        if (fd >= 0) {
            // O_PATH | O_NOFOLLOW opens a link itself instead of failing: treat it as ELOOP.
            struct stat own {};
            if ((flags & O_PATH) == 0 || ::fstat(fd, &own) != 0 || !S_ISLNK(own.st_mode))
                return UniqueFd(fd);
            ::close(fd);
            err = ELOOP;
        }
        if (err == ENOENT)
            return {};
        struct stat st {};
        if ((err == ELOOP || err == ENOTDIR || err == EMLINK) &&
            ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
            struct stat dst {};
            if (::fstat(dir, &dst) != 0)
                throw system_error("cannot stat the directory of " + p.shown.string(), errno);
            if (writable_by_others(dst) || (flags & O_CREAT) != 0)
                throw SystemError(fmt::format(
                    "refusing to follow the symbolic link {}{}; it must be a real file (remove the link and run "
                    "again)",
                    p.shown.string(),
                    writable_by_others(dst)
                        ? fmt::format(": its directory (owner uid {}, mode {}) can be written by a user other than root",
                                      dst.st_uid, mode_text(dst.st_mode))
                        : std::string(" where a file is written")));
            if (hops >= k_max_link_hops)
                throw system_error("cannot resolve " + p.shown.string(), ELOOP);
            std::array<char, 4096> buf{};
            const ssize_t n = ::readlinkat(dir, name.c_str(), buf.data(), buf.size() - 1);
            if (n < 0)
                throw system_error("cannot read the link " + p.shown.string(), errno);
            const std::string target(buf.data(), static_cast<size_t>(n));
            auto comps = link_components(target);
            // The directory of the link is the walk's start for a relative target.
            Walker lw(*this, p.root.get());
            if (!target.starts_with('/')) {
                const auto parent_inside = inside.parent_path();
                auto dirs = components(parent_inside);
                if (!lw.descend(std::deque<std::string>(dirs.begin(), dirs.end()), false))
                    return {};
            }
            std::string last = comps.empty() ? "." : comps.back();
            if (!comps.empty())
                comps.pop_back();
            if (last == "..") {
                comps.push_back("..");
                last = ".";
            }
            if (!lw.descend(comps, false))
                return {};
            holder = UniqueFd(::openat(lw.cur(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
            if (!holder)
                throw system_error("cannot open the target of " + p.shown.string(), errno);
            dir = holder.get();
            name = last;
            continue;
        }
        throw system_error("cannot open " + p.shown.string(), err);
    }
}

stdfs::path SystemRoot::checked_host(const stdfs::path& inside) const {
    auto comps = components(inside);
    auto root = open_root();
    Walker w(*this, root.get());
    // Every existing component is walked (the last too, when it is a directory or link).
    std::deque<std::string> pending(comps.begin(), comps.end());
    while (!pending.empty()) {
        std::deque<std::string> one{pending.front()};
        pending.pop_front();
        struct stat st {};
        if (::fstatat(w.cur(), one.front().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            break; // missing: nothing further to follow
        if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
            if (!pending.empty())
                throw system_error(host(inside).string() + ": a parent is not a directory", ENOTDIR);
            break;
        }
        if (S_ISLNK(st.st_mode) && pending.empty()) {
            (void)w.follow(one.front()); // the last component: checked, not resolved further
            break;
        }
        if (!w.descend(one, false))
            break;
    }
    return host(inside);
}

std::optional<std::string> SystemRoot::try_read(const stdfs::path& inside, std::size_t limit) const {
    auto fd = open_final(inside, O_RDONLY | O_NONBLOCK, 0);
    if (!fd)
        return std::nullopt;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        throw system_error("cannot stat " + host(inside).string(), errno);
    if (!S_ISREG(st.st_mode))
        throw SystemError(host(inside).string() + " is not a regular file");
    return read_all(fd.get(), limit, host(inside));
}

std::string SystemRoot::read(const stdfs::path& inside, std::size_t limit) const {
    auto text = try_read(inside, limit);
    if (!text)
        throw system_error("cannot read " + host(inside).string(), ENOENT);
    return std::move(*text);
}

UniqueFd SystemRoot::open_read(const stdfs::path& inside) const {
    auto fd = open_final(inside, O_RDONLY | O_NONBLOCK, 0);
    if (!fd)
        throw system_error("cannot open " + host(inside).string(), ENOENT);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        throw SystemError(host(inside).string() + " is not a regular file");
    const int fl = ::fcntl(fd.get(), F_GETFL);
    if (fl >= 0)
        ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

std::optional<struct stat> SystemRoot::lstat(const stdfs::path& inside) const {
    auto p = walk_parent(inside, false, false);
    if (!p.dir)
        return std::nullopt;
    struct stat st {};
    if (::fstatat(p.dir.get(), p.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return std::nullopt;
        throw system_error("cannot stat " + p.shown.string(), errno);
    }
    return st;
}

std::optional<struct stat> SystemRoot::stat(const stdfs::path& inside) const {
    auto fd = open_final(inside, O_PATH, 0);
    if (!fd)
        return std::nullopt;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        throw system_error("cannot stat " + host(inside).string(), errno);
    return st;
}

UniqueFd SystemRoot::open_dir(const stdfs::path& dir) const {
    auto fd = open_final(dir, O_RDONLY | O_DIRECTORY, 0);
    if (!fd)
        throw system_error("cannot open " + host(dir).string(), ENOENT);
    return fd;
}

std::vector<std::string> SystemRoot::list(const stdfs::path& dir) const {
    auto fd = open_final(dir, O_RDONLY | O_DIRECTORY, 0);
    if (!fd)
        return {};
    DIR* d = ::fdopendir(fd.get());
    if (d == nullptr)
        throw system_error("cannot read " + host(dir).string(), errno);
    (void)fd.release();
    std::vector<std::string> names;
    while (const auto* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (n != "." && n != "..")
            names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

void SystemRoot::make_dirs(const stdfs::path& dir, mode_t mode, std::optional<Owner> owner,
                           ExistingDir existing) const {
    auto p = walk_parent(dir, true, true);
    bool created = false;
    if (p.name != ".") {
        if (::mkdirat(p.dir.get(), p.name.c_str(), 0700) == 0)
            created = true;
        else if (errno != EEXIST)
            throw system_error("cannot create " + p.shown.string(), errno);
    }
    const int fd = ::openat(p.dir.get(), p.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        struct stat st {};
        if (::fstatat(p.dir.get(), p.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            throw SystemError(fmt::format("refusing to use {}: it is a symbolic link where a directory is expected "
                                          "(remove the link and run again)",
                                          p.shown.string()));
        throw system_error("cannot open " + p.shown.string(), err);
    }
    UniqueFd guard(fd);
    if (!created && existing == ExistingDir::keep)
        return;
    if (owner && ::fchown(fd, owner->uid, owner->gid) != 0)
        throw system_error("cannot chown " + p.shown.string(), errno);
    if (::fchmod(fd, mode) != 0)
        throw system_error("cannot chmod " + p.shown.string(), errno);
}

void SystemRoot::write_atomic(const stdfs::path& inside, std::string_view content, mode_t mode,
                              std::optional<Owner> owner) const {
    auto p = walk_parent(inside, false, true);
    std::string tmp;
    int fd = -1;
    for (int attempt = 0; fd < 0; ++attempt) {
        tmp = "." + p.name + "." + random_suffix();
        fd = ::openat(p.dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && (errno != EEXIST || attempt > 100))
            throw system_error("cannot create a temporary file in " + p.shown.parent_path().string(), errno);
    }
    UniqueFd guard(fd);
    const auto shown_tmp = p.shown.parent_path() / tmp;
    try {
        write_all(fd, content, shown_tmp);
        if (owner && ::fchown(fd, owner->uid, owner->gid) != 0)
            throw system_error("cannot chown " + shown_tmp.string(), errno);
        if (::fchmod(fd, mode) != 0)
            throw system_error("cannot chmod " + shown_tmp.string(), errno);
        if (::fsync(fd) != 0)
            throw system_error("cannot fsync " + shown_tmp.string(), errno);
        if (::close(guard.release()) != 0)
            throw system_error("cannot close " + shown_tmp.string(), errno);
        if (::renameat(p.dir.get(), tmp.c_str(), p.dir.get(), p.name.c_str()) != 0)
            throw system_error("cannot rename " + shown_tmp.string() + " to " + p.shown.string(), errno);
    } catch (...) {
        ::unlinkat(p.dir.get(), tmp.c_str(), 0);
        throw;
    }
    fsync_dir_fd(p.dir.get());
}

void SystemRoot::copy_from_host(const stdfs::path& from, const stdfs::path& to_inside, mode_t mode) const {
    const int fd = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw system_error("cannot read " + from.string(), errno);
    UniqueFd guard(fd);
    write_atomic(to_inside, read_all(fd, std::numeric_limits<size_t>::max(), from), mode);
}

void SystemRoot::copy(const stdfs::path& from_inside, const stdfs::path& to_inside, mode_t mode) const {
    auto fd = open_read(from_inside);
    write_atomic(to_inside, read_all(fd.get(), std::numeric_limits<size_t>::max(), host(from_inside)), mode);
}

UniqueFd SystemRoot::open_append(const stdfs::path& inside, mode_t mode) const {
    auto p = walk_parent(inside, false, true);
    const int fd = ::openat(p.dir.get(), p.name.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == ELOOP)
            throw SystemError(fmt::format("refusing to write through the symbolic link {} (remove the link and run "
                                          "again)",
                                          p.shown.string()));
        throw system_error("cannot open " + p.shown.string(), errno);
    }
    UniqueFd guard(fd);
    check_single_link(fd, p.shown);
    struct stat st {};
    if (::fstat(fd, &st) == 0 && (st.st_mode & 07777) != mode && ::fchmod(fd, mode) != 0)
        throw system_error("cannot chmod " + p.shown.string(), errno);
    return guard;
}

UniqueFd SystemRoot::create_exclusive(const stdfs::path& inside, mode_t mode) const {
    auto p = walk_parent(inside, false, true);
    const int fd = ::openat(p.dir.get(), p.name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        throw system_error("cannot create " + p.shown.string(), errno);
    UniqueFd guard(fd);
    if (::fchmod(fd, mode) != 0)
        throw system_error("cannot chmod " + p.shown.string(), errno);
    return guard;
}

void SystemRoot::set_owner_mode(const stdfs::path& inside, std::optional<Owner> owner, mode_t mode) const {
    auto p = walk_parent(inside, false, true);
    const int fd = ::openat(p.dir.get(), p.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ELOOP)
            throw SystemError(fmt::format("refusing to change the owner or mode of the symbolic link {} (remove "
                                          "the link and run again)",
                                          p.shown.string()));
        throw system_error("cannot open " + p.shown.string(), errno);
    }
    UniqueFd guard(fd);
    if (owner && ::fchown(fd, owner->uid, owner->gid) != 0)
        throw system_error("cannot chown " + p.shown.string(), errno);
    if (::fchmod(fd, mode) != 0)
        throw system_error("cannot chmod " + p.shown.string(), errno);
}

void SystemRoot::rename(const stdfs::path& from_inside, const stdfs::path& to_inside) const {
    auto from = walk_parent(from_inside, false, true);
    auto to = walk_parent(to_inside, false, true);
    if (::renameat(from.dir.get(), from.name.c_str(), to.dir.get(), to.name.c_str()) != 0)
        throw system_error("cannot rename " + from.shown.string() + " to " + to.shown.string(), errno);
    fsync_dir_fd(to.dir.get());
}

bool SystemRoot::remove(const stdfs::path& inside) const {
    auto p = walk_parent(inside, false, false);
    if (!p.dir)
        return false;
    struct stat st {};
    if (::fstatat(p.dir.get(), p.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return false;
        throw system_error("cannot stat " + p.shown.string(), errno);
    }
    if (::unlinkat(p.dir.get(), p.name.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0) {
        if (errno == ENOENT)
            return false;
        throw system_error("cannot remove " + p.shown.string(), errno);
    }
    return true;
}

bool SystemRoot::remove_all(const stdfs::path& inside) const {
    auto p = walk_parent(inside, false, false);
    if (!p.dir)
        return false;
    if (p.name == ".")
        throw std::invalid_argument("SystemRoot: refusing to remove the root itself");
    struct stat st {};
    if (::fstatat(p.dir.get(), p.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return false;
        throw system_error("cannot stat " + p.shown.string(), errno);
    }
    remove_tree_at(p.dir.get(), p.name, p.shown);
    return true;
}

void SystemRoot::symlink(const std::string& target, const stdfs::path& link_inside) const {
    auto p = walk_parent(link_inside, false, true);
    const std::string tmp = "." + p.name + "." + random_suffix();
    if (::symlinkat(target.c_str(), p.dir.get(), tmp.c_str()) != 0)
        throw system_error("cannot create the link " + p.shown.string(), errno);
    if (::renameat(p.dir.get(), tmp.c_str(), p.dir.get(), p.name.c_str()) != 0) {
        const int err = errno;
        ::unlinkat(p.dir.get(), tmp.c_str(), 0);
        throw system_error("cannot create the link " + p.shown.string(), err);
    }
}

std::optional<std::string> untrusted_path_reason(const stdfs::path& path) {
    std::deque<std::string> pending;
    for (const auto& part : stdfs::absolute(path).relative_path())
        if (!part.empty() && part != ".")
            pending.push_back(part.string());
    std::vector<std::string> at; // the resolved directories so far
    auto joined = [&](const std::vector<std::string>& parts) {
        std::string s;
        for (const auto& x : parts)
            s += "/" + x;
        return s.empty() ? std::string("/") : s;
    };
    struct stat dir {};
    if (::lstat("/", &dir) != 0)
        return "cannot stat /";
    int hops = 0;
    while (!pending.empty()) {
        const auto comp = pending.front();
        pending.pop_front();
        if (comp == "..") {
            if (!at.empty())
                at.pop_back();
            if (::stat(joined(at).c_str(), &dir) != 0)
                return fmt::format("cannot stat {}", joined(at));
            continue;
        }
        auto next = at;
        next.push_back(comp);
        const auto here = joined(next);
        struct stat st {};
        if (::lstat(here.c_str(), &st) != 0)
            return fmt::format("{} does not exist", here);
        const bool sticky_ok = (dir.st_mode & S_ISVTX) != 0 && dir.st_uid == 0 && st.st_uid == 0;
        if (writable_by_others(dir) && !sticky_ok)
            return fmt::format("{} is in {} (owner uid {}, mode {}), which a user other than root can change", here,
                               joined(at), dir.st_uid, mode_text(dir.st_mode));
        if (S_ISLNK(st.st_mode)) {
            if (++hops > k_max_link_hops)
                return fmt::format("{}: too many levels of symbolic links", here);
            std::array<char, 4096> buf{};
            const ssize_t n = ::readlink(here.c_str(), buf.data(), buf.size() - 1);
            if (n < 0)
                return fmt::format("cannot read the link {}", here);
            const std::string target(buf.data(), static_cast<size_t>(n));
            auto comps = link_components(target);
            if (target.starts_with('/')) {
                at.clear();
                if (::lstat("/", &dir) != 0)
                    return "cannot stat /";
            }
            pending.insert(pending.begin(), comps.begin(), comps.end());
            continue;
        }
        if (pending.empty() && writable_by_others(st))
            return fmt::format("{} (owner uid {}, mode {}) can be changed by a user other than root", here, st.st_uid,
                               mode_text(st.st_mode));
        at = std::move(next);
        dir = st;
    }
    return std::nullopt;
}

} // namespace leo::fs
