// leo-installer check-update: is a newer broker in the repositories? (exit 100: yes, 0: no)
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/installer/upgrade.hpp"
#include "leo/installer/warm_answer.hpp"
#include "leo/repo/url.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {

namespace {

class CheckUpdateCommand final : public Command {
public:
    [[nodiscard]] bool needs_root() const override { return false; }  // read-only for every user
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
        m_repos.add(sub);
    }
    int run() override {
        auto sel = m_repos.selection();
        // The answer is kept for the launcher to give again while nothing it was computed
        // from changes (warm_answer.hpp); what is printed is collected for it.
        installer::warm::AnswerMaker maker(program_arguments(), root(), sel.cache);
        std::string err;
        sel.on_warning = [shown = sel.on_warning, &err](const std::string& s) {
            shown(s);
            err += warning_line(s);
        };
        sel.on_loaded = [&maker](const repo::RepoConfig& r, const repo::Metadata* md) { maker.repo_loaded(r, md); };
        const auto info = installer::check_update(root(), sel);
        for (const auto& w : info.warnings) {
            std::cerr << warning_line(w);
            err += warning_line(w);
        }
        std::string out;
        if (m_json) {
            nlohmann::json j{{"installed", info.installed.nevra()}, {"available", nlohmann::json::array()}};
            for (const auto& c : info.available)
                j["available"].push_back({{"nevra", c.entry.nevra()}, {"repo", c.repo.id}, {"url", repo::redact_url(c.entry.url())}});
            j["update"] = info.update ? nlohmann::json(info.update->entry.nevra()) : nlohmann::json(nullptr);
            out = j.dump(2) + "\n";
        } else if (info.update) {
            out = fmt::format("update available: {} (installed {}) from {}\n", info.update->entry.nevra(),
                              info.installed.nevra(), info.update->repo.id);
        } else if (!info.available.empty() && info.available.front().entry.nevra() != info.installed.nevra()) {
            // Installed, and not (or no longer) in the repositories, which offer only older ones.
            out = fmt::format("no update: {} is installed; the newest available is the older {} from {}\n",
                              info.installed.nevra(), info.available.front().entry.nevra(),
                              info.available.front().repo.id);
        } else if (info.available.empty()) {
            out = fmt::format("no update: {} is installed; the repositories offer no broker package it may use\n",
                              info.installed.nevra());
        } else {
            out = fmt::format("no update: {} is the newest available\n", info.installed.nevra());
        }
        std::cout << out << std::flush;
        const int code = info.update ? static_cast<int>(ExitCode::update_available) : 0;
        (void)maker.keep(out, err, code);  // not kept: the next run is only slower
        return code;
    }

private:
    RepoOptions m_repos;
};

} // namespace

std::unique_ptr<Command> make_check_update_command() { return std::make_unique<CheckUpdateCommand>(); }

} // namespace leo::cli
