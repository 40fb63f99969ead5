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
    /// The last run when it is unfinished ("upgrade 9.0.7 -> 9.2.0"): `recover` is due.
    std::string unfinished_run;
};

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
