// Helpers shared by the files of repo/src (detail.hpp): text, locations, checksums.
#include "detail.hpp"

#include "leo/repo/url.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <system_error>

namespace leo::repo::detail {

std::string trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(first, last - first + 1));
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::uint64_t to_u64(const std::string& text, bool& ok) {
    std::uint64_t value = 0;
    const std::string t = trim(text);
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
    ok = !t.empty() && ec == std::errc() && end == t.data() + t.size();
    return value;
}

std::string basename_of(const std::string& href) {
    const auto slash = href.find_last_of('/');
    return slash == std::string::npos ? href : href.substr(slash + 1);
}

std::string digest_name(const std::string& type) {
    const std::string t = type == "sha" ? "sha1" : type;
    for (const char* known : {"sha1", "sha224", "sha256", "sha384", "sha512"}) {
        if (t == known) {
            return t;
        }
    }
    return {};
}

std::string unsafe_location(const PackageEntry& entry) {
    if (auto why = unsafe_href(entry.location_href); !why.empty()) {
        return fmt::format("location href \"{}\" is refused: {}", redact_url(entry.location_href), why);
    }
    const std::string name = basename_of(entry.location_href);
    if (auto why = unsafe_file_name(name); !why.empty()) {
        return fmt::format("location href \"{}\" is refused: its file name {}", redact_url(entry.location_href), why);
    }
    if (!entry.location_base.empty()) {
        const std::string repo_scheme = url_scheme(entry.base_url);
        const auto protocols = transfer_protocols(entry.location_base, repo_scheme == "file");
        if (!protocols.allowed) {
            return fmt::format("xml:base \"{}\" is refused: {}", redact_url(entry.location_base), protocols.why);
        }
        if (repo_scheme == "https" && url_scheme(entry.location_base) != "https") {
            return fmt::format("xml:base \"{}\" is refused: the repository is https://, its packages must be too",
                               redact_url(entry.location_base));
        }
    }
    return {};
}

} // namespace leo::repo::detail
