// leo-installer history [list] | history info [ID|last|last-N]: the runs of the journal, as
// `dnf history` / `yum history info` show transactions.
#include "command.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/error.hpp"
#include "leo/common/redact.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {

namespace {

/// A run's result as history shows it: the journal's outcome, or, for the last run without
/// one, "in progress" while its run lock is held and "unfinished" once it is not.
std::string result_of(const installer::RunRecord& run, bool last, bool locked) {
    if (run.outcome) return *run.outcome;
    return last && locked ? "in progress" : "unfinished";
}

std::string user_of(const installer::RunRecord& run) {
    if (!run.uid) return "unknown";
    if (run.user.empty()) return fmt::format("uid {}", *run.uid);
    return run.user;
}

std::string versions_of(const installer::RunRecord& run) {
    if (run.from.empty() && run.to.empty()) return "";
    if (run.from.empty()) return run.to;
    return run.from + " -> " + run.to;
}

class HistoryCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
        sub.add_option("action", m_action, "list (default) | info [ID]")
            ->check(CLI::IsMember({"list", "info", "undo", "redo", "rollback"}));
        sub.add_option("id", m_id, "A run: its number in the list, last, last-N, or its run id (default: last)")
            ->option_text("ID");
    }
    int run() override {
        if (m_action == "undo" || m_action == "redo" || m_action == "rollback")  // dnf's, not ours
            throw UsageError(fmt::format("history {} is not supported: a run is undone by returning to the restore "
                                         "point taken before it ({}, listed by {})",
                                         m_action, installer::command_hint("rollback ID"),
                                         installer::command_hint("snapshot list")));
        const auto r = root();
        if (m_action == "list" && !m_id.empty())
            throw UsageError(fmt::format("history list takes no run (got '{}'); for one run: {}", m_id,
                                         installer::command_hint("history info " + m_id)));
        const auto runs = installer::Journal(r).runs();
        const bool locked = installer::RunLock::holder(r).has_value();
        if (m_action == "list") return list(r, runs, locked);
        return info(r, runs, locked);
    }

private:
    nlohmann::json to_json(const installer::RunRecord& run, std::size_t number, bool last, bool locked) const {
        nlohmann::json j{{"id", number},
                         {"run", run.id},
                         {"command", run.command},
                         {"command_line", run.command_line},
                         {"user", run.user},
                         {"uid", run.uid ? nlohmann::json(*run.uid) : nlohmann::json(nullptr)},
                         {"begin", run.started_at},
                         {"end", run.ended_at.empty() ? nlohmann::json(nullptr) : nlohmann::json(run.ended_at)},
                         {"result", result_of(run, last, locked)},
                         {"from", run.from},
                         {"to", run.to}};
        j["steps"] = nlohmann::json::array();
        for (const auto& s : run.started) j["steps"].push_back({{"step", s}, {"done", run.is_done(s)}});
        return j;
    }

    int list(const std::filesystem::path& r, const std::vector<installer::RunRecord>& runs, bool locked) const {
        if (m_json) {
            nlohmann::json j = nlohmann::json::array();
            for (std::size_t i = runs.size(); i-- > 0;) j.push_back(to_json(runs[i], i + 1, i + 1 == runs.size(), locked));
            print_json(j);
            return 0;
        }
        if (runs.empty()) {
            std::cout << fmt::format("no runs recorded in the journal of {}\n", r.string());
            return 0;
        }
        // Newest first, as dnf history lists transactions.
        std::cout << fmt::format("{:>4} | {:<15} | {:<10} | {:<20} | {:<17} | {}\n", "ID", "Command", "User",
                                 "Begin time (UTC)", "Result", "Versions");
        std::cout << std::string(std::min<std::size_t>(terminal_width(), 100), '-') << "\n";
        for (std::size_t i = runs.size(); i-- > 0;) {
            const auto& run = runs[i];
            std::cout << fmt::format("{:>4} | {:<15} | {:<10} | {:<20} | {:<17} | {}\n", i + 1, printable(run.command),
                                     printable(user_of(run)), printable(run.started_at),
                                     result_of(run, i + 1 == runs.size(), locked), printable(versions_of(run)));
        }
        return 0;
    }

    /// The index of the run `m_id` names: a number (1 is the oldest), last, last-N, a run id.
    std::size_t find(const std::filesystem::path& r, const std::vector<installer::RunRecord>& runs) const {
        const std::string id = m_id.empty() ? "last" : m_id;
        const auto none = [&]() {
            return Error(fmt::format("no run '{}' in the journal of {} ({}); {} lists them", printable(id), r.string(),
                                     runs.empty() ? "it has none" : fmt::format("runs 1 to {}", runs.size()),
                                     installer::command_hint("history")));
        };
        if (runs.empty()) throw none();
        std::size_t back = 0;  // how many before the last
        bool relative = false;
        if (id == "last") {
            relative = true;
        } else if (id.rfind("last-", 0) == 0 && id.size() > 5 &&
                   id.find_first_not_of("0123456789", 5) == std::string::npos && id.size() < 15) {
            relative = true;
            back = std::stoull(id.substr(5));
        }
        if (relative) {
            if (back >= runs.size()) throw none();
            return runs.size() - 1 - back;
        }
        if (!id.empty() && id.size() < 15 && id.find_first_not_of("0123456789") == std::string::npos) {
            const auto n = std::stoull(id);
            if (n == 0 || n > runs.size()) throw none();
            return n - 1;
        }
        for (std::size_t i = 0; i < runs.size(); ++i)
            if (runs[i].id == id) return i;
        throw none();
    }

    int info(const std::filesystem::path& r, const std::vector<installer::RunRecord>& runs, bool locked) const {
        const std::size_t i = find(r, runs);
        const auto& run = runs[i];
        const bool last = i + 1 == runs.size();
        if (m_json) {
            print_json(to_json(run, i + 1, last, locked));
            return 0;
        }
        // The labels of `yum history info`.
        const auto row = [](const char* label, const std::string& value) {
            std::cout << fmt::format("{:<14}: {}\n", label, printable(value));
        };
        row("Run ID", fmt::format("{} ({})", i + 1, run.id));
        row("Begin time", run.started_at);
        row("End time", run.ended_at.empty() ? "(not ended)" : run.ended_at);
        row("User", run.uid ? (run.user.empty() ? fmt::format("uid {}", *run.uid)
                                                : fmt::format("{} (uid {})", run.user, *run.uid))
                            : "unknown (recorded before leo-installer kept it)");
        std::string result = result_of(run, last, locked);
        if (result == "unfinished") result += fmt::format(" (run {} to finish or undo it)", installer::command_hint("recover"));
        row("Result", result);
        row("Command", run.command);
        row("Command line", run.command_line.empty() ? "(not recorded)" : run.command_line);
        row("From", run.from.empty() ? "(nothing installed)" : run.from);
        row("To", run.to);
        std::cout << "Steps:\n";
        if (run.started.empty()) std::cout << "    (none started)\n";
        for (const auto& s : run.started)
            std::cout << fmt::format("    {:<28} {}\n", printable(s), run.is_done(s) ? "done" : "started, not done");
        return 0;
    }

    std::string m_action = "list";
    std::string m_id;
};

} // namespace

std::unique_ptr<Command> make_history_command() { return std::make_unique<HistoryCommand>(); }

} // namespace leo::cli
