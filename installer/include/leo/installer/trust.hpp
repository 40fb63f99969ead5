#pragma once
/// What root may trust: the program it was started as, and the files whose commands it
/// runs (issue "Safe as root"; docs/security.md lists every boundary and its test).

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "leo/common/subprocess.hpp"

namespace leo::installer {

/// When root runs the program through `argv0` (as the shell found it: a path, or a name
/// looked up in PATH) and that path goes through a link or directory another user controls
/// (the documented /home/leo/bin/switch_database.pl lives in leo's home), the refusal to
/// print: it names the path, why, and the safe path to use instead. nullopt when the
/// effective uid is not 0 or the path is safe.
[[nodiscard]] std::optional<std::string> untrusted_invocation(const std::string& argv0);

/// A hook (an installer.conf command line run with /bin/sh -c): `what` names it for
/// messages and the log ("[vm_snapshot] create_command").
struct Hook {
    std::string what;
    std::string command;
    std::map<std::string, std::string> env;  ///< added to the clean environment
    std::chrono::milliseconds timeout{300000};
};

/// Run a hook as root, as documented: only after checking that its program (the first
/// word; looked up in the fixed PATH when it has no "/") is root's and not writable by
/// group or others, with a clean environment (PATH=/usr/sbin:/usr/bin:/sbin:/bin, LANG=C,
/// HOME=/root plus `hook.env`), stdin from /dev/null, and its timeout; its exit status is
/// logged. Throws leo::RefusedError (exit 3) naming the program and why it is not trusted,
/// leo::SystemError when /bin/sh cannot start. A failing hook is a Result, not an exception.
[[nodiscard]] subprocess::Result run_hook(const Hook& hook);

/// The clean PATH of hooks and of programs root starts by name.
inline constexpr const char* k_safe_path = "/usr/sbin:/usr/bin:/sbin:/bin";

} // namespace leo::installer
