// Repository definitions: yum's .repo INI files, parsed with inih.
#include "leo/repo/config.hpp"

#include "leo/common/error.hpp"
#include "leo/repo/url.hpp"

#include <fmt/format.h>
#include <ini.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>

namespace leo::repo {
namespace {

constexpr std::string_view k_basearch = "x86_64";
constexpr std::string_view k_releasever = "7";

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

/// yum's variables: $basearch / ${basearch} and $releasever / ${releasever}.
std::string substitute(std::string value) {
    const std::pair<std::string_view, std::string_view> vars[] = {{"basearch", k_basearch},
                                                                  {"releasever", k_releasever}};
    for (const auto& [var, replacement] : vars) {
        for (const std::string& pattern : {fmt::format("${{{}}}", var), fmt::format("${}", var)}) {
            std::size_t pos = 0;
            while ((pos = value.find(pattern, pos)) != std::string::npos) {
                value.replace(pos, pattern.size(), replacement);
                pos += replacement.size();
            }
        }
    }
    return value;
}

/// Lists (baseurl, gpgkey) are separated by whitespace or commas.
std::vector<std::string> split_list(std::string_view value) {
    std::vector<std::string> items;
    std::string current;
    for (const char c : value) {
        if (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (!current.empty()) {
                items.push_back(std::move(current));
                current.clear();
            }
        } else {
            current += c;
        }
    }
    if (!current.empty()) {
        items.push_back(std::move(current));
    }
    return items;
}

std::optional<bool> parse_bool(const std::string& value) {
    const std::string v = lower(trim(value));
    if (v == "1" || v == "yes" || v == "true" || v == "on") {
        return true;
    }
    if (v == "0" || v == "no" || v == "false" || v == "off") {
        return false;
    }
    return std::nullopt;
}

bool has_supported_scheme(std::string_view url) {
    return url.starts_with("http://") || url.starts_with("https://") || url.starts_with("file://");
}

/// One key of a section as read: its (joined) value and the line it started on.
struct Value {
    std::string text;
    int line = 0;
};

struct Section {
    std::string id;
    int line = 0;
    std::map<std::string, Value> values;
};

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
    section.values[name] = Value{raw_value, line};
    return 1;
}

/// The options make_config reads.
const std::set<std::string, std::less<>> k_handled = {
    "name", "baseurl", "mirrorlist", "metalink", "enabled", "gpgcheck", "repo_gpgcheck", "gpgkey",
    "allow_http_gpgkey", "exclude", "excludepkgs", "includepkgs", "priority", "cost", "skip_if_unavailable",
    "metadata_expire", "timeout", "retries", "minrate", "sslverify", "sslcacert", "sslclientcert",
    "sslclientkey", "proxy", "proxy_username", "proxy_password", "username", "password"};

/// Options yum knows that change nothing in what we fetch or trust (accepted without a
/// warning): descriptive ones, and ones about other packages or yum's own behaviour.
/// failovermethod: we always try the URLs in order (yum's "priority"), which only differs
/// from "roundrobin" in which healthy mirror serves first.
const std::set<std::string, std::less<>> k_without_effect = {
    "type", "failovermethod", "mirrorlist_expire", "enablegroups", "keepalive", "http_caching",
    "metadata_expire_filter", "bugtracker_url", "gpgcakey", "deltarpm_percentage", "deltarpm_metadata_percentage",
    "module_hotfixes", "countme", "ui_repoid_vars", "async", "fastestmirror_enabled", "max_parallel_downloads",
    "mediaid", "enabled_metadata"};

template <class T>
struct Parsed {
    std::optional<T> value;
    std::string why;
    explicit operator bool() const { return value.has_value(); }
    const T& operator*() const { return *value; }
    [[nodiscard]] const std::string& error() const { return why; }
};

template <class T>
Parsed<T> fail_parse(std::string why) {
    return Parsed<T>{std::nullopt, std::move(why)};
}

/// A whole decimal number in [lo, hi], or nullopt.
std::optional<std::int64_t> whole(std::string_view text, std::int64_t lo, std::int64_t hi) {
    if (text.empty() || text.size() > 18) {
        return std::nullopt;
    }
    std::int64_t value = 0;
    bool negative = false;
    std::size_t i = 0;
    if (text[0] == '-') {
        negative = true;
        i = 1;
    }
    if (i == text.size()) {
        return std::nullopt;
    }
    for (; i < text.size(); ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return std::nullopt;
        }
        value = value * 10 + (text[i] - '0');
    }
    if (negative) {
        value = -value;
    }
    if (value < lo || value > hi) {
        return std::nullopt;
    }
    return value;
}

Parsed<int> parse_priority(const std::string& text) {
    if (auto v = whole(text, 1, 99)) return Parsed<int>{static_cast<int>(*v), {}};
    return fail_parse<int>("not a priority (a whole number from 1, the highest, to 99)");
}

Parsed<int> parse_cost(const std::string& text) {
    if (auto v = whole(text, 0, 1000000)) return Parsed<int>{static_cast<int>(*v), {}};
    return fail_parse<int>("not a cost (a whole number from 0 to 1000000)");
}

/// yum's time values: seconds, or a number with a d/h/m/s suffix; "never" or -1 for never.
Parsed<std::int64_t> parse_expire(const std::string& text) {
    if (text == "never" || text == "-1") return Parsed<std::int64_t>{-1, {}};
    std::int64_t unit = 1;
    std::string_view digits = text;
    if (!digits.empty()) {
        switch (digits.back()) {
        case 's': unit = 1; digits.remove_suffix(1); break;
        case 'm': unit = 60; digits.remove_suffix(1); break;
        case 'h': unit = 3600; digits.remove_suffix(1); break;
        case 'd': unit = 86400; digits.remove_suffix(1); break;
        default: break;
        }
    }
    if (auto v = whole(digits, 0, std::int64_t{100} * 365 * 86400)) return Parsed<std::int64_t>{*v * unit, {}};
    return fail_parse<std::int64_t>("not a time (seconds, or a number with d, h, m or s; never or -1 for never)");
}

/// Seconds, whole or with a fraction (yum takes a float); rounded up, 1 to 3600.
Parsed<long> parse_timeout(const std::string& text) {
    const auto dot = text.find('.');
    const std::string_view whole_part = std::string_view(text).substr(0, dot);
    const std::string_view fraction = dot == std::string::npos ? std::string_view{} : std::string_view(text).substr(dot + 1);
    const bool fraction_ok = std::all_of(fraction.begin(), fraction.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (auto v = whole(whole_part.empty() ? "0" : whole_part, 0, 3600); v && fraction_ok) {
        const bool round_up = fraction.find_first_not_of('0') != std::string_view::npos;
        const long seconds = static_cast<long>(*v) + (round_up ? 1 : 0);
        if (seconds >= 1 && seconds <= 3600) return Parsed<long>{seconds, {}};
    }
    return fail_parse<long>("not a timeout (seconds, from 1 to 3600)");
}

Parsed<unsigned> parse_retries(const std::string& text) {
    if (auto v = whole(text, 0, 1000)) return Parsed<unsigned>{static_cast<unsigned>(*v), {}};
    return fail_parse<unsigned>("not a number of retries (0 to 1000)");
}

/// Bytes per second, with an optional k, M or G suffix (1024-based, as yum).
Parsed<std::uint64_t> parse_rate(const std::string& text) {
    std::uint64_t unit = 1;
    std::string_view digits = text;
    if (!digits.empty()) {
        switch (digits.back()) {
        case 'k': unit = 1024; digits.remove_suffix(1); break;
        case 'm': unit = 1024 * 1024; digits.remove_suffix(1); break;
        case 'g': unit = std::uint64_t{1024} * 1024 * 1024; digits.remove_suffix(1); break;
        default: break;
        }
    }
    if (auto v = whole(digits, 0, std::int64_t{1} << 40)) return Parsed<std::uint64_t>{static_cast<std::uint64_t>(*v) * unit, {}};
    return fail_parse<std::uint64_t>("not a rate (bytes per second, with k, M or G)");
}

RepoConfig make_config(const Section& section, const std::string& file) {
    RepoConfig config;
    config.id = section.id;
    config.source = file;
    const auto where = [&](int line) { return fmt::format("{}:{}", file, line); };
    const auto get = [&](const std::string& key) -> const Value* {
        const auto it = section.values.find(key);
        return it == section.values.end() ? nullptr : &it->second;
    };
    const auto boolean = [&](const std::string& key, bool fallback) {
        const Value* value = get(key);
        if (value == nullptr) {
            return fallback;
        }
        const auto parsed = parse_bool(value->text);
        if (!parsed) {
            throw RepoError(fmt::format("{}: [{}] {}={}: not a boolean (use 1/0, yes/no, true/false or on/off)",
                                        where(value->line), section.id, key, value->text));
        }
        return *parsed;
    };

    config.name = get("name") != nullptr ? substitute(trim(get("name")->text)) : section.id;
    config.enabled = boolean("enabled", true);
    config.gpgcheck = boolean("gpgcheck", true);
    config.repo_gpgcheck = boolean("repo_gpgcheck", false);
    config.sslverify = boolean("sslverify", true);
    if (const Value* v = get("sslcacert")) {
        config.sslcacert = substitute(trim(v->text));
    }
    if (const Value* v = get("proxy")) {
        config.proxy = substitute(trim(v->text));
        if (config.proxy == "_none_") {
            config.proxy.clear();
        }
    }
    // credentials: passed to libcurl as options, never shown
    for (const auto& [key, field] : {std::pair<const char*, std::string*>{"proxy_username", &config.proxy_username},
                                     {"proxy_password", &config.proxy_password},
                                     {"username", &config.username},
                                     {"password", &config.password}}) {
        if (const Value* v = get(key)) {
            *field = trim(v->text);
        }
    }
    if (const Value* v = get("gpgkey")) {
        for (auto& key : split_list(substitute(v->text))) {
            config.gpgkeys.push_back(std::move(key));
        }
    }
    if (const Value* v = get("baseurl")) {
        for (auto& url : split_list(substitute(v->text))) {
            if (!has_supported_scheme(url)) {
                throw RepoError(fmt::format("{}: [{}] baseurl {}: unsupported URL (use http://, https:// or file://)",
                                            where(v->line), section.id, redact_url(url)));
            }
            config.baseurls.push_back(std::move(url));
        }
    }
    for (const auto& [key, field] : {std::pair<const char*, std::string*>{"mirrorlist", &config.mirrorlist},
                                     {"metalink", &config.metalink}}) {
        if (const Value* v = get(key)) {
            *field = substitute(trim(v->text));
            if (!field->empty() && !has_supported_scheme(*field)) {
                throw RepoError(fmt::format("{}: [{}] {} {}: unsupported URL (use http://, https:// or file://)",
                                            where(v->line), section.id, key, redact_url(*field)));
            }
        }
    }
    config.allow_http_gpgkey = boolean("allow_http_gpgkey", false);
    for (const char* key : {"exclude", "excludepkgs"}) {
        if (const Value* v = get(key)) {
            for (auto& glob : split_list(substitute(v->text))) config.excludes.push_back(std::move(glob));
        }
    }
    if (const Value* v = get("includepkgs")) {
        for (auto& glob : split_list(substitute(v->text))) config.includepkgs.push_back(std::move(glob));
    }
    const auto number = [&](const std::string& key, auto fallback, auto parse) -> decltype(fallback) {
        const Value* value = get(key);
        if (value == nullptr) {
            return fallback;
        }
        const auto parsed = parse(lower(trim(value->text)));
        if (!parsed) {
            throw RepoError(fmt::format("{}: [{}] {}={}: {}", where(value->line), section.id, key, trim(value->text),
                                        parsed.error()));
        }
        return *parsed;
    };
    config.priority = number("priority", config.priority, parse_priority);
    config.cost = number("cost", config.cost, parse_cost);
    config.metadata_expire = number("metadata_expire", config.metadata_expire, parse_expire);
    config.timeout = number("timeout", config.timeout, parse_timeout);
    config.retries = number("retries", config.retries, parse_retries);
    config.minrate = number("minrate", config.minrate, parse_rate);
    if (get("skip_if_unavailable") != nullptr) {
        config.skip_if_unavailable = boolean("skip_if_unavailable", false);
    }
    for (const auto& [key, field] : {std::pair<const char*, std::string*>{"sslclientcert", &config.sslclientcert},
                                     {"sslclientkey", &config.sslclientkey}}) {
        if (const Value* v = get(key)) {
            *field = substitute(trim(v->text));
        }
    }
    for (const auto& [key, value] : section.values) {
        if (k_handled.contains(key) || k_without_effect.contains(key)) {
            continue;
        }
        config.warnings.push_back(fmt::format("{}: [{}] option '{}' is not supported; ignored", where(value.line),
                                              section.id, key));
    }
    if (config.baseurls.empty() && config.mirrorlist.empty() && config.metalink.empty() && config.enabled) {
        throw RepoError(fmt::format("{}: [{}] has no baseurl, mirrorlist or metalink", where(section.line),
                                    section.id));
    }
    return config;
}

/// .repo files are small; a bigger one is refused rather than read whole.
constexpr std::size_t k_repo_file_limit = std::size_t{1} << 20;

void parse_text(const std::string& content, const std::string& file, std::vector<RepoConfig>& out,
                std::map<std::string, std::string>& seen);

void parse_file(const leo::fs::SystemRoot& root, const std::filesystem::path& inside, std::vector<RepoConfig>& out,
                std::map<std::string, std::string>& seen) {
    parse_text(root.read(inside, k_repo_file_limit), root.host(inside).string(), out, seen);
}

/// The sections of one .repo file's `content` (`file` names it), appended to `out`; `seen`
/// holds the ids already defined (by earlier files) and where.
void parse_text(const std::string& content, const std::string& file, std::vector<RepoConfig>& out,
                std::map<std::string, std::string>& seen) {
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
    for (const Section& section : state.sections) {
        if (section.id == "main") {
            continue;  // yum ignores [main] in repo files
        }
        if (section.id.empty()) {
            throw RepoError(fmt::format("{}:{}: empty repository id []", file, section.line));
        }
        const std::string here = fmt::format("{}:{}", file, section.line);
        if (const auto [it, inserted] = seen.emplace(section.id, here); !inserted) {
            throw RepoError(fmt::format("{}: repository id [{}] is already defined at {}", here, section.id,
                                        it->second));
        }
        out.push_back(make_config(section, file));
    }
}

} // namespace

std::vector<RepoConfig> load_repo_configs(const leo::fs::SystemRoot& root) {
    const std::filesystem::path dir(leo::fs::SystemRoot::k_repos_dir);
    std::vector<std::string> files;
    try {
        for (auto& name : root.list(dir)) {
            if (!name.ends_with(".repo")) {
                continue;
            }
            // a file, or a link (read() follows it inside the root only when root made it)
            const auto st = root.lstat(dir / name);
            if (st && (S_ISREG(st->st_mode) || S_ISLNK(st->st_mode))) {
                files.push_back(std::move(name));
            }
        }
    } catch (const SystemError& e) {
        throw RepoError(fmt::format("{}: cannot be listed: {}", root.host(dir).string(), e.what()));
    }
    std::vector<RepoConfig> configs;
    std::map<std::string, std::string> seen;
    for (const auto& name : files) {
        parse_file(root, dir / name, configs, seen);
    }
    return configs;
}

std::vector<RepoConfig> parse_repo_config(const std::string& text, const std::string& file) {
    std::vector<RepoConfig> configs;
    std::map<std::string, std::string> seen;
    parse_text(text, file, configs, seen);
    return configs;
}

RepoConfig repo_from_path(const std::string& spec) {
    const auto comma = spec.find(',');
    if (comma == std::string::npos) {
        throw UsageError(fmt::format("--repofrompath {}: expected ID,URL", redact_url(spec)));
    }
    RepoConfig config;
    config.id = trim(std::string_view(spec).substr(0, comma));
    const std::string url = trim(std::string_view(spec).substr(comma + 1));
    if (config.id.empty() || url.empty()) {
        throw UsageError(fmt::format("--repofrompath {}: expected ID,URL", redact_url(spec)));
    }
    std::string baseurl = url;
    if (url_scheme(url).empty()) {
        // a plain directory, as dnf takes it: made absolute, and it must be one
        std::error_code ec;
        const auto dir = std::filesystem::absolute(url, ec);
        if (ec || !std::filesystem::is_directory(dir, ec)) {
            throw UsageError(fmt::format("--repofrompath {}: {} is not a directory (give a directory holding "
                                         "repodata/, or an http://, https:// or file:// URL)",
                                         spec, dir.string()));
        }
        baseurl = "file://" + dir.lexically_normal().string();
    } else if (!has_supported_scheme(url)) {
        throw UsageError(fmt::format("--repofrompath {}: URL must start with http://, https:// or file://, or be a "
                                     "directory",
                                     redact_url(spec)));
    }
    config.name = config.id;
    config.baseurls.push_back(baseurl);
    config.source = "--repofrompath";
    return config;
}

} // namespace leo::repo
