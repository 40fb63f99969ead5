#pragma once
/// A full-screen program in a real terminal: tmux (its own server socket, no user
/// configuration, remain-on-exit so the exit status can be read), driven with send-keys
/// and read with capture-pane (PITFALLS.md "tmux").

#include "test_support.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace leo::test {

class TerminalSession {
public:
    /// Start `argv` in a detached tmux session of `cols` x `rows`. Throws
    /// std::runtime_error with tmux's output when tmux cannot start it.
    TerminalSession(const std::vector<std::string>& argv, int cols = 80, int rows = 25);
    ~TerminalSession();
    TerminalSession(const TerminalSession&) = delete;
    TerminalSession& operator=(const TerminalSession&) = delete;

    /// tmux send-keys: each element one key name ("Enter", "Escape", "Up") or literal text.
    void send(const std::vector<std::string>& keys) const;
    /// The screen's text now (capture-pane -p).
    [[nodiscard]] std::string screen() const;
    /// Wait until the screen contains `text` (polling); the last screen when it did not in time.
    [[nodiscard]] bool wait_for(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(20),
                                std::string* last = nullptr) const;
    /// The program's exit status once it ended (remain-on-exit), waiting up to `timeout`.
    [[nodiscard]] std::optional<int> exit_status(std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

private:
    [[nodiscard]] subprocess::Result tmux(std::vector<std::string> args) const;
    TempDir m_dir;
    std::string m_socket;
};

} // namespace leo::test
