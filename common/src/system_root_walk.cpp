// SystemRoot's shared helpers: descriptors, umask, the walk's pieces, bounded reads and writes.
#include "system_root_walk.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include <dirent.h>
#include <sys/random.h>

namespace leo::fs {
namespace stdfs = std::filesystem;

namespace detail {
std::atomic<bool> g_no_openat2{false};
} // namespace detail

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

bool set_openat2_enabled(bool enabled) { return !detail::g_no_openat2.exchange(!enabled); }

ScopedUmask::ScopedUmask(mode_t mask) : m_previous(::umask(mask)) {}
ScopedUmask::~ScopedUmask() { ::umask(m_previous); }

PrivateTempDir::PrivateTempDir(const stdfs::path& parent, const std::string& prefix) {
    std::string tmpl = (parent / (prefix + "XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr)
        throw system_error("cannot create a temporary directory in " + parent.string(), errno);
    m_path = stdfs::absolute(tmpl).lexically_normal();
}

PrivateTempDir::~PrivateTempDir() {
    try {
        (void)SystemRoot("/").remove_all(m_path);
    } catch (const std::exception&) {
    }
}

bool writable_by_others(const struct stat& dir) {
    return dir.st_uid != 0 || (dir.st_mode & (S_IWGRP | S_IWOTH)) != 0;
}

bool owned_privately(const struct stat& st) {
    return st.st_uid == ::geteuid() && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

namespace detail {

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

} // namespace detail
} // namespace leo::fs
