#include "leo/installer/lock.hpp"

#include "leo/common/clock.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/paths.hpp"

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

LockWait& wait_policy() {
    static LockWait policy;
    return policy;
}

std::string holder_text(const fs::SystemRoot& sr) {
    try {
        return sr.try_read(fs::SystemRoot::k_lock, 4096).value_or("");
    } catch (const Error&) {
        return "";
    }
}

/// The pid holding an exclusive flock on device `dev`, inode `ino`, from /proc/locks
/// ("1: FLOCK  ADVISORY  WRITE 1234 fd:01:1312 0 EOF"; device numbers in hex), or 0;
/// nullopt when /proc/locks cannot be read.
std::optional<pid_t> flock_holder(dev_t dev, ino_t ino) {
    std::ifstream in("/proc/locks");  // not-under-root: the kernel's table of locks
    if (!in) return std::nullopt;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string index, kind, advisory, mode, pid, file;
        words >> index >> kind;
        if (kind == "->") continue;  // a waiter, not a holder
        words >> advisory >> mode >> pid >> file;
        if (kind != "FLOCK" || mode != "WRITE") continue;
        unsigned maj = 0, min = 0;
        unsigned long long inode = 0;
        if (std::sscanf(file.c_str(), "%x:%x:%llu", &maj, &min, &inode) != 3) continue;
        if (maj == major(dev) && min == minor(dev) && inode == ino) return static_cast<pid_t>(std::stol(pid));
    }
    return pid_t{0};
}

} // namespace

void RunLock::set_wait(LockWait wait) { wait_policy() = std::move(wait); }

std::optional<std::string> RunLock::holder(const stdfs::path& root) {
    const fs::SystemRoot sr(root);
    const auto st = sr.lstat(fs::SystemRoot::k_state_dir);
    if (!st) return std::nullopt;
    if (const auto pid = flock_holder(st->st_dev, st->st_ino)) {
        if (*pid == 0) return std::nullopt;
        const auto text = holder_text(sr);
        return text.empty() ? fmt::format("pid {}", *pid) : text;
    }
    // No /proc/locks: ask the lock itself, shared, so that a run starting meanwhile
    // still gets it after at most this instant.
    auto fd = sr.open_dir(fs::SystemRoot::k_state_dir);
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return std::nullopt;
    const auto text = holder_text(sr);
    return text.empty() ? std::string("holder unknown") : text;
}

RunLock RunLock::acquire(const stdfs::path& root, const std::string& command) {
    const fs::SystemRoot sr(root);
    const auto dir = sr.host(fs::SystemRoot::k_state_dir);
    const LockWait& policy = wait_policy();
    const auto deadline = std::chrono::steady_clock::now() + policy.limit;
    bool told = false;
    while (true) {
        // The lock is on the state directory itself, not on a file in it: a file can be
        // removed (or replaced) while a run holds it, and the next run would then lock a
        // new file beside the live one; the directory holds the journal and the restore
        // points, so it is never removed while it matters.
        const bool existed = sr.exists(fs::SystemRoot::k_state_dir);
        const bool parent_existed = sr.exists(stdfs::path(fs::SystemRoot::k_state_dir).parent_path());
        sr.make_dirs(fs::SystemRoot::k_state_dir, 0700, fs::Owner{0, 0});
        fs::UniqueFd fd = sr.open_dir(fs::SystemRoot::k_state_dir);
        while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
            const int err = errno;
            if (err != EWOULDBLOCK) throw system_error("cannot lock " + dir.string(), err);
            std::string holder = holder_text(sr);
            if (holder.empty()) {
                struct stat st {};
                if (::fstat(fd.get(), &st) == 0)
                    if (const auto pid = flock_holder(st.st_dev, st.st_ino); pid && *pid > 0)
                        holder = fmt::format("pid {}", *pid);
            }
            if (holder.empty()) holder = "holder unknown";
            if (std::chrono::steady_clock::now() >= deadline)
                throw RefusedError(fmt::format(
                    "another leo-installer run is in progress on {} ({}){}; wait for it to finish{}", root.string(),
                    holder,
                    policy.limit.count() > 0 ? fmt::format(" and did not end within {} s", policy.limit.count()) : "",
                    policy.limit.count() > 0 ? "" : ", or pass --wait SECONDS"));
            if (!told && policy.on_wait) policy.on_wait(holder);
            told = true;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        // Locked: but is it still the directory at the path? A run that created it and was
        // refused removes it again; whoever waited on the old one starts over.
        struct stat held {};
        const auto now = sr.lstat(fs::SystemRoot::k_state_dir);
        if (::fstat(fd.get(), &held) != 0 || !now || now->st_dev != held.st_dev || now->st_ino != held.st_ino)
            continue;
        // The holder line, for a second run's refusal and for status. O_APPEND: after
        // ftruncate(0) the line lands at offset 0. open_append refuses a link, a FIFO or
        // anything but a regular file there, and makes it 0600.
        fs::UniqueFd text = sr.open_append(fs::SystemRoot::k_lock, 0600);
        RunLock lock(fd.release(), text.release(), clock::utc_now());
        lock.m_root = root;
        lock.m_created_dir = !existed;
        lock.m_created_parent = !parent_existed;
        lock.describe(command);
        return lock;
    }
}

void RunLock::remove_state_dir_if_created() noexcept {
    if (!m_created_dir) return;
    try {
        // Still holding the flock: a run waiting on this directory notices it is gone.
        fs::SystemRoot(m_root).remove_all(fs::SystemRoot::k_state_dir);
        if (m_created_parent)  // /var/lib, when this run made it too (and it is empty)
            (void)fs::SystemRoot(m_root).remove(stdfs::path(fs::SystemRoot::k_state_dir).parent_path());
    } catch (const std::exception&) {
    }
}

void RunLock::describe(const std::string& command) const {
    const std::string text =
        fmt::format("pid {}, leo-installer {}, started {}", ::getpid(), command, m_started);
    if (m_text_fd >= 0 && ::ftruncate(m_text_fd, 0) == 0) (void)!::write(m_text_fd, text.data(), text.size());
}

RunLock::~RunLock() {
    if (m_text_fd >= 0) {
        (void)!::ftruncate(m_text_fd, 0);
        ::close(m_text_fd);
    }
    if (m_fd >= 0) ::close(m_fd);  // releases the flock
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
