// The SQL statement splitter (quotes, dollar quotes, comments) and script line numbers.
#include "internal.hpp"

#include <cctype>

namespace leo::migrations::detail {

/// 1-based line of a 1-based character position in `text` (UTF-8 aware: the server
/// counts characters, not bytes).
long line_of_position(const std::string& text, long position) {
    long line = 1;
    long chars = 0;
    for (char c : text) {
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80)
            ++chars;
        if (chars >= position)
            break;
        if (c == '\n')
            ++line;
    }
    return line;
}

/// Split `sql` into (offset, statement) pairs; see split_statements().
std::vector<std::pair<size_t, std::string>> split_with_offsets(const std::string& sql) {
    std::vector<std::pair<size_t, std::string>> out;
    size_t start = 0;
    bool meaningful = false; // the current statement has more than blanks and comments
    size_t first = 0;        // offset of its first meaningful character
    const size_t n = sql.size();
    auto finish = [&](size_t end) {
        if (meaningful)
            out.emplace_back(first, sql.substr(first, end - first));
        meaningful = false;
        start = end + 1;
    };
    auto mark = [&](size_t i) {
        if (!meaningful) {
            meaningful = true;
            first = i;
        }
    };
    size_t i = 0;
    while (i < n) {
        const char c = sql[i];
        if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
            while (i < n && sql[i] != '\n')
                ++i;
            continue;
        }
        if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
            int depth = 1;
            i += 2;
            while (i < n && depth > 0) {
                if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
                    ++depth;
                    i += 2;
                } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
                    --depth;
                    i += 2;
                } else {
                    ++i;
                }
            }
            continue;
        }
        if (c == ';') {
            finish(i);
            ++i;
            continue;
        }
        if (std::isspace(static_cast<unsigned char>(c)) != 0) {
            ++i;
            continue;
        }
        mark(i);
        if (c == '\'' || c == '"') {
            // E'...' strings take backslash escapes.
            const bool escapes =
                c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                (i < 2 || (std::isalnum(static_cast<unsigned char>(sql[i - 2])) == 0 && sql[i - 2] != '_'));
            ++i;
            while (i < n) {
                if (escapes && sql[i] == '\\') {
                    i += 2;
                    continue;
                }
                if (sql[i] == c) {
                    if (i + 1 < n && sql[i + 1] == c) {
                        i += 2;
                        continue;
                    }
                    break;
                }
                ++i;
            }
            ++i;
            continue;
        }
        if (c == '$') {
            // $tag$ ... $tag$ (a tag is empty or an identifier not starting with a digit)
            size_t j = i + 1;
            while (j < n && (std::isalnum(static_cast<unsigned char>(sql[j])) != 0 || sql[j] == '_'))
                ++j;
            const bool tag_ok =
                j < n && sql[j] == '$' && (j == i + 1 || std::isdigit(static_cast<unsigned char>(sql[i + 1])) == 0);
            if (tag_ok) {
                const std::string tag = sql.substr(i, j - i + 1);
                const size_t close = sql.find(tag, j + 1);
                i = close == std::string::npos ? n : close + tag.size();
                continue;
            }
        }
        ++i;
    }
    finish(n);
    return out;
}

} // namespace leo::migrations::detail

namespace leo::migrations {
using namespace detail;

std::vector<std::string> split_statements(const std::string& sql) {
    std::vector<std::string> out;
    for (auto& [offset, text] : split_with_offsets(sql))
        out.push_back(std::move(text));
    return out;
}

} // namespace leo::migrations
