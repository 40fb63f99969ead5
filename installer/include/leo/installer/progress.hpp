#pragma once
/// The one line a progress bar shows (the CLI redraws it on a terminal, never on a pipe).

#include <cstddef>
#include <cstdint>
#include <string>

namespace leo::installer {

/// `bytes` for people: "512 B", "1.5 KiB", "27.0 MiB", "3.2 GiB" (1024-based, as rpm and dnf).
[[nodiscard]] std::string human_bytes(std::uint64_t bytes);

/// One progress line of at most `width` columns, without a line end:
/// "  LABEL [#####-----]  45%  12.3 MiB/27.0 MiB  3.4 MiB/s  00:04 left", or, with
/// `total` 0 (unknown), "  LABEL  12.3 MiB  3.4 MiB/s". The rate is `done` over
/// `elapsed_seconds` (none shown before 0.2 s); the time left is the rest at that rate
/// ("--:--" when unknown). The bar shrinks first when the line is too wide.
[[nodiscard]] std::string progress_line(const std::string& label, std::uint64_t done, std::uint64_t total,
                                        double elapsed_seconds, std::size_t width);

} // namespace leo::installer
