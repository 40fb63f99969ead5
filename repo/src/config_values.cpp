// yum's value types: booleans, lists and numbers of .repo files and yum.conf.
#include "config_values.hpp"

#include "leo/common/system_root.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace leo::repo::detail {



std::string changeable_by_others(const struct stat& st, const std::string& host) {
    if (!leo::fs::writable_by_others(st)) return {};
    return fmt::format("{} can be changed by a user other than root (owner uid {}, mode {:04o})", host, st.st_uid,
                       st.st_mode & 07777);
}

/// Lists (baseurl, gpgkey) are separated by whitespace or commas.
std::vector<std::string> split_list(std::string_view value) {
    std::vector<std::string> items;
    std::string current;
    for (const char c : value) {
        if (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (!current.empty()) {
                items.push_back(std::move(current));
                current.clear();
            }
        } else {
            current += c;
        }
    }
    if (!current.empty()) {
        items.push_back(std::move(current));
    }
    return items;
}

std::optional<bool> parse_bool(const std::string& value) {
    const std::string v = lower(trim(value));
    if (v == "1" || v == "yes" || v == "true" || v == "on") {
        return true;
    }
    if (v == "0" || v == "no" || v == "false" || v == "off") {
        return false;
    }
    return std::nullopt;
}

bool has_supported_scheme(std::string_view url) {
    return url.starts_with("http://") || url.starts_with("https://") || url.starts_with("file://");
}

namespace {

template <class T>
Parsed<T> fail_parse(std::string why) {
    return Parsed<T>{std::nullopt, std::move(why)};
}

/// A whole decimal number in [lo, hi], or nullopt.
std::optional<std::int64_t> whole(std::string_view text, std::int64_t lo, std::int64_t hi) {
    if (text.empty() || text.size() > 18) {
        return std::nullopt;
    }
    std::int64_t value = 0;
    bool negative = false;
    std::size_t i = 0;
    if (text[0] == '-') {
        negative = true;
        i = 1;
    }
    if (i == text.size()) {
        return std::nullopt;
    }
    for (; i < text.size(); ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return std::nullopt;
        }
        value = value * 10 + (text[i] - '0');
    }
    if (negative) {
        value = -value;
    }
    if (value < lo || value > hi) {
        return std::nullopt;
    }
    return value;
}

} // namespace

Parsed<int> parse_priority(const std::string& text) {
    if (auto v = whole(text, 1, 99)) return Parsed<int>{static_cast<int>(*v), {}};
    return fail_parse<int>("not a priority (a whole number from 1, the highest, to 99)");
}

Parsed<int> parse_cost(const std::string& text) {
    if (auto v = whole(text, 0, 1000000)) return Parsed<int>{static_cast<int>(*v), {}};
    return fail_parse<int>("not a cost (a whole number from 0 to 1000000)");
}

/// yum's time values: seconds, or a number with a d/h/m/s suffix; "never" or -1 for never.
Parsed<std::int64_t> parse_expire(const std::string& text) {
    if (text == "never" || text == "-1") return Parsed<std::int64_t>{-1, {}};
    std::int64_t unit = 1;
    std::string_view digits = text;
    if (!digits.empty()) {
        switch (digits.back()) {
        case 's': unit = 1; digits.remove_suffix(1); break;
        case 'm': unit = 60; digits.remove_suffix(1); break;
        case 'h': unit = 3600; digits.remove_suffix(1); break;
        case 'd': unit = 86400; digits.remove_suffix(1); break;
        default: break;
        }
    }
    if (auto v = whole(digits, 0, std::int64_t{100} * 365 * 86400)) return Parsed<std::int64_t>{*v * unit, {}};
    return fail_parse<std::int64_t>("not a time (seconds, or a number with d, h, m or s; never or -1 for never)");
}

/// Seconds, whole or with a fraction (yum takes a float); rounded up, 1 to 3600.
Parsed<long> parse_timeout(const std::string& text) {
    const auto dot = text.find('.');
    const std::string_view whole_part = std::string_view(text).substr(0, dot);
    const std::string_view fraction = dot == std::string::npos ? std::string_view{} : std::string_view(text).substr(dot + 1);
    const bool fraction_ok = std::all_of(fraction.begin(), fraction.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (auto v = whole(whole_part.empty() ? "0" : whole_part, 0, 3600); v && fraction_ok) {
        const bool round_up = fraction.find_first_not_of('0') != std::string_view::npos;
        const long seconds = static_cast<long>(*v) + (round_up ? 1 : 0);
        if (seconds >= 1 && seconds <= 3600) return Parsed<long>{seconds, {}};
    }
    return fail_parse<long>("not a timeout (seconds, from 1 to 3600)");
}

Parsed<unsigned> parse_retries(const std::string& text) {
    if (auto v = whole(text, 0, 1000)) return Parsed<unsigned>{static_cast<unsigned>(*v), {}};
    return fail_parse<unsigned>("not a number of retries (0 to 1000)");
}

/// Bytes per second, with an optional k, M or G suffix (1024-based, as yum).
Parsed<std::uint64_t> parse_rate(const std::string& text) {
    std::uint64_t unit = 1;
    std::string_view digits = text;
    if (!digits.empty()) {
        switch (digits.back()) {
        case 'k': unit = 1024; digits.remove_suffix(1); break;
        case 'm': unit = 1024 * 1024; digits.remove_suffix(1); break;
        case 'g': unit = std::uint64_t{1024} * 1024 * 1024; digits.remove_suffix(1); break;
        default: break;
        }
    }
    if (auto v = whole(digits, 0, std::int64_t{1} << 40)) return Parsed<std::uint64_t>{static_cast<std::uint64_t>(*v) * unit, {}};
    return fail_parse<std::uint64_t>("not a rate (bytes per second, with k, M or G)");
}

} // namespace leo::repo::detail
