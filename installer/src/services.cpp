#include "leo/installer/services.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/log.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/trust.hpp"

#include <fmt/format.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

bool systemd_unit_present(const stdfs::path& root) {
    std::error_code ec;
    if (root != "/" || !stdfs::is_directory("/run/systemd/system", ec)) return false;
    for (const char* dir : {"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"})
        if (stdfs::exists(stdfs::path(dir) / k_broker_unit, ec)) return true;
    return false;
}

ServiceOutcome act(const stdfs::path& root, const char* verb) {
    const auto config = load_config(root);
    const std::string& configured =
        std::string(verb) == "stop" ? config.services_stop_command : config.services_start_command;
    ServiceOutcome out;
    std::vector<std::string> argv;
    if (!configured.empty()) {
        out.command = configured; // run by run_hook below
    } else if (systemd_unit_present(root)) {
        argv = {"systemctl", verb, k_broker_unit};
        out.command = subprocess::command_line(argv);
    } else {
        out.message = fmt::format(
            "no way to {} the broker components here (no [services] {}_command in "
            "/etc/leo-installer/installer.conf and no systemd unit {} on this system): {} them yourself",
            verb, verb, k_broker_unit, verb);
        return out;
    }
    subprocess::Result r;
    if (!configured.empty()) {
        r = run_hook(Hook{fmt::format("[services] {}_command", verb), configured, {{"LEO_ROOT", root.string()}},
                          config.services_timeout});
    } else {
        subprocess::Options o;
        o.clean_env = true;
        o.env = {{"PATH", k_safe_path}, {"LANG", "C"}};
        o.timeout = config.services_timeout;
        r = subprocess::run(argv, o);
        log::info("ran {} (exit {})", out.command, r.exit_code);
    }
    if (!r.ok()) {
        const std::string why = subprocess::last_line(r.err.empty() ? r.out : r.err);
        throw SystemError(fmt::format("`{}` {}{}", out.command,
                                      r.timed_out ? fmt::format("did not end within {} s", config.services_timeout.count())
                                      : r.exit_code < 0 ? fmt::format("was killed by signal {}", r.signal)
                                                        : fmt::format("failed (exit {})", r.exit_code),
                                      why.empty() ? std::string() : ": " + why));
    }
    out.ran = true;
    out.message = fmt::format("broker components: {} ran `{}`", verb, out.command);
    return out;
}

} // namespace

std::string services_plan(const stdfs::path& root) {
    const auto config = load_config(root);
    if (!config.services_stop_command.empty() || !config.services_start_command.empty())
        return fmt::format("The broker components are stopped before (`{}`) and started after (`{}`)",
                           config.services_stop_command.empty() ? "nothing" : config.services_stop_command,
                           config.services_start_command.empty() ? "nothing" : config.services_start_command);
    if (systemd_unit_present(root))
        return fmt::format("The broker components are stopped before and started after (systemctl stop|start {})",
                           k_broker_unit);
    return fmt::format("This tool cannot stop the broker components here (no [services] commands in "
                       "/etc/leo-installer/installer.conf, no systemd unit {}): stop them before you answer yes, and "
                       "start them when it is done",
                       k_broker_unit);
}

ServiceOutcome stop_broker(const stdfs::path& root) { return act(root, "stop"); }
ServiceOutcome start_broker(const stdfs::path& root) { return act(root, "start"); }

} // namespace leo::installer
