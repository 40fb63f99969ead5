// The SQL statement splitter (quotes, dollar quotes, comments) and script line numbers.
#include "internal.hpp"

#include <array>
#include <cctype>
#include <string_view>

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

namespace {

bool ident_start(char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalpha(u) != 0 || c == '_' || u >= 0x80;
}
/// PostgreSQL's identifier characters after the first: letters, digits, '_' and '$' (so
/// `a$b$` is one identifier, not a dollar quote; the documentation's "Dollar-Quoted String
/// Constants" asks for a blank between a word and a dollar quote for this reason).
bool ident_cont(char c) { return ident_start(c) || std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '$'; }

std::string lower(std::string_view w) {
    std::string out(w);
    for (char& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

/// Skip blanks, -- comments and nested /* */ comments from `i`; returns the next offset.
size_t skip_blanks_and_comments(std::string_view sql, size_t i) {
    const size_t n = sql.size();
    while (i < n) {
        if (std::isspace(static_cast<unsigned char>(sql[i])) != 0) {
            ++i;
        } else if (sql[i] == '-' && i + 1 < n && sql[i + 1] == '-') {
            while (i < n && sql[i] != '\n')
                ++i;
        } else if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
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
        } else {
            break;
        }
    }
    return i;
}

/// The first `max` words of `statement`, upper-cased, blanks and comments between them
/// skipped; stops at the first thing that is not a word (a quote, a parenthesis, a number).
std::vector<std::string> leading_words(std::string_view statement, size_t max) {
    std::vector<std::string> words;
    size_t i = 0;
    while (words.size() < max) {
        i = skip_blanks_and_comments(statement, i);
        if (i >= statement.size() || !ident_start(statement[i]))
            break;
        size_t j = i + 1;
        while (j < statement.size() && ident_cont(statement[j]))
            ++j;
        std::string w(statement.substr(i, j - i));
        for (char& c : w)
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        words.push_back(std::move(w));
        i = j;
    }
    return words;
}

/// psql's rule for SQL-standard routine bodies (psqlscan.l): in a statement that starts
/// CREATE [OR REPLACE] FUNCTION|PROCEDURE, BEGIN (outside parentheses) opens a block that
/// END closes, CASE inside it opens one too, and a semicolon inside a block does not end
/// the statement (`BEGIN ATOMIC SELECT 1; END`).
class RoutineBody {
  public:
    void word(std::string_view w, int parens) {
        const std::string l = lower(w);
        if (l == "create" || l == "function" || l == "procedure" || l == "or" || l == "replace")
            if (m_count < m_first.size())
                m_first[m_count] = l[0];
        ++m_count;
        const bool routine =
            m_first[0] == 'c' && (m_first[1] == 'f' || m_first[1] == 'p' ||
                                  (m_first[1] == 'o' && m_first[2] == 'r' && (m_first[3] == 'f' || m_first[3] == 'p')));
        if (!routine || parens != 0)
            return;
        if (l == "begin" || (l == "case" && m_depth >= 1)) // CASE also ends with END
            ++m_depth;
        else if (l == "end" && m_depth > 0)
            --m_depth;
    }
    [[nodiscard]] bool inside() const { return m_depth > 0; }
    void reset() { *this = RoutineBody(); }

  private:
    std::array<char, 4> m_first{};
    size_t m_count = 0;
    int m_depth = 0;
};

} // namespace

/// 1-based line of byte `offset` of `text` (LF, CRLF and a lone CR each end a line).
long line_at_offset(std::string_view text, size_t offset) {
    long line = 1;
    for (size_t i = 0; i < offset && i < text.size(); ++i)
        if (text[i] == '\n' || (text[i] == '\r' && (i + 1 >= text.size() || text[i + 1] != '\n')))
            ++line;
    return line;
}

/// Split `sql` into (offset, statement) pairs; see split_statements().
std::vector<std::pair<size_t, std::string>> split_with_offsets(const std::string& sql) {
    std::vector<std::pair<size_t, std::string>> out;
    bool meaningful = false; // the current statement has more than blanks and comments
    size_t first = 0;        // offset of its first meaningful character
    int parens = 0;          // depth of ( ) in the current statement
    RoutineBody body;
    const size_t n = sql.size();
    auto finish = [&](size_t end) {
        if (meaningful)
            out.emplace_back(first, sql.substr(first, end - first));
        meaningful = false;
        parens = 0;
        body.reset();
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
        const size_t after = skip_blanks_and_comments(sql, i);
        if (after != i) {
            i = after;
            continue;
        }
        if (c == ';') {
            // psql's rule: a semicolon inside parentheses or a routine body does not end it
            if (parens == 0 && !body.inside())
                finish(i);
            ++i;
            continue;
        }
        mark(i);
        if (ident_start(c)) {
            size_t j = i + 1;
            while (j < n && ident_cont(sql[j]))
                ++j;
            body.word(std::string_view(sql).substr(i, j - i), parens);
            i = j;
            continue;
        }
        if (c == '(') {
            ++parens;
        } else if (c == ')') {
            parens = parens > 0 ? parens - 1 : 0;
        } else if (c == '\'' || c == '"') {
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
        } else if (c == '$') {
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

namespace leo::migrations {

std::optional<std::string> transaction_control_command(std::string_view statement) {
    const auto w = detail::leading_words(statement, 3);
    if (w.empty())
        return std::nullopt;
    const std::string& first = w[0];
    const std::string second = w.size() > 1 ? w[1] : "";
    if (first == "BEGIN" || first == "END" || first == "ABORT")
        return first;
    if ((first == "START" || first == "PREPARE") && second == "TRANSACTION")
        return first + " TRANSACTION";
    if (first == "COMMIT")
        return second == "PREPARED" ? "COMMIT PREPARED" : "COMMIT";
    if (first == "ROLLBACK") {
        if (second == "PREPARED")
            return "ROLLBACK PREPARED";
        // ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name stays inside the transaction.
        const std::string next = second == "WORK" || second == "TRANSACTION" ? (w.size() > 2 ? w[2] : "") : second;
        if (next == "TO")
            return std::nullopt;
        return "ROLLBACK";
    }
    return std::nullopt;
}

std::vector<TransactionControl> find_transaction_control(const std::string& text) {
    std::string_view sql = text;
    if (sql.starts_with(detail::k_utf8_bom))
        sql.remove_prefix(detail::k_utf8_bom.size());
    std::vector<TransactionControl> out;
    for (const auto& [offset, statement] : detail::split_with_offsets(std::string(sql)))
        if (auto command = transaction_control_command(statement))
            out.push_back({std::move(*command), detail::line_at_offset(sql, offset)});
    return out;
}

} // namespace leo::migrations
