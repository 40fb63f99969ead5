#include "leo/common/clock.hpp"

#include <ctime>

namespace leo::clock {

std::string utc_now(const char* format) { return utc_time(static_cast<std::int64_t>(std::time(nullptr)), format); }

std::string utc_time(std::int64_t seconds, const char* format) {
    const auto t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    if (gmtime_r(&t, &tm) == nullptr) {
        return {};
    }
    char buf[64];
    const size_t n = std::strftime(buf, sizeof buf, format, &tm);
    return std::string(buf, n);
}

} // namespace leo::clock
