#include "leo/common/fs.hpp"

#include "leo/common/error.hpp"

#include <cerrno>
#include <fstream>
#include <optional>
#include <utility>
#include <sstream>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace leo::fs {
namespace stdfs = std::filesystem;

stdfs::path under_root(const stdfs::path& root, const stdfs::path& path) {
    if (root.empty() || root == "/") return path;
    return root / path.relative_path();
}

std::optional<std::string> try_read_file(const stdfs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return ss.str();
}

std::string read_file(const stdfs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw system_error("cannot read " + path.string(), errno);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

namespace {
void write_all(int fd, const char* data, size_t size, const stdfs::path& path) {
    while (size > 0) {
        ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw system_error("cannot write " + path.string(), errno);
        }
        data += n;
        size -= static_cast<size_t>(n);
    }
}

void fsync_dir(const stdfs::path& dir) {
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

template <typename Writer>
void atomic_replace(const stdfs::path& path, mode_t mode, Writer&& writer,
                    std::optional<std::pair<uid_t, gid_t>> owner = std::nullopt) {
    const auto dir = path.parent_path().empty() ? stdfs::path(".") : path.parent_path();
    std::string tmpl = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    int fd = ::mkostemp(buf.data(), O_CLOEXEC);
    if (fd < 0) throw system_error("cannot create a temporary file in " + dir.string(), errno);
    const stdfs::path tmp(buf.data());
    try {
        writer(fd, tmp);
        if (owner && ::fchown(fd, owner->first, owner->second) != 0)
            throw system_error("cannot chown " + tmp.string(), errno);
        if (::fchmod(fd, mode) != 0) throw system_error("cannot chmod " + tmp.string(), errno);
        if (::fsync(fd) != 0) throw system_error("cannot fsync " + tmp.string(), errno);
        if (::close(fd) != 0) {
            fd = -1;
            throw system_error("cannot close " + tmp.string(), errno);
        }
        fd = -1;
        if (::rename(tmp.c_str(), path.c_str()) != 0)
            throw system_error("cannot rename " + tmp.string() + " to " + path.string(), errno);
        fsync_dir(dir);
    } catch (...) {
        if (fd >= 0) ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
}
} // namespace

void write_file_atomic(const stdfs::path& path, const std::string& content, mode_t mode) {
    atomic_replace(path, mode, [&](int fd, const stdfs::path& tmp) {
        write_all(fd, content.data(), content.size(), tmp);
    });
}

void write_file_atomic(const stdfs::path& path, const std::string& content, mode_t mode, uid_t uid, gid_t gid) {
    atomic_replace(
        path, mode, [&](int fd, const stdfs::path& tmp) { write_all(fd, content.data(), content.size(), tmp); },
        std::make_pair(uid, gid));
}

void copy_file_durable(const stdfs::path& from, const stdfs::path& to, mode_t mode) {
    int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) throw system_error("cannot read " + from.string(), errno);
    try {
        atomic_replace(to, mode, [&](int fd, const stdfs::path& tmp) {
            char buf[1 << 16];
            for (;;) {
                ssize_t n = ::read(in, buf, sizeof buf);
                if (n < 0) {
                    if (errno == EINTR) continue;
                    throw system_error("cannot read " + from.string(), errno);
                }
                if (n == 0) break;
                write_all(fd, buf, static_cast<size_t>(n), tmp);
            }
        });
    } catch (...) {
        ::close(in);
        throw;
    }
    ::close(in);
}

stdfs::path nearest_existing_ancestor(const stdfs::path& path) {
    stdfs::path p = path;
    std::error_code ec;
    while (!p.empty() && !stdfs::exists(p, ec)) {
        if (p == p.root_path()) break;
        p = p.parent_path();
    }
    return p.empty() ? stdfs::path("/") : p;
}

} // namespace leo::fs
