#pragma once
/// One run at a time per root: an flock(2) on ROOT/var/lib/leo-installer/lock.
///
/// The holder writes "pid command start-time" into the file; a second run refuses at once
/// naming them. The kernel releases the lock when the holder dies (kill -9 included).

#include <filesystem>
#include <string>
#include <vector>

namespace leo::installer {

class RunLock {
public:
    /// Take the lock for `command` (e.g. "install --rpm FILE"). Creates the state
    /// directory when missing and makes it root-only (0700 root:root), through SystemRoot. Throws leo::RefusedError naming the holder when
    /// another run holds it, leo::SystemError when the file cannot be opened.
    static RunLock acquire(const std::filesystem::path& root, const std::string& command);

    RunLock(RunLock&& other) noexcept : m_fd(other.m_fd) { other.m_fd = -1; }
    RunLock& operator=(RunLock&&) = delete;
    RunLock(const RunLock&) = delete;
    ~RunLock();

private:
    explicit RunLock(int fd) : m_fd(fd) {}
    int m_fd = -1;
};

/// Directories that do not exist yet, remembered so that a run refused before its first
/// real change can remove what it created on the way (the lock's directory, an rpmdb
/// opened by a test transaction): "bad input changes nothing".
class CreatedDirsGuard {
public:
    /// Remember which of `dirs` (absolute paths inside the root, "/var/lib/rpm") and their
    /// parents are missing now.
    CreatedDirsGuard(const std::filesystem::path& root, const std::vector<std::filesystem::path>& dirs);
    /// Remove them again (recursively for the innermost of each, parents only when empty).
    void undo() const noexcept;

private:
    std::filesystem::path m_root;
    std::vector<std::vector<std::filesystem::path>> m_chains;  ///< per dir, inside the root: innermost first
};

} // namespace leo::installer
