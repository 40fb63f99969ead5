#pragma once
/// The package file that is verified and installed, out of every other user's reach.
///
/// librpm reads a package by its path several times (the digests, the signature, the test
/// transaction, the install itself: `RPMCALLBACK_INST_OPEN_FILE`), and so does our own
/// verification. When a user other than root can change the file or rename a directory on
/// its path (the file in /home/leo, or a cache directory handed to that user), they can put
/// another file there between the signature check and the install: rpm would verify one
/// file and install another. So a package whose path another user can change is copied
/// first, once, into ROOT/var/lib/leo-installer/staging/PID-NAME (0600 in a 0700 directory,
/// root's; at most 1 GiB), and only the copy is verified, installed and kept for rollbacks.

#include <filesystem>
#include <string>

namespace leo::installer {

/// Why a user other than root could change what `file` (a host path) names, or "" when no
/// one can: the file is root's and writable by root alone, and every directory from "/" to
/// it is root's and writable by root alone, or sticky (/tmp: an entry there is renamed or
/// removed by its owner only) with a root-owned entry. Symbolic links on the path are
/// resolved first (std::filesystem::weakly_canonical) and the resolved path is the one
/// judged. A file that does not exist is judged by the directory that would hold it (""
/// when only root could make it: the caller's own check then says it is missing). A path
/// that cannot be resolved or examined (a link loop, a resolved path past PATH_MAX) is
/// judged changeable: the reason says why. Throws nothing.
[[nodiscard]] std::string changeable_by_others(const std::filesystem::path& file) noexcept;

/// The package file to verify and install (see above). Lives for the whole run; removes its
/// copy, and the staging directory when it made it, when it goes.
class PrivatePackage {
public:
    /// `root`: the checked --root; `file`: the host path of the package (--rpm FILE, or the
    /// package cache's file). Throws leo::InstallError when `file` can be changed by another
    /// user and no private copy can be made (ROOT/var/lib/leo-installer itself is within
    /// another user's reach, or does not exist and could be made by another user; the
    /// message names both reasons), leo::SystemError when the copy cannot be made (not a
    /// regular file, over 1 GiB, cannot be written; nothing is left).
    PrivatePackage(const std::filesystem::path& root, const std::filesystem::path& file);
    ~PrivatePackage();
    PrivatePackage(const PrivatePackage&) = delete;
    PrivatePackage& operator=(const PrivatePackage&) = delete;

    /// The path to verify and install: `file` resolved, or the private copy.
    [[nodiscard]] const std::filesystem::path& path() const { return m_path; }
    /// Why a copy was made (changeable_by_others of `file`), "" when none was.
    [[nodiscard]] const std::string& why_copied() const { return m_why; }
    /// The warning to show when a copy was made ("FILE can be changed by another user (WHY):
    /// verifying and installing a private copy, COPY"), "" when none was.
    [[nodiscard]] const std::string& warning() const { return m_warning; }

private:
    void remove_made() noexcept;

    std::filesystem::path m_root;
    std::filesystem::path m_path;
    std::string m_why;
    std::string m_warning;
    std::filesystem::path m_copy_inside;  ///< the copy, inside the root ("" when none)
    bool m_made_staging = false;
    bool m_made_state = false;
};

} // namespace leo::installer
