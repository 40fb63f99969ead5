#pragma once
// What services.cpp and supervisor.cpp share (internal to leo_installer): the database
// component, the same in every ServiceManager, and the supervisor's factory.

#include "leo/installer/config.hpp"
#include "leo/installer/services.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace leo::installer::detail {

/// `epoch` (seconds) as "2026-12-01T06:00:00Z".
[[nodiscard]] std::string utc(std::int64_t epoch);

/// The database component: the internal PostgreSQL instance; "not managed here" with an
/// external database, whose start and stop throw leo::Error (its administrator's).
[[nodiscard]] ComponentStatus db_status(const std::filesystem::path& root);
bool db_start(const std::filesystem::path& root);
bool db_stop(const std::filesystem::path& root);

/// The supervisor (services.hpp "supervisor"): supervisor.cpp.
[[nodiscard]] std::unique_ptr<ServiceManager> make_supervisor(std::filesystem::path root, InstallerConfig config);

} // namespace leo::installer::detail
