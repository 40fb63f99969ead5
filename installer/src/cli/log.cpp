// leo-installer log list [--json] | view NAME [--lines N] | clear NAME [-y]: the broker's and the installer's logs.
#include "command.hpp"

#include "leo/common/clock.hpp"
#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/hint.hpp"
#include "leo/installer/logs.hpp"

#include <ctime>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {

namespace {

std::string utc(std::time_t t) { return clock::utc_time(static_cast<std::int64_t>(t)); }

/// The log's text for a terminal: control characters another account wrote (escape
/// sequences in the broker's log) shown as \xNN, line by line; `pending` keeps a line
/// split between two blocks.
void print_printable(std::string_view block, std::string& pending) {
    pending.append(block);
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
        std::cout << printable(std::string_view(pending).substr(start, nl - start)) << '\n';
    pending.erase(0, start);
}

class LogCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
        add_assumeyes(sub);
        sub.add_option("action", m_action, "list | view NAME | clear NAME")
            ->required()
            ->check(CLI::IsMember({"list", "view", "clear"}));
        sub.add_option("name", m_name, "The log: broker, queue, database, installer, or another `log list` names")
            ->option_text("NAME");
        m_lines_opt = sub.add_option("-n,--lines", m_lines, "view: only the last N lines (as tail -n)")
                          ->option_text("N")
                          ->check(CLI::NonNegativeNumber);
    }
    int run() override {
        const fs::SystemRoot sr(root());
        if (m_action == "list") {
            if (!m_name.empty())
                throw UsageError(fmt::format("log list takes no log name (got '{}'); to read one: {}", printable(m_name),
                                             installer::command_hint("log view " + printable(m_name))));
            if (m_lines_opt->count() > 0) throw UsageError("--lines is for `log view`");
            return list(sr);
        }
        if (m_name.empty())
            throw UsageError(fmt::format("log {} needs the log's name ({} lists them)", m_action,
                                         installer::command_hint("log list")));
        if (m_action == "clear" && m_lines_opt->count() > 0) throw UsageError("--lines is for `log view`");
        const auto log = installer::find_log(sr, m_name);
        if (!log.problem.empty())
            throw SystemError(fmt::format("cannot use the {} log {}: {}", log.name, sr.host(log.path).string(),
                                          log.problem));
        if (m_action == "view") return view(sr, log);
        return clear(sr, log);
    }

private:
    int list(const fs::SystemRoot& sr) const {
        const auto logs = installer::list_logs(sr);
        if (m_json) {
            nlohmann::json j = nlohmann::json::array();
            for (const auto& l : logs) {
                nlohmann::json e{{"name", l.name},         {"path", sr.host(l.path).string()},
                                 {"description", l.description}, {"exists", l.exists}};
                e["size"] = l.exists ? nlohmann::json(l.size) : nlohmann::json(nullptr);
                e["modified"] = l.exists ? nlohmann::json(utc(l.modified)) : nlohmann::json(nullptr);
                if (!l.problem.empty()) e["problem"] = l.problem;
                j.push_back(std::move(e));
            }
            print_json(j);
            return 0;
        }
        std::cout << fmt::format("{:<12} {:>12}  {:<20}  {}\n", "Name", "Size", "Modified (UTC)", "File");
        for (const auto& l : logs) {
            const std::string size = !l.problem.empty() ? "-" : l.exists ? std::to_string(l.size) : "none";
            const std::string when = l.exists ? utc(l.modified) : "-";
            std::cout << fmt::format("{:<12} {:>12}  {:<20}  {}{}\n", printable(l.name), size, when,
                                     printable(sr.host(l.path).string()),
                                     l.problem.empty() ? "" : " (" + l.problem + ")");
        }
        return 0;
    }

    int view(const fs::SystemRoot& sr, const installer::LogFile& log) const {
        if (m_json) throw UsageError("log view prints the log itself; --json is for `log list`");
        if (!log.exists) {
            std::cerr << fmt::format("{}: the {} log {} does not exist yet\n", k_prog, log.name,
                                     sr.host(log.path).string());
            return 0;
        }
        std::string pending;
        if (m_lines_opt->count() > 0) {
            print_printable(installer::read_last_lines(sr, log.path, m_lines), pending);
        } else {
            installer::read_all(sr, log.path, [&](std::string_view block) { print_printable(block, pending); });
        }
        if (!pending.empty()) std::cout << printable(pending) << '\n';
        std::cout << std::flush;
        return 0;
    }

    int clear(const fs::SystemRoot& sr, const installer::LogFile& log) const {
        if (m_json) throw UsageError("--json is for `log list`");
        const std::string shown = sr.host(log.path).string();
        if (!log.exists) {
            std::cout << fmt::format("the {} log {} does not exist: nothing to clear\n", log.name, shown);
            return 0;
        }
        if (!ask(fmt::format("Clear the {} log {} ({} bytes)?", log.name, shown, log.size)))
            throw RefusedError("cancelled: nothing was changed");
        open_log(sr.path());
        const auto had = installer::clear_log(sr, log);
        log::info("log clear: {} ({}) truncated, {} bytes removed", log.name, shown, had);
        std::cout << fmt::format("cleared the {} log {} ({} bytes removed)\n", log.name, shown, had);
        return 0;
    }

    std::string m_action;
    std::string m_name;
    std::size_t m_lines = 0;
    CLI::Option* m_lines_opt = nullptr;
};

} // namespace

std::unique_ptr<Command> make_log_command() { return std::make_unique<LogCommand>(); }

} // namespace leo::cli
