// check-update, and the candidates and keys `upgrade` plans with.
#include "update_check.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/paths.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/repo/config.hpp"

#include <algorithm>
#include <cstdlib>
#include <optional>

#include <fmt/format.h>

#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace update_detail {

rpm::Evr evr_of(const repo::PackageEntry& e) { return rpm::Evr{e.epoch, e.version, e.release}; }
rpm::Evr evr_of(const rpm::PackageInfo& p) { return rpm::Evr{p.epoch.value_or(0), p.version, p.release}; }

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

std::vector<Candidate> available(const stdfs::path& root, const RepoSelection& sel, RepoKeyring& keys) {
    std::vector<Candidate> out;
    // The root's metadata cache belongs to root. Another user (check-update reads only,
    // for every user) can neither write it nor may change it: the metadata goes to a
    // private temporary cache instead, removed afterwards (nothing under the root changes).
    std::optional<fs::PrivateTempDir> private_cache;
    if (::geteuid() != 0) {
        const char* tmp = std::getenv("TMPDIR");
        private_cache.emplace(tmp != nullptr && *tmp == '/' ? tmp : "/tmp", "leo-installer-cache.");
    }
    const fs::SystemRoot sys(private_cache ? private_cache->path() : root);
    const stdfs::path cache_dir = private_cache ? "/metadata" : "/var/cache/leo-installer/metadata";
    for (const auto& r : select_repos(root, sel)) {
        repo::LoadOptions options;
        options.filter = [](const std::string& name) { return name == k_broker_package; };
        options.filter_key = fmt::format("name={}", k_broker_package);
        options.policy = sel.cache;
        if (r.repo_gpgcheck) options.signing_keys = keys.signing_keys(r);
        auto md = repo::load_metadata(r, sys, cache_dir, options);
        for (auto& e : md.packages)
            if (e.arch == "x86_64" || e.arch == "noarch") out.push_back({r, std::move(e)});
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
    auto all = repo::load_repo_configs(fs::SystemRoot(root));
    for (const auto& extra : sel.extra) {
        if (std::any_of(all.begin(), all.end(), [&](const repo::RepoConfig& r) { return r.id == extra.id; }))
            throw UsageError(fmt::format("--repofrompath {}: a repository with id '{}' already exists ({}); choose "
                                         "another id",
                                         extra.id, extra.id,
                                         std::find_if(all.begin(), all.end(), [&](const repo::RepoConfig& r) {
                                             return r.id == extra.id;
                                         })->source));
        all.push_back(extra);
    }
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
                throw UsageError(fmt::format("--repo {}: no such repository in {} or --repofrompath (known: {})", id,
                                             fs::SystemRoot(root).host("/etc/yum.repos.d").string(),
                                             known.empty() ? "none" : known));
            }
            if (std::none_of(out.begin(), out.end(), [&](const repo::RepoConfig& r) { return r.id == id; })) {
                out.push_back(*it);
                out.back().enabled = true;
            }
        }
    }
    if (out.empty())
        throw RepoError(fmt::format("no enabled repository in {}; add a .repo file or pass --repofrompath ID,URL",
                                    fs::SystemRoot(root).host("/etc/yum.repos.d").string()));
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
