// Repository definitions: yum.conf [main] (and dnf.conf), then yum's .repo INI files, with
// yum's variables (yum_vars.cpp); values parsed by config_values.cpp, the INI by repo_ini.cpp.
#include "leo/repo/config.hpp"

#include "config_values.hpp"

#include "leo/common/error.hpp"
#include "leo/repo/url.hpp"
#include "leo/repo/yum_vars.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace leo::repo {
namespace {
using detail::Section;
using detail::Value;
using detail::has_supported_scheme;
using detail::lower;
using detail::parse_bool;
using detail::split_list;
using detail::trim;
using Names = std::set<std::string, std::less<>>;

/// The options apply_options reads in a repository section.
const Names k_handled = {
    "name", "baseurl", "mirrorlist", "metalink", "enabled", "gpgcheck", "repo_gpgcheck", "gpgkey",
    "allow_http_gpgkey", "exclude", "excludepkgs", "includepkgs", "priority", "cost", "skip_if_unavailable",
    "metadata_expire", "timeout", "retries", "minrate", "sslverify", "sslcacert", "sslclientcert",
    "sslclientkey", "proxy", "proxy_username", "proxy_password", "username", "password"};

/// Options yum knows that change nothing in what we fetch or trust (accepted without a
/// warning): descriptive ones, and ones about other packages or yum's own behaviour.
/// failovermethod: we always try the URLs in order (yum's "priority"), which only differs
/// from "roundrobin" in which healthy mirror serves first.
const Names k_without_effect = {
    "type", "failovermethod", "mirrorlist_expire", "enablegroups", "keepalive", "http_caching",
    "metadata_expire_filter", "bugtracker_url", "gpgcakey", "deltarpm_percentage", "deltarpm_metadata_percentage",
    "module_hotfixes", "countme", "ui_repoid_vars", "async", "fastestmirror_enabled", "max_parallel_downloads",
    "mediaid", "enabled_metadata"};

/// [main] options each repository inherits unless its section sets them (yum's RepoConf
/// `Inherit(YumConf.x)`; exclude is yum's global exclude, includepkgs dnf's).
const Names k_main_inherited = {
    "gpgcheck", "repo_gpgcheck", "exclude", "excludepkgs", "includepkgs", "skip_if_unavailable",
    "metadata_expire", "timeout", "retries", "minrate", "sslverify", "sslcacert", "sslclientcert", "sslclientkey",
    "proxy", "proxy_username", "proxy_password", "username", "password"};

/// [main] options that decide what is read (load_yum_config).
const Names k_main_read = {"reposdir", "distroverpkg"};

/// [main] options of yum 3 and dnf that change nothing in what we fetch, trust or choose
/// (accepted silently; the list is in config.hpp's docstring).
const Names k_main_without_effect = {
    "cachedir", "persistdir", "keepcache", "debuglevel", "errorlevel", "logfile", "exactarch", "obsoletes",
    "plugins", "pluginpath", "pluginconfpath", "installonly_limit", "installonlypkgs", "bugtracker_url",
    "tolerant", "assumeyes", "assumeno", "alwaysprompt", "color", "color_list_installed_older",
    "color_list_installed_newer", "color_list_installed_reinstall", "color_list_installed_extra",
    "color_list_available_upgrade", "color_list_available_downgrade", "color_list_available_reinstall",
    "color_list_available_install", "color_update_installed", "color_update_local", "color_update_remote",
    "color_search_match", "diskspacecheck", "history_record", "history_record_packages", "history_list_view",
    "protected_packages", "protected_multilib", "multilib_policy", "recent", "showdupesfromrepos", "syslog_ident",
    "syslog_facility", "syslog_device", "mdpolicy", "deltarpm", "group_package_types", "groupremove_leaf_only",
    "upgrade_requirements_on_install", "clean_requirements_on_remove", "best", "skip_broken", "localpkg_gpgcheck",
    "usr_w_check", "rpmverbosity", "exit_on_lock", "metadata_timer_sync", "installroot", "config_file_path",
    "keepalive", "http_caching", "failovermethod", "enablegroups", "mirrorlist_expire", "overwrite_groups",
    "autocheck_running_kernel", "check_config_file_age", "depsolve_loop_limit", "query_install_excludes",
    "fssnap_automatic_pre", "fssnap_automatic_post", "fssnap_automatic_keep",
    "fssnap_percentage", "fssnap_devices", "fssnap_abort_on_errors", "reset_nice", "timedhosts",
    "deltarpm_percentage", "deltarpm_metadata_percentage", "max_parallel_downloads", "fastestmirror",
    "install_weak_deps", "zchunk", "countme"};

/// Values never quoted in a message, not even the name of a variable in them.
const Names k_secrets = {"password", "proxy_password"};

enum class Scope { main, repo };

/// `section` with yum's variables replaced in every value; each unknown one named in `warnings`.
Section substituted(const Section& section, const YumVars& vars, std::vector<std::string>& warnings) {
    Section out = section;
    for (auto& [key, value] : out.values) {
        std::vector<std::string> unknown;
        value.text = substitute_vars(value.text, vars, &unknown);
        if (k_secrets.contains(key)) continue;
        for (const auto& name : unknown)
            warnings.push_back(fmt::format("{}:{}: [{}] unknown variable {} in {}; left as written", value.file,
                                           value.line, section.id, name, key));
    }
    return out;
}

/// Set the fields of `config` that `section` names: every option in a repository section,
/// the inherited ones in [main].
void apply_options(RepoConfig& config, const Section& section, Scope scope) {
    const auto where = [](const Value& v) { return fmt::format("{}:{}", v.file, v.line); };
    const auto get = [&](const std::string& key) -> const Value* {
        const auto it = section.values.find(key);
        return it == section.values.end() ? nullptr : &it->second;
    };
    const auto boolean = [&](const std::string& key, bool& field) {
        const Value* value = get(key);
        if (value == nullptr) return;
        const auto parsed = parse_bool(value->text);
        if (!parsed)
            throw RepoError(fmt::format("{}: [{}] {}={}: not a boolean (use 1/0, yes/no, true/false or on/off)",
                                        where(*value), section.id, key, value->text));
        field = *parsed;
    };
    const auto text = [&](const std::string& key, std::string& field) {
        if (const Value* v = get(key)) field = trim(v->text);
    };
    const auto url = [&](const std::string& key, const std::string& item) {
        if (!has_supported_scheme(item))
            throw RepoError(fmt::format("{}: [{}] {} {}: unsupported URL (use http://, https:// or file://)",
                                        where(*get(key)), section.id, key, redact_url(item)));
    };
    const auto number = [&](const std::string& key, auto& field, auto parse) {
        const Value* value = get(key);
        if (value == nullptr) return;
        const auto parsed = parse(lower(trim(value->text)));
        if (!parsed)
            throw RepoError(fmt::format("{}: [{}] {}={}: {}", where(*value), section.id, key, trim(value->text),
                                        parsed.error()));
        field = *parsed;
    };

    if (scope == Scope::repo) {
        text("name", config.name);
        boolean("enabled", config.enabled);
        if (const Value* v = get("gpgkey"))
            for (auto& key : split_list(v->text)) config.gpgkeys.push_back(std::move(key));
        if (const Value* v = get("baseurl"))
            for (auto& item : split_list(v->text)) {
                url("baseurl", item);
                config.baseurls.push_back(std::move(item));
            }
        for (const auto& [key, field] : {std::pair<const char*, std::string*>{"mirrorlist", &config.mirrorlist},
                                         {"metalink", &config.metalink}}) {
            text(key, *field);
            if (!field->empty()) url(key, *field);
        }
        boolean("allow_http_gpgkey", config.allow_http_gpgkey);
        number("priority", config.priority, detail::parse_priority);
        number("cost", config.cost, detail::parse_cost);
    }
    boolean("gpgcheck", config.gpgcheck);
    boolean("repo_gpgcheck", config.repo_gpgcheck);
    boolean("sslverify", config.sslverify);
    if (get("skip_if_unavailable") != nullptr) {
        bool skip = false;
        boolean("skip_if_unavailable", skip);
        config.skip_if_unavailable = skip;
    }
    text("sslcacert", config.sslcacert);
    text("sslclientcert", config.sslclientcert);
    text("sslclientkey", config.sslclientkey);
    text("proxy", config.proxy);
    if (config.proxy == "_none_") {
        config.proxy.clear();
        config.no_proxy = true;
    } else if (!config.proxy.empty()) {
        config.no_proxy = false;  // a section's proxy over [main]'s _none_
    }
    // credentials: passed to libcurl as options, never shown
    for (const auto& [key, field] : {std::pair<const char*, std::string*>{"proxy_username", &config.proxy_username},
                                     {"proxy_password", &config.proxy_password},
                                     {"username", &config.username},
                                     {"password", &config.password}})
        text(key, *field);
    // [main]'s exclude comes first, the section's are added (yum's global exclude)
    for (const char* key : {"exclude", "excludepkgs"})
        if (const Value* v = get(key))
            for (auto& glob : split_list(v->text)) config.excludes.push_back(std::move(glob));
    if (const Value* v = get("includepkgs")) config.includepkgs = split_list(v->text);
    number("metadata_expire", config.metadata_expire, detail::parse_expire);
    number("timeout", config.timeout, detail::parse_timeout);
    number("retries", config.retries, detail::parse_retries);
    number("minrate", config.minrate, detail::parse_rate);
}

/// One repository section (variables not yet replaced), on top of [main]'s `defaults`.
RepoConfig make_config(const Section& raw, const RepoConfig& defaults, const YumVars& vars, const std::string& file) {
    RepoConfig config = defaults;
    config.id = raw.id;
    config.name = raw.id;
    config.source = file;
    const Section section = substituted(raw, vars, config.warnings);
    apply_options(config, section, Scope::repo);
    for (const auto& [key, value] : section.values) {
        if (k_handled.contains(key) || k_without_effect.contains(key)) continue;
        config.warnings.push_back(fmt::format("{}:{}: [{}] option '{}' is not supported; ignored", file, value.line,
                                              section.id, key));
    }
    if (config.baseurls.empty() && config.mirrorlist.empty() && config.metalink.empty() && config.enabled)
        throw RepoError(fmt::format("{}:{}: [{}] has no baseurl, mirrorlist or metalink", file, section.line,
                                    section.id));
    return config;
}

/// The repository sections of one file (not [main]), appended to `out`; `seen` holds the ids
/// already defined (by earlier files) and where. A repository id defined again is named in
/// `duplicates` and ignored: yum 3 keeps the first definition ("Repository X is listed more
/// than once in the configuration"); nullptr makes it an error instead (one text, one file).
void add_sections(const std::vector<Section>& sections, const std::string& file, const RepoConfig& defaults,
                  const YumVars& vars, std::vector<RepoConfig>& out, std::map<std::string, std::string>& seen,
                  std::vector<std::string>* duplicates) {
    for (const Section& section : sections) {
        if (section.id == "main") continue;  // yum ignores [main] in repo files
        if (section.id.empty()) throw RepoError(fmt::format("{}:{}: empty repository id []", file, section.line));
        const std::string here = fmt::format("{}:{}", file, section.line);
        if (const auto [it, inserted] = seen.emplace(section.id, here); !inserted) {
            const std::string what =
                fmt::format("{}: repository id [{}] is already defined at {}", here, section.id, it->second);
            if (duplicates == nullptr) throw RepoError(what);
            duplicates->push_back(what + "; this definition is ignored (yum keeps the first)");
            continue;
        }
        out.push_back(make_config(section, defaults, vars, file));
    }
}

/// Configuration files are small; a bigger one is refused rather than read whole.
constexpr std::size_t k_conf_file_limit = std::size_t{1} << 20;

struct ConfFile {
    std::string host;  ///< its path on the host, for messages
    std::vector<Section> sections;
};

/// yum.conf or dnf.conf; nullopt when missing. Throws leo::RepoError when a user other than
/// root can change it (its [main] chooses reposdir and the gpgcheck default: nothing of it
/// can be used, and leaving it out would change those defaults).
std::optional<ConfFile> read_conf(const leo::fs::SystemRoot& root, const std::filesystem::path& inside) {
    auto text = root.try_read(inside, k_conf_file_limit);
    if (!text) return std::nullopt;
    const std::string host = root.host(inside).string();
    if (const auto st = root.stat(inside); st)
        if (auto why = detail::changeable_by_others(*st, host); !why.empty())
            throw RepoError(fmt::format("{}: refusing to read yum's configuration from it; {}", why, detail::k_make_it_roots));
    return ConfFile{host, detail::parse_ini_sections(*text, host)};
}

/// reposdir's directories: absolute inside the root, no "..". Throws leo::RepoError.
std::vector<std::string> reposdirs_of(const Value& value) {
    std::vector<std::string> dirs = split_list(value.text);
    for (const auto& dir : dirs) {
        const std::filesystem::path p(dir);
        const bool up = std::any_of(p.begin(), p.end(), [](const std::filesystem::path& c) { return c == ".."; });
        if (!p.is_absolute() || up)
            throw RepoError(fmt::format("{}:{}: [main] reposdir={}: {} is not an absolute path without \"..\" "
                                        "(give directories such as /etc/yum.repos.d)",
                                        value.file, value.line, trim(value.text), dir));
    }
    if (dirs.empty())
        throw RepoError(fmt::format("{}:{}: [main] reposdir is empty (give directories such as /etc/yum.repos.d)",
                                    value.file, value.line));
    return dirs;
}

/// The *.repo files of `dir` (files, or links that read() follows inside the root only when
/// root made them), in name order; none when it does not exist.
std::vector<std::string> repo_files(const leo::fs::SystemRoot& root, const std::filesystem::path& dir) {
    std::vector<std::string> files;
    try {
        const auto st = root.stat(dir);
        if (!st) return files;
        if (!S_ISDIR(st->st_mode))
            throw RepoError(fmt::format("{}: reposdir is not a directory", root.host(dir).string()));
        for (auto& name : root.list(dir)) {
            if (!name.ends_with(".repo")) continue;
            const auto lst = root.lstat(dir / name);
            if (lst && (S_ISREG(lst->st_mode) || S_ISLNK(lst->st_mode))) files.push_back(std::move(name));
        }
    } catch (const SystemError& e) {
        throw RepoError(fmt::format("{}: cannot be listed: {}", root.host(dir).string(), e.what()));
    }
    return files;
}

} // namespace

YumConfig load_yum_config(const leo::fs::SystemRoot& root) {
    YumConfig out;
    const auto dnf = read_conf(root, "/etc/dnf/dnf.conf");
    const auto yum = read_conf(root, "/etc/yum.conf");
    Section main;
    main.id = "main";
    for (const auto* conf : {&dnf, &yum}) {  // yum.conf's values win
        if (!*conf) continue;
        for (const auto& section : (*conf)->sections)
            if (section.id == "main")
                for (const auto& [key, value] : section.values) main.values[key] = value;
    }
    std::vector<std::string> distroverpkg;
    if (const auto it = main.values.find("distroverpkg"); it != main.values.end())
        distroverpkg = split_list(it->second.text);
    const YumVars vars = load_yum_vars(root, distroverpkg, out.warnings);
    out.vars.insert(vars.begin(), vars.end());

    main = substituted(main, vars, out.warnings);
    RepoConfig defaults;
    apply_options(defaults, main, Scope::main);
    for (const auto& [key, value] : main.values) {
        if (k_main_inherited.contains(key) || k_main_read.contains(key) || k_main_without_effect.contains(key))
            continue;
        out.warnings.push_back(
            fmt::format("{}:{}: [main] option '{}' is not supported; ignored", value.file, value.line, key));
    }
    if (const auto it = main.values.find("reposdir"); it != main.values.end())
        out.reposdirs = reposdirs_of(it->second);
    else
        out.reposdirs = {std::string(leo::fs::SystemRoot::k_repos_dir), "/etc/yum/repos.d"};

    // Repositories: yum.conf's own sections (dnf.conf's when there is no yum.conf), then reposdir.
    std::map<std::string, std::string> seen;
    if (yum && dnf)
        for (const auto& section : dnf->sections)
            if (section.id != "main")
                out.warnings.push_back(fmt::format("{}:{}: [{}] a repository in dnf.conf is not read when {} "
                                                   "exists (yum's configuration); ignored",
                                                   dnf->host, section.line, section.id, yum->host));
    if (const auto* conf = yum ? &*yum : dnf ? &*dnf : nullptr)
        add_sections(conf->sections, conf->host, defaults, vars, out.repos, seen, &out.warnings);
    for (const auto& dir : out.reposdirs) {
        for (const auto& name : repo_files(root, dir)) {
            const auto inside = std::filesystem::path(dir) / name;
            const std::string host = root.host(inside).string();
            // A file another user can change could name any server and gpgcheck=0 (yum reads
            // it anyway): its repositories are left out, with a warning.
            if (const auto st = root.stat(inside); st)
                if (auto why = detail::changeable_by_others(*st, host); !why.empty()) {
                    out.warnings.push_back(fmt::format("{}: its repositories are ignored; {}", why, detail::k_make_it_roots));
                    continue;
                }
            add_sections(detail::parse_ini_sections(root.read(inside, k_conf_file_limit), host), host, defaults,
                         vars, out.repos, seen, &out.warnings);
        }
    }
    return out;
}

std::vector<RepoConfig> load_repo_configs(const leo::fs::SystemRoot& root) { return load_yum_config(root).repos; }

std::vector<RepoConfig> parse_repo_config(const std::string& text, const std::string& file) {
    std::vector<RepoConfig> configs;
    std::map<std::string, std::string> seen;
    add_sections(detail::parse_ini_sections(text, file), file, RepoConfig{}, builtin_yum_vars(), configs, seen,
                 nullptr);
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
