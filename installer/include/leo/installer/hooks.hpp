#pragma once
/// The hooks the broker package's scriptlets call (rpm/specs/leostream-broker.spec), so
/// that `yum localinstall` and `rpm -U` do what `leo-installer install` / `upgrade` do:
///
///   %pretrans   leo-installer hook pretrans          a restore point when one can be taken
///   %pre        leo-installer hook pre --install|--upgrade   (rpm's $1: 1 or >= 2)
///               read-only preflight of that profile; an inhibitor fails %pre, which
///               stops the transaction before any file changes; then the leo user
///   %posttrans  leo-installer hook posttrans         database, migrations, components
///
/// rpm runs scriptlets chrooted into its --root, so inside a scriptlet the root is "/";
/// every hook also takes --root for running it by hand or in a test. When leo-installer
/// runs the transaction itself (install, upgrade, rollback, recover), librpm's environment
/// carries rpm::k_own_transaction_env and every hook does nothing (own_transaction()):
/// that command does these steps itself, once.

#include "leo/preflight/checks.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace leo::installer {

/// Why the hooks must do nothing in this process: "inside leo-installer's own rpm
/// transaction (pid N)" when rpm::k_own_transaction_env is set, nullopt otherwise.
[[nodiscard]] std::optional<std::string> own_transaction();

/// Environment variable an administrator sets for `yum localinstall` / `rpm -U` to let
/// %posttrans migrate an external (shared) database: "1" acts as --allow-remote-upgrade.
/// rpm and yum hand their environment to the scriptlets.
inline constexpr const char* k_allow_remote_upgrade_env = "LEO_ALLOW_REMOTE_UPGRADE";

/// How the hooks talk to their caller (the library never prints).
struct HookCallbacks {
    std::function<void(const std::string&)> on_step;     ///< one line per action
    std::function<void(const std::string&)> on_warning;  ///< a warning to show
    std::function<void(const preflight::Report&)> on_preflight;  ///< %pre: the whole report
};

enum class PreMode { install, upgrade };

struct PreRequest {
    std::filesystem::path root = "/";
    PreMode mode = PreMode::install;               ///< rpm's $1: 1 install, >= 2 upgrade
    std::map<std::string, std::string> skips;      ///< --skip ID --reason TEXT
};

struct PreOutcome {
    std::optional<std::string> skipped;  ///< why nothing was done (own_transaction())
    preflight::Report report;
    bool user_created = false;
};

/// %pre: preflight (the install or upgrade profile; read-only), then the layout checks
/// `install` makes before it changes anything (/home/leo a real directory, its parents
/// searchable by leo), then the leo group and user when missing (useradd, as the Fedora
/// packaging guidelines create system accounts in %pre; idempotent). Throws
/// leo::RefusedError (exit 3) on an inhibitor, an unfinished run in the journal (run
/// `recover` first) or another leo-installer run holding the run lock, and
/// leo::InstallError for a root the broker cannot live in; nothing is changed then.
PreOutcome run_pre_hook(const PreRequest& request, const HookCallbacks& callbacks);

struct PretransOutcome {
    std::optional<std::string> skipped;  ///< own transaction, or no broker installed yet
    std::optional<std::string> restore_point;  ///< the id taken
    std::optional<std::string> not_taken;      ///< why none could be taken (said plainly)
};

/// %pretrans: a restore point of the installed broker before rpm replaces it, when one can
/// be taken (internal database, the installed RPM kept, no other session, no other run).
/// Never throws for a restore point that cannot be taken: `not_taken` says why and what
/// to do (`leo-installer snapshot create` before the transaction); rpm goes on. Throws
/// leo::UsageError for a bad root only.
PretransOutcome run_pretrans_hook(const std::filesystem::path& root, const HookCallbacks& callbacks);

struct PosttransRequest {
    std::filesystem::path root = "/";
    /// --allow-remote-upgrade, or k_allow_remote_upgrade_env=1: an external database whose
    /// schema is older than the package's is migrated (DESIGN.md allow_remote_upgrade).
    bool allow_remote_upgrade = false;
    /// --lease-wait: how long an external database's posttrans waits for the cluster's
    /// upgrade lease while another broker holds it.
    std::chrono::seconds lease_wait{900};
};

struct PosttransOutcome {
    std::optional<std::string> skipped;  ///< own transaction, or no broker installed
    std::string nevra;                   ///< the broker installed
    bool database_initialised = false;
    std::vector<std::string> migrations_applied;
    std::optional<std::string> schema_version;
    std::vector<std::string> restarted;  ///< components stopped before and started after
    std::int64_t lease_token = 0;        ///< the cluster's upgrade lease it held (external; 0: none)
};

/// %posttrans: for the broker the transaction installed, initialise or start the internal
/// database and apply its migrations (an external one: only with allow_remote_upgrade when
/// older, as `upgrade`; a shared one under the cluster's upgrade lease), restart the
/// components that were running (stopped before the migrations, started after: rpm's
/// try-restart), then spot-check the result as `upgrade` does (spot_check.hpp: the rpmdb,
/// the schema, the restarted components answering the new version). Idempotent: a second run applies nothing
/// and restarts only what runs. Recorded in the journal as a run "hook-posttrans", so that
/// `leo-installer recover` finishes one that failed or was killed. Throws leo::InstallError
/// whose message says the package is installed and to finish with `leo-installer recover`
/// (rpm cannot undo a transaction from a scriptlet), the cause nested; leo::RefusedError
/// when another run holds the lock or the journal has an unfinished run of another command.
PosttransOutcome run_posttrans_hook(const PosttransRequest& request, const HookCallbacks& callbacks);

} // namespace leo::installer
