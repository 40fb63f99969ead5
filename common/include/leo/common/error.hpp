#pragma once
/// The exception tree of leo-installer (DESIGN.md "Errors and exit codes").
///
/// `leo::Error` is the root; each area has one subclass. Context is added at each
/// layer boundary with `std::throw_with_nested`, and `main` prints the whole chain
/// with `describe()` and maps the outermost error to an exit code with `exit_code()`.
/// Expected outcomes (a check's verdict, a signature state) are values, not exceptions.

#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

namespace leo {

/// Documented exit codes: 0 ok, 1 error, 2 usage, 3 preflight or gate refused, 4 needs
/// root, 100 (check-update only) an update is available, 128+N ended by signal N (after
/// finishing or undoing the step it was in; InterruptedError).
enum class ExitCode : int { ok = 0, error = 1, usage = 2, refused = 3, needs_root = 4, update_available = 100 };

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what, ExitCode code = ExitCode::error)
        : std::runtime_error(what), m_code(code) {}
    [[nodiscard]] ExitCode code() const noexcept { return m_code; }

private:
    ExitCode m_code;
};

/// Bad command line: wrong flag value, missing argument (exit 2).
class UsageError : public Error {
public:
    explicit UsageError(const std::string& what) : Error(what, ExitCode::usage) {}
};
/// A preflight inhibitor or a gate refused the run (exit 3).
class RefusedError : public Error {
public:
    explicit RefusedError(const std::string& what) : Error(what, ExitCode::refused) {}
};
/// Operating-system level failures: files, processes, accounts.
class SystemError : public Error {
public:
    using Error::Error;
};
class RpmError : public Error {
public:
    using Error::Error;
};
/// Another process held rpm's transaction lock (ROOT/var/lib/rpm/.rpm.lock) for longer
/// than the caller would wait (leo::rpm::wait_for_transaction_lock). The message names the
/// lock file, the holder's pid and command; the caller adds whether anything was changed.
class RpmLockedError : public RpmError {
public:
    RpmLockedError(const std::string& what, long holder_pid, std::string holder_command)
        : RpmError(what), m_pid(holder_pid), m_command(std::move(holder_command)) {}
    [[nodiscard]] long holder_pid() const noexcept { return m_pid; }
    [[nodiscard]] const std::string& holder_command() const noexcept { return m_command; }

private:
    long m_pid;
    std::string m_command;
};
class PreflightError : public Error {
public:
    using Error::Error;
};
class DatabaseError : public Error {
public:
    using Error::Error;
};
class MigrationError : public Error {
public:
    using Error::Error;
};
class RepoError : public Error {
public:
    using Error::Error;
};
class InstallError : public Error {
public:
    using Error::Error;
};
/// The command must run as root (exit 4, as yum's "You need to be root").
class NeedsRootError : public Error {
public:
    explicit NeedsRootError(const std::string& what) : Error(what, ExitCode::needs_root) {}
};
/// A signal stopped the run after it finished or undid the step it was in: exit 128 + N.
/// Anywhere in a chain, it decides the exit code.
class InterruptedError : public Error {
public:
    InterruptedError(const std::string& what, int signal)
        : Error(what, static_cast<ExitCode>(128 + signal)), m_signal(signal) {}
    [[nodiscard]] int signal() const noexcept { return m_signal; }

private:
    int m_signal;
};

/// The message chain of `e` and every exception nested in it, joined with ": ".
/// Example: "install failed: migration V9.0.0.1: ERROR: relation \"jobs\" does not exist".
[[nodiscard]] std::string describe(const std::exception& e);

/// The exit code for `e`: the first `leo::Error` in the chain decides from the outside
/// in, except that an InterruptedError (128+N) anywhere in the chain wins, and then a
/// refusal (3) or usage error (2).
[[nodiscard]] ExitCode exit_code(const std::exception& e);

/// A SystemError whose message is `what` followed by strerror(errnum).
[[nodiscard]] SystemError system_error(const std::string& what, int errnum);

} // namespace leo
