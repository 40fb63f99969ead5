#include "leo/installer/lock.hpp"

#include "leo/common/clock.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"
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
    const fs::SystemRoot sr(root);
    sr.make_dirs(fs::SystemRoot::k_state_dir, 0700, fs::Owner{0, 0});
    const stdfs::path inside(fs::SystemRoot::k_lock);
    const auto file = sr.host(inside);
    // O_APPEND: after ftruncate(0) the holder line lands at offset 0.
    int fd = sr.open_append(inside, 0644).release();
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        std::string holder;
        try {
            holder = sr.try_read(inside, 4096).value_or("");
        } catch (const Error&) {
        }
        ::close(fd);
        if (err == EWOULDBLOCK)
            throw RefusedError(fmt::format("another leo-installer run is working on {} ({}); wait for it to finish",
                                           root.string(), holder.empty() ? "holder unknown" : holder));
        throw system_error("cannot lock " + file.string(), err);
    }
    const std::string text =
        fmt::format("pid {}, leo-installer {}, started {}", ::getpid(), command, clock::utc_now());
    if (::ftruncate(fd, 0) == 0) {
        (void)!::write(fd, text.data(), text.size());
    }
    return RunLock(fd);
}

RunLock::~RunLock() {
    if (m_fd >= 0) {
        (void)!::ftruncate(m_fd, 0);
        ::close(m_fd);  // releases the flock
    }
}

CreatedDirsGuard::CreatedDirsGuard(const stdfs::path& root, const std::vector<stdfs::path>& dirs) : m_root(root) {
    const fs::SystemRoot sr(root);
    for (const auto& d : dirs) {
        std::vector<stdfs::path> chain;
        for (stdfs::path p = d; p != "/" && !p.empty() && !sr.exists(p); p = p.parent_path())
            chain.push_back(p);
        m_chains.push_back(std::move(chain));
    }
}

void CreatedDirsGuard::undo() const noexcept {
    const fs::SystemRoot sr(m_root);
    for (const auto& chain : m_chains) {
        if (chain.empty()) continue;
        try {
            sr.remove_all(chain.front());
            for (size_t i = 1; i < chain.size(); ++i) sr.remove(chain[i]); // only when empty (ENOTEMPTY throws)
        } catch (const std::exception&) {
        }
    }
}

} // namespace leo::installer
