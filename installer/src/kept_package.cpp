#include "leo/installer/kept_package.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/paths.hpp"

#include <fmt/format.h>

#include <functional>
#include <vector>

#include <sys/stat.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

/// The package caches a file of the installed build may be in, as the root sees them.
constexpr const char* k_caches[] = {"/var/cache/leo-installer/packages", "/var/cache/yum", "/var/cache/dnf"};
constexpr int k_max_depth = 5;

/// rpm's file name of a binary package: N-V-R.A.rpm (no epoch).
std::string rpm_file_name(const rpm::PackageInfo& p) {
    return fmt::format("{}-{}-{}.{}.rpm", p.name, p.version, p.release, p.arch);
}

/// Why the host file `file` is not the installed build, or "" when it is.
std::string mismatch(const stdfs::path& file, const rpm::PackageInfo& installed) {
    rpm::PackageInfo p;
    try {
        p = rpm::read_package_info(file);
    } catch (const std::exception& e) {
        return fmt::format("it is not a readable RPM ({})", e.what());
    }
    if (p.nevra() != installed.nevra()) return fmt::format("it is {}, not the installed {}", p.nevra(), installed.nevra());
    if (installed.header_digest.empty() || p.header_digest != installed.header_digest)
        return fmt::format("it is another build of {} (header digest {}, installed {})", p.nevra(),
                           p.header_digest.empty() ? "none" : p.header_digest,
                           installed.header_digest.empty() ? "none" : installed.header_digest);
    return "";
}

/// Files called `name` under `dir` (inside the root), depth first, no link followed.
void find_named(const fs::SystemRoot& sr, const stdfs::path& dir, const std::string& name, int depth,
                std::vector<stdfs::path>& out) {
    for (const auto& entry : sr.list(dir)) {
        const auto inside = dir / entry;
        const auto st = sr.lstat(inside);
        if (!st) continue;
        if (S_ISREG(st->st_mode) && entry == name) out.push_back(inside);
        else if (S_ISDIR(st->st_mode) && depth > 0) find_named(sr, inside, name, depth - 1, out);
    }
}

/// Copy into the kept place, then check the copy itself (the source may change meanwhile).
void keep(const fs::SystemRoot& sr, const rpm::PackageInfo& installed, const std::function<void(const stdfs::path&)>& copy_to) {
    const auto kept = stdfs::path(k_packages_dir) / (installed.nevra() + ".rpm");
    sr.make_dirs(k_packages_dir, 0700, fs::Owner{0, 0});
    copy_to(kept);
    if (const auto why = mismatch(sr.checked_host(kept), installed); !why.empty()) {
        (void)sr.remove(kept);
        throw InstallError(fmt::format("the copy of the RPM of {} changed while it was kept: {}; nothing was kept",
                                       installed.nevra(), why));
    }
}

} // namespace

std::string keep_installed_package(const stdfs::path& root, const rpm::PackageInfo& installed,
                                   const std::optional<stdfs::path>& supplied) {
    const fs::SystemRoot sr(root);
    const auto kept = stdfs::path(k_packages_dir) / (installed.nevra() + ".rpm");
    // not-under-root: the administrator's file on the host, read (and copied) only; a wrong
    // one is refused even when the right one is kept already.
    if (supplied)
        if (const auto why = mismatch(*supplied, installed); !why.empty())
            throw InstallError(fmt::format("{} cannot be kept as the RPM of the installed broker: {}; nothing was "
                                           "changed",
                                           supplied->string(), why));
    if (const auto st = sr.stat(kept); st && S_ISREG(st->st_mode)) return "";
    if (supplied) {
        keep(sr, installed, [&](const stdfs::path& to) { sr.copy_from_host(*supplied, to, 0600); });
        log::info("kept {} as the RPM of the installed {}", supplied->string(), installed.nevra());
        return supplied->string();
    }
    const auto name = rpm_file_name(installed);
    std::vector<std::string> looked;
    for (const char* cache : k_caches) {
        std::vector<stdfs::path> found;
        find_named(sr, cache, name, k_max_depth, found);
        for (const auto& candidate : found) {
            const auto why = mismatch(sr.checked_host(candidate), installed);
            if (!why.empty()) {
                looked.push_back(fmt::format("{} ({})", candidate.string(), why));
                continue;
            }
            keep(sr, installed, [&](const stdfs::path& to) { sr.copy(candidate, to, 0600); });
            log::info("kept {} (from {}) as the RPM of the installed {}", name, candidate.string(), installed.nevra());
            return candidate.string();
        }
    }
    std::string where = fmt::format("{}, {} and {}", k_caches[0], k_caches[1], k_caches[2]);
    for (const auto& l : looked) where += "; " + l;
    throw InstallError(fmt::format(
        "the RPM of the installed {} is not kept in {} (a broker installed by rpm -U or yum localinstall has "
        "none: rpm does not tell where its file was), and no {} of that build was found in {}; give the file with "
        "--installed-rpm FILE (snapshot create, upgrade)",
        installed.nevra(), sr.host(k_packages_dir).string(), name, where));
}

} // namespace leo::installer
