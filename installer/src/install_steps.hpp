#pragma once
// Steps that `install`, `upgrade` and the rpm hooks (hooks.cpp) share: the layout of the
// root and the internal database step. Internal to leo_installer.

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace leo::installer::install_steps {

/// The root must look like an OS root (etc/passwd, etc/group), /home/leo must be a real
/// directory or absent, and with `with_database` every directory above /home/leo must be
/// searchable by others (the internal PostgreSQL runs as leo: PITFALLS.md). Read-only.
/// Throws leo::InstallError naming the path and the fix.
void check_root_layout(const std::filesystem::path& root, bool with_database);

struct DatabaseStepResult {
    bool initialised = false;               ///< initdb ran (false: the cluster existed)
    std::vector<std::string> applied;       ///< migration scripts applied, in order
    std::optional<std::string> schema_version;
};

/// The internal database step of a first install or of an rpm transaction's posttrans:
/// initialise the cluster under /home/leo/pgsql when missing, start it when stopped, apply
/// the migrations shipped in /home/leo/share/migrations for broker `broker_version`
/// (internal database: no --allow-remote-upgrade needed). Idempotent. `on_step` gets one
/// line per action. Throws leo::DatabaseError / leo::MigrationError / leo::SystemError.
DatabaseStepResult internal_database_step(const std::filesystem::path& root, const std::string& broker_version,
                                          const std::function<void(const std::string&)>& on_step);

} // namespace leo::installer::install_steps
