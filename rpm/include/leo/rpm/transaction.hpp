#pragma once
/// librpm transactions into a root, and rpmdb queries.

#include "leo/rpm/lock.hpp"
#include "leo/rpm/package.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace leo::rpm {

enum class TransactionKind {
    install,   ///< the package must not be installed yet
    upgrade,   ///< replaces older versions of the same name
    downgrade, ///< replaces a newer version (RPMPROB_FILTER_OLDPACKAGE)
};

/// Set (to this process's pid) in the environment of every transaction leo-installer runs
/// itself, and only for its duration: librpm hands its environment to the scriptlets (rpm
/// 4.18, checked; Lua scriptlets run inside the process and read it with os.getenv). The
/// broker package's scriptlets and `leo-installer hook ...` see it and do nothing: the
/// command that runs the transaction does those steps itself (rpm/specs/leostream-broker.spec).
inline constexpr const char* k_own_transaction_env = "LEO_INSTALLER_TRANSACTION";

struct TransactionOptions {
    TransactionKind kind = TransactionKind::upgrade;
    /// Require a verified signature in the transaction's own check (librpm's
    /// %_pkgverify_level "signature"); otherwise "digest".
    bool require_signature = true;
    Keys keys;               ///< keys added (in memory) to the root's keyring
    bool noscripts = false;  ///< RPMTRANS_FLAG_NOSCRIPTS
    /// Also reinstall when the same NEVRA is installed (rpm --replacepkgs): rewrites its files.
    bool replace = false;
    /// Progress: (package file, bytes done, bytes total) during the install.
    std::function<void(const std::string&, std::uint64_t, std::uint64_t)> on_progress;
    /// How long to wait for another process's rpm transaction on the same root (rpm's
    /// transaction lock, lock.hpp) before giving up with leo::RpmLockedError.
    std::chrono::seconds lock_wait_limit{60};
    /// Told once when the transaction has to wait for that lock (and again if another
    /// process takes it over), so a CLI can say whom it waits for; optional.
    std::function<void(const LockHolder&)> on_lock_wait;
};

/// Run the transaction for `package_file` in `root` (absolute): dependency check,
/// order, a test run (RPMTRANS_FLAG_TEST), then the real run. Throws leo::RpmError
/// naming each problem (unresolved dependency, conflict, disk space, "already
/// installed") when the check or the test run fails: then nothing was changed.
/// rpm chroots the process during the run: no other thread may be running.
///
/// First it waits for rpm's transaction lock of `root` (another rpm, yum or dnf at work)
/// and takes it, for at most `options.lock_wait_limit`, telling `options.on_lock_wait`;
/// it holds it through the test run and the real run. Throws leo::RpmLockedError (an
/// RpmError: nothing was changed) when the lock stays taken.
void run_transaction(const std::filesystem::path& root, const std::filesystem::path& package_file,
                     const TransactionOptions& options);

/// Check and test-run only (changes nothing), after waiting for rpm's transaction lock as
/// run_transaction does (a test run beside another transaction would judge an rpmdb that
/// is about to change). Same errors as run_transaction.
void test_transaction(const std::filesystem::path& root, const std::filesystem::path& package_file,
                      const TransactionOptions& options);

/// Installed packages named `name` in the rpmdb of `root` (empty when none, or when
/// the root has no rpmdb yet). Throws leo::RpmError when the rpmdb cannot be read.
[[nodiscard]] std::vector<PackageInfo> query_installed(const std::filesystem::path& root,
                                                       const std::string& name);

/// Installed packages that provide `capability` (rpm -q --whatprovides), with their
/// Provides, in rpmdb order (empty when none, or when the root has no rpmdb yet). Throws
/// leo::RpmError when the rpmdb cannot be read.
[[nodiscard]] std::vector<PackageInfo> query_providers(const std::filesystem::path& root,
                                                       const std::string& capability);

/// Remove the rpmdb entry of `nevra` without touching files or running scriptlets
/// (rpm -e --justdb --noscripts): the repair after an interrupted transaction left two
/// versions in the rpmdb. Waits for rpm's transaction lock first, as run_transaction does
/// (of `options`, only lock_wait_limit and on_lock_wait apply). Throws leo::RpmError when
/// it is not installed or rpm fails, leo::RpmLockedError when the lock stays taken.
void remove_rpmdb_entry(const std::filesystem::path& root, const std::string& nevra,
                        const TransactionOptions& options = {});

/// Erase the installed package `nevra` from `root`, files included (rpm -e --noscripts):
/// the undo of a first install that was interrupted. Waits for rpm's transaction lock
/// first, as remove_rpmdb_entry does. Throws leo::RpmError (leo::RpmLockedError).
void erase_package(const std::filesystem::path& root, const std::string& nevra,
                   const TransactionOptions& options = {});

/// True when ROOT/var/lib/rpm holds an rpmdb.
[[nodiscard]] bool has_rpmdb(const std::filesystem::path& root);

} // namespace leo::rpm
