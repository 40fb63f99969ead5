// check-update, and the candidates and keys `upgrade` plans with.
#include "update_check.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/warm_answer.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/repo/config.hpp"
#include "leo/repo/package_spec.hpp"

#include <algorithm>
#include <unordered_map>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <sys/stat.h>
#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace update_detail {

rpm::Evr evr_of(const repo::PackageEntry& e) { return rpm::Evr{e.epoch, e.version, e.release}; }
rpm::Evr evr_of(const rpm::PackageInfo& p) { return rpm::Evr{p.epoch.value_or(0), p.version, p.release}; }

std::string replace_advice(const std::string& wanted, int wanted_vs_installed, const std::string& installed,
                           const stdfs::path& root, const std::string& upgrade_command) {
    if (wanted_vs_installed < 0)
        return fmt::format("{} is older than the installed {} in {}: neither `install` nor `upgrade` downgrades; go "
                           "back with {} to the restore point taken before the upgrade ({} lists them); nothing was "
                           "changed",
                           wanted, installed, root.string(), command_hint("rollback ID"),
                           command_hint("snapshot list"));
    return fmt::format("{} is already installed in {}; `install` does not replace it: upgrade to {} with {}; nothing "
                       "was changed",
                       installed, root.string(), wanted,
                       command_hint(upgrade_command));
}

rpm::PackageInfo installed_broker(const stdfs::path& root) {
    const auto installed = rpm::query_installed(root, k_broker_package);
    if (installed.empty())
        throw InstallError(fmt::format("no broker is installed in {} ({} is not in its rpmdb); install it first "
                                       "with {}",
                                       root.string(), k_broker_package, command_hint("install")));
    if (installed.size() > 1) {
        std::string all;
        for (const auto& p : installed) all += (all.empty() ? "" : ", ") + p.nevra();
        throw InstallError(fmt::format("{} versions of the broker are in the rpmdb of {} ({}); an interrupted "
                                       "transaction must be repaired first",
                                       installed.size(), root.string(), all));
    }
    return installed.front();
}

namespace {

/// Why yum would not use `e` from `r` ("" when it would): exclude, or not in includepkgs.
std::string left_out(const repo::RepoConfig& r, const repo::PackageEntry& e) {
    if (const auto* g = repo::first_match(r.excludes, e)) return fmt::format("exclude={}", *g);
    if (!r.includepkgs.empty() && repo::first_match(r.includepkgs, e) == nullptr)
        return fmt::format("includepkgs={}", fmt::join(r.includepkgs, ","));
    return {};
}

/// The message of a RepoError without its "repository ID: " start (said once by the caller).
std::string reason_of(const repo::RepoConfig& r, const std::string& message) {
    const std::string prefix = fmt::format("repository {}: ", r.id);
    std::string why = message.starts_with(prefix) ? message.substr(prefix.size()) : message;
    std::replace(why.begin(), why.end(), '\n', ' ');
    return why;
}

/// The metadata cache of a user other than root (warm::user_cache_dir), made 0700; used
/// only when it is a directory (not a symlink) of this user that nobody else may write.
/// nullopt (with a warning when a directory was refused) otherwise: the caller then uses
/// a private temporary cache.
std::optional<stdfs::path> user_cache_dir(const stdfs::path& root, const std::function<void(const std::string&)>& warn) {
    const auto where = warm::user_cache_dir(root);
    if (!where) return std::nullopt;
    const stdfs::path& dir = *where;
    std::error_code ec;
    stdfs::create_directories(dir, ec);  // not-under-root: a non-root user's own cache, with that user's rights
    for (const auto& d : {dir.parent_path(), dir}) {
        struct stat st {};
        if (::lstat(d.c_str(), &st) != 0) return std::nullopt;
        if (!S_ISDIR(st.st_mode) || !fs::owned_privately(st)) {
            warn(fmt::format("{} is not a directory of this user's only; the metadata is fetched into a temporary "
                             "cache instead",
                             d.string()));
            return std::nullopt;
        }
        if ((st.st_mode & 07777) != 0700 && ::chmod(d.c_str(), 0700) != 0) return std::nullopt;  // not-under-root: as above
    }
    return dir;
}

} // namespace

std::vector<Candidate> available(const stdfs::path& root, const RepoSelection& sel, RepoKeyring& keys) {
    const auto warn = [&sel](const std::string& s) {
        if (sel.on_warning) sel.on_warning(s);
    };
    // The root's metadata cache belongs to root. Another user (check-update reads only,
    // for every user) can neither write it nor may change it: the metadata goes to that
    // user's own cache (a monitoring check run every few minutes gets warm answers), else
    // to a private temporary one removed afterwards. Nothing under the root changes.
    std::optional<fs::PrivateTempDir> private_cache;
    std::optional<stdfs::path> own_cache;
    if (::geteuid() != 0) {
        own_cache = user_cache_dir(root, warn);
        if (!own_cache) {
            const char* tmp = std::getenv("TMPDIR");
            private_cache.emplace(tmp != nullptr && *tmp == '/' ? tmp : "/tmp", "leo-installer-cache.");
        }
    }
    const fs::SystemRoot sys(own_cache ? *own_cache : private_cache ? private_cache->path() : root);
    const stdfs::path cache_dir = ::geteuid() != 0 ? "/metadata" : "/var/cache/leo-installer/metadata";
    const auto repos = select_repos(root, sel);

    std::vector<Candidate> found;                              // offered and not left out
    std::vector<std::string> skipped;                          // "ID (why)"
    std::vector<std::string> excluded;                         // "NEVRA in ID (exclude=...)"
    bool offered = false;
    for (const auto& r : repos) {
        // Meant to hold the broker: named on the command line, or skip_if_unavailable=0
        // written for it; skip_if_unavailable=1 is always skippable (yum's rule).
        const bool named = !sel.ids.empty() ||
                           std::any_of(sel.extra.begin(), sel.extra.end(),
                                       [&](const repo::RepoConfig& x) { return x.id == r.id; });
        const bool must_load = r.skip_if_unavailable ? !*r.skip_if_unavailable : named;
        repo::Metadata md;
        try {
            repo::LoadOptions options;
            options.filter = [](const std::string& name) { return name == k_broker_package; };
            options.filter_key = fmt::format("name={}", k_broker_package);
            options.policy = sel.cache;
            if (r.repo_gpgcheck) options.signing_keys = keys.signing_keys(r);
            if (sel.on_metadata_progress)
                options.progress = [&sel, &r](std::uint64_t done, std::uint64_t total) {
                    sel.on_metadata_progress(r.id, done, total);
                };
            md = repo::load_metadata(r, sys, cache_dir, options);
        } catch (const RepoError& e) {
            if (sel.on_loaded) sel.on_loaded(r, nullptr);
            if (must_load) throw;
            const std::string why = reason_of(r, e.what());
            warn(fmt::format("repository {} is skipped: {}", r.id, why));
            skipped.push_back(fmt::format("{} ({})", r.id, why));
            continue;
        }
        if (sel.on_loaded) sel.on_loaded(r, &md);
        for (const auto& w : md.warnings) warn(w);  // sslverify=0, a mirror list not read, mirrors refused
        for (auto& e : md.packages) {
            if (e.arch != "x86_64" && e.arch != "noarch") continue;
            offered = true;
            if (auto why = left_out(r, e); !why.empty()) {
                excluded.push_back(fmt::format("{} in {} ({} in {})", e.nevra(), r.id, why, r.source));
                continue;
            }
            found.push_back({r, std::move(e), {}});
        }
    }
    if (!offered && !skipped.empty())
        throw RepoError(fmt::format("no repository that offers {} could be read; skipped: {}", k_broker_package,
                                    fmt::join(skipped, "; ")));
    if (found.empty() && !excluded.empty())
        warn(fmt::format("every {} package of the repositories is left out by exclude/includepkgs: {}",
                         k_broker_package, fmt::join(excluded, ", ")));

    // priority: only the repositories with the lowest number offer the broker (dnf's rule,
    // yum-plugin-priorities'); cost: the same NEVRA is taken from the cheapest first, the
    // others kept as alternatives.
    if (!found.empty()) {
        const int best = std::min_element(found.begin(), found.end(), [](const Candidate& a, const Candidate& b) {
                             return a.repo.priority < b.repo.priority;
                         })->repo.priority;
        std::erase_if(found, [best](const Candidate& c) { return c.repo.priority != best; });
    }
    std::stable_sort(found.begin(), found.end(),
                     [](const Candidate& a, const Candidate& b) { return a.repo.cost < b.repo.cost; });
    std::vector<Candidate> out;
    std::unordered_map<std::string, std::size_t> index_of;  // NEVRA -> its place in `out`
    for (auto& c : found) {
        const auto [it, first] = index_of.try_emplace(c.entry.nevra(), out.size());
        if (first)
            out.push_back(std::move(c));
        else
            out[it->second].alternatives.emplace_back(std::move(c.repo), std::move(c.entry));
    }
    std::stable_sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
        return rpm::compare_evr(evr_of(a.entry), evr_of(b.entry)) > 0;
    });
    return out;
}

std::optional<std::string> package_schema_version(const stdfs::path& file) {
    std::optional<std::string> newest;
    const std::string dir = std::string(k_migrations_dir) + "/";
    for (const auto& path : rpm::list_package_files(file)) {
        if (path.rfind(dir, 0) != 0) continue;
        const auto m = migrations::parse_migration_name(path.substr(dir.size()), k_migrations_dir);
        if (m && (!newest || migrations::compare_versions(m->version, *newest) > 0)) newest = m->version;
    }
    return newest;
}

} // namespace update_detail

using namespace update_detail;

std::vector<repo::RepoConfig> select_repos(const stdfs::path& root, const RepoSelection& sel) {
    const fs::SystemRoot sys(root);
    auto config = repo::load_yum_config(sys);
    auto& all = config.repos;
    for (const auto& extra : sel.extra) {
        const auto it = std::find_if(all.begin(), all.end(), [&](const repo::RepoConfig& r) { return r.id == extra.id; });
        if (it != all.end())
            throw UsageError(fmt::format("--repofrompath {}: a repository with id '{}' already exists ({}); choose "
                                         "another id",
                                         extra.id, extra.id, it->source));
        all.push_back(extra);
    }
    std::vector<std::string> dirs;
    for (const auto& d : config.reposdirs) dirs.push_back(sys.host(d).string());
    std::vector<repo::RepoConfig> out;
    if (sel.ids.empty()) {
        for (auto& r : all)
            if (r.enabled) out.push_back(r);
    } else {
        for (const auto& id : sel.ids) {
            auto it = std::find_if(all.begin(), all.end(), [&](const repo::RepoConfig& r) { return r.id == id; });
            if (it == all.end()) {
                std::string known;
                for (const auto& r : all) known += (known.empty() ? "" : ", ") + r.id;
                throw UsageError(fmt::format("--repo {}: no such repository in {}, {} or --repofrompath (known: {})",
                                             id, sys.host("/etc/yum.conf").string(), fmt::join(dirs, ", "),
                                             known.empty() ? "none" : known));
            }
            if (std::none_of(out.begin(), out.end(), [&](const repo::RepoConfig& r) { return r.id == id; })) {
                out.push_back(*it);
                out.back().enabled = true;
            }
        }
    }
    if (sel.on_warning) {
        for (const auto& w : config.warnings) sel.on_warning(w);
        for (const auto& r : out)
            for (const auto& w : r.warnings) sel.on_warning(w);
    }
    if (out.empty())
        throw RepoError(fmt::format("no enabled repository in {} or {}; add a .repo file or pass --repofrompath "
                                    "ID,URL",
                                    fmt::join(dirs, ", "), sys.host("/etc/yum.conf").string()));
    return out;
}

UpdateInfo check_update(const stdfs::path& root, const RepoSelection& sel) {
    UpdateInfo info;
    info.installed = installed_broker(root);
    // Read-only: a key not imported yet is used for this check only, and said.
    RepoKeyring keys(root, KeyImport::preview,
                     KeyCallbacks{nullptr, [&info](const std::string& w) { info.warnings.push_back(w); }, nullptr});
    info.available = available(root, sel, keys);
    if (!info.available.empty() &&
        rpm::compare_evr(evr_of(info.available.front().entry), evr_of(info.installed)) > 0)
        info.update = info.available.front();
    return info;
}

} // namespace leo::installer
