// Choosing and staging the broker package of a repository, for `install` and `upgrade`.
#include "staging.hpp"

#include "update_check.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/paths.hpp"
#include "leo/repo/url.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace leo::installer::staging {
namespace stdfs = std::filesystem;

bool version_matches(const repo::PackageEntry& e, const std::string& spec) {
    const std::string vr = e.version + "-" + e.release;
    const std::string epoch = std::to_string(e.epoch) + ":";
    // N-V-R, N-E:V-R and E:N-V-R (yum's NEVRA and ENVRA), each with and without .A
    const std::string named[] = {e.name + "-" + vr, e.name + "-" + epoch + vr, epoch + e.name + "-" + vr};
    if (spec == e.version || spec == vr || spec == epoch + vr) return true;
    for (const auto& n : named)
        if (spec == n || spec == n + "." + e.arch) return true;
    return false;
}

Candidate choose(const std::vector<Candidate>& candidates, const std::optional<std::string>& version) {
    for (const auto& c : candidates)
        if (!version || version_matches(c.entry, *version)) return c;
    std::string versions;
    for (const auto& c : candidates) versions += (versions.empty() ? "" : ", ") + c.entry.nevra();
    if (version)
        throw InstallError(fmt::format("version {} of {} is not in the repositories (available: {})", *version,
                                       k_broker_package, versions.empty() ? "none" : versions));
    throw InstallError(fmt::format("the repositories offer no {} package", k_broker_package));
}

Staged stage(const stdfs::path& root, const Candidate& c,
             const std::function<void(std::uint64_t, std::uint64_t)>& on_download, RepoKeyring& keyring,
             GpgCheck gpgcheck, repo::CachePolicy policy) {
    Staged out;
    // The chosen repository first, then the others that offer the same NEVRA (by cost):
    // a repository that fails the download is not the end when another has the package.
    std::vector<std::pair<const repo::RepoConfig*, const repo::PackageEntry*>> sources{{&c.repo, &c.entry}};
    for (const auto& [r, e] : c.alternatives) sources.emplace_back(&r, &e);
    const repo::RepoConfig* used = nullptr;
    std::vector<std::string> failures;
    for (const auto& source : sources) {
        try {
            out.file = repo::download_package(*source.first, *source.second, fs::SystemRoot(root),
                                              "/var/cache/leo-installer/packages",
                                              [&on_download](std::uint64_t done, std::uint64_t total) {
                                                  if (done > 0) fault::point("download");
                                                  if (on_download) on_download(done, total);
                                              },
                                              policy);
            used = source.first;
            break;
        } catch (const RepoError& e) {
            if (sources.size() == 1) throw;
            failures.emplace_back(e.what());
        }
    }
    if (used == nullptr)
        throw RepoError(fmt::format("{} could not be downloaded from any repository that offers it: {}",
                                    c.entry.nevra(), fmt::join(failures, "; ")));
    out.expected_nevra = c.entry.nevra();
    if (gpgcheck == GpgCheck::yes && used->gpgcheck) {
        out.repo_keys.repo_id = used->id;
        out.repo_keys.repo_file = used->source;
        for (const auto& k : keyring.keys_of(*used)) {
            out.repo_keys.urls.emplace_back(repo::redact_url(k.url), k.key.short_id());
            out.repo_keys.armored.push_back(k.key.armored);
        }
    }
    return out;
}

} // namespace leo::installer::staging
