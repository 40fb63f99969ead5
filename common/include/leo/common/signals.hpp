#pragma once
/// Signals during a run (DESIGN.md "A run is one critical section").
///
/// SIGINT, SIGTERM, SIGHUP and SIGPIPE get one handler (install(), called once by main):
/// - outside a critical section the signal does what it always does: the terminal is put
///   back (TerminalGuard) and the process ends by that signal, as if we had no handler;
/// - inside one (while a Deferred exists) the first signal is only recorded: the run
///   finishes the step it is in, then checks (check(), pending()) and undoes itself; a
///   later SIGINT/SIGTERM/SIGHUP prints one line saying what is in progress and is
///   otherwise ignored. A write to a closed pipe then fails with EPIPE instead of
///   killing the process, and the CLI stops writing there.
/// The same model as yum and rpm: a transaction that has begun is finished or undone,
/// never left half done. Children we start are in their own process group (subprocess),
/// so a Ctrl-C on the terminal reaches the installer and not the pg_dump it waits for.
///
/// Everything the handler touches is a `volatile sig_atomic_t` or set before it can run,
/// and it calls only async-signal-safe functions (write, tcsetattr, sigaction, raise).

#include "leo/common/error.hpp"

#include <string>

namespace leo::signals {

/// Install the handler for SIGINT, SIGTERM, SIGHUP and SIGPIPE (SA_RESTART: an
/// interrupted read or wait goes on). `program` prefixes the handler's messages; it must
/// outlive the process (a string literal). Call once, before any thread.
void install(const char* program);

/// While one exists, the process is in a critical section: signals are recorded, not
/// acted on. Nests. `message` is what a second signal prints (after "PROGRAM: "), for
/// example "undoing the upgrade; please wait"; it must outlive the Deferred (a literal).
class Deferred {
public:
    explicit Deferred(const char* message = "finishing the current step, then undoing the run; please wait");
    ~Deferred();
    Deferred(const Deferred&) = delete;
    Deferred& operator=(const Deferred&) = delete;

private:
    const char* m_previous;
};

/// From now until the process exits, signals are recorded as inside a critical section,
/// with `message` (a literal) as what they print. For the end of a run: once its last
/// step is done (the journal's "end"), a signal must not kill it before it has printed
/// what it did; the CLI then says the run completed and exits 128+N.
void defer_until_exit(const char* message) noexcept;

/// Change what a signal prints inside the current critical section (e.g. once the undo
/// has begun); `message` must outlive it (a literal).
void say(const char* message) noexcept;

/// The first signal received inside a critical section (SIGINT...), 0 when none.
[[nodiscard]] int pending() noexcept;

/// Throw leo::InterruptedError("interrupted by SIGINT") when a signal is pending.
void check();

/// "SIGINT", "SIGTERM", "SIGHUP", "SIGPIPE", or "signal N".
[[nodiscard]] std::string name(int signal);

/// Forget a recorded signal and defer_until_exit() (tests of this module only).
void reset_for_tests() noexcept;

/// Saves the terminal state of `fd` (when it is a terminal) and puts it back on
/// destruction, and from the signal handler when a signal ends the process while the
/// guard exists (a password prompt interrupted by Ctrl-C leaves echo on). One at a time.
class TerminalGuard {
public:
    explicit TerminalGuard(int fd);
    ~TerminalGuard();
    TerminalGuard(const TerminalGuard&) = delete;
    TerminalGuard& operator=(const TerminalGuard&) = delete;
    [[nodiscard]] bool active() const noexcept { return m_active; }

private:
    bool m_active = false;
};

} // namespace leo::signals
