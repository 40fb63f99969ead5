#pragma once
// Helpers for the INI files read with inih, and their error messages (internal to
// leo_installer).
//
// inih goes on parsing after an error and returns the number of the first bad line, so a
// handler's message may belong to a later line, and a syntax error never reaches the
// handler. The handlers record every refused setting; ini_error() picks the one that
// belongs to the line inih reports, or calls that line a syntax error.

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"

#include <charconv>
#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace leo::installer::detail {

/// A setting a handler refused: its key and why.
struct IniRefusal {
    std::string key;
    std::string message;
};

/// `v` as a whole decimal number (all of it, no blanks or sign games); false otherwise.
inline bool parse_long(const std::string& v, long& out) {
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return ec == std::errc() && ptr == v.data() + v.size() && !v.empty();
}

/// "FILE:LINE: message" for inih's return value `line` (> 0) on `content`, the text that was
/// parsed (read once, through SystemRoot, by the caller).
inline UsageError ini_error(const std::filesystem::path& file, const std::string& content, int line,
                            const std::vector<IniRefusal>& refusals) {
    std::string text;
    {
        std::istringstream in(content);
        for (int i = 0; i < line && std::getline(in, text); ++i) {
        }
    }
    const auto start = text.find_first_not_of(" \t");
    const std::string trimmed = start == std::string::npos ? std::string() : text.substr(start);
    for (const auto& r : refusals) {
        const auto after = trimmed.size() > r.key.size() ? trimmed[r.key.size()] : '\0';
        if (trimmed.rfind(r.key, 0) == 0 && (after == ' ' || after == '\t' || after == '=' || after == ':'))
            return UsageError(fmt::format("{}:{}: {}", file.string(), line, r.message));
    }
    return UsageError(fmt::format("{}:{}: syntax error in '{}' (expected [section] or name = value)", file.string(),
                                  line, trimmed.substr(0, 60)));
}

} // namespace leo::installer::detail
