// The Administration Menu's action table and the sudoers drop-in made from it.
#include "actions.hpp"

#include <array>
#include <stdexcept>

#include <fmt/format.h>

namespace leo::menu {

namespace {

using Args = std::vector<std::string_view>;

const std::vector<Action>& table() {
    static const std::vector<Action> k_actions = {
        // What the menu reads to decide what it shows.
        {"status", Args{"status", "--json"}},
        {"setting.show", Args{"setting", "show", "--json"}},
        {"log.list", Args{"log", "list", "--json"}},
        // Power
        {"power.restart", Args{"service", "restart"}},
        {"power.stop", Args{"service", "stop"}},
        {"power.start", Args{"service", "start"}},
        {"power.reboot", Args{"reboot"}, /*systemctl=*/true},
        {"component.httpd.restart", Args{"service", "restart", "httpd"}},
        {"component.httpd.stop", Args{"service", "stop", "httpd"}},
        {"component.httpd.start", Args{"service", "start", "httpd"}},
        {"component.db.restart", Args{"service", "restart", "db"}},
        {"component.db.stop", Args{"service", "stop", "db"}},
        {"component.db.start", Args{"service", "start", "db"}},
        {"component.queue.restart", Args{"service", "restart", "queue"}},
        {"component.queue.stop", Args{"service", "stop", "queue"}},
        {"component.queue.start", Args{"service", "start", "queue"}},
        // Database
        {"db.purge", Args{"db", "purge", "-y"}},
        {"db.to_internal", Args{"switch-database", "--to_internal", "--skip_confirmation"}},
        {"db.edit_external",
         Args{"switch-database", "--to_external", "existing", "--connection_file", "-", "--skip_confirmation"}, false,
         /*reads_stdin=*/true},
        // Log
        {"log.view.broker", Args{"log", "view", "broker", "--lines", "5000"}},
        {"log.view.queue", Args{"log", "view", "queue", "--lines", "5000"}},
        {"log.view.database", Args{"log", "view", "database", "--lines", "5000"}},
        {"log.view.installer", Args{"log", "view", "installer", "--lines", "5000"}},
        {"log.clear.broker", Args{"log", "clear", "broker", "-y"}},
        {"support-bundle", Args{"support-bundle"}},
        // Advanced
        {"setting.debug.on", Args{"setting", "debug", "on", "-y"}},
        {"setting.debug.off", Args{"setting", "debug", "off", "-y"}},
        {"setting.upgrades.disable", Args{"setting", "upgrades", "disable", "-y"}},
        {"setting.upgrades.enable", Args{"setting", "upgrades", "enable", "-y"}},
        {"setting.admin-login.disable", Args{"setting", "admin-login", "disable", "-y"}},
        {"setting.rest-api.enable", Args{"setting", "rest-api", "enable", "-y"}, false, false, /*takes_facts=*/true},
        {"setting.rest-api.disable", Args{"setting", "rest-api", "disable", "-y"}},
        {"setting.ssl-certificate.uninstall", Args{"setting", "ssl-certificate", "uninstall", "-y"}},
        {"setting.cipher-suite.default", Args{"setting", "cipher-suite", "default", "-y"}},
    };
    return k_actions;
}

/// The names `log list` gives (branch logs: installer/src/logs.cpp).
constexpr std::array<std::string_view, 4> k_log_names = {"broker", "queue", "database", "installer"};

/// sudoers(5): in a command's arguments, ',', ':', '=' and '\' must be escaped with '\'.
std::string sudoers_escape(std::string_view arg) {
    std::string out;
    for (char c : arg) {
        if (c == ',' || c == ':' || c == '=' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

} // namespace

std::span<const Action> actions() { return table(); }

const Action& action(std::string_view id) {
    for (const auto& a : table())
        if (a.id == id) return a;
    throw std::out_of_range(fmt::format("leo-menu: no action \"{}\" in the action table", id));
}

std::span<const std::string_view> log_names() { return k_log_names; }

std::optional<std::string> log_view_action(std::string_view name) {
    for (auto n : k_log_names)
        if (n == name) return fmt::format("log.view.{}", name);
    return std::nullopt;
}

std::vector<std::string> argv_for(const Action& a, const Invocation& how) {
    std::vector<std::string> argv;
    if (!how.as_root) {
        argv = {"sudo", "-n"};
        argv.emplace_back(a.systemctl ? k_systemctl : k_installed_installer);
    } else {
        argv.emplace_back(a.systemctl ? std::string(k_systemctl) : how.installer.string());
    }
    for (auto arg : a.args) argv.emplace_back(arg);
    if (how.as_root && !a.systemctl) {
        argv.emplace_back("--root");
        argv.push_back(how.root.string());
        if (a.takes_facts && how.facts) {
            argv.emplace_back("--facts");
            argv.push_back(how.facts->string());
        }
    }
    return argv;
}

std::string sudoers(std::string_view user) {
    std::string out = fmt::format(
        "# /etc/sudoers.d/leo-menu: what the Administration Menu (leo-menu, the login shell of\n"
        "# {0}) runs as root. Made by `leo-menu --print-sudoers` from the menu's action table:\n"
        "# exactly these argument vectors, no wildcards; values typed in the menu come on stdin.\n"
        "Cmnd_Alias LEO_MENU =",
        user);
    bool first = true;
    for (const auto& a : table()) {
        out += first ? " \\\n    " : ", \\\n    ";
        first = false;
        out += a.systemctl ? std::string(k_systemctl) : std::string(k_installed_installer);
        for (auto arg : a.args) out += " " + sudoers_escape(arg);
    }
    out += fmt::format("\nDefaults:{0} !requiretty\n{0} ALL=(root) NOPASSWD: LEO_MENU\n", user);
    return out;
}

} // namespace leo::menu
