// A full-screen program in tmux (terminal_session.hpp).
#include "terminal_session.hpp"

#include <cctype>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <signal.h>
#include <unistd.h>

namespace leo::test {


TerminalSession::TerminalSession(const std::vector<std::string>& argv, int cols, int rows) {
    m_socket = (m_dir.path() / "tmux.sock").string();
    const auto conf = m_dir.path() / "tmux.conf";
    std::ofstream(conf) << "set -g remain-on-exit on\nset -g status off\nset -g escape-time 0\n";
    std::vector<std::string> args = {"-f", conf.string(), "new-session", "-d", "-s", "menu", "-x", std::to_string(cols),
                                     "-y", std::to_string(rows)};
    args.insert(args.end(), argv.begin(), argv.end());
    const auto r = tmux(args);
    if (!r.ok()) throw std::runtime_error("tmux new-session: " + r.out + r.err);
}

TerminalSession::~TerminalSession() { (void)tmux({"kill-server"}); }

subprocess::Result TerminalSession::tmux(std::vector<std::string> args) const {
    args.insert(args.begin(), {"tmux", "-S", m_socket});
    subprocess::Options o;
    o.env["TERM"] = "xterm";  // the client's; the program inside gets tmux's "screen"
    o.timeout = std::chrono::seconds(30);
    return subprocess::run(args, o);
}

void TerminalSession::send(const std::vector<std::string>& keys) const {
    for (const auto& k : keys) {
        const auto r = tmux({"send-keys", "-t", "menu", k});
        if (!r.ok()) throw std::runtime_error("tmux send-keys " + k + ": " + r.err);
        // One key at a time, as a person types: newt reads an escape sequence within a read,
        // and takes a lone Escape only when nothing follows it soon (two quick ones are read
        // as one sequence).
        std::this_thread::sleep_for(std::chrono::milliseconds(k == "Escape" ? 600 : 60));
    }
}

std::string TerminalSession::screen() const { return tmux({"capture-pane", "-p", "-t", "menu"}).out; }

bool TerminalSession::wait_for(const std::string& text, std::chrono::milliseconds timeout, std::string* last) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string s;
    for (;;) {
        s = screen();
        if (s.find(text) != std::string::npos) break;
        if (std::chrono::steady_clock::now() >= deadline) {
            if (last != nullptr) *last = s;
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (last != nullptr) *last = s;
    return true;
}

std::optional<int> TerminalSession::exit_status(std::chrono::milliseconds timeout) const {
    // remain-on-exit keeps the pane: tmux says whether its program ended and with what status.
    // Debian's tmux is built with libutempter, whose own SIGCHLD handler is in place for a
    // moment after each spawn: a child that ends then is never reaped and its pane never
    // dies (tmux issues 311 and 4559). A SIGCHLD sent to the server makes it look again.
    const auto server = tmux({"display-message", "-p", "#{pid}"});
    pid_t server_pid = 0;
    if (server.ok() && !server.out.empty() && std::isdigit(static_cast<unsigned char>(server.out[0])) != 0)
        server_pid = static_cast<pid_t>(std::stol(server.out));
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (server_pid > 0) ::kill(server_pid, SIGCHLD);
        const auto r = tmux({"display-message", "-p", "-t", "menu", "#{pane_dead}:#{pane_dead_status}"});
        if (r.ok() && r.out.rfind("1:", 0) == 0) {
            const auto digits = r.out.substr(2);
            if (!digits.empty() && std::isdigit(static_cast<unsigned char>(digits[0])) != 0) return std::stoi(digits);
        }
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

} // namespace leo::test
