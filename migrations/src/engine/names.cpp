// Versions and migration file names: V<version>__<description>.sql, as Flyway names them.
#include "internal.hpp"

#include "leo/common/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <system_error>

namespace leo::migrations::detail {

std::optional<std::vector<long>> parse_version(std::string_view text) {
    std::vector<long> parts;
    if (text.empty())
        return std::nullopt;
    size_t pos = 0;
    for (;;) {
        const size_t dot = text.find('.', pos);
        const std::string_view part = text.substr(pos, dot == std::string_view::npos ? dot : dot - pos);
        if (part.empty() || part.size() > 18)
            return std::nullopt;
        long value = 0;
        const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
        if (ec != std::errc{} || end != part.data() + part.size() || value < 0)
            return std::nullopt;
        parts.push_back(value);
        if (dot == std::string_view::npos)
            break;
        pos = dot + 1;
    }
    return parts;
}

std::vector<long> version_parts_or_throw(const std::string& text) {
    auto parts = parse_version(text);
    if (!parts)
        throw MigrationError(
            fmt::format("invalid version '{}': expected dot-separated non-negative integers such as 9.1.0.2", text));
    return *parts;
}

int compare_parts(const std::vector<long>& a, const std::vector<long>& b) {
    const size_t n = std::max(a.size(), b.size());
    for (size_t i = 0; i < n; ++i) {
        const long x = i < a.size() ? a[i] : 0;
        const long y = i < b.size() ? b[i] : 0;
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

/// A version's identity: "9.1.0" and "9.1" are the same version, key "9.1".
std::string version_key(const std::string& version) {
    auto parts = version_parts_or_throw(version);
    while (parts.size() > 1 && parts.back() == 0)
        parts.pop_back();
    std::string key;
    for (size_t i = 0; i < parts.size(); ++i)
        key += (i == 0 ? "" : ".") + std::to_string(parts[i]);
    return key;
}

} // namespace leo::migrations::detail

namespace leo::migrations {
using namespace detail;

int compare_versions(const std::string& a, const std::string& b) {
    return compare_parts(version_parts_or_throw(a), version_parts_or_throw(b));
}

std::string broker_part(const std::string& version) {
    auto parts = version_parts_or_throw(version);
    parts.resize(3, 0);
    return fmt::format("{}.{}.{}", parts[0], parts[1], parts[2]);
}

std::optional<Migration> parse_migration_name(const std::string& name, const stdfs::path& dir) {
    if (!name.starts_with('V') || !name.ends_with(".sql"))
        return std::nullopt;
    const std::string_view body = std::string_view(name).substr(1, name.size() - 1 - 4);
    const size_t sep = body.find("__");
    const auto bad = [&](std::string_view why) {
        return MigrationError(fmt::format("invalid migration file name {} in {}: {}; expected "
                                          "V<version>__<description>.sql, for example V9.1.0.2__jobs_site_index.sql",
                                          name, dir.string(), why));
    };
    if (sep == std::string_view::npos)
        throw bad("no '__' between version and description");
    Migration m;
    m.version = std::string(body.substr(0, sep));
    auto parts = parse_version(m.version);
    if (!parts)
        throw bad(fmt::format("'{}' is not dot-separated non-negative integers", m.version));
    m.version_parts = std::move(*parts);
    m.description = std::string(body.substr(sep + 2));
    if (m.description.empty())
        throw bad("the description is empty");
    std::replace(m.description.begin(), m.description.end(), '_', ' ');
    m.script = name;
    return m;
}

} // namespace leo::migrations
