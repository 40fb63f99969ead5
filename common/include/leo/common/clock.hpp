#pragma once
/// UTC timestamps for logs, the journal, the lock and restore-point ids.

#include <cstdint>
#include <string>

namespace leo::clock {

/// The current UTC time formatted with strftime `format`
/// (default ISO-8601, "2026-11-29T15:30:00Z"; restore-point ids use "%Y%m%dT%H%M%SZ").
[[nodiscard]] std::string utc_now(const char* format = "%Y-%m-%dT%H:%M:%SZ");

/// `seconds` since the epoch as a UTC time formatted with strftime `format` (default as
/// utc_now's); "" when the time cannot be represented.
[[nodiscard]] std::string utc_time(std::int64_t seconds, const char* format = "%Y-%m-%dT%H:%M:%SZ");

} // namespace leo::clock
