#pragma once
/// One run at a time per root: an flock(2) on the state directory ROOT/var/lib/leo-installer
/// (not on a file in it, which an administrator could remove under a live run), taken
/// before a run makes its plan and held through its confirmation question to its end
/// (DESIGN.md "A run is one critical section").
///
/// The holder writes "pid N, leo-installer COMMAND, started TIME" into
/// ROOT/var/lib/leo-installer/lock (0600, a regular file or a refusal); a second
/// run waits up to the process-wide limit (`--wait SECONDS`, as `flock -w`) and then
/// refuses, naming them. The kernel releases the lock when the holder dies (kill -9
/// included), so a held lock means a live run: its journal is "in progress", never
/// "unfinished".

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace leo::installer {

/// How long a run waits for another one (`--wait SECONDS`; 0: refuse at once), and what
/// it says when it starts waiting (the holder's line).
struct LockWait {
    std::chrono::seconds limit{0};
    std::function<void(const std::string& holder)> on_wait;
};

class RunLock {
public:
    /// Take the lock for `command` (e.g. "install --rpm FILE"), waiting as set_wait()
    /// says. Creates the state directory when missing and makes it root-only (0700
    /// root:root), through SystemRoot. Throws leo::RefusedError naming the holder (pid,
    /// command, start time) when another run still holds it, leo::SystemError when the
    /// directory cannot be opened or locked or the holder file is not a regular file.
    static RunLock acquire(const std::filesystem::path& root, const std::string& command);

    /// The waiting policy of every acquire() in this process (the CLI's --wait).
    static void set_wait(LockWait wait);

    /// The live run holding the lock of `root` ("pid N, leo-installer upgrade, started
    /// TIME"), or nullopt when none. Read-only: it never takes the lock (it reads
    /// /proc/locks), so it cannot make a starting run fail. Throws leo::SystemError
    /// when the state directory cannot be read (not root).
    [[nodiscard]] static std::optional<std::string> holder(const std::filesystem::path& root);

    /// Replace the holder line's command once the plan is known ("upgrade to NEVRA").
    void describe(const std::string& command) const;

    /// A run refused before its first change: remove the state directory when this run
    /// created it (for the lock), while still holding the lock ("bad input changes
    /// nothing"). A run that waited on it finds it gone and starts over.
    void remove_state_dir_if_created() noexcept;

    RunLock(RunLock&& other) noexcept
        : m_fd(other.m_fd), m_text_fd(other.m_text_fd), m_started(std::move(other.m_started)),
          m_root(std::move(other.m_root)), m_created_dir(other.m_created_dir),
          m_created_parent(other.m_created_parent) {
        other.m_fd = -1;
        other.m_text_fd = -1;
        other.m_created_dir = false;
    }
    RunLock& operator=(RunLock&&) = delete;
    RunLock(const RunLock&) = delete;
    ~RunLock();

private:
    RunLock(int fd, int text_fd, std::string started) : m_fd(fd), m_text_fd(text_fd), m_started(std::move(started)) {}
    int m_fd = -1;       ///< the state directory, flocked
    int m_text_fd = -1;  ///< the holder line's file
    std::string m_started;
    std::filesystem::path m_root;
    bool m_created_dir = false;     ///< the state directory did not exist before this lock
    bool m_created_parent = false;  ///< nor did its parent (/var/lib)
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
