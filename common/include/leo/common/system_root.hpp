#pragma once
/// The one owner of every file under `--root` (DESIGN.md "One owner for the root").
///
/// Every path a `SystemRoot` takes is absolute *inside* the root ("/home/leo/pgsql"), the
/// way `rpm --root` names them; `host()` gives the path on the host for messages and for
/// child processes. Every operation resolves its path component by component from a
/// descriptor of the root and never follows a symbolic link that sits in a directory a
/// user other than root can write (owned by another uid, or writable by group or others):
/// such a link is refused with a SystemError naming it. Links in root-only directories
/// (a `/home -> /data/home` made by the administrator) are followed, inside the root, like
/// `chroot` would. The fast path is one `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`;
/// on kernels without it (EL7's 3.10: ENOSYS) and whenever it meets a link, the walk is
/// `openat(O_NOFOLLOW)` per component. Ownership and modes are changed on the opened
/// descriptor (`fchown`, `fchmod`), never by path; files written in place must have one
/// link (no hard link to a file elsewhere).
///
/// Errors: every failure throws leo::SystemError naming the host path; a path that is not
/// absolute or holds ".." is a programming error (std::invalid_argument).

#include <cstddef>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <sys/stat.h>
#include <sys/types.h>

namespace leo::fs {

/// A file descriptor that is closed when it goes out of scope (move-only).
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : m_fd(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : m_fd(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd();
    [[nodiscard]] int get() const noexcept { return m_fd; }
    [[nodiscard]] int release() noexcept {
        const int fd = m_fd;
        m_fd = -1;
        return fd;
    }
    explicit operator bool() const noexcept { return m_fd >= 0; }

private:
    int m_fd = -1;
};

/// umask(`mask`) for a scope, the previous one back at its end: 077 while restore points
/// and secrets are written, so what a child (pg_dump, tar) creates is private too.
class ScopedUmask {
public:
    explicit ScopedUmask(mode_t mask);
    ~ScopedUmask();
    ScopedUmask(const ScopedUmask&) = delete;
    ScopedUmask& operator=(const ScopedUmask&) = delete;

private:
    mode_t m_previous;
};

/// A private (0700) directory made with mkdtemp(3) as `parent`/`prefix`XXXXXX, removed
/// with everything in it at the end of its scope, without following any link (a dump of
/// the broker's data, another user's metadata cache). Throws leo::SystemError when it
/// cannot be made.
class PrivateTempDir {
public:
    PrivateTempDir(const std::filesystem::path& parent, const std::string& prefix);
    ~PrivateTempDir();
    PrivateTempDir(const PrivateTempDir&) = delete;
    PrivateTempDir& operator=(const PrivateTempDir&) = delete;
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return m_path; }

private:
    std::filesystem::path m_path;
};

/// A uid and gid to give a file.
struct Owner {
    uid_t uid = 0;
    gid_t gid = 0;
};

/// What make_dirs() does to the last directory when it already exists.
enum class ExistingDir { keep, enforce };

/// Default bound of read() and try_read(): 16 MiB (configuration, journals, manifests).
inline constexpr std::size_t k_default_read_limit = std::size_t{16} << 20;

/// What SystemRoot::open_append does when the file is missing.
enum class WhenMissing { create, refuse };

class SystemRoot {
public:
    // The standard paths (DESIGN.md "Paths under the root"), inside the root.
    static constexpr std::string_view k_home = "/home/leo";               ///< the application
    static constexpr std::string_view k_pgsql = "/home/leo/pgsql";        ///< the internal PostgreSQL
    static constexpr std::string_view k_etc_leostream = "/etc/leostream"; ///< database.conf and its key
    static constexpr std::string_view k_etc_installer = "/etc/leo-installer";
    static constexpr std::string_view k_installer_conf = "/etc/leo-installer/installer.conf";
    static constexpr std::string_view k_repos_dir = "/etc/yum.repos.d";
    static constexpr std::string_view k_state_dir = "/var/lib/leo-installer";  ///< root-only (0700)
    static constexpr std::string_view k_journal = "/var/lib/leo-installer/journal";
    static constexpr std::string_view k_lock = "/var/lib/leo-installer/lock";
    static constexpr std::string_view k_snapshots = "/var/lib/leo-installer/snapshots"; ///< restore points
    static constexpr std::string_view k_packages = "/var/lib/leo-installer/packages";   ///< kept RPMs
    static constexpr std::string_view k_cache = "/var/cache/leo-installer";
    static constexpr std::string_view k_log_dir = "/var/log/leo-installer";
    static constexpr std::string_view k_rpmdb = "/var/lib/rpm";

    /// The root `root` ("/" for the host). It is made absolute and normalised; it need not
    /// exist yet (operations then fail naming it).
    explicit SystemRoot(std::filesystem::path root = "/");

    /// The root directory on the host ("/tmp/r", or "/").
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return m_root; }
    /// True when the root is the host's "/".
    [[nodiscard]] bool is_host() const noexcept { return m_root == "/"; }
    /// `inside` ("/home/leo") as a host path ("/tmp/r/home/leo"), without touching the disk:
    /// for messages, and for child processes that run as the file's owner.
    [[nodiscard]] std::filesystem::path host(const std::filesystem::path& inside) const;
    /// host(`inside`) after checking that reaching it follows no unsafe link (every
    /// component that exists is walked): for a child process that runs as root.
    [[nodiscard]] std::filesystem::path checked_host(const std::filesystem::path& inside) const;

    // ---- reading ----
    /// The whole regular file, or nullopt when it (or a parent) does not exist. Throws
    /// SystemError on an unsafe link, a non-regular file, a file larger than `limit` bytes,
    /// or any other error.
    [[nodiscard]] std::optional<std::string> try_read(const std::filesystem::path& inside,
                                                      std::size_t limit = k_default_read_limit) const;
    /// try_read() that throws SystemError ("cannot read HOST: No such file or directory") when missing.
    [[nodiscard]] std::string read(const std::filesystem::path& inside,
                                   std::size_t limit = k_default_read_limit) const;
    /// A read-only descriptor of the regular file (O_NOFOLLOW, safe links only). Throws SystemError.
    [[nodiscard]] UniqueFd open_read(const std::filesystem::path& inside) const;
    /// lstat() of the path itself (a link is not followed), or nullopt when it does not exist.
    [[nodiscard]] std::optional<struct stat> lstat(const std::filesystem::path& inside) const;
    /// stat() following safe links only; nullopt when missing.
    [[nodiscard]] std::optional<struct stat> stat(const std::filesystem::path& inside) const;
    /// Does the path exist (a dangling link counts)?
    [[nodiscard]] bool exists(const std::filesystem::path& inside) const { return lstat(inside).has_value(); }
    /// Names in the directory (no "." or ".."), sorted; empty when it does not exist.
    [[nodiscard]] std::vector<std::string> list(const std::filesystem::path& dir) const;
    /// A descriptor of the directory (O_DIRECTORY, safe links only), for code that must keep
    /// working on one directory (openat2 beneath it). Throws SystemError.
    [[nodiscard]] UniqueFd open_dir(const std::filesystem::path& dir) const;

    // ---- writing ----
    /// Create `dir` and its missing parents. Parents it creates are 0755 root:root; the last
    /// gets `mode` (and `owner`), set on its descriptor. With ExistingDir::enforce an existing
    /// last directory is given `mode` and `owner` too. Throws SystemError (also when a
    /// component exists and is not a directory).
    void make_dirs(const std::filesystem::path& dir, mode_t mode, std::optional<Owner> owner = std::nullopt,
                   ExistingDir existing = ExistingDir::enforce) const;
    /// Replace the file atomically: a new temporary file in the same directory (O_EXCL),
    /// written, owned and moded on its descriptor, fsync'd, renamed over, directory fsync'd.
    /// The directory must exist. Throws SystemError.
    void write_atomic(const std::filesystem::path& inside, std::string_view content, mode_t mode,
                      std::optional<Owner> owner = std::nullopt) const;
    /// write_atomic() with the bytes of a host file (`from` is the administrator's path,
    /// outside the root's rules; a regular file only, at most `limit` bytes). Throws SystemError.
    void copy_from_host(const std::filesystem::path& from, const std::filesystem::path& to_inside, mode_t mode,
                        std::size_t limit = std::numeric_limits<std::size_t>::max()) const;
    /// write_atomic() with the bytes of another file under the root.
    void copy(const std::filesystem::path& from_inside, const std::filesystem::path& to_inside, mode_t mode) const;
    /// An O_APPEND descriptor of the regular file, created with `mode` when missing (unless
    /// `when_missing` is WhenMissing::refuse: then a missing file throws SystemError
    /// "cannot open HOST: No such file or directory" and nothing is created); an existing
    /// file is given `mode` (journals and logs). Throws SystemError for a symbolic link, a
    /// FIFO, a device or a directory there (never blocks on a FIFO), or a file with more
    /// than one hard link.
    [[nodiscard]] UniqueFd open_append(const std::filesystem::path& inside, mode_t mode,
                                       WhenMissing when_missing = WhenMissing::create) const;
    /// A new file opened for writing (O_CREAT | O_EXCL, so never through an existing name),
    /// for downloads and dumps. Throws SystemError (EEXIST when it exists).
    [[nodiscard]] UniqueFd create_exclusive(const std::filesystem::path& inside, mode_t mode) const;
    /// Set owner and mode of the file or directory on its descriptor (a link is refused).
    void set_owner_mode(const std::filesystem::path& inside, std::optional<Owner> owner, mode_t mode) const;
    /// rename(2) within the root; both parents must exist. Throws SystemError.
    void rename(const std::filesystem::path& from_inside, const std::filesystem::path& to_inside) const;
    /// Remove a file, link or empty directory; false when it did not exist.
    bool remove(const std::filesystem::path& inside) const;
    /// Remove the path and everything below it without following any link; false when missing.
    bool remove_all(const std::filesystem::path& inside) const;
    /// Create a symbolic link `link_inside` -> `target` (replacing an existing link or file atomically).
    void symlink(const std::string& target, const std::filesystem::path& link_inside) const;

private:
    struct Parent;
    [[nodiscard]] UniqueFd open_root() const;
    [[nodiscard]] Parent walk_parent(const std::filesystem::path& inside, bool create, bool must_exist) const;
    [[nodiscard]] UniqueFd open_final(const std::filesystem::path& inside, int flags, mode_t mode) const;
    std::filesystem::path m_root;
};

/// Is a directory with this stat writable by a user other than root (owned by another uid,
/// or with group or other write permission)? Links in such a directory are never followed.
[[nodiscard]] bool writable_by_others(const struct stat& dir);

/// Is a file or directory with this stat this process's user's alone (owned by the effective
/// uid, no group or other write)? What a cache of ours must be before it is trusted: the
/// metadata cache's entries, another user's own cache, check-update's kept answers.
[[nodiscard]] bool owned_privately(const struct stat& st);

/// Why root must not trust the host path `path` (a program to run, a file whose commands
/// root runs), or nullopt when it may: the file and every directory on the way to it,
/// through every link (each link's target checked the same way), must be owned by root and
/// not writable by group or others. A sticky root-owned directory (/tmp) is allowed when
/// the entry in it is root's. The reason names the path, its owner uid and mode. Pure
/// lstat/readlink on the live file system; a missing path is a reason too.
[[nodiscard]] std::optional<std::string> untrusted_path_reason(const std::filesystem::path& path);

/// Records every path the SystemRoots of this process reach while it lives: the inputs of a
/// computation whose answer is kept and reused while they stay the same (check-update's warm
/// answer, installer/warm_answer.hpp). Each path is recorded once, with its identity
/// (file_identity) when first reached; a path one of the writing operations reached is marked
/// `written`. At most one recorder lives at a time (a second throws std::logic_error); the
/// operations of every thread are recorded. Without a recorder the cost is one atomic load.
class AccessRecorder {
public:
    struct Access {
        std::filesystem::path root;    ///< SystemRoot::path() of the root that reached it
        std::filesystem::path inside;  ///< the path inside that root
        std::string first;             ///< file_identity() when first reached
        bool written = false;          ///< reached by make_dirs, write_atomic, rename, remove, ...
        bool output = false;           ///< first reached by a writing operation: made by the run, not read
        /// SHA-256 (hex) of the bytes the run read (read, try_read), "" when it did not read
        /// them: what the run used, whatever the file's times say (a file rewritten within one
        /// tick of the clock keeps its times; git's "racy clean" case).
        std::string content;
        std::string names;             ///< SHA-256 of the names list() gave (NUL-separated), or ""
        bool unsteady = false;         ///< read or listed twice with different results
    };
    AccessRecorder();
    ~AccessRecorder();
    AccessRecorder(const AccessRecorder&) = delete;
    AccessRecorder& operator=(const AccessRecorder&) = delete;
    /// What was reached so far, in the order first reached.
    [[nodiscard]] std::vector<Access> accesses() const;
};

/// What identifies the content of the path for a cache key, as git's index does: for a file
/// or directory (safe links followed, as SystemRoot::stat) "dev:ino:size:mtime_ns:ctime_ns:mode:uid";
/// "absent" when it does not exist; "unreadable" when it cannot be reached (an unsafe link, a
/// permission error). A directory's identity changes when a name is added, removed or renamed
/// in it. Never throws SystemError.
[[nodiscard]] std::string file_identity(const SystemRoot& root, const std::filesystem::path& inside);

/// The SHA-256 (hex) of a names list as AccessRecorder::Access::names holds it.
[[nodiscard]] std::string names_digest(const std::vector<std::string>& names);

/// For tests: behave as on a kernel without openat2 (EL7), walking with openat(O_NOFOLLOW)
/// per component, when `enabled` is false. Returns the previous setting.
bool set_openat2_enabled(bool enabled);

} // namespace leo::fs
