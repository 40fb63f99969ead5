// yum's INI dialect read with inih: sections and values with the physical line of each.
#include "config_values.hpp"

#include "leo/common/error.hpp"

#include <fmt/format.h>
#include <ini.h>

#include <cstring>

namespace leo::repo::detail {
namespace {

/// Parser state shared by the inih reader and handler callbacks.
///
/// The reader hands inih one line at a time, so it knows the physical line of every
/// handler call (this inih has no INI_HANDLER_LINENO). inih's buffer is INI_MAX_LINE
/// bytes: a longer line is cut at whitespace into virtual continuation lines (a long
/// comment is just cut), so long baseurl/gpgkey lists still parse.
struct ParseState {
    std::vector<std::string> physical;       ///< the file's lines
    std::size_t next_physical = 0;
    std::vector<std::string> pending;        ///< virtual lines still to hand out for a long line
    std::size_t pending_line = 0;            ///< physical line (1-based) of `pending`
    std::vector<int> line_of_call;           ///< physical line of each reader call (inih's lineno - 1)
    bool current_is_virtual_continuation = false;
    bool current_is_continuation = false;    ///< the line starts with whitespace

    std::vector<Section> sections;
    std::string last_key;                    ///< the key a continuation line extends
    std::optional<std::string> error;        ///< first error, "line N: what"
    int error_line = 0;

    [[nodiscard]] int current_line() const { return line_of_call.empty() ? 0 : line_of_call.back(); }

    void fail(int line, std::string what) {
        if (!error) {
            error = std::move(what);
            error_line = line;
        }
    }
};

/// Split one over-long line into pieces that fit in `max` bytes, at whitespace.
/// Returns nullopt when a single word does not fit.
std::optional<std::vector<std::string>> split_long_line(const std::string& line, std::size_t max) {
    std::vector<std::string> pieces;
    std::string current;
    std::size_t pos = 0;
    while (pos < line.size()) {
        const std::size_t word_start = line.find_first_not_of(" \t", pos);
        if (word_start == std::string::npos) {
            break;
        }
        std::size_t word_end = line.find_first_of(" \t", word_start);
        if (word_end == std::string::npos) {
            word_end = line.size();
        }
        const std::string word = line.substr(word_start, word_end - word_start);
        if (word.size() + 1 > max) {
            return std::nullopt;
        }
        if (pieces.empty() && current.empty() && word_start == 0) {
            current = word;
        } else if (!current.empty() && current.size() + 1 + word.size() <= max) {
            current += ' ';
            current += word;
        } else {
            if (!current.empty()) {
                pieces.push_back(std::move(current));
            }
            current = " " + word;  // a continuation line
        }
        pos = word_end;
    }
    if (!current.empty()) {
        pieces.push_back(std::move(current));
    }
    return pieces;
}

char* reader(char* str, int num, void* stream) {
    auto& state = *static_cast<ParseState*>(stream);
    const auto max = static_cast<std::size_t>(num > 1 ? num - 1 : 0);
    std::string line;
    if (!state.pending.empty()) {
        line = std::move(state.pending.front());
        state.pending.erase(state.pending.begin());
        state.line_of_call.push_back(static_cast<int>(state.pending_line));
        state.current_is_virtual_continuation = true;
    } else {
        if (state.next_physical >= state.physical.size()) {
            return nullptr;
        }
        line = state.physical[state.next_physical++];
        const int lineno = static_cast<int>(state.next_physical);
        state.line_of_call.push_back(lineno);
        state.current_is_virtual_continuation = false;
        state.current_is_continuation = !line.empty() && (line[0] == ' ' || line[0] == '\t');
        const std::string trimmed = trim(line);
        if (!trimmed.empty() && trimmed[0] == '[') {
            // Section headers are tracked here: inih reports a section only through its keys.
            const auto close = trimmed.find(']');
            if (close != std::string::npos) {
                Section section;
                section.id = trim(std::string_view(trimmed).substr(1, close - 1));
                section.line = lineno;
                state.sections.push_back(std::move(section));
                state.last_key.clear();
            }
        }
        if (line.size() > max) {
            if (!trimmed.empty() && (trimmed[0] == '#' || trimmed[0] == ';')) {
                line.resize(max);  // a comment: only its start matters
            } else if (auto pieces = split_long_line(line, max); pieces && !pieces->empty()) {
                line = std::move(pieces->front());
                state.pending.assign(std::make_move_iterator(pieces->begin() + 1),
                                     std::make_move_iterator(pieces->end()));
                state.pending_line = state.next_physical;
            } else {
                state.fail(lineno, fmt::format("a word longer than {} characters", max - 1));
                line.clear();
            }
        }
    }
    std::memcpy(str, line.data(), line.size());
    str[line.size()] = '\0';
    return str;
}

int handler(void* user, const char* section_name, const char* raw_name, const char* raw_value) {
    auto& state = *static_cast<ParseState*>(user);
    const int line = state.current_line();
    if (state.sections.empty() || state.sections.back().id != section_name) {
        state.fail(line, "an option outside any [section]");
        return 1;
    }
    Section& section = state.sections.back();
    const std::string name = lower(raw_name);
    const bool continuation = state.current_is_virtual_continuation || state.current_is_continuation;
    if (continuation && name == state.last_key) {
        auto& value = section.values[name];
        value.text += state.current_is_virtual_continuation ? " " : "\n";
        value.text += raw_value;
        return 1;
    }
    state.last_key = name;
    section.values[name] = Value{raw_value, line, {}};
    return 1;
}

} // namespace

std::vector<Section> parse_ini_sections(const std::string& content, const std::string& file) {
    ParseState state;
    std::size_t start = 0;
    while (start < content.size()) {
        auto end = content.find('\n', start);
        if (end == std::string::npos) {
            end = content.size();
        }
        state.physical.push_back(content.substr(start, end - start));
        start = end + 1;
    }
    if (!state.physical.empty() && state.physical[0].starts_with("\xEF\xBB\xBF")) {
        state.physical[0].erase(0, 3);  // a UTF-8 byte-order mark
    }
    const int rc = ini_parse_stream(reader, &state, handler, &state);
    // The first error in the file wins: inih's syntax error (rc, a reader call number) or ours.
    int syntax_line = 0;
    if (rc > 0) {
        const auto index = static_cast<std::size_t>(rc - 1);
        syntax_line = index < state.line_of_call.size() ? state.line_of_call[index] : rc;
    }
    if (state.error && (syntax_line == 0 || state.error_line < syntax_line)) {
        throw RepoError(fmt::format("{}:{}: {}", file, state.error_line, *state.error));
    }
    if (rc > 0) {
        const int line = syntax_line;
        const std::string& text = static_cast<std::size_t>(line - 1) < state.physical.size()
                                      ? state.physical[static_cast<std::size_t>(line - 1)]
                                      : std::string();
        throw RepoError(fmt::format("{}:{}: syntax error: \"{}\" (expected [section], key=value or a comment)",
                                    file, line, trim(text)));
    }
    if (rc < 0) {
        throw RepoError(fmt::format("{}: cannot be parsed (inih error {})", file, rc));
    }
    for (auto& section : state.sections)
        for (auto& [key, value] : section.values) value.file = file;
    return std::move(state.sections);
}

} // namespace leo::repo::detail
