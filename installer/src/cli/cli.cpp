// leo-installer's entry point: the one list of commands, parsing, errors and exit codes; switch_database.pl.
#include "cli.hpp"
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/signals.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/trust.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <utility>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <poll.h>
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

/// The edit distance of `a` and `b` (insertions, deletions, substitutions), for "did you mean".
std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

/// The option of `app` closest to the unknown `given` ("--rot" -> "--root"), or "" when
/// none is close (at most 2 edits, or a third of its length): git's and dnf's suggestion.
std::string closest_option(const CLI::App& app, const std::string& given) {
    const std::string name = given.substr(0, given.find('='));
    std::string best;
    std::size_t best_d = std::max<std::size_t>(2, name.size() / 3) + 1;
    for (const CLI::Option* opt : app.get_options()) {
        std::vector<std::string> names;
        for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
        for (const auto& n : names) {
            const std::size_t d = edit_distance(name, n);
            if (d < best_d) {
                best_d = d;
                best = n;
            }
        }
    }
    return best;
}

/// The message of a parse error inside `app` (the subcommand, or the program itself when
/// none was reached): each unknown option with the closest valid one, and where the
/// options of that command are listed.
std::string parse_error_message(const CLI::ParseError& e, CLI::App& app, bool is_sub) {
    const std::string help = is_sub ? fmt::format("run '{} {} --help' for its options", k_prog, app.get_name())
                                    : fmt::format("run '{} --help' for usage", k_prog);
    const std::string where = is_sub ? fmt::format(" for `{}`", app.get_name()) : std::string();
    if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
        std::vector<std::string> parts;
        bool after_unknown_option = false;  // its value, most likely: not named again
        for (const auto& extra : app.remaining()) {
            if (extra.size() > 1 && extra[0] == '-') {
                after_unknown_option = extra.find('=') == std::string::npos;
                // A long option gets the closest long one; a short one (-x) is too short to guess.
                const auto best = extra.rfind("--", 0) == 0 ? closest_option(app, extra) : std::string();
                parts.push_back(best.empty() ? fmt::format("unknown option '{}'{}", printable(extra), where)
                                             : fmt::format("unknown option '{}'{}; did you mean '{}'?",
                                                           printable(extra), where, best));
            } else if (after_unknown_option) {
                after_unknown_option = false;
            } else {
                parts.push_back(fmt::format("unexpected argument '{}'{}", printable(extra), where));
            }
        }
        if (!parts.empty()) {
            std::string out;
            for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
            return out + "; " + help;
        }
    }
    return fmt::format("{}; {}", e.what(), help);
}

/// The command line as the journal records it: the arguments after the program name, a
/// password option's value and any URL's password replaced (never in the journal).
std::string command_line_of(int argc, char** argv) {
    std::string out = k_prog;
    bool hide_next = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (hide_next) {
            a = "***";
            hide_next = false;
        } else if (a == "--password") {
            hide_next = true;
        } else if (a.rfind("--password=", 0) == 0) {
            a = "--password=***";
        }
        a = redact_secrets(a);
        out += " " + (a.find_first_of(" \t'\"") == std::string::npos ? a : "'" + a + "'");
    }
    return printable(out);
}

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

namespace {
std::vector<std::string> g_arguments;

/// `code`, once everything printed has reached stdout; when a write failed (a full disk,
/// EFBIG past ulimit -f, /dev/full) an error on stderr and exit 1, as coreutils' close_stdout
/// does. A closed pipe (EPIPE) is the reader's choice, not an error (SIGPIPE is ours: signals.hpp).
int output_written(int code) {
    std::cout.flush();
    errno = 0;
    const bool flushed = std::fflush(stdout) == 0;
    const int e = errno;
    if (flushed && !std::ferror(stdout) && std::cout.good()) return code;
    // The reader went away: said now (EPIPE), or by an earlier write whose errno is gone (the
    // run already ended on SIGPIPE, or the pipe has no reader: POLLERR).
    pollfd out{STDOUT_FILENO, POLLOUT, 0};
    if (e == EPIPE || code == 128 + SIGPIPE || (::poll(&out, 1, 0) == 1 && (out.revents & POLLERR) != 0))
        return code;
    std::cerr << k_prog << ": error: cannot write the output: " << (e != 0 ? std::strerror(e) : "write error") << "\n";
    return static_cast<int>(ExitCode::error);
}
} // namespace

const std::vector<std::string>& program_arguments() { return g_arguments; }

int main(int argc, char** argv) {
    if (argc > 0) g_arguments.push_back(stdfs::path(argv[0]).filename().string());
    for (int i = 1; i < argc; ++i) g_arguments.emplace_back(argv[i]);
    // Files and directories get explicit modes; what is not given one is never group- or
    // world-writable, whatever umask the administrator's shell had (DESIGN.md).
    ::umask(022);
    // A write past the file-size limit (ulimit -f) fails with EFBIG and is reported, as in
    // yum and dnf (Python ignores SIGXFSZ at start), instead of a kill that leaves a
    // half-written file; children get the default back (subprocess.hpp).
    ::signal(SIGXFSZ, SIG_IGN);
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
    entries.push_back({"backup", "Database backups: create | list | verify [ID] | prune", make_backup_command()});
    entries.push_back({"migrate", "Schema migrations alone (--dry-run, --validate, --baseline)",
                       make_migrate_command()});
    entries.push_back({"service", "The broker's components: start | stop | restart | status [httpd|db|queue]",
                       make_service_command()});
    entries.push_back({"status", "Installed version, schema version, database state", make_status_command()});
    entries.push_back({"db", "The internal PostgreSQL instance: init | start | stop | status | purge",
                       make_db_command()});
    entries.push_back({"history", "The runs of the journal: list | info [ID] (dnf history)", make_history_command()});
    entries.push_back({"log", "The broker's and the installer's logs: list | view NAME | clear NAME",
                       make_log_command()});
    entries.push_back({"support-bundle", "Write the support ZIP (logs, state, configuration; secrets redacted)",
                       make_support_bundle_command()});
    entries.push_back({"remove", "Remove the broker package; its database is kept unless --purge-data",
                       make_remove_command()});
    entries.push_back({"hook", "What the broker package's scriptlets call: pre | pretrans | posttrans",
                       make_hook_command()});
    entries.push_back({"switch-database", "Show or change the broker's database (switch_database.pl)",
                       make_switch_database_command()});
    entries.push_back({"setting", "The broker's administration settings: show | debug | upgrades | admin-login | "
                                  "rest-api | ssl-certificate | cipher-suite",
                       make_setting_command()});

    // Global options may come before the command, as dnf takes them (`--root R status`);
    // each is handed to the command, which must have it (Command::apply_globals).
    Command::Globals globals;
    app.add_option("--root", globals.root, "Operate on the system under DIR (before or after the command)")
        ->option_text("DIR");
    app.add_flag("--json", globals.json, "Machine-readable JSON output (commands that have it)");
    auto* global_yes = app.add_flag("-y,--assumeyes", globals.assumeyes, "Answer yes (commands that ask)");
    app.add_flag("--assumeno", globals.assumeno, "Answer no (commands that ask)")->excludes(global_yes);

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
        CLI::App* parsed_sub = nullptr;
        for (auto& [sub, cmd] : subs)
            if (sub->parsed()) parsed_sub = sub;
        std::string what;
        if (parsed_sub == nullptr && argc > 1 && argv[1][0] != '-') {
            std::string names;
            for (auto& en : entries) names += (names.empty() ? "" : ", ") + std::string(en.name);
            what = fmt::format("unknown command '{}' (commands: {}); run '{} --help' for usage", printable(argv[1]),
                               names, k_prog);
        } else if (parsed_sub != nullptr && app.remaining().empty()) {
            what = parse_error_message(e, *parsed_sub, true);
        } else {
            what = parse_error_message(e, app, false);
        }
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

    installer::set_journal_command_line(command_line_of(argc, argv));
    for (auto& [sub, cmd] : subs) {
        if (!sub->parsed()) continue;
        try {
            cmd->apply_globals(globals, *sub);
        } catch (const UsageError& e) {
            std::cerr << k_prog << ": error: " << e.what() << "\n";
            return static_cast<int>(ExitCode::usage);
        }
        return output_written(run_command(*cmd, command_name(sub)));
    }
    return static_cast<int>(ExitCode::usage);
}

} // namespace leo::cli
