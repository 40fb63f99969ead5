// The helpers more than one command uses (declared in command.hpp).
#include "command.hpp"

#include "leo/installer/config.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/signals.hpp"
#include "leo/installer/hint.hpp"
#include "leo/installer/install.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/progress.hpp"
#include "leo/installer/upgrade.hpp"
#include "leo/preflight/checks.hpp"
#include "leo/preflight/facts.hpp"
#include "leo/repo/config.hpp"

#include <chrono>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/ioctl.h>
#include <unistd.h>

namespace leo::cli {

const char* k_prog = "leo-installer";

void Command::add_root(CLI::App& sub) {
    sub.add_option("--root", m_root, "Operate on the system under DIR (like rpm --root)")->option_text("DIR");
}
void Command::add_wait(CLI::App& sub) {
    sub.add_option("--wait", m_wait,
                   "When another run holds the lock, wait up to SECONDS for it (as flock -w); default: refuse at once")
        ->option_text("SECONDS")
        ->check(CLI::Range(0, 86400));
}
void Command::add_json(CLI::App& sub) { sub.add_flag("--json", m_json, "Machine-readable JSON output"); }
void Command::add_assumeyes(CLI::App& sub) {
    auto* yes = sub.add_flag("-y,--assumeyes", m_assumeyes, "Answer yes: change without asking");
    sub.add_flag("--assumeno", m_assumeno, "Answer no to every question: show what would be asked, change nothing")
        ->excludes(yes);
}
bool Command::ask(const std::string& question) const { return confirm(m_assumeyes, question, m_assumeno); }

void Command::apply_globals(const Globals& g, const CLI::App& sub) {
    const auto take = [&](const char* name, bool given) {
        if (!given) return false;
        if (sub.get_option_no_throw(name) == nullptr)
            throw UsageError(fmt::format("`{}` does not take {} (given before the command); run '{} {} --help' for "
                                         "its options",
                                         sub.get_name(), name, k_prog, sub.get_name()));
        return true;
    };
    if (take("--root", !g.root.empty())) {
        if (sub.get_option("--root")->count() > 0 && m_root != g.root)
            throw UsageError(fmt::format("--root is given twice with different values ({} before `{}`, {} after it); "
                                         "give it once",
                                         g.root, sub.get_name(), m_root));
        m_root = g.root;
    }
    if (take("--json", g.json)) m_json = true;
    if (take("--assumeyes", g.assumeyes)) m_assumeyes = true;
    if (take("--assumeno", g.assumeno)) m_assumeno = true;
    if (m_assumeyes && m_assumeno) throw UsageError("-y (--assumeyes) and --assumeno contradict each other: give one");
}
std::filesystem::path Command::root() const {
    auto root = installer::checked_root(m_root);
    installer::set_hint_root(root);  // every hint printed from here on names this root
    return root;
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << "\n"; }

std::string warning_line(const std::string& text) {
    return std::string(k_prog) + ": warning: " + printable(text) + "\n";
}

std::size_t terminal_width() {
    struct winsize ws {};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 60) return ws.ws_col;
    return 100;
}

std::function<void(std::uint64_t, std::uint64_t)> progress_bar(const std::string& label) {
    if (::isatty(STDERR_FILENO) == 0) return nullptr;  // nothing on a pipe
    struct State {
        std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
        std::chrono::steady_clock::time_point drawn{};
        std::uint64_t last = 0;
        bool finished = false;
    };
    auto state = std::make_shared<State>();
    return [label, state](std::uint64_t done, std::uint64_t total) {
        const auto now = std::chrono::steady_clock::now();
        if (done < state->last || (state->finished && done != state->last)) {
            // a new transfer (another mirror, the next package): start over
            state->start = now;
            state->finished = false;
        }
        state->last = done;
        const bool finished = total != 0 && done >= total;
        if (state->finished) return;
        if (!finished && now - state->drawn < std::chrono::milliseconds(100)) return;
        state->drawn = now;
        const double elapsed = std::chrono::duration<double>(now - state->start).count();
        std::cerr << "\r" << installer::progress_line(label, done, total, elapsed, terminal_width()) << "\x1b[K"
                  << (finished ? "\n" : "") << std::flush;
        state->finished = finished;
    };
}

preflight::HostFacts load_facts(const std::string& facts_file, const std::filesystem::path& root) {
    if (facts_file.empty()) return preflight::gather_facts(root);
    try {
        return preflight::read_facts_file(facts_file);
    } catch (const PreflightError&) {
        std::throw_with_nested(UsageError("--facts " + facts_file));
    }
}

void print_problems(const preflight::Report& rep) {
    if (preflight::all_pass(rep)) return;
    std::cout << preflight::to_table(rep, {terminal_width(), preflight::TableOptions::Rows::problems});
}

bool confirm(bool assumeyes, const std::string& question, bool assumeno) {
    if (assumeno) {
        std::cout << question << " [y/N]: no (--assumeno)\n" << std::flush;
        return false;
    }
    if (assumeyes) return true;
    if (::isatty(STDIN_FILENO) == 0)
        throw RefusedError("no terminal to ask for confirmation on; pass -y (--assumeyes) to proceed");
    // Whatever ends the question (Ctrl-C included), the terminal is left as it was.
    const signals::TerminalGuard terminal(STDIN_FILENO);
    std::cout << question << " [y/N]: " << std::flush;
    std::string answer;
    if (!std::getline(std::cin, answer)) return false;
    return answer == "y" || answer == "Y" || answer == "yes";
}

std::map<std::string, std::string> skip_map(const std::vector<std::string>& ids,
                                            const std::vector<std::string>& reasons) {
    if (ids.size() != reasons.size())
        throw UsageError(fmt::format("every --skip ID needs its own --reason TEXT (got {} --skip and {} --reason)",
                                     ids.size(), reasons.size()));
    std::map<std::string, std::string> m;
    for (size_t i = 0; i < ids.size(); ++i) {
        if (reasons[i].find_first_not_of(" \t") == std::string::npos)
            throw UsageError(fmt::format("--reason for --skip {} is empty: say why the check is skipped", ids[i]));
        if (!m.emplace(ids[i], reasons[i]).second)
            throw UsageError(fmt::format("--skip {} is given twice; give each check once, with one --reason", ids[i]));
    }
    return m;
}

PackageArgument package_argument(const std::string& arg) {
    PackageArgument p;
    const std::string name = installer::k_broker_package;
    const bool rpm_suffix = arg.size() > 4 && arg.compare(arg.size() - 4, 4, ".rpm") == 0;
    if (rpm_suffix || arg.find('/') != std::string::npos) {
        p.file = arg;
    } else if (arg == name) {
        // the newest: no version
    } else if (arg.rfind(name + "-", 0) == 0 && arg.size() > name.size() + 1) {
        const std::string rest = arg.substr(name.size() + 1);
        const bool has_arch = rest.size() > 7 && (rest.compare(rest.size() - 7, 7, ".x86_64") == 0 ||
                                                  rest.compare(rest.size() - 7, 7, ".noarch") == 0);
        p.version = has_arch ? arg : rest;  // a whole NEVRA, or V[-R]
    } else {
        throw UsageError(fmt::format("'{}' is neither a package file (FILE.rpm, or a path with a /) nor {}[-VERSION]; "
                                     "nothing was changed",
                                     printable(arg), name));
    }
    return p;
}

void PackageChoice::take_positional(const RepoOptions& repos) {
    if (positional.empty()) return;
    if (!rpm.empty() || version_opt->count() > 0)
        throw UsageError(fmt::format("the package is given twice ('{}' and {}): give it once", printable(positional),
                                     rpm.empty() ? "--version" : "--rpm"));
    auto p = package_argument(positional);
    if (!p.file.empty() && (!repos.ids.empty() || !repos.from_path.empty()))
        throw UsageError(fmt::format("'{}' is a local package file: --repo and --repofrompath do not apply to it",
                                     printable(positional)));
    rpm = p.file;
    if (p.version) {
        version = *p.version;
        version_given = true;
    }
}

void RepoOptions::add(CLI::App& sub) {
    sub.add_option("--repo", ids, "Use only this repository (repeatable; enables it)")->option_text("ID");
    sub.add_option("--repofrompath", from_path, "Add a repository for this command (a URL or a directory)")
        ->option_text("ID,URL|DIR");
    auto* refresh_flag =
        sub.add_flag("--refresh", refresh, "Ask the repositories for repomd.xml even within metadata_expire");
    sub.add_flag("-C,--cacheonly", cache_only, "Use only the cached metadata and packages (no network)")
        ->excludes(refresh_flag);
}

installer::RepoSelection RepoOptions::selection() const {
    installer::RepoSelection sel;
    sel.ids = ids;
    sel.cache = cache_only ? repo::CachePolicy::cache_only
                           : (refresh ? repo::CachePolicy::refresh : repo::CachePolicy::normal);
    for (const auto& spec : from_path) sel.extra.push_back(repo::repo_from_path(spec));
    // Every command that reads repositories shows their warnings here, on stderr (never in
    // --json's stdout), and in the log. A repository file is another party's text: printable().
    sel.on_warning = [](const std::string& s) {
        log::warning("{}", s);
        std::cerr << warning_line(s);
    };
    if (::isatty(STDERR_FILENO) != 0) {  // a bar per repository's primary, on a terminal only
        auto bars = std::make_shared<std::map<std::string, std::function<void(std::uint64_t, std::uint64_t)>>>();
        sel.on_metadata_progress = [bars](const std::string& id, std::uint64_t done, std::uint64_t total) {
            auto& bar = (*bars)[id];
            if (!bar) bar = progress_bar(printable(id) + " metadata");
            if (bar) bar(done, total);
        };
    }
    return sel;
}

void open_log(const std::filesystem::path& root) {
    if (!log::open_log(root))
        std::cerr << k_prog << ": warning: the log cannot be written (" << printable(log::last_open_error())
                  << "); going on without it\n";
}

void warn_about_maintenance_window(const std::filesystem::path& root) {
    try {
        const auto config = installer::load_config(root);
        if (!config.maintenance_window_error.empty())
            std::cerr << k_prog << ": warning: " << printable(config.maintenance_window_error)
                      << " (this command does not use the maintenance window; an upgrade refuses until it is "
                         "fixed)\n";
    } catch (const Error&) {  // said by the command itself when it reads the file
    }
}

} // namespace leo::cli
