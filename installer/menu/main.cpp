// leo-menu: the console Administration Menu (the login shell of the leo user).
#include "actions.hpp"
#include "navigate.hpp"
#include "screens.hpp"
#include "tree.hpp"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <sys/ioctl.h>
#include <unistd.h>

namespace {

namespace stdfs = std::filesystem;
constexpr int k_exit_error = 1;
constexpr int k_exit_usage = 2;
constexpr int k_exit_needs_root = 4;

/// The leo-installer beside this program (a build tree, /usr/bin), else the installed one.
stdfs::path installer_beside_us() {
    std::error_code ec;
    const auto self = stdfs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const auto beside = self.parent_path() / "leo-installer";
        if (::access(beside.c_str(), X_OK) == 0) return beside;
    }
    return std::string(leo::menu::k_installed_installer);
}

int fail(int code, const std::string& message) {
    std::cerr << "leo-menu: " << message << "\n";
    return code;
}

} // namespace

int main(int argc, char** argv) {
    // As a login shell, `su - leo -c CMD` would hand us "-c CMD": the menu runs no commands.
    for (int i = 1; i < argc; ++i)
        if (std::string_view(argv[i]) == "-c")
            return fail(k_exit_usage, "this account's shell is the Administration Menu; it runs no commands (-c)");

    CLI::App app{"leo-menu: the console Administration Menu of the broker (Power, Database, Log, Advanced)"};
    app.set_version_flag("--version", std::string("leo-menu ") + LEO_VERSION);
    std::string root = "/";
    std::string facts;
    bool print_sudoers = false;
    std::string user = "leo";
    app.add_option("--root", root, "Operate on the system under DIR (root only; like rpm --root)")->option_text("DIR");
    app.add_option("--facts", facts, "Host facts for the REST API's preflight (a saved `facts --json`; root only)")
        ->option_text("FILE");
    app.add_flag("--print-sudoers", print_sudoers,
                 "Print the sudoers drop-in (/etc/sudoers.d/leo-menu) that lets the leo user run the menu's "
                 "commands, and exit");
    app.add_option("--user", user, "The user --print-sudoers names (default: leo)")->option_text("USER");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (print_sudoers) {
        std::cout << leo::menu::sudoers(user);
        return 0;
    }

    leo::menu::Invocation how;
    how.as_root = ::geteuid() == 0;
    if (how.as_root) {
        std::error_code ec;
        if (!stdfs::is_directory(root, ec))
            return fail(k_exit_usage, fmt::format("--root {}: not a directory", root));
        how.root = stdfs::absolute(root, ec);
        how.installer = installer_beside_us();
        if (!facts.empty()) how.facts = stdfs::absolute(facts, ec);
    } else if (root != "/" || !facts.empty()) {
        return fail(k_exit_needs_root, "--root and --facts need root: as this user the menu runs the installed "
                                       "system's commands through sudo, which allows nothing else");
    }

    if (::isatty(STDIN_FILENO) == 0 || ::isatty(STDOUT_FILENO) == 0)
        return fail(k_exit_error, "no terminal: the Administration Menu needs one (for scripts, use the "
                                  "leo-installer commands it runs: service, setting, log, support-bundle, db)");
    struct winsize ws {};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col < leo::menu::k_min_cols ||
        ws.ws_row < leo::menu::k_min_rows)
        return fail(k_exit_error, fmt::format("the terminal is {}x{}: the Administration Menu needs at least {}x{} "
                                              "(columns x rows); enlarge the window and log in again",
                                              ws.ws_col, ws.ws_row, leo::menu::k_min_cols, leo::menu::k_min_rows));

    const std::string banner = how.root == "/" ? std::string("Leostream Connection Broker")
                                               : fmt::format("Leostream Connection Broker (root {})", how.root.string());
    try {
        const leo::menu::Runner runner(how);
        leo::menu::Screen screen(banner);
        leo::menu::navigate(leo::menu::main_menu(), screen, runner);
    } catch (const std::exception& e) {
        return fail(k_exit_error, e.what());
    }
    return 0;
}
