#pragma once
/// Stopping and starting the broker's components around a change of its database
/// (switch_database.pl: "after a switch the broker components restart").
///
/// Which command: installer.conf `[services] stop_command` / `start_command` (run with
/// /bin/sh -c, LEO_ROOT in the environment, `[services] timeout` each) when set;
/// otherwise, on the real system (root "/") booted with systemd (/run/systemd/system)
/// that has a leostream-broker.service unit, `systemctl stop|start
/// leostream-broker.service`; otherwise there is nothing this tool can run (a sandbox
/// root, a system without the unit) and the outcome says so.

#include <filesystem>
#include <string>

namespace leo::installer {

inline constexpr const char* k_broker_unit = "leostream-broker.service";

struct ServiceOutcome {
    bool ran = false;        ///< a command ran (and succeeded)
    std::string command;     ///< the command, or "" when none applies
    std::string message;     ///< what happened, one line, for the terminal (the caller logs it)
};

/// What stop/start will do, as a sentence for a confirmation question: "the broker
/// components are stopped before and started after (`CMD`)", or that they cannot be from
/// here and must be stopped by hand. Throws leo::UsageError for a bad installer.conf.
[[nodiscard]] std::string services_plan(const std::filesystem::path& root);

/// Stop the broker components. Throws leo::SystemError naming the command and its last
/// line of output when it fails or times out.
ServiceOutcome stop_broker(const std::filesystem::path& root);
/// Start them. Throws like stop_broker.
ServiceOutcome start_broker(const std::filesystem::path& root);

} // namespace leo::installer
