#pragma once
// Text helpers of the fact readers (facts_parse.cpp): os-release shell words, mountinfo
// fields and escapes, paths as components. Pure functions on views of their input.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace leo::preflight::text_detail {

/// `s` without leading and trailing spaces, tabs, CR and LF.
std::string_view trim(std::string_view s);
/// The lines of `text` without their "\n" (a last line without one included).
std::vector<std::string_view> split_lines(std::string_view text);
/// A shell variable name ([A-Za-z_][A-Za-z0-9_]*).
bool valid_key(std::string_view key);
/// One shell word as os-release(5) allows it: unquoted text (backslash escapes the next
/// character), '...' (literal), "..." (backslash escapes $ " \ ` only). Stops at
/// unquoted whitespace; an unterminated quote takes the rest of the line.
std::string parse_shell_value(std::string_view v);
/// ASCII letters lowered, other bytes kept.
std::string ascii_lower(std::string_view s);
/// `text` starts with the word `prefix` (followed by a space or the end).
bool starts_with_word(std::string_view text, std::string_view prefix);
/// Decode the octal escapes mountinfo uses for space, tab, newline and backslash.
std::string decode_octal(std::string_view s);
/// The non-empty pieces of `text` between any of `separators`.
std::vector<std::string_view> split(std::string_view text, std::string_view separators);
/// Whitespace-separated fields of a mountinfo or cgroup line.
std::vector<std::string_view> split_fields(std::string_view line);
/// A decimal unsigned integer, surrounding whitespace allowed; nullopt for anything else.
std::optional<std::uint64_t> parse_uint(std::string_view text);
/// Components of an absolute path, ignoring empty ones ("/a//b/" -> {a, b}).
std::vector<std::string_view> components(std::string_view path);

} // namespace leo::preflight::text_detail
