#pragma once
/// librpm initialisation and log capture (the only way into librpm's global state).

#include <string>
#include <vector>

namespace leo::rpm {

/// The rpmdb location inside every root. Debian's librpm defaults to ~/.rpmdb
/// (PITFALLS), RHEL's to /var/lib/rpm: we always set it explicitly.
inline constexpr const char* k_dbpath = "/var/lib/rpm";

/// Read rpm's configuration once and pin `_dbpath` to k_dbpath. Idempotent and
/// thread-safe; every function of leo::rpm calls it. Also routes librpm's own log
/// messages away from the terminal (into the installer log and the active LogCapture).
void initialize();

/// Collects librpm's log messages (warnings and errors) while it lives, so that a
/// failure can name rpm's own reason. Nested captures each see the messages.
class LogCapture {
public:
    LogCapture();
    ~LogCapture();
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;
    /// Messages at warning level or worse, trimmed, in order.
    [[nodiscard]] const std::vector<std::string>& messages() const { return m_messages; }
    /// All messages joined with "; " ("" when none).
    [[nodiscard]] std::string joined() const;
    void add(const std::string& message) {
        m_messages.push_back(message);
        if (m_previous != nullptr) m_previous->add(message);
    }

private:
    std::vector<std::string> m_messages;
    LogCapture* m_previous;
};

} // namespace leo::rpm
