// SystemRoot: resolving paths inside the root, and reading.
#include "system_root_walk.hpp"

#include <algorithm>

#include <dirent.h>

namespace leo::fs {
namespace stdfs = std::filesystem;
using namespace detail;

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
    note_access(*this, inside, false);
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
    note_access(*this, inside, false);
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
    auto bytes = read_all(fd.get(), limit, host(inside));
    note_content(*this, inside, bytes);
    return bytes;
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
    note_names(*this, dir, names);
    return names;
}

} // namespace leo::fs
