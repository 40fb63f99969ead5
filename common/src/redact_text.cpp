// redact_text(): the secrets of whole files (configuration, logs, the journal) for a support bundle.
#include "leo/common/redact.hpp"

#include <array>
#include <cctype>

namespace leo {
namespace {

constexpr std::string_view k_mask = "***";

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool key_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
}

/// PEM labels whose body is public: kept, so a bundle still shows which certificate is used.
bool public_label(std::string_view label) {
    return label.find("CERTIFICATE") != std::string_view::npos || label.find("PUBLIC KEY") != std::string_view::npos;
}

/// Every non-public PEM block's body replaced by "***" (an unterminated one to the end).
std::string redact_pem(std::string_view s) {
    constexpr std::string_view begin = "-----BEGIN ";
    constexpr std::string_view end = "-----END ";
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        const size_t b = s.find(begin, i);
        if (b == std::string_view::npos) break;
        const size_t label_start = b + begin.size();
        const size_t label_end = s.find("-----", label_start);
        if (label_end == std::string_view::npos || s.substr(label_start, label_end - label_start).find('\n') !=
                                                       std::string_view::npos) {
            out.append(s.substr(i, label_start - i));
            i = label_start;
            continue;
        }
        const size_t body = label_end + 5;
        out.append(s.substr(i, body - i));
        if (public_label(s.substr(label_start, label_end - label_start))) {
            i = body;
            continue;
        }
        const size_t e = s.find(end, body);
        out += "\n";
        out += k_mask;
        out += "\n";
        if (e == std::string_view::npos) return out;
        i = e;
        out.append(end);
        i += end.size();
    }
    out.append(s.substr(i));
    return out;
}

/// One line with the values of its secret keys replaced. `starts_secret` tells whether
/// the line itself is `KEY = VALUE` with a secret KEY at its start (INI, env files).
std::string redact_line(std::string_view line, const std::vector<std::string>& extra, bool& starts_secret) {
    starts_secret = false;
    std::string out;
    out.reserve(line.size());
    size_t i = 0;
    // Where the first key may start: after blanks and an "export ".
    size_t first = line.find_first_not_of(" \t");
    if (first != std::string_view::npos && line.compare(first, 7, "export ") == 0) first += 7;
    while (i < line.size()) {
        if (!key_char(line[i]) || (i > 0 && key_char(line[i - 1]))) {
            out += line[i++];
            continue;
        }
        size_t k = i;
        while (k < line.size() && key_char(line[k])) ++k;
        const std::string_view key = line.substr(i, k - i);
        size_t j = k;
        if (j < line.size() && (line[j] == '"' || line[j] == '\'')) ++j;  // "KEY": in JSON
        while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) ++j;
        const bool assign = j < line.size() && (line[j] == '=' || (line[j] == ':' && line.compare(j, 3, "://") != 0));
        if (!assign && key.size() > 2 && key[0] == '-' && k < line.size() && (line[k] == ' ' || line[k] == '\t') &&
            is_secret_key(key, extra)) {
            // A command line's "--password VALUE": the next word.
            size_t v = k;
            while (v < line.size() && (line[v] == ' ' || line[v] == '\t')) ++v;
            size_t v_end = v;
            while (v_end < line.size() && line[v_end] != ' ' && line[v_end] != '\t') ++v_end;
            out.append(line.substr(i, v - i));
            if (v_end > v) out += k_mask;
            i = v_end;
            continue;
        }
        if (!assign || !is_secret_key(key, extra)) {
            out.append(key);
            i = k;
            continue;
        }
        ++j;
        while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) ++j;
        out.append(line.substr(i, j - i));
        // A quoted key ("password": in JSON) may start the line too, but has no
        // continuation lines: only a bare KEY at the start is an INI or env assignment.
        const bool bare_start = i == first;
        const bool at_start = bare_start || (first != std::string_view::npos && i == first + 1 &&
                                              (line[first] == '"' || line[first] == '\''));
        size_t v_end = j;
        if (j < line.size() && (line[j] == '"' || line[j] == '\'')) {
            const char q = line[j];
            v_end = j + 1;
            while (v_end < line.size() && line[v_end] != q) v_end += (line[v_end] == '\\' && v_end + 1 < line.size()) ? 2 : 1;
            if (v_end < line.size()) ++v_end;
            out += q;
            out += k_mask;
            if (v_end <= line.size() && v_end > j + 1 && line[v_end - 1] == q) out += q;
        } else if (at_start) {
            v_end = line.size();
            if (v_end > j) out += k_mask;
            starts_secret = bare_start;
        } else {
            while (v_end < line.size() && line[v_end] != ' ' && line[v_end] != '\t' && line[v_end] != ',' &&
                   line[v_end] != ';' && line[v_end] != '&' && line[v_end] != ')' && line[v_end] != '"')
                ++v_end;
            if (v_end > j) out += k_mask;
        }
        i = v_end;
    }
    return out;
}

/// Key/value redaction line by line, with inih's indented continuation lines of a secret.
std::string redact_keys(std::string_view s, const std::vector<std::string>& extra) {
    std::string out;
    out.reserve(s.size());
    bool in_secret = false;
    size_t i = 0;
    while (i <= s.size()) {
        const size_t nl = s.find('\n', i);
        const size_t e = nl == std::string_view::npos ? s.size() : nl;
        const std::string_view line = s.substr(i, e - i);
        const bool continuation = in_secret && !line.empty() && (line[0] == ' ' || line[0] == '\t') &&
                                  line.find_first_not_of(" \t\r") != std::string_view::npos;
        if (continuation) {
            out.append(line.substr(0, line.find_first_not_of(" \t")));
            out += k_mask;
        } else {
            bool starts = false;
            out += redact_line(line, extra, starts);
            in_secret = starts;
        }
        if (nl == std::string_view::npos) break;
        out += '\n';
        i = nl + 1;
    }
    return out;
}

/// "aes256gcm:v1:BASE64" -> "aes256gcm:v1:***".
std::string redact_sealed(std::string_view s) {
    constexpr std::string_view prefix = "aes256gcm:v1:";
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (true) {
        const size_t p = s.find(prefix, i);
        if (p == std::string_view::npos) break;
        out.append(s.substr(i, p + prefix.size() - i));
        size_t e = p + prefix.size();
        while (e < s.size() && (std::isalnum(static_cast<unsigned char>(s[e])) != 0 || s[e] == '+' || s[e] == '/' ||
                                s[e] == '='))
            ++e;
        out += k_mask;
        i = e;
    }
    out.append(s.substr(i));
    return out;
}

std::string replace_all(std::string s, const std::string& what) {
    if (what.size() < 4) return s;
    size_t i = 0;
    while ((i = s.find(what, i)) != std::string::npos) {
        s.replace(i, what.size(), k_mask);
        i += k_mask.size();
    }
    return s;
}

constexpr std::array<std::string_view, 12> k_secret_parts{
    "password", "passwd", "passphrase", "secret", "token", "private_key", "privatekey", "api_key", "apikey",
    "credential", "authorization", "pgpass"};

} // namespace

bool is_secret_key(std::string_view key, const std::vector<std::string>& extra) {
    const std::string k = lower(key);
    for (const auto part : k_secret_parts)
        if (k.find(part) != std::string::npos) return true;
    for (const auto& e : extra)
        if (!e.empty() && lower(e) == k) return true;
    return false;
}

std::string redact_text(std::string_view text, const RedactionRules& rules) {
    std::string out = redact_sealed(redact_secrets(redact_keys(redact_pem(text), rules.secret_keys)));
    for (const auto& literal : rules.literals) out = replace_all(std::move(out), literal);
    return out;
}

} // namespace leo
