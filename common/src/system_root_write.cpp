// SystemRoot: creating, writing, renaming and removing under the root, on descriptors.
#include "system_root_walk.hpp"

#include <limits>

namespace leo::fs {
namespace stdfs = std::filesystem;
using namespace detail;

void SystemRoot::make_dirs(const stdfs::path& dir, mode_t mode, std::optional<Owner> owner,
                           ExistingDir existing) const {
    note_access(*this, dir, true);
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
    // Already as asked: left alone (a chmod would change its ctime, which readers compare).
    struct stat st {};
    if (!created && ::fstat(fd, &st) == 0 && (st.st_mode & 07777) == mode &&
        (!owner || (st.st_uid == owner->uid && st.st_gid == owner->gid)))
        return;
    if (owner && ::fchown(fd, owner->uid, owner->gid) != 0)
        throw system_error("cannot chown " + p.shown.string(), errno);
    if (::fchmod(fd, mode) != 0)
        throw system_error("cannot chmod " + p.shown.string(), errno);
}

void SystemRoot::write_atomic(const stdfs::path& inside, std::string_view content, mode_t mode,
                              std::optional<Owner> owner) const {
    note_access(*this, inside, true);
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

void SystemRoot::copy_from_host(const stdfs::path& from, const stdfs::path& to_inside, mode_t mode,
                                std::size_t limit) const {
    // O_NONBLOCK: a FIFO in place of the file must not hang the open; only a regular file is read.
    const int fd = ::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        throw system_error("cannot read " + from.string(), errno);
    UniqueFd guard(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        throw system_error("cannot read " + from.string(), errno);
    if (!S_ISREG(st.st_mode))
        throw SystemError(fmt::format("cannot read {}: not a regular file", from.string()));
    write_atomic(to_inside, read_all(fd, limit, from), mode);
}

void SystemRoot::copy(const stdfs::path& from_inside, const stdfs::path& to_inside, mode_t mode) const {
    auto fd = open_read(from_inside);
    write_atomic(to_inside, read_all(fd.get(), std::numeric_limits<size_t>::max(), host(from_inside)), mode);
}

UniqueFd SystemRoot::open_append(const stdfs::path& inside, mode_t mode, WhenMissing when_missing) const {
    note_access(*this, inside, true);
    auto p = walk_parent(inside, false, true);
    const int create = when_missing == WhenMissing::create ? O_CREAT : 0;
    // O_NONBLOCK: a FIFO put in place of the file must not hang the open (it fails with
    // ENXIO without a reader, or is refused below); cleared again for a regular file.
    const int fd = ::openat(p.dir.get(), p.name.c_str(),
                            O_WRONLY | O_APPEND | create | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode);
    if (fd < 0) {
        if (errno == ELOOP)
            throw SystemError(fmt::format("refusing to write through the symbolic link {} (remove the link and run "
                                          "again)",
                                          p.shown.string()));
        if (errno == ENXIO)
            throw SystemError(fmt::format("refusing to write to {}: it is not a regular file (a FIFO or a device; "
                                          "remove it and run again)",
                                          p.shown.string()));
        throw system_error("cannot open " + p.shown.string(), errno);
    }
    UniqueFd guard(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw system_error("cannot stat " + p.shown.string(), errno);
    if (!S_ISREG(st.st_mode))
        throw SystemError(fmt::format("refusing to write to {}: it is not a regular file (remove it and run again)",
                                      p.shown.string()));
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
        throw system_error("cannot open " + p.shown.string(), errno);
    check_single_link(fd, p.shown);
    if ((st.st_mode & 07777) != mode && ::fchmod(fd, mode) != 0)
        throw system_error("cannot chmod " + p.shown.string(), errno);
    return guard;
}

UniqueFd SystemRoot::create_exclusive(const stdfs::path& inside, mode_t mode) const {
    note_access(*this, inside, true);
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
    note_access(*this, inside, true);
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
    note_access(*this, from_inside, true);
    note_access(*this, to_inside, true);
    auto from = walk_parent(from_inside, false, true);
    auto to = walk_parent(to_inside, false, true);
    if (::renameat(from.dir.get(), from.name.c_str(), to.dir.get(), to.name.c_str()) != 0)
        throw system_error("cannot rename " + from.shown.string() + " to " + to.shown.string(), errno);
    fsync_dir_fd(to.dir.get());
}

bool SystemRoot::remove(const stdfs::path& inside) const {
    note_access(*this, inside, true);
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
    note_access(*this, inside, true);
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
    note_access(*this, link_inside, true);
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

} // namespace leo::fs
