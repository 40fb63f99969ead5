#include "leo/installer/lock.hpp"

#include "leo/common/clock.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/installer/paths.hpp"

#include <cerrno>
#include <ctime>

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

RunLock RunLock::acquire(const stdfs::path& root, const std::string& command) {
    const auto dir = fs::under_root(root, k_state_dir);
    std::error_code ec;
    stdfs::create_directories(dir, ec);
    if (ec) throw SystemError(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
    const auto file = dir / "lock";
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw system_error("cannot open the lock file " + file.string(), errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        const std::string holder = fs::try_read_file(file).value_or("");
        ::close(fd);
        if (err == EWOULDBLOCK)
            throw RefusedError(fmt::format("another leo-installer run is working on {} ({}); wait for it to finish",
                                           root.string(), holder.empty() ? "holder unknown" : holder));
        throw system_error("cannot lock " + file.string(), err);
    }
    const std::string text =
        fmt::format("pid {}, leo-installer {}, started {}", ::getpid(), command, clock::utc_now());
    if (::ftruncate(fd, 0) == 0) {
        (void)!::pwrite(fd, text.data(), text.size(), 0);
    }
    return RunLock(fd);
}

RunLock::~RunLock() {
    if (m_fd >= 0) {
        (void)!::ftruncate(m_fd, 0);
        ::close(m_fd);  // releases the flock
    }
}

CreatedDirsGuard::CreatedDirsGuard(const stdfs::path& root, const std::vector<stdfs::path>& dirs) {
    std::error_code ec;
    for (const auto& d : dirs) {
        std::vector<stdfs::path> chain;
        for (stdfs::path p = d; p != root && p.has_parent_path() && !stdfs::exists(p, ec); p = p.parent_path())
            chain.push_back(p);
        m_chains.push_back(std::move(chain));
    }
}

void CreatedDirsGuard::undo() const noexcept {
    std::error_code ec;
    for (const auto& chain : m_chains) {
        if (chain.empty()) continue;
        stdfs::remove_all(chain.front(), ec);
        for (size_t i = 1; i < chain.size(); ++i) stdfs::remove(chain[i], ec);  // only when empty
    }
}

} // namespace leo::installer
