#pragma once
/// Fault injection for the crash tests: `fault_point("upgrade.after_restore_point")`
/// kills the process with SIGKILL when the environment variable LEO_FAULT_INJECT names
/// that point. Without the variable (every real run) it does nothing.

#include <string_view>

namespace leo::fault {

/// The environment variable the tests set.
inline constexpr const char* k_env = "LEO_FAULT_INJECT";

/// SIGKILL this process when $LEO_FAULT_INJECT equals `point`.
void point(std::string_view point);

} // namespace leo::fault
