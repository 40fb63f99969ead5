// The byte scan over decompressed primary: <package> boundaries and <name> with memchr; libxml2 only for the wanted.
#include "scan.hpp"

#include "leo/common/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace leo::repo::detail {
namespace {

constexpr std::size_t npos = std::string::npos;
constexpr std::size_t k_prolog_limit = std::size_t{1} << 20;  // bytes before the root element

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view local_of(std::string_view qname) {
    const auto colon = qname.find(':');
    return colon == npos ? qname : qname.substr(colon + 1);
}

/// `s` at `pos` starts with `word` followed by a blank, '>' or '/' (a whole tag name).
bool tag_named(std::string_view s, std::size_t pos, std::string_view word) {
    if (s.size() < pos + word.size() + 1 || s.compare(pos, word.size(), word) != 0) {
        return false;
    }
    const char after = s[pos + word.size()];
    return is_space(after) || after == '>' || after == '/';
}

/// Printable start of `s` for a message.
std::string excerpt(std::string_view s) {
    std::string out(s.substr(0, 24));
    std::replace_if(out.begin(), out.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }, ' ');
    return out;
}

} // namespace

PrimaryScanner::PrimaryScanner(std::string base_url, PackageFilter filter, std::string context)
    : m_base_url(std::move(base_url)), m_filter(std::move(filter)), m_context(std::move(context)) {}

bool PrimaryScanner::feed(std::string_view bytes) {
    if (m_gave_up) {
        return false;
    }
    if (m_state == State::done) {
        return true;  // after </metadata>: nothing more to find (trailing blanks, comments)
    }
    m_buf.append(bytes);
    while (step()) {
    }
    if (m_gave_up) {
        return false;
    }
    if (m_state == State::prolog) {
        if (m_buf.size() > k_prolog_limit) {
            throw RepoError(m_context + fmt::format("is not primary metadata: no root element in its first {} bytes",
                                                    k_prolog_limit));
        }
        return true;
    }
    // Forget what is processed: everything before the current package (or position).
    const std::size_t keep_from = m_state == State::package ? m_package_start : m_pos;
    if (keep_from > 0 && (keep_from >= (std::size_t{1} << 20) || keep_from * 2 >= m_buf.size())) {
        m_buf.erase(0, keep_from);
        m_pos -= keep_from;
        if (m_state == State::package) {
            m_package_start = 0;
        }
    }
    if (m_state == State::package && m_buf.size() - m_package_start > k_package_element_limit) {
        throw RepoError(m_context + fmt::format("package #{}{}: its <package> element is larger than {} bytes; refused",
                                                m_package_index, m_seen_name ? " (" + m_name + ")" : "",
                                                k_package_element_limit));
    }
    return true;
}

std::size_t PrimaryScanner::tag_end(std::size_t from) const {
    char quote = 0;
    for (std::size_t i = from + 1; i < m_buf.size(); ++i) {
        const char c = m_buf[i];
        if (quote != 0) {
            if (c == quote) {
                quote = 0;
            }
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '>') {
            return i;
        }
    }
    return npos;
}

bool PrimaryScanner::step() {
    if (m_state == State::done || m_gave_up) {
        return false;
    }
    const std::string_view s(m_buf);
    const char* base = m_buf.data();
    const std::size_t n = m_buf.size();
    while (true) {
        const void* lt = m_pos < n ? std::memchr(base + m_pos, '<', n - m_pos) : nullptr;
        if (lt == nullptr) {
            m_pos = n;
            return false;
        }
        const auto p = static_cast<std::size_t>(static_cast<const char*>(lt) - base);
        m_pos = p;  // an incomplete piece of markup is looked at again when more bytes come
        if (n - p < 2) {
            return false;
        }
        const char c = base[p + 1];
        if (c == '!') {
            if (n - p < 9) {
                return false;
            }
            std::string_view close;
            std::size_t open_len = 0;
            if (s.compare(p, 4, "<!--") == 0) {
                close = "-->";
                open_len = 4;
            } else if (s.compare(p, 9, "<![CDATA[") == 0) {
                close = "]]>";
                open_len = 9;
            } else if (m_state == State::prolog) {
                m_gave_up = true;  // a document type declaration: entities may change anything
                return false;
            } else {
                throw RepoError(m_context + fmt::format("is not valid primary XML: unexpected \"{}\"", excerpt(s.substr(p))));
            }
            const std::size_t e = s.find(close, p + open_len);
            if (e == npos) {
                return false;
            }
            m_pos = e + close.size();
            continue;
        }
        if (c == '?') {
            const std::size_t e = s.find("?>", p + 2);
            if (e == npos) {
                return false;
            }
            m_pos = e + 2;
            continue;
        }
        if (c == '/') {
            if (m_state == State::package) {
                if (n - p < 10) {
                    return false;
                }
                if (tag_named(s, p + 2, "package")) {
                    const void* gt = std::memchr(base + p, '>', n - p);
                    if (gt == nullptr) {
                        return false;
                    }
                    const auto e = static_cast<std::size_t>(static_cast<const char*>(gt) - base);
                    end_package(e + 1);
                    m_state = State::root;
                    m_pos = e + 1;
                    return true;
                }
                m_pos = p + 2;
                continue;
            }
            const void* gt = std::memchr(base + p, '>', n - p);
            if (gt == nullptr) {
                return false;
            }
            const auto e = static_cast<std::size_t>(static_cast<const char*>(gt) - base);
            std::string_view name = s.substr(p + 2, e - p - 2);
            while (!name.empty() && is_space(name.back())) {
                name.remove_suffix(1);
            }
            m_pos = e + 1;
            if (m_state == State::root && local_of(name) == "metadata") {
                m_state = State::done;
                return false;
            }
            continue;
        }
        // A start tag.
        if (m_state == State::package) {
            if (m_seen_name || !tag_named(s, p + 1, "name")) {
                if (!m_seen_name && n - p < 6) {
                    return false;
                }
                m_pos = p + 1;
                continue;
            }
            const std::size_t e = tag_end(p);
            if (e == npos) {
                return false;
            }
            m_seen_name = true;
            m_name.clear();
            m_name_plain = true;
            if (base[e - 1] == '/') {  // <name/>
                m_pos = e + 1;
                continue;
            }
            const void* next = std::memchr(base + e + 1, '<', n - e - 1);
            if (next == nullptr || static_cast<const char*>(next) + 1 >= base + n) {
                m_seen_name = false;
                return false;
            }
            const auto t = static_cast<std::size_t>(static_cast<const char*>(next) - base);
            const std::string_view text = s.substr(e + 1, t - e - 1);
            m_name = trim(std::string(text));
            m_name_plain = text.find('&') == npos && base[t + 1] == '/';  // else: CDATA or a comment inside
            m_pos = t;
            continue;
        }
        std::size_t name_end = p + 1;
        while (name_end < n && !is_space(base[name_end]) && base[name_end] != '>' && base[name_end] != '/') {
            ++name_end;
        }
        if (name_end == n) {
            return false;
        }
        const std::string_view name = s.substr(p + 1, name_end - p - 1);
        if (m_state == State::prolog) {
            const std::size_t e = tag_end(p);
            if (e == npos) {
                return false;
            }
            if (local_of(name) != "metadata") {
                throw RepoError(m_context + fmt::format("is not primary metadata: the root element is <{}>", name));
            }
            m_root_tag = std::string(s.substr(p, e - p + 1));
            m_pos = e + 1;
            if (base[e - 1] == '/') {  // <metadata/>: no package at all
                m_state = State::done;
                return false;
            }
            m_root_name = std::string(name);
            m_state = State::root;
            continue;
        }
        if (name == "package") {
            const std::size_t e = tag_end(p);
            if (e == npos) {
                return false;
            }
            ++m_package_index;
            m_package_start = p;
            m_seen_name = false;
            m_name.clear();
            m_pos = e + 1;
            if (base[e - 1] == '/') {  // <package .../>: no name
                end_package(e + 1);
                continue;
            }
            m_state = State::package;
            continue;
        }
        m_pos = p + 1;
    }
}

void PrimaryScanner::end_package(std::size_t end) {
    bool wanted = true;
    if (!m_seen_name) {
        if (m_filter) {
            ++m_result.skipped;
            if (m_result.first_skipped.empty()) {
                m_result.first_skipped = fmt::format("package #{}: no <name>", m_package_index);
            }
            return;
        }
    } else if (m_name_plain) {
        wanted = !m_filter || m_filter(m_name);
    }
    if (!wanted) {
        return;
    }
    // The root's start tag gives the package its namespaces (rpm:) and xml:base.
    std::string doc;
    doc.reserve(m_root_tag.size() + (end - m_package_start) + m_root_name.size() + 4);
    doc += m_root_tag;
    doc.append(m_buf, m_package_start, end - m_package_start);
    doc += "</";
    doc += m_root_name;
    doc += ">";
    parse_primary_xml(doc, m_base_url, m_filter, m_context, m_package_index - 1, m_result);
}

PrimaryScan PrimaryScanner::finish() {
    if (m_state == State::prolog) {
        if (std::all_of(m_buf.begin(), m_buf.end(), is_space)) {
            throw RepoError(m_context + "is empty");
        }
        throw RepoError(m_context + "is truncated or not valid XML: it has no root element");
    }
    if (m_state != State::done) {
        throw RepoError(m_context + fmt::format("is truncated or not valid XML: it ends inside {}",
                                                m_state == State::package
                                                    ? fmt::format("package #{}", m_package_index)
                                                    : std::string("<metadata>")));
    }
    return std::move(m_result);
}

} // namespace leo::repo::detail
