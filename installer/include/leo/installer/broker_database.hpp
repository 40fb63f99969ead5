#pragma once
/// Which database the broker uses and how to reach it: the one choice the upgrade (its
/// gates and migrations), `setting`, `db purge` and `backup create` make (DESIGN.md "Paths under the root":
/// /etc/leostream/database.conf names an external database; absent or `mode = internal`,
/// it is the internal PostgreSQL instance under /home/leo/pgsql).

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace leo::installer {

struct BrokerDatabaseTarget {
    bool external = false;
    std::string conninfo;  ///< libpq conninfo; may hold a password: never printed
    std::string endpoint;  ///< for messages: "host:port/name", or "the internal database"
    /// For records (a backup's manifest): "user@host:port/name" of the external database,
    /// "leo" (the database's name) for the internal one.
    std::string name;
    std::optional<int> site_id;
};

/// The broker database of `root`: the external one database.conf names (its password
/// opened with the key file), or the internal instance, started when it is not running
/// (`notice` gets what the start says, e.g. a stale postmaster.pid moved aside). Throws
/// leo::UsageError for a database.conf that cannot be read, leo::Error when the external
/// password cannot be decrypted, leo::DatabaseError when the internal instance cannot start.
[[nodiscard]] BrokerDatabaseTarget broker_database_target(const std::filesystem::path& root,
                                                          const std::function<void(const std::string&)>& notice);

} // namespace leo::installer
