#include "leo/installer/trust.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/system_root.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <sstream>

#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

/// `name` looked up in `path_list` as execvp would; nullopt when not found.
std::optional<stdfs::path> lookup(const std::string& name, const std::string& path_list) {
    std::stringstream ss(path_list);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
        const auto candidate = stdfs::path(dir.empty() ? "." : dir) / name;
        if (::access(candidate.c_str(), X_OK) == 0)
            return stdfs::absolute(candidate);
    }
    return std::nullopt;
}

/// The first word of a shell command line ("" when it starts with shell syntax).
std::string first_word(const std::string& command) {
    const auto begin = command.find_first_not_of(" \t");
    if (begin == std::string::npos)
        return {};
    const auto end = command.find_first_of(" \t;&|<>()$`'\"\\\n", begin);
    return command.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

} // namespace

std::optional<std::string> untrusted_invocation(const std::string& argv0) {
    if (::geteuid() != 0 || argv0.empty())
        return std::nullopt;
    std::optional<stdfs::path> invoked;
    if (argv0.find('/') != std::string::npos) {
        invoked = stdfs::absolute(argv0);
    } else {
        const char* env_path = std::getenv("PATH");
        invoked = lookup(argv0, env_path != nullptr ? env_path : k_safe_path);
    }
    if (!invoked)
        return std::nullopt; // started by a name no PATH entry holds: nothing to judge
    const auto reason = fs::untrusted_path_reason(*invoked);
    if (!reason)
        return std::nullopt;
    // The safe path: the same program in the root's /usr/bin (the documented link lives in
    // ROOT/home/leo/bin; the program itself in ROOT/usr/bin), or leo-installer itself.
    std::string safe = "/usr/bin/switch_database.pl";
    const std::string s = invoked->string();
    const std::string documented = "/home/leo/bin/" + invoked->filename().string();
    if (s.ends_with(documented))
        safe = s.substr(0, s.size() - documented.size()) + "/usr/bin/" + invoked->filename().string();
    return fmt::format("refusing to run as root through {}: {}; another user could replace what runs. Run {} "
                       "(or {}) instead",
                       s, *reason, safe, command_hint("switch-database"));
}

subprocess::Result run_hook(const Hook& hook) {
    const std::string word = first_word(hook.command);
    if (!word.empty()) {
        std::optional<stdfs::path> program;
        if (word.find('/') != std::string::npos)
            program = stdfs::path(word);
        else
            program = lookup(word, k_safe_path);
        if (program) {
            if (auto reason = fs::untrusted_path_reason(*program))
                throw RefusedError(fmt::format("{} `{}`: refusing to run {} as root: {}; make it root's and not "
                                               "writable by group or others (chown root: FILE; chmod go-w FILE)",
                                               hook.what, hook.command, program->string(), *reason));
        }
    }
    subprocess::Options o;
    o.clean_env = true;
    o.env = hook.env;
    o.env["PATH"] = k_safe_path;
    o.env["LANG"] = "C";
    o.env["HOME"] = "/root";
    o.timeout = hook.timeout;
    log::info("running {}: {}", hook.what, hook.command);
    auto r = subprocess::run({"/bin/sh", "-c", hook.command}, o);
    log::info("{} ended: {}", hook.what,
              r.timed_out      ? fmt::format("timed out after {} ms and was killed", hook.timeout.count())
              : r.exit_code < 0 ? fmt::format("killed by signal {}", r.signal)
                                : fmt::format("exit {}", r.exit_code));
    return r;
}

} // namespace leo::installer
