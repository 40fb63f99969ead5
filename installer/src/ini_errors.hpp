#pragma once
// Helpers for the INI files read with inih, and their error messages (internal to
// leo_installer).
//
// inih goes on parsing after an error and returns the number of the first bad line, so a
// handler's message may belong to a later line, and a syntax error never reaches the
// handler. The handlers record every refused setting; ini_error() picks the one that
// belongs to the line inih reports, or calls that line a syntax error.

#include "leo/common/error.hpp"

#include <charconv>
#include <cstring>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <ini.h>

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

/// ini_parse() over text in memory: inih is handed the text as fgets() would hand it a
/// file (at most `num` - 1 bytes a call, up to and including a newline; NUL bytes are passed
/// through as they are), so parsing the file's content is parsing the file.
inline int ini_parse_text(const std::string& content, ini_handler handler, void* user) {
    struct Stream {
        const std::string& text;
        std::size_t pos = 0;
    } stream{content};
    const ini_reader reader = [](char* str, int num, void* arg) -> char* {
        auto& s = *static_cast<Stream*>(arg);
        if (num <= 1 || s.pos >= s.text.size()) return nullptr;
        const std::size_t max = static_cast<std::size_t>(num - 1);
        std::size_t n = 0;
        while (n < max && s.pos + n < s.text.size()) {
            if (s.text[s.pos + n++] == '\n') break;
        }
        std::memcpy(str, s.text.data() + s.pos, n);
        str[n] = '\0';
        s.pos += n;
        return str;
    };
    return ini_parse_stream(reader, &stream, handler, user);
}

/// "FILE:LINE: message" for inih's return value `line` (> 0); `content` is the file's text.
inline UsageError ini_error(const std::string& file, const std::string& content, int line,
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
            return UsageError(fmt::format("{}:{}: {}", file, line, r.message));
    }
    return UsageError(fmt::format("{}:{}: syntax error in '{}' (expected [section] or name = value)", file, line,
                                  trimmed.substr(0, 60)));
}

} // namespace leo::installer::detail
