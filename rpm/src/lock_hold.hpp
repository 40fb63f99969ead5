// Taking rpm's transaction lock for one of our transactions (private to rpm/src).
#pragma once

#include "leo/common/system_root.hpp"
#include "leo/rpm/lock.hpp"

#include <chrono>

namespace leo::rpm::detail {

/// Wait as wait_for_transaction_lock() does, then take rpm's transaction lock ourselves
/// (F_SETLK, a write lock on the whole of ROOT%{_rpmlock_path}) in the same step, so no
/// other rpm can slip in between the wait and our rpmtsRun: the returned descriptor holds
/// it until it is closed. librpm's own lock in this process then succeeds (POSIX locks do
/// not conflict with their owner); when librpm closes its descriptor the kernel drops
/// both, which is after our transaction. An empty descriptor when there is no lock file
/// yet (nobody can hold it: rpm makes it when it first locks) or it cannot be opened for
/// writing (a read-only rpmdb). Throws leo::RpmLockedError after `limit`.
[[nodiscard]] fs::UniqueFd hold_transaction_lock(const fs::SystemRoot& root, std::chrono::seconds limit,
                                                 const LockWaitCallback& on_wait);

} // namespace leo::rpm::detail
