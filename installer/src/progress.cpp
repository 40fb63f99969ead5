// The text of a progress line (the CLI draws it).
#include "leo/installer/progress.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace leo::installer {

std::string human_bytes(std::uint64_t bytes) {
    if (bytes < 1024) return fmt::format("{} B", bytes);
    const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
    double value = static_cast<double>(bytes) / 1024.0;
    std::size_t unit = 0;
    while (value >= 1024.0 && unit + 1 < std::size(units)) {
        value /= 1024.0;
        ++unit;
    }
    return fmt::format("{:.1f} {}", value, units[unit]);
}

std::string progress_line(const std::string& label, std::uint64_t done, std::uint64_t total, double elapsed_seconds,
                          std::size_t width) {
    const bool timed = elapsed_seconds >= 0.2;
    const double rate = timed ? static_cast<double>(done) / elapsed_seconds : 0.0;
    const std::string rate_text = timed ? human_bytes(static_cast<std::uint64_t>(rate)) + "/s" : "";
    if (total == 0) {
        std::string line = fmt::format("  {}  {}", label, human_bytes(done));
        if (!rate_text.empty()) line += "  " + rate_text;
        return line.substr(0, width);
    }
    done = std::min(done, total);
    const auto pct = static_cast<unsigned>(done * 100 / total);
    std::string left = "--:--";
    if (done == total) {
        left = fmt::format("{:02}:{:02}", static_cast<unsigned>(elapsed_seconds) / 60,
                           static_cast<unsigned>(elapsed_seconds) % 60);
    } else if (rate > 0) {
        const auto seconds = static_cast<std::uint64_t>(static_cast<double>(total - done) / rate + 0.5);
        left = seconds >= 100 * 3600 ? "--:--" : fmt::format("{:02}:{:02}", seconds / 60, seconds % 60);
    }
    const std::string tail = fmt::format(" {:3}%  {}/{}{}  {} {}", pct, human_bytes(done), human_bytes(total),
                                         rate_text.empty() ? "" : "  " + rate_text, left,
                                         done == total ? "total" : "left");
    const std::string head = "  " + label + " [";
    const std::size_t fixed = head.size() + 1 + tail.size();
    const std::size_t bar = width > fixed + 10 ? std::min<std::size_t>(width - fixed, 30) : 10;
    const std::size_t filled = static_cast<std::size_t>(done * bar / total);
    std::string line = head + std::string(filled, '#') + std::string(bar - filled, '-') + "]" + tail;
    return line.substr(0, width);
}

} // namespace leo::installer
