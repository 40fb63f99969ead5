#pragma once
// Small helpers shared by the fuzz targets: the input as text, the selector byte of the
// targets that group several parsers, NUL-separated fields.
//
// Every target calls the project's real parsing functions and catches leo::Error (and its
// subclasses) only: that is how the parsers report bad input. Anything else escaping
// (std::out_of_range, std::bad_alloc, nlohmann::json::exception, std::logic_error, ...)
// is a bug: it reaches libFuzzer, which reports it as a crash and keeps the input.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace leo::fuzz {

inline std::string text_of(const std::uint8_t* data, std::size_t size) {
    return std::string(reinterpret_cast<const char*>(data), size);
}

/// The pieces of `text` between NUL bytes (an empty piece where two NULs meet).
inline std::vector<std::string> split_nul(std::string_view text) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    for (;;) {
        const auto nul = text.find('\0', pos);
        out.emplace_back(text.substr(pos, nul == std::string_view::npos ? nul : nul - pos));
        if (nul == std::string_view::npos)
            break;
        pos = nul + 1;
    }
    return out;
}

/// A property the parsers promise does not hold: report and abort (libFuzzer keeps the input).
[[noreturn]] inline void violated(const char* what) {
    std::fprintf(stderr, "fuzz: property violated: %s\n", what);
    std::abort();
}

} // namespace leo::fuzz
