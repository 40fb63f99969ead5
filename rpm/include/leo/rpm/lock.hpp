#pragma once
/// rpm's transaction lock: who holds it, and waiting for it before our own transactions.
///
/// rpm serialises the transactions on one root with an fcntl(2) write lock on the whole of
/// %{_rpmlock_path}, by default %{_dbpath}/.rpm.lock, that is ROOT/var/lib/rpm/.rpm.lock
/// with our pinned _dbpath (lib/rpmlock.c in rpm 4.11 and 4.18). Checked against rpm 4.18
/// here with a real `rpm -i` whose %pre sleeps: /proc/locks shows a POSIX WRITE lock of the
/// rpm process on that file, and F_GETLK names its pid. When rpm finds the lock taken it
/// logs "waiting for transaction lock on ..." and blocks for as long as the holder runs
/// (rpm 4.11 always; 4.18 when its stdin is a terminal), or fails at once with "can't
/// create transaction lock on ... (Resource temporarily unavailable)" (4.18, no terminal).
/// Either way a run of ours would hang or fail after its restore point, so every
/// transaction of leo::rpm waits here first, with a limit, naming the holder.

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <sys/types.h>

namespace leo::fs {
class SystemRoot;
} // namespace leo::fs

namespace leo::rpm {

/// The process holding rpm's transaction lock.
struct LockHolder {
    /// Its pid as fcntl(F_GETLK) reports it; 0 when the kernel cannot say (an open file
    /// description lock, or a holder in another pid namespace).
    pid_t pid = 0;
    /// /proc/PID/cmdline, arguments joined with spaces, control characters escaped
    /// ("rpm -i foo.rpm"); "" when it cannot be read (the holder just ended).
    std::string command;
};

/// The lock file inside every root: rpm's %{_rpmlock_path} expanded with _dbpath pinned
/// to /var/lib/rpm ("/var/lib/rpm/.rpm.lock"; the same when the macro is undefined).
/// Throws leo::RpmError when the macro is not an absolute path without "..".
[[nodiscard]] std::filesystem::path transaction_lock_path();

/// Who holds rpm's transaction lock in `root` now, or nullopt when nobody does or the lock
/// file does not exist (it is never created here). The file is opened read-only through
/// `root` (no unsafe link followed) and asked with fcntl(F_GETLK) whether a write lock on
/// all of it would conflict. Locks of the calling process are never reported (POSIX locks
/// do not conflict with their owner). Throws leo::SystemError for an unsafe link or a file
/// that cannot be opened, leo::RpmError when fcntl fails.
[[nodiscard]] std::optional<LockHolder> transaction_lock_holder(const fs::SystemRoot& root);

/// Told while waiting: the holder, and how long the caller has waited so far (0 at first).
using LockWaitCallback = std::function<void(const LockHolder& holder, std::chrono::milliseconds waited)>;

/// Returns as soon as nobody holds rpm's transaction lock in `root`, polling every 100 ms
/// for at most `limit` (0: look once). `on_wait` (optional) is called once when waiting
/// starts, so a CLI can say "waiting for pid N (rpm -i foo.rpm) to finish its rpm
/// transaction (up to 60 s)", and again only when another process takes the lock over.
/// Throws leo::RpmLockedError when the lock is still held after `limit`: the message
/// names the lock file, the holder's pid and command (saying that nothing was changed is
/// the caller's). The lock may be taken by another process the moment this returns; our
/// transactions (run_transaction, test_transaction, erase_package, remove_rpmdb_entry)
/// therefore also take it themselves, atomically, before rpm runs.
void wait_for_transaction_lock(const fs::SystemRoot& root, std::chrono::seconds limit,
                               const LockWaitCallback& on_wait = {});

} // namespace leo::rpm
