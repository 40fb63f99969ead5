// A package file out of every other user's reach (private_package.hpp).
#include "leo/installer/private_package.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/paths.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include <sys/stat.h>
#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

/// The largest package file copied (a broker package is a few hundred MB; the copy is read
/// into memory): past it, an error naming both sizes.
constexpr std::size_t k_private_copy_limit = std::size_t{1} << 30;

std::string mode_of(const struct stat& st) { return fmt::format("{:04o}", st.st_mode & 07777); }

} // namespace

namespace {

/// changeable_by_others, and into `resolved` the path it judged (links resolved once: the
/// caller uses that path, never the given one resolved again, which a link in another
/// user's directory could point elsewhere by then).
std::string judge(const stdfs::path& file, stdfs::path& resolved) noexcept {
    try {
        // Links resolved where the path exists; what does not exist yet is judged by the
        // directory that would hold it. What cannot be resolved (a loop, a resolved path past
        // PATH_MAX that the kernel still opens step by step) is judged changeable: fail closed.
        std::error_code ec;
        resolved = stdfs::weakly_canonical(stdfs::absolute(file), ec);
        if (ec) return "it cannot be resolved (" + ec.message() + ")";
        struct stat dir {};
        if (::lstat("/", &dir) != 0) return "/ cannot be examined";  // not-under-root: the host's "/"
        stdfs::path current("/");
        for (const auto& part : resolved.relative_path()) {
            const stdfs::path next = current / part;
            struct stat st {};
            if (::lstat(next.c_str(), &st) != 0) {  // not-under-root: a host path the administrator gave
                if (errno != ENOENT) return next.string() + " cannot be examined (" + std::strerror(errno) + ")";
                // Missing: only whoever can write `current` could make it.
                if (fs::writable_by_others(dir))
                    return fmt::format("its directory {} (owner uid {}, mode {}) can be written by a user other "
                                       "than root",
                                       current.string(), dir.st_uid, mode_of(dir));
                return {};
            }
            const bool sticky_guard = (dir.st_mode & S_ISVTX) != 0 && dir.st_uid == 0 && st.st_uid == 0;
            if (fs::writable_by_others(dir) && !sticky_guard)
                return fmt::format("its directory {} (owner uid {}, mode {}) can be written by a user other than root",
                                   current.string(), dir.st_uid, mode_of(dir));
            current = next;
            dir = st;
        }
        if (fs::writable_by_others(dir))
            return fmt::format("{} (owner uid {}, mode {}) can be written by a user other than root", resolved.string(),
                               dir.st_uid, mode_of(dir));
        return {};
    } catch (const std::exception& e) {
        return std::string("it cannot be examined: ") + e.what();
    }
}

} // namespace

std::string changeable_by_others(const stdfs::path& file) noexcept {
    stdfs::path resolved;
    return judge(file, resolved);
}

PrivatePackage::PrivatePackage(const stdfs::path& root, const stdfs::path& file) : m_root(root) {
    stdfs::path resolved;
    m_why = judge(file, resolved);
    if (m_why.empty()) {
        std::error_code ec;
        // Missing (where only root could make it): named as given, the verification says so.
        m_path = stdfs::exists(resolved, ec) ? resolved : file;
        return;
    }
    const fs::SystemRoot sr(root);
    const std::string staging_why = changeable_by_others(sr.host(k_state_dir).parent_path());
    if (!staging_why.empty())
        throw InstallError(fmt::format("{} can be changed by another user ({}), and no private copy of it can be made "
                                       "under {}: {}; nothing was changed",
                                       file.string(), m_why, root.string(), staging_why));
    m_made_state = !sr.lstat(k_state_dir);
    sr.make_dirs(k_state_dir, 0700, fs::Owner{0, 0}, fs::ExistingDir::enforce);
    m_made_staging = !sr.lstat(k_staging_dir);
    sr.make_dirs(k_staging_dir, 0700, fs::Owner{0, 0}, fs::ExistingDir::enforce);
    // One name per process: a second run (another install, one refused at the lock) never
    // replaces or removes this run's copy.
    m_copy_inside = stdfs::path(k_staging_dir) / fmt::format("{}-{}", ::getpid(), file.filename().string());
    try {
        sr.copy_from_host(file, m_copy_inside, 0600, k_private_copy_limit);
    } catch (...) {
        m_copy_inside.clear();  // write_atomic leaves nothing
        remove_made();
        throw;
    }
    m_path = sr.host(m_copy_inside);
    m_warning = fmt::format("{} can be changed by another user ({}): verifying and installing a private copy, {}",
                            file.string(), m_why, m_path.string());
    log::info("{}", m_warning);
}

PrivatePackage::~PrivatePackage() { remove_made(); }

void PrivatePackage::remove_made() noexcept {
    if (m_why.empty()) return;
    try {
        const fs::SystemRoot sr(m_root);
        if (!m_copy_inside.empty()) sr.remove(m_copy_inside);
        // The directories only when this run made them and no other run's copy is in them.
        if (m_made_staging && sr.list(k_staging_dir).empty()) sr.remove(k_staging_dir);
        if (m_made_state && sr.list(k_state_dir).empty()) sr.remove(k_state_dir);
    } catch (const std::exception& e) {
        log::warning("cannot remove the private copy of the package: {}", e.what());
    }
}

} // namespace leo::installer
