// Parsers of the files facts are read from (os-release, redhat-release, meminfo,
// mountinfo, cgroup files, cpuinfo): pure functions of their text, fuzzed (fuzz/).
#include "leo/preflight/facts.hpp"
#include "text.hpp"

#include "leo/common/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace leo::preflight {

namespace text_detail {

namespace {
constexpr std::string_view k_whitespace = " \t\r\n";

} // namespace

std::string_view trim(std::string_view s) {
    const auto begin = s.find_first_not_of(k_whitespace);
    if (begin == std::string_view::npos) return {};
    const auto end = s.find_last_not_of(k_whitespace);
    return s.substr(begin, end - begin + 1);
}

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos) {
            if (pos < text.size()) lines.push_back(text.substr(pos));
            break;
        }
        lines.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return lines;
}

bool valid_key(std::string_view key) {
    if (key.empty()) return false;
    for (std::size_t i = 0; i < key.size(); ++i) {
        const char c = key[i];
        const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        const bool digit = c >= '0' && c <= '9';
        if (!(alpha || (digit && i > 0))) return false;
    }
    return true;
}

std::string parse_shell_value(std::string_view v) {
    std::string out;
    std::size_t i = 0;
    while (i < v.size()) {
        const char c = v[i];
        if (c == ' ' || c == '\t') break; // end of the word (a trailing comment follows)
        if (c == '\\') {
            if (i + 1 < v.size()) out += v[i + 1];
            i += 2;
        } else if (c == '\'') {
            const auto end = v.find('\'', i + 1);
            const auto stop = end == std::string_view::npos ? v.size() : end;
            out.append(v.substr(i + 1, stop - i - 1));
            i = stop + 1;
        } else if (c == '"') {
            ++i;
            while (i < v.size() && v[i] != '"') {
                if (v[i] == '\\' && i + 1 < v.size() &&
                    std::string_view("$\"\\`").find(v[i + 1]) != std::string_view::npos) {
                    out += v[i + 1];
                    i += 2;
                } else {
                    out += v[i++];
                }
            }
            ++i; // closing quote
        } else {
            out += c;
            ++i;
        }
    }
    return out;
}

std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool starts_with_word(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix &&
           (text.size() == prefix.size() || text[prefix.size()] == ' ');
}

std::string decode_octal(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            const auto a = s[i + 1], b = s[i + 2], c = s[i + 3];
            auto octal = [](char d) { return d >= '0' && d <= '7'; };
            if (octal(a) && octal(b) && octal(c)) {
                out += static_cast<char>(((a - '0') << 6) | ((b - '0') << 3) | (c - '0'));
                i += 3;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

std::vector<std::string_view> split(std::string_view text, std::string_view separators) {
    std::vector<std::string_view> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto begin = text.find_first_not_of(separators, pos);
        if (begin == std::string_view::npos) break;
        auto end = text.find_first_of(separators, begin);
        if (end == std::string_view::npos) end = text.size();
        out.push_back(text.substr(begin, end - begin));
        pos = end;
    }
    return out;
}

std::vector<std::string_view> split_fields(std::string_view line) { return split(line, " \t"); }

std::vector<std::string_view> components(std::string_view path) { return split(path, "/"); }

std::optional<std::uint64_t> parse_uint(std::string_view text) {
    text = trim(text);
    std::uint64_t v = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
    return v;
}

} // namespace text_detail

using namespace text_detail;

OsFacts parse_os_release(const std::string& text) {
    OsFacts os;
    for (auto raw : split_lines(text)) {
        const auto line = trim(raw);
        if (line.empty() || line.front() == '#') continue;
        const auto eq = line.find('=');
        if (eq == std::string_view::npos) continue;
        const auto key = line.substr(0, eq);
        if (!valid_key(key)) continue;
        const std::string value = parse_shell_value(line.substr(eq + 1));
        if (key == "ID") os.id = value;
        else if (key == "VERSION_ID") os.version_id = value;
        else if (key == "ID_LIKE") os.id_like = value;
        else if (key == "NAME") os.name = value;
        else if (key == "PRETTY_NAME") os.pretty_name = value;
        else if (key == "VARIANT_ID") os.variant_id = value;
    }
    return os;
}

OsFacts parse_redhat_release(const std::string& text) {
    OsFacts os;
    std::string_view line = text;
    line = line.substr(0, line.find('\n'));
    line = trim(line);
    if (line.empty()) return os;
    os.pretty_name = std::string(line);

    // "<name> release <version> (<codename>)"
    const auto rel = line.find(" release ");
    const std::string_view name = rel == std::string_view::npos ? line : line.substr(0, rel);
    os.name = std::string(name);
    if (rel != std::string_view::npos) {
        auto version = line.substr(rel + 9);
        version = version.substr(0, version.find(' '));
        // Keep major.minor: "7.9.2009" -> "7.9" (os-release's VERSION_ID style).
        const auto first = version.find('.');
        if (first != std::string_view::npos) {
            const auto second = version.find('.', first + 1);
            if (second != std::string_view::npos) version = version.substr(0, second);
        }
        os.version_id = std::string(version);
    }

    struct Known { std::string_view prefix, id; };
    static constexpr Known k_known[] = {
        {"Red Hat Enterprise Linux", "rhel"}, {"CentOS", "centos"},
        {"Fedora", "fedora"},                 {"Rocky Linux", "rocky"},
        {"AlmaLinux", "almalinux"},           {"Oracle Linux", "ol"},
        {"Scientific Linux", "scientific"},
    };
    for (const auto& k : k_known) {
        if (starts_with_word(line, k.prefix)) {
            os.id = std::string(k.id);
            return os;
        }
    }
    // Unknown distribution: its first word, lower-cased, so the report shows what it is.
    os.id = ascii_lower(name.substr(0, name.find(' ')));
    return os;
}

std::optional<std::uint64_t> parse_meminfo_total_kib(const std::string& text) {
    for (auto line : split_lines(text)) {
        if (line.substr(0, 9) != "MemTotal:") continue;
        const auto rest = trim(line.substr(9));
        std::uint64_t value = 0;
        const auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
        if (ec != std::errc{} || ptr == rest.data()) return std::nullopt;
        const auto unit = trim(std::string_view(ptr, static_cast<std::size_t>(rest.data() + rest.size() - ptr)));
        if (!unit.empty() && unit != "kB") return std::nullopt;
        return value;
    }
    return std::nullopt;
}

std::vector<MountEntry> parse_mountinfo(const std::string& text) {
    // proc(5): id parent major:minor root mount_point options [optional...] - fstype source super_options
    std::vector<MountEntry> entries;
    for (auto line : split_lines(text)) {
        const auto fields = split_fields(line);
        std::size_t dash = 0;
        for (std::size_t i = 6; i < fields.size(); ++i) {
            if (fields[i] == "-") {
                dash = i;
                break;
            }
        }
        if (dash == 0 || dash + 1 >= fields.size()) continue; // no separator or no fstype
        MountEntry e;
        e.root = decode_octal(fields[3]);
        e.mount_point = decode_octal(fields[4]);
        e.fstype = decode_octal(fields[dash + 1]);
        e.source = dash + 2 < fields.size() ? decode_octal(fields[dash + 2]) : std::string();
        entries.push_back(std::move(e));
    }
    return entries;
}

std::optional<MountEntry> find_mount(const std::vector<MountEntry>& entries, const std::string& path) {
    const auto target = components(path);
    std::optional<MountEntry> best;
    std::size_t best_len = 0;
    for (const auto& e : entries) {
        if (e.mount_point.empty() || e.mount_point.front() != '/') continue;
        const auto mp = components(e.mount_point);
        if (mp.size() > target.size()) continue;
        bool prefix = true;
        for (std::size_t i = 0; i < mp.size() && prefix; ++i) prefix = mp[i] == target[i];
        if (!prefix) continue;
        // ">=": a later entry on the same mount point is mounted on top of the earlier one.
        if (!best || mp.size() >= best_len) {
            best = e;
            best_len = mp.size();
        }
    }
    return best;
}

std::optional<std::uint64_t> parse_cpu_max(const std::string& text) {
    const auto fields = split_fields(trim(text));
    if (fields.size() != 2) return std::nullopt;
    const auto period = parse_uint(fields[1]);
    if (!period || *period == 0) return std::nullopt;
    if (fields[0] == "max") return 0;
    const auto quota = parse_uint(fields[0]);
    if (!quota) return std::nullopt;
    const std::uint64_t milli = *quota * 1000 / *period;
    return milli == 0 ? 1 : milli; // a tiny quota is still a limit, not "none"
}

std::optional<std::uint64_t> parse_cfs_quota(const std::string& quota_text, const std::string& period_text) {
    const auto qt = trim(quota_text);
    const auto period = parse_uint(period_text);
    if (qt == "-1" && period) return 0;
    if (const auto quota = parse_uint(qt); quota && period && *period > 0) return *quota * 1000 / *period;
    return std::nullopt;
}

CgroupPaths parse_proc_cgroup(const std::string& text) {
    CgroupPaths paths;
    for (auto line : split_lines(text)) {
        const auto c1 = line.find(':');
        const auto c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
        if (c2 == std::string_view::npos) continue;
        const auto controllers = line.substr(c1 + 1, c2 - c1 - 1);
        const std::string path(trim(line.substr(c2 + 1)));
        if (line.substr(0, c1) == "0" && controllers.empty()) paths.v2 = path;
        std::size_t pos = 0;
        const std::string list(controllers);
        while (pos <= list.size()) {
            auto end = list.find(',', pos);
            if (end == std::string::npos) end = list.size();
            if (list.substr(pos, end - pos) == "cpu") paths.v1_cpu = path;
            pos = end + 1;
        }
    }
    return paths;
}

unsigned parse_cpuinfo_count(const std::string& text) {
    unsigned n = 0;
    for (auto line : split_lines(text)) {
        const auto colon = line.find(':');
        if (colon != std::string_view::npos && trim(line.substr(0, colon)) == "processor") ++n;
    }
    return n;
}

std::string valid_utf8(std::string_view text) {
    static constexpr std::string_view k_replacement = "\xEF\xBF\xBD";  // U+FFFD
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            out += text[i++];
            continue;
        }
        // Unicode 15, table 3-7: the lead byte decides the length and the second byte's range
        // (no overlong forms, no surrogates, nothing above U+10FFFF).
        const std::size_t more = c >= 0xC2 && c <= 0xDF   ? 1
                                 : c >= 0xE0 && c <= 0xEF ? 2
                                 : c >= 0xF0 && c <= 0xF4 ? 3
                                                          : 0;
        const unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
        const unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
        std::size_t k = 1;  // bytes of a valid prefix so far
        while (more > 0 && k <= more && i + k < text.size()) {
            const auto b = static_cast<unsigned char>(text[i + k]);
            if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) break;
            ++k;
        }
        if (more > 0 && k == more + 1) {
            out.append(text.substr(i, k));
        } else {
            out += k_replacement;  // one U+FFFD for the longest invalid prefix
        }
        i += k;
    }
    return out;
}

} // namespace leo::preflight
