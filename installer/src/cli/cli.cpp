// leo-installer's entry point: the one list of commands, parsing, errors and exit codes; switch_database.pl.
#include "cli.hpp"
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/signals.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/trust.hpp"

#include <exception>
#include <iostream>
#include <utility>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <sys/stat.h>

namespace leo::cli {
namespace stdfs = std::filesystem;

namespace {

constexpr const char* k_switch_prog = "switch_database.pl";

struct Entry {
    const char* name;
    const char* help;
    std::unique_ptr<Command> command;
};

/// `name` of the command that ran ("upgrade", "db"), for messages.
std::string command_name(const CLI::App* sub) { return sub != nullptr ? sub->get_name() : std::string(k_prog); }

/// Run the parsed command; print the error chain and map it to the exit code. With
/// --json the error is a JSON object on stdout too ({"error": {...}}).
int run_command(Command& cmd, const std::string& name) {
    try {
        if (cmd.needs_root() && ::geteuid() != 0)
            throw NeedsRootError(fmt::format("you need to be root to run `{} {}`: it reads and changes files only "
                                             "root may (run it with sudo, or as root)",
                                             k_prog, name));
        installer::RunLock::set_wait(
            {std::chrono::seconds(cmd.lock_wait()), [](const std::string& holder) {
                 std::cerr << k_prog << ": waiting for another run to finish (" << holder << ")\n" << std::flush;
             }});
        int rc = cmd.run();
        if (const int sig = signals::pending(); sig != 0) {
            // The run had no step left to undo when the signal came: it completed.
            log::warning("{} received during `{}`, which completed before it could stop", signals::name(sig), name);
            std::cerr << k_prog << ": " << signals::name(sig) << " received: `" << name
                      << "` had completed what it was doing; nothing was undone\n";
            rc = 128 + sig;
        }
        log::close_log();
        // A signal in the last instant (after the check above) was announced by the
        // handler: the exit code says it too.
        if (const int late = signals::pending(); late != 0 && rc < 128) rc = 128 + late;
        return rc;
    } catch (const std::exception& e) {
        // A secret quoted by a library (a URL with its password) never reaches the terminal.
        const std::string chain = printable(redact_secrets(describe(e)));
        const int code = static_cast<int>(exit_code(e));
        log::error("{}", chain);
        log::close_log();
        if (cmd.json()) {
            nlohmann::json j;
            j["error"] = {{"message", chain}, {"exit_code", code}, {"command", name}};
            std::cout << j.dump(2) << "\n" << std::flush;
        }
        std::cerr << k_prog << ": error: " << chain << "\n";
        return code;
    }
}

/// Called as switch_database.pl (the link in /home/leo/bin): that one command.
int switch_database_main(int argc, char** argv) {
    k_prog = k_switch_prog;
    if (auto refusal = installer::untrusted_invocation(argv[0])) {
        std::cerr << k_prog << ": error: " << *refusal << "\n";
        return static_cast<int>(ExitCode::refused);
    }
    CLI::App app{"switch_database.pl: show or change the database the connection broker uses", k_prog};
    app.set_version_flag("--version", std::string(k_prog) + " (leo-installer " + LEO_VERSION + ")");
    const auto cmd = make_switch_database_command();
    cmd->setup(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << k_prog << ": error: " << e.what() << "; run '" << k_prog << " --help' for usage\n";
        return static_cast<int>(ExitCode::usage);
    }
    return run_command(*cmd, "switch_database.pl");
}

} // namespace

int main(int argc, char** argv) {
    // Files and directories get explicit modes; what is not given one is never group- or
    // world-writable, whatever umask the administrator's shell had (DESIGN.md).
    ::umask(022);
    // SIGINT, SIGTERM, SIGHUP, SIGPIPE: deferred inside a run's critical section (signals.hpp).
    signals::install(argc > 0 && stdfs::path(argv[0]).filename() == k_switch_prog ? k_switch_prog : k_prog);
    if (argc > 0 && stdfs::path(argv[0]).filename() == k_switch_prog) return switch_database_main(argc, argv);
    CLI::App app{"leo-installer: install, upgrade and manage the connection broker", k_prog};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string(k_prog) + " " + LEO_VERSION);

    std::vector<Entry> entries;
    entries.push_back({"facts", "Gather the host facts that preflight judges", make_facts_command()});
    entries.push_back({"preflight", "Run the preflight checks (exit 3 on an inhibitor)",
                       make_preflight_command()});
    entries.push_back({"verify", "Verify a package's digests and signature", make_verify_command()});
    entries.push_back({"install", "Install the broker from a local RPM or from the repositories", make_install_command()});
    entries.push_back({"check-update", "Is a newer broker in the repositories? (exit 100: yes, 0: no)",
                       make_check_update_command()});
    entries.push_back({"upgrade", "Upgrade the broker (restore point first; rolls back on failure)",
                       make_upgrade_command()});
    entries.push_back({"clean", "Remove cached metadata, packages or all (dnf clean)", make_clean_command()});
    entries.push_back({"rollback", "Return to a restore point", make_rollback_command()});
    entries.push_back({"recover", "Finish or undo a run that was interrupted (crash, kill, power loss)",
                       make_recover_command()});
    entries.push_back({"snapshot", "Restore points: list | create | delete ID", make_snapshot_command()});
    entries.push_back({"migrate", "Schema migrations alone (--dry-run, --validate, --baseline)",
                       make_migrate_command()});
    entries.push_back({"service", "The broker's components: start | stop | restart | status [httpd|db|queue]",
                       make_service_command()});
    entries.push_back({"status", "Installed version, schema version, database state", make_status_command()});
    entries.push_back({"db", "The internal PostgreSQL instance: init | start | stop | status",
                       make_db_command()});
    entries.push_back({"hook", "What the broker package's scriptlets call: pre | pretrans | posttrans",
                       make_hook_command()});
    entries.push_back({"switch-database", "Show or change the broker's database (switch_database.pl)",
                       make_switch_database_command()});

    std::vector<std::pair<CLI::App*, Command*>> subs;
    for (auto& e : entries) {
        CLI::App* sub = app.add_subcommand(e.name, e.help);
        e.command->setup(*sub);
        subs.emplace_back(sub, e.command.get());
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::string what = e.what();
        bool any_parsed = false;
        for (auto& [sub, cmd] : subs) any_parsed = any_parsed || sub->parsed();
        if (!any_parsed && argc > 1 && argv[1][0] != '-') {
            std::string names;
            for (auto& en : entries) names += (names.empty() ? "" : ", ") + std::string(en.name);
            what = fmt::format("unknown command '{}' (commands: {})", argv[1], names);
        }
        what += fmt::format("; run '{} --help' for usage", k_prog);
        // With --json a usage error is a JSON object too, as every other error.
        std::string command;
        bool json = false;
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            if (a == "--") break;
            if (a == "--json") json = true;
            if (command.empty() && !a.empty() && a[0] != '-') command = a;
        }
        if (json) {
            nlohmann::json j;
            j["error"] = {{"message", printable(what)},
                          {"exit_code", static_cast<int>(ExitCode::usage)},
                          {"command", command.empty() ? std::string(k_prog) : printable(command)}};
            std::cout << j.dump(2) << "\n" << std::flush;
        }
        std::cerr << k_prog << ": error: " << what << "\n";
        return static_cast<int>(ExitCode::usage);
    }

    for (auto& [sub, cmd] : subs)
        if (sub->parsed()) return run_command(*cmd, command_name(sub));
    return static_cast<int>(ExitCode::usage);
}

} // namespace leo::cli
