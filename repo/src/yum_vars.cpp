// yum's substitution variables, as yum 3.4.3 (CentOS 7) defines and replaces them.
#include "leo/repo/yum_vars.hpp"

#include "config_values.hpp"

#include "leo/common/error.hpp"
#include "leo/rpm/transaction.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

namespace leo::repo {
namespace {

constexpr std::string_view k_basearch = "x86_64";
constexpr std::string_view k_default_releasever = "7";
constexpr std::size_t k_vars_file_limit = std::size_t{64} << 10;

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/// yum's _getsysver: the first package providing one of `provides`; its version, or the
/// provide's own version when it is versioned and not the package's name.
std::optional<std::string> releasever_from_rpmdb(const leo::fs::SystemRoot& root,
                                                 const std::vector<std::string>& provides,
                                                 std::vector<std::string>& warnings) {
    for (const auto& capability : provides) {
        std::vector<rpm::PackageInfo> found;
        try {
            found = rpm::query_providers(root.path(), capability);
        } catch (const Error& e) {
            warnings.push_back(fmt::format("releasever: the rpmdb of {} cannot be read ({}); using the fallbacks",
                                           root.path().string(), e.what()));
            return std::nullopt;
        }
        if (found.empty()) continue;
        const auto& package = found.front();
        std::string releasever = package.version;
        for (const auto& [name, version] : package.provides) {
            if (name == capability && !version.empty() && package.name != capability) {
                releasever = version;
                break;
            }
        }
        if (!releasever.empty()) return releasever;
    }
    return std::nullopt;
}

/// The major of VERSION_ID in ROOT/etc/os-release ("7" of "7.9").
std::optional<std::string> releasever_from_os_release(const leo::fs::SystemRoot& root) {
    std::optional<std::string> text;
    try {
        text = root.try_read("/etc/os-release", k_vars_file_limit);
    } catch (const Error&) {
        return std::nullopt;  // the facts report an unreadable os-release; here it is only a fallback
    }
    if (!text) return std::nullopt;
    std::size_t start = 0;
    while (start < text->size()) {
        auto end = text->find('\n', start);
        if (end == std::string::npos) end = text->size();
        std::string line = detail::trim(std::string_view(*text).substr(start, end - start));
        start = end + 1;
        if (!line.starts_with("VERSION_ID=")) continue;
        std::string value = line.substr(11);
        if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
            value = value.substr(1, value.size() - 2);
        value = value.substr(0, value.find('.'));
        if (!value.empty() && std::all_of(value.begin(), value.end(), is_name_char)) return value;
    }
    return std::nullopt;
}

/// Every file of `dir` (inside the root) as a variable, into `vars`; one that a user other
/// than root can change is left out with a warning (a variable can rewrite any baseurl).
void read_vars_dir(const leo::fs::SystemRoot& root, const std::filesystem::path& dir, YumVars& vars,
                   std::vector<std::string>& warnings) {
    try {
        for (const auto& name : root.list(dir)) {
            if (name.starts_with(".")) continue;
            const auto st = root.stat(dir / name);
            if (!st || !S_ISREG(st->st_mode)) continue;
            if (auto why = detail::changeable_by_others(*st, root.host(dir / name).string()); !why.empty()) {
                warnings.push_back(
                    fmt::format("{}: the variable ${} is not defined from it; {}", why, name, detail::k_make_it_roots));
                continue;
            }
            const std::string text = root.read(dir / name, k_vars_file_limit);
            std::string value = text.substr(0, text.find('\n'));
            if (!value.empty() && value.back() == '\r') value.pop_back();
            vars[name] = std::move(value);
        }
    } catch (const SystemError& e) {
        throw RepoError(fmt::format("yum variables in {}: {}", root.host(dir).string(), e.what()));
    }
}

} // namespace

YumVars builtin_yum_vars() {
    YumVars vars;
    vars["basearch"] = k_basearch;
    vars["arch"] = k_basearch;
    vars["releasever"] = k_default_releasever;
    return vars;
}

YumVars load_yum_vars(const leo::fs::SystemRoot& root, const std::vector<std::string>& distroverpkg,
                      std::vector<std::string>& warnings) {
    YumVars vars;
    for (int n = 0; n <= 9; ++n) {
        const char* value = std::getenv(fmt::format("YUM{}", n).c_str());
        if (value != nullptr && *value != '\0') vars[fmt::format("yum{}", n)] = value;
    }
    vars["basearch"] = k_basearch;
    vars["arch"] = k_basearch;
    const std::vector<std::string> provides =
        distroverpkg.empty()
            ? std::vector<std::string>{"system-release(releasever)", "redhat-release", "centos-release"}
            : distroverpkg;
    YumVars from_files;
    read_vars_dir(root, "/etc/dnf/vars", from_files, warnings);
    read_vars_dir(root, "/etc/yum/vars", from_files, warnings);
    if (!from_files.contains("releasever")) {
        auto releasever = releasever_from_rpmdb(root, provides, warnings);
        if (!releasever) releasever = releasever_from_os_release(root);
        if (!releasever) {
            warnings.push_back(fmt::format(
                "releasever: no package in the rpmdb of {} provides {}, and {} has no VERSION_ID; using {} "
                "(set it in {})",
                root.path().string(), fmt::join(provides, ", "), root.host("/etc/os-release").string(),
                k_default_releasever, root.host("/etc/yum/vars/releasever").string()));
            releasever = std::string(k_default_releasever);
        }
        vars["releasever"] = *releasever;
    }
    // $uuid: yum 3's persistent id of the system (persistdir/uuid, /var/lib/yum/uuid), read
    // when it exists; yum writes one on its first run, this tool only reads.
    try {
        if (const auto uuid = root.try_read("/var/lib/yum/uuid", k_vars_file_limit)) {
            if (const std::string id(detail::trim(*uuid)); !id.empty()) vars["uuid"] = id;
        }
    } catch (const Error& e) {
        warnings.push_back(fmt::format("uuid: {} cannot be read ({}); $uuid stays undefined",
                                       root.host("/var/lib/yum/uuid").string(), e.what()));
    }
    for (auto& [name, value] : from_files) vars[name] = std::move(value);
    return vars;
}

std::string substitute_vars(std::string_view text, const YumVars& vars, std::vector<std::string>* unknown) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const auto dollar = text.find('$', i);
        if (dollar == std::string_view::npos) {
            out.append(text.substr(i));
            break;
        }
        out.append(text.substr(i, dollar - i));
        const bool braces = dollar + 1 < text.size() && text[dollar + 1] == '{';
        const std::size_t name_start = dollar + (braces ? 2 : 1);
        std::size_t name_end = name_start;
        while (name_end < text.size() && is_name_char(text[name_end])) ++name_end;
        const bool closed = !braces || (name_end < text.size() && text[name_end] == '}');
        if (name_end == name_start || !closed) {
            out += '$';
            i = dollar + 1;
            continue;
        }
        const std::size_t end = name_end + (braces ? 1 : 0);
        const std::string name = detail::lower(std::string(text.substr(name_start, name_end - name_start)));
        if (const auto it = vars.find(name); it != vars.end()) {
            out += it->second;
        } else {
            const std::string written(text.substr(dollar, end - dollar));
            out += written;
            if (unknown != nullptr && std::find(unknown->begin(), unknown->end(), written) == unknown->end())
                unknown->push_back(written);
        }
        i = end;
    }
    return out;
}

} // namespace leo::repo
