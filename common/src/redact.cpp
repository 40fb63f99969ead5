#include "leo/common/redact.hpp"

#include <array>
#include <cctype>

#include <fmt/format.h>

namespace leo {
namespace {

bool scheme_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
}

/// At `i` (just after "://"): the end of "user:pass@" when the authority holds a password,
/// and where the password starts; npos otherwise.
std::pair<size_t, size_t> userinfo_password(std::string_view s, size_t i) {
    size_t colon = std::string_view::npos;
    for (size_t j = i; j < s.size(); ++j) {
        const char c = s[j];
        // RFC 3986 allows ' and the other sub-delims in user information; " and blanks end a URL.
        if (c == '/' || c == '?' || c == '#' || c == ' ' || c == '\t' || c == '\n' || c == '"')
            return {std::string_view::npos, 0};
        if (c == ':' && colon == std::string_view::npos)
            colon = j;
        if (c == '@') {
            // the last '@' of the authority ends the user information
            size_t k = j + 1;
            while (k < s.size() && s[k] != '/' && s[k] != '?' && s[k] != '#' && s[k] != ' ' && s[k] != '@') ++k;
            if (k < s.size() && s[k] == '@') continue;
            if (colon == std::string_view::npos)
                return {std::string_view::npos, 0};
            return {j, colon + 1};
        }
    }
    return {std::string_view::npos, 0};
}

constexpr std::array<std::string_view, 3> k_keywords{"proxy_password", "sslpassword", "password"};

} // namespace

std::string redact_secrets(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        // scheme://user:pass@
        if (s.compare(i, 3, "://") == 0 && i > 0 && scheme_char(s[i - 1])) {
            out += "://";
            i += 3;
            const auto [at, pass] = userinfo_password(s, i);
            if (at != std::string_view::npos) {
                out.append(s.substr(i, pass - i));
                out += "***@";
                i = at + 1;
            }
            continue;
        }
        // keyword = value
        bool matched = false;
        for (auto kw : k_keywords) {
            if (s.compare(i, kw.size(), kw) != 0)
                continue;
            if (i > 0 && (std::isalnum(static_cast<unsigned char>(s[i - 1])) != 0 || s[i - 1] == '_'))
                continue;
            size_t j = i + kw.size();
            while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
            if (j >= s.size() || (s[j] != '=' && s[j] != ':'))
                continue;
            ++j;
            while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
            out.append(s.substr(i, j - i));
            size_t end = j;
            if (j < s.size() && s[j] == '\'') {
                end = j + 1;
                while (end < s.size() && s[end] != '\'') end += (s[end] == '\\' && end + 1 < s.size()) ? 2 : 1;
                end = end < s.size() ? end + 1 : s.size();
            } else {
                while (end < s.size() && s[end] != ' ' && s[end] != '\t' && s[end] != '\n' && s[end] != '"' &&
                       s[end] != ',' && s[end] != ';' && s[end] != ')')
                    ++end;
            }
            out += end > j ? "***" : "";
            i = end;
            matched = true;
            break;
        }
        if (matched)
            continue;
        out += s[i++];
    }
    return out;
}

std::string printable(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f)
            out += fmt::format("\\x{:02x}", u);
        else
            out += c;
    }
    return out;
}

} // namespace leo
