// The deferred-signal handler of a run (common/include/leo/common/signals.hpp).
#include "leo/common/signals.hpp"

#include <array>
#include <csignal>
#include <cstring>

#include <fmt/format.h>

#include <termios.h>
#include <unistd.h>

namespace leo::signals {
namespace {

constexpr std::array<int, 4> k_signals = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};

// Written by the run, read by the handler (and the reverse for g_first).
volatile std::sig_atomic_t g_depth = 0;
volatile std::sig_atomic_t g_first = 0;
volatile std::sig_atomic_t g_said = 0;
volatile std::sig_atomic_t g_until_exit = 0;  // defer_until_exit()
const char* volatile g_exit_message = nullptr;
const char* volatile g_program = "leo-installer";
const char* volatile g_message = nullptr;

// The terminal to put back when a signal ends the process (TerminalGuard).
volatile std::sig_atomic_t g_tty_saved = 0;
int g_tty_fd = -1;
struct termios g_tty {};

void write_err(const char* s) noexcept {
    if (s == nullptr) return;
    (void)!::write(STDERR_FILENO, s, std::strlen(s));
}

const char* short_name(int sig) noexcept {
    switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    case SIGPIPE: return "SIGPIPE";
    default: return "a signal";
    }
}

void restore_terminal() noexcept {
    if (g_tty_saved != 0) ::tcsetattr(g_tty_fd, TCSANOW, &g_tty);
}

void handler(int sig) {
    const int saved_errno = errno;
    if (g_depth == 0 && g_until_exit == 0) {
        // Not in a critical section: end as the signal would have ended us.
        restore_terminal();
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        ::sigaction(sig, &dfl, nullptr);
        ::raise(sig);  // delivered when this handler returns (the signal is blocked in it)
        errno = saved_errno;
        return;
    }
    const char* message = g_depth > 0 ? g_message : g_exit_message;
    if (message == nullptr) message = "finishing what is in progress; please wait";
    if (g_first == 0) {
        g_first = sig;
        if (sig != SIGPIPE) {
            write_err(g_program);
            write_err(": ");
            write_err(short_name(sig));
            write_err(" received: ");
            write_err(message);
            write_err("\n");
        }
    } else if (sig != SIGPIPE && g_said == 0) {
        g_said = 1;
        write_err(g_program);
        write_err(": ");
        write_err(message);
        write_err(" (further signals are ignored until it is done)\n");
    }
    errno = saved_errno;
}

} // namespace

void install(const char* program) {
    g_program = program;
    struct sigaction sa {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    for (int s : k_signals) sigaddset(&sa.sa_mask, s);  // one handler at a time
    sa.sa_flags = SA_RESTART;
    for (int s : k_signals) {
        struct sigaction old {};
        ::sigaction(s, nullptr, &old);
        // A SIGINT ignored by our parent (a background job of a script) stays ignored,
        // as the shell meant; SIGPIPE is always ours to handle.
        if (old.sa_handler == SIG_IGN && s != SIGPIPE) continue;
        ::sigaction(s, &sa, nullptr);
    }
}

Deferred::Deferred(const char* message) : m_previous(g_message) {
    g_message = message;
    g_depth = g_depth + 1;
}

Deferred::~Deferred() {
    g_depth = g_depth - 1;
    g_message = m_previous;
}

void defer_until_exit(const char* message) noexcept {
    g_exit_message = message;
    g_until_exit = 1;
}

void say(const char* message) noexcept {
    g_message = message;
    g_said = 0;
}

int pending() noexcept { return static_cast<int>(g_first); }

void check() {
    if (const int sig = pending(); sig != 0)
        throw InterruptedError(fmt::format("interrupted by {}", name(sig)), sig);
}

std::string name(int signal) {
    const char* n = short_name(signal);
    if (std::strcmp(n, "a signal") == 0) return fmt::format("signal {}", signal);
    return n;
}

void reset_for_tests() noexcept {
    g_until_exit = 0;
    g_first = 0;
    g_said = 0;
}

TerminalGuard::TerminalGuard(int fd) {
    struct termios t {};
    if (::isatty(fd) == 0 || ::tcgetattr(fd, &t) != 0) return;
    g_tty_fd = fd;
    g_tty = t;
    g_tty_saved = 1;
    m_active = true;
}

TerminalGuard::~TerminalGuard() {
    if (!m_active) return;
    ::tcsetattr(g_tty_fd, TCSAFLUSH, &g_tty);
    g_tty_saved = 0;
}

} // namespace leo::signals
