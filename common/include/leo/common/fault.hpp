#pragma once
/// Fault injection for the crash and signal tests: `fault::point("upgrade.after_restore_point")`
/// sends this process SIGKILL when the environment variable LEO_FAULT_INJECT names that
/// point, or the signal numbered LEO_FAULT_SIGNAL when that is set too (a SIGINT arriving
/// exactly there). Without the variable (every real run) it does nothing.

#include <string_view>

namespace leo::fault {

/// The environment variable the tests set.
inline constexpr const char* k_env = "LEO_FAULT_INJECT";
/// The signal number to send instead of SIGKILL (tests of deferred signals).
inline constexpr const char* k_signal_env = "LEO_FAULT_SIGNAL";
/// Seconds to sleep at the point instead of signalling (a step made slow: the lease's
/// background renewal must outlive it).
inline constexpr const char* k_sleep_env = "LEO_FAULT_SLEEP";
/// A file created (empty, mode 0600) when the point is reached, before the sleep: a test
/// acts exactly while the run waits there.
inline constexpr const char* k_reached_env = "LEO_FAULT_REACHED";

/// Signal this process (SIGKILL, or $LEO_FAULT_SIGNAL) when $LEO_FAULT_INJECT equals
/// `point`; or, when $LEO_FAULT_SLEEP is set, sleep that many seconds there instead
/// (after creating $LEO_FAULT_REACHED when that is set).
void point(std::string_view point);

} // namespace leo::fault
