#pragma once
/// The upgrade's spot-check (DESIGN.md "The maintenance-window upgrade", step 7): probes,
/// each retried until it passes or its timeout ends, that the broker runs the new version.

#include "leo/installer/services.hpp"
#include "leo/rpm/package.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace leo::migrations {
class Connection;
}

namespace leo::installer {

struct SpotCheckInputs {
    std::filesystem::path root;
    rpm::PackageInfo target;
    std::optional<std::string> expected_schema;  ///< what the package ships ("" unknown)
    StoppedComponents started;                   ///< the components started again after the change
    std::chrono::seconds timeout{30};            ///< installer.conf [spot_check] timeout, per probe
};

/// Probe, in order: the rpmdb holds exactly the target; the database's schema is the
/// version the package ships; when the web server was started again, its health endpoint
/// answers the target's version and that schema version; when the worker was started
/// again, it runs and its heartbeat is at most 5 s old. `on_step` gets one line per probe
/// passed. Throws leo::InstallError "spot-check: ..." naming the probe, what it expected
/// and what it saw.
void spot_check(migrations::Connection& conn, const SpotCheckInputs& inputs,
                const std::function<void(const std::string&)>& on_step);

} // namespace leo::installer
