#pragma once
// Private to leo_repo: the pieces of yum's INI files (sections, values with their line) and
// the parsers of yum's value types (config_values.cpp), shared by config.cpp and
// repo_ini.cpp. Text helpers (trim, lower) are detail.hpp's.
#include "detail.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/stat.h>

namespace leo::repo::detail {

/// One key of a section as read: its (joined) value and the line it started on.
struct Value {
    std::string text;
    int line = 0;
    std::string file;  ///< the file it was read from (yum.conf and dnf.conf values meet in one [main])
};

/// One [section] of an INI file, its keys lower-cased.
struct Section {
    std::string id;
    int line = 0;
    std::map<std::string, Value> values;
};

/// The sections of one INI text (yum's dialect, parsed with inih: continuation lines,
/// lines of any length, a byte-order mark, CR LF), in order. `file` names it in errors.
/// Throws leo::RepoError "FILE:LINE: what" for a syntax error or an option outside any section.
[[nodiscard]] std::vector<Section> parse_ini_sections(const std::string& content, const std::string& file);

/// Why a file yum's configuration is read from must not be trusted: "" when only root can
/// change it (root's, writable by root alone, as installer.conf must be); otherwise "HOST can
/// be changed by a user other than root (owner uid N, mode NNNN)". `st`: its stat().
[[nodiscard]] std::string changeable_by_others(const struct stat& st, const std::string& host);

/// What changeable_by_others's messages end with: how to make such a file trusted again.
inline constexpr std::string_view k_make_it_roots =
    "make it root's and writable by root alone (chown root:root, chmod go-w)";

/// Lists (baseurl, gpgkey, exclude, reposdir) are separated by whitespace or commas.
std::vector<std::string> split_list(std::string_view value);

/// yum's booleans: 1/0, yes/no, true/false, on/off (any case); nullopt otherwise.
std::optional<bool> parse_bool(const std::string& value);

bool has_supported_scheme(std::string_view url);

/// A parsed value, or why the text is not one.
template <class T>
struct Parsed {
    std::optional<T> value;
    std::string why;
    explicit operator bool() const { return value.has_value(); }
    const T& operator*() const { return *value; }
    [[nodiscard]] const std::string& error() const { return why; }
};

// yum's number options, each from lower-cased, trimmed text (ranges and units in the .cpp).
Parsed<int> parse_priority(const std::string& text);
Parsed<int> parse_cost(const std::string& text);
Parsed<std::int64_t> parse_expire(const std::string& text);
Parsed<long> parse_timeout(const std::string& text);
Parsed<unsigned> parse_retries(const std::string& text);
Parsed<std::uint64_t> parse_rate(const std::string& text);

} // namespace leo::repo::detail
