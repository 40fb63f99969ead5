#pragma once
/// The Administration Menu's actions (leo-menu): each one fixed `leo-installer` argument
/// vector of the CLI contract. This table is the single source of truth: the menu runs
/// these vectors and nothing else, and the sudoers drop-in the packaging installs
/// (`leo-menu --print-sudoers` > /etc/sudoers.d/leo-menu) allows the leo user exactly
/// these vectors as root. Values a user types (the database password) never go into an
/// argument vector: they come on standard input.

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace leo::menu {

/// The installed program the sudoers drop-in names (sudo matches the full path).
inline constexpr std::string_view k_installed_installer = "/usr/bin/leo-installer";
/// Reboot of the machine (EL7's systemctl), outside a sandbox root only.
inline constexpr std::string_view k_systemctl = "/usr/bin/systemctl";

/// One action: an id the menu tree refers to, and its argument vector after the program
/// name (`{"service", "restart"}`). `program` is leo-installer unless it says systemctl.
struct Action {
    std::string_view id;
    std::vector<std::string_view> args;
    bool systemctl = false;       ///< argv[0] is k_systemctl, not leo-installer (reboot)
    bool reads_stdin = false;     ///< the menu passes values on standard input
    bool takes_facts = false;     ///< `--facts FILE` is appended when leo-menu got one (root only)
};

/// Every action, in menu order.
[[nodiscard]] std::span<const Action> actions();

/// The action of that id. Throws std::out_of_range naming the id when there is none (a
/// menu tree that names an unknown action is a programming error, caught by the tests).
[[nodiscard]] const Action& action(std::string_view id);

/// The log names `log view NAME` and the menu's Other logs may use (sudo allows exactly
/// these): the broker's web server and work queue, the internal database, the installer.
[[nodiscard]] std::span<const std::string_view> log_names();

/// "log.view.NAME" for a NAME of log_names(); nullopt otherwise.
[[nodiscard]] std::optional<std::string> log_view_action(std::string_view name);

/// How the menu runs an action: as root, the leo-installer next to leo-menu (or
/// `installer`) directly with `--root ROOT`; as another user, `sudo -n
/// /usr/bin/leo-installer ARGS` (the drop-in allows nothing else, and the root is `/`).
struct Invocation {
    bool as_root = true;
    std::filesystem::path installer = std::string(k_installed_installer);
    std::filesystem::path root = "/";
    std::optional<std::filesystem::path> facts;  ///< leo-menu --facts (as root only)
};

/// The full argument vector of `a` under `how`. Pure.
[[nodiscard]] std::vector<std::string> argv_for(const Action& a, const Invocation& how);

/// The sudoers drop-in (/etc/sudoers.d/leo-menu) for `user`: one Cmnd_Alias listing every
/// action's argument vector under sudo, exactly (no wildcards; sudoers' special
/// characters escaped), and the rule that lets `user` run them as root without a
/// password. `visudo -cf FILE` accepts it (tests/integration/test_menu.cpp).
[[nodiscard]] std::string sudoers(std::string_view user = "leo");

} // namespace leo::menu
