#pragma once
/// switch_database.pl: which database the broker uses (the documented CLI, flag for flag).
///
///   --show_current                      print the database in use (password masked)
///   --to_internal                       back to the internal database; nothing is copied
///   --to_external new                   postgres, mssqlserver: create the database (or use an
///                                       empty one of that name) and copy the current broker
///                                       database into it
///   --to_external existing              any vendor: connect to an existing broker database
///                                       (allow_remote_upgrade rules for its schema)
///   --to_external copy_to_existing      azuresql: copy into an existing empty database
///   --db_vendor postgres|mssqlserver|azuresql   (default postgres)
///   --db_name, --db_host, --port (1-65535, default the vendor's), --username, --password,
///   --site_id, --skip_confirmation, --allow_remote_upgrade
///
/// A switch stops the broker components (services.hpp), changes the database, records
/// it in ROOT/etc/leostream/database.conf (database_config.hpp), and starts them again.
/// It is a journaled run (journal.hpp, command "switch-database"): a failure undoes what
/// the switch created (the new database, or the copied objects in a database that was
/// empty) and leaves the configuration as it was; `leo-installer recover` does the same
/// after a crash, or finishes a switch that had been recorded. A copy is verified (row
/// counts and checksums of every table, sequence values) before the switch is recorded.
/// This build supports PostgreSQL only (vendor.hpp).

#include "leo/installer/database_config.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/upgrade.hpp"
#include "leo/migrations/engine.hpp"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace leo::installer {

enum class SwitchAction { show_current, to_internal, to_external };
enum class ExternalMode { new_database, existing, copy_to_existing };

/// "new", "existing", "copy_to_existing".
[[nodiscard]] std::string_view external_mode_id(ExternalMode m);

/// The flags as given on the command line (nullopt: not given), before validation.
struct SwitchFlags {
    bool show_current = false;
    bool to_internal = false;
    std::optional<std::string> to_external;
    std::optional<std::string> db_vendor;
    std::optional<std::string> db_name;
    std::optional<std::string> db_host;
    std::optional<std::string> port;
    std::optional<std::string> username;
    std::optional<std::string> site_id;
    bool password_given = false;  ///< --password or --password_file
    std::string password_flag = "--password";  ///< which of the two, for messages
    bool skip_confirmation = false;
    bool allow_remote_upgrade = false;
};

struct SwitchRequest {
    std::filesystem::path root = "/";
    SwitchAction action = SwitchAction::show_current;
    ExternalMode mode = ExternalMode::existing;
    migrations::Endpoint target;   ///< --to_external: where (the CLI fills the password)
    std::optional<int> site_id;
    migrations::AllowRemoteUpgrade allow_remote_upgrade = migrations::AllowRemoteUpgrade::no;
    bool skip_confirmation = false;
};

/// Check the flags and turn them into a request. Pure. Throws leo::UsageError (exit 2),
/// one line, for every invalid value or combination: not exactly one of --show_current,
/// --to_internal, --to_external; an unknown --to_external mode or --db_vendor; `new` with
/// azuresql or `copy_to_existing` with anything but azuresql (the documented pairs); a
/// connection flag without --to_external; --to_external without --db_host, --db_name or
/// --username; --port outside 1-65535; --site_id outside 1-2147483647; a value that is
/// empty, has control characters, or (host) blanks; a PostgreSQL --db_name over 63 bytes.
[[nodiscard]] SwitchRequest parse_switch_flags(const SwitchFlags& flags);

struct SwitchCallbacks {
    std::function<void(const std::string&)> on_step;
    std::function<void(const std::string&)> on_warning;
    /// Asked once with the plan, before anything changes; false cancels (nothing changed).
    /// Not called when the request has skip_confirmation.
    std::function<bool(const std::string&)> confirm;
};

struct SwitchOutcome {
    bool changed = false;
    std::string message;                ///< the result, one line
    std::vector<std::string> verified;  ///< per copied table: "jobs: 12 rows, checksum equal"
    std::vector<std::string> migrations_applied;
};

/// Run `--to_internal` or `--to_external` (see the file comment). Every check that can
/// refuse runs before the confirmation and before any change: leo::RefusedError (exit 3)
/// for a target that is not what the mode needs (`new`: not empty; `existing`: missing,
/// empty, not a broker database, newer schema, older schema without
/// allow_remote_upgrade, failed validation), a current schema that is not this broker's,
/// a stopped internal database to copy from, or a cancelled confirmation;
/// leo::DatabaseError for an unreachable server or a vendor this build does not support.
/// After the first change, a failure is undone and reported as leo::InstallError
/// ("switch to X failed: ...; undone: ...; the broker still uses Y").
SwitchOutcome switch_database(const SwitchRequest& request, const SwitchCallbacks& callbacks);

/// What `--show_current` reports.
struct CurrentDatabase {
    DatabaseConfig config;
    bool reachable = false;
    std::string error;                           ///< why it could not be read ("" when it could)
    std::optional<std::string> schema_version;
    std::optional<std::string> schema_broker_version;
};

/// Read-only: the configuration, and the schema version when the database answers
/// (the internal one is not started). Throws like load_database_config.
[[nodiscard]] CurrentDatabase show_current(const std::filesystem::path& root);
/// Lines for the terminal, the password masked.
[[nodiscard]] std::string to_text(const CurrentDatabase& current);

/// `recover` for an interrupted "switch-database" run: finish it when its "record" step
/// had ended (start the components), otherwise undo what it created and start the
/// components; end the run in the journal.
RecoverOutcome recover_switch(const std::filesystem::path& root, const RunRecord& run, Journal& journal,
                              const std::function<void(const std::string&)>& say);

} // namespace leo::installer
