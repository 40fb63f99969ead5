#pragma once
/// `leo-installer status`: installed NEVRA, schema version, database state.

#include "leo/migrations/internal_db.hpp"
#include "leo/rpm/package.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace leo::installer {

struct Status {
    std::vector<rpm::PackageInfo> installed;   ///< broker packages in the rpmdb (normally 0 or 1)
    migrations::DbStatus database;
    std::optional<std::string> schema_version; ///< when the database is running
    std::optional<std::string> schema_broker_version;
    std::optional<std::string> packaged_schema_version; ///< newest migration shipped in /home/leo
    std::string database_error;                ///< why the schema could not be read ("" when it could)
    /// The database the broker uses (database.conf): "internal", or the external
    /// endpoint without its password ("postgres broker@db:5432/leo").
    std::string database_in_use = "internal";
    bool external = false;
    /// The last run when it is unfinished ("upgrade 9.0.7 -> 9.2.0") and no live run
    /// holds the lock: `recover` is due.
    std::string unfinished_run;
    /// The live run holding the lock ("pid N, leo-installer upgrade to X, started T"):
    /// its journal is in progress, not unfinished.
    std::string in_progress;
    /// Why the journal cannot be used (damaged, or written by a newer leo-installer), with
    /// what to do; "" when it can. Whether a run is unfinished is then unknown.
    std::string journal_error;
    /// What could not be read (as a user other than root), each "PATH: why"; the state
    /// that depends on it is reported as unknown, never guessed.
    std::vector<std::string> unreadable;
};

/// `status`'s exit codes (README "status"): 0 installed and consistent, 1 error, 3 no
/// broker installed, 4 something could not be read (not root), 5 a run is unfinished
/// (`recover` is due) or the journal cannot be used, 6 the schema does not match the package or cannot be read, 7 a
/// run is in progress.
enum class StatusCode : int {
    ok = 0,
    not_installed = 3,
    unreadable = 4,
    unfinished = 5,
    schema_mismatch = 6,
    in_progress = 7
};

/// The exit code that `status` gives for `status` (the first that applies, in the order
/// in progress, unreadable, unfinished, not installed, schema).
[[nodiscard]] StatusCode status_code(const Status& status);

/// The newest migration version shipped in ROOT/home/leo/share/migrations (the schema
/// the installed package expects), or nullopt when it ships none. Throws
/// leo::MigrationError for a bad migration file name.
[[nodiscard]] std::optional<std::string> shipped_schema_version(const std::filesystem::path& root);

/// Read-only: changes nothing (the database is not started). The schema is read from
/// the database in use (the external one when database.conf says so).
[[nodiscard]] Status gather_status(const std::filesystem::path& root);
[[nodiscard]] nlohmann::json to_json(const Status& status);
[[nodiscard]] std::string to_text(const Status& status);

} // namespace leo::installer
