// rpm's transaction lock: its path, its holder (fcntl F_GETLK), waiting for it, and taking it for our transactions.
#include "leo/rpm/lock.hpp"

#include "lock_hold.hpp"

#include "leo/common/error.hpp"
#include "leo/common/process_info.hpp"
#include "leo/common/system_root.hpp"
#include "leo/rpm/rpmlib.hpp"

#include <fmt/format.h>

#include <rpm/rpmmacro.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fcntl.h>

namespace leo::rpm {
namespace stdfs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto k_poll = std::chrono::milliseconds(100);

/// A write lock on the whole file, as rpm takes it.
struct flock whole_file_write_lock() {
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 0;
    return fl;
}

/// F_GETLK on `fd`: the conflicting holder of a write lock, or nullopt.
std::optional<LockHolder> holder_of(int fd, const stdfs::path& shown) {
    auto fl = whole_file_write_lock();
    if (::fcntl(fd, F_GETLK, &fl) != 0)
        throw RpmError(
            fmt::format("cannot ask who holds rpm's transaction lock {}: {}", shown.string(), std::strerror(errno)));
    if (fl.l_type == F_UNLCK)
        return std::nullopt;
    LockHolder h;
    h.pid = fl.l_pid > 0 ? fl.l_pid : 0;
    if (h.pid > 0) {
        if (const auto info = proc::read_process(h.pid))
            h.command = info->command();
    }
    return h;
}

std::string holder_text(const LockHolder& h) {
    if (h.pid <= 0)
        return "a process whose pid is not visible here (an open file description lock, or another pid namespace)";
    return fmt::format("pid {} ({})", h.pid, h.command.empty() ? "command unknown" : h.command);
}

/// The waiting loop of wait_for_transaction_lock() and hold_transaction_lock(): with
/// `take`, each round tries to take the lock (F_SETLK on a descriptor opened for writing)
/// and returns that descriptor once it has it; without, it returns once nobody holds it.
fs::UniqueFd wait_loop(const fs::SystemRoot& sys, std::chrono::seconds limit, const LockWaitCallback& on_wait,
                       bool take) {
    const auto lock_in = transaction_lock_path();
    const auto shown = sys.host(lock_in);
    const auto started = Clock::now();
    const auto deadline = started + limit;
    std::optional<pid_t> announced;
    for (;;) {
        std::optional<LockHolder> holder;
        fs::UniqueFd writable;
        const auto st = sys.lstat(lock_in);
        if (!st)
            return {}; // no lock file: nobody holds it (rpm creates it when it locks)
        if (take && S_ISREG(st->st_mode)) {
            try {
                // Its own mode: open_append() would otherwise change it.
                writable = sys.open_append(lock_in, st->st_mode & 07777);
            } catch (const SystemError&) {
                // Read-only (a read-only rpmdb): rpm cannot lock it either; just wait.
            }
        }
        if (writable) {
            auto fl = whole_file_write_lock();
            if (::fcntl(writable.get(), F_SETLK, &fl) == 0)
                return writable;
            if (errno != EAGAIN && errno != EACCES)
                throw RpmError(
                    fmt::format("cannot take rpm's transaction lock {}: {}", shown.string(), std::strerror(errno)));
            holder = holder_of(writable.get(), shown);
        } else {
            holder = transaction_lock_holder(sys);
            if (!holder)
                return {};
        }
        const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
        if (holder) {
            if (!announced || *announced != holder->pid) {
                announced = holder->pid;
                if (on_wait)
                    on_wait(*holder, waited);
            }
            if (Clock::now() >= deadline)
                throw RpmLockedError(
                    fmt::format("rpm's transaction lock {} is held by {}, still after {} s: another rpm "
                                "transaction (rpm, yum or dnf) is running in {}; let it finish and run again",
                                shown.string(), holder_text(*holder), limit.count(), sys.path().string()),
                    holder->pid, holder->command);
        }
        std::this_thread::sleep_for(
            std::min<Clock::duration>(k_poll, std::max<Clock::duration>(deadline - Clock::now(), Clock::duration(0))));
    }
}

} // namespace

stdfs::path transaction_lock_path() {
    initialize();
    char* expanded = rpmExpand("%{?_rpmlock_path}", nullptr);
    std::string text = expanded != nullptr ? expanded : "";
    std::free(expanded);
    if (text.empty())
        text = std::string(k_dbpath) + "/.rpm.lock";
    const stdfs::path path = stdfs::path(text).lexically_normal();
    const bool dotdot = std::any_of(path.begin(), path.end(), [](const stdfs::path& c) { return c == ".."; });
    if (!path.is_absolute() || dotdot)
        throw RpmError(fmt::format("rpm's %_rpmlock_path is '{}', not an absolute path inside the root", text));
    return path;
}

std::optional<LockHolder> transaction_lock_holder(const fs::SystemRoot& root) {
    const auto lock_in = transaction_lock_path();
    if (!root.exists(lock_in))
        return std::nullopt;
    const auto fd = root.open_read(lock_in);
    return holder_of(fd.get(), root.host(lock_in));
}

void wait_for_transaction_lock(const fs::SystemRoot& root, std::chrono::seconds limit,
                               const LockWaitCallback& on_wait) {
    (void)wait_loop(root, limit, on_wait, false);
}

namespace detail {

fs::UniqueFd hold_transaction_lock(const fs::SystemRoot& root, std::chrono::seconds limit,
                                   const LockWaitCallback& on_wait) {
    return wait_loop(root, limit, on_wait, true);
}

} // namespace detail
} // namespace leo::rpm
