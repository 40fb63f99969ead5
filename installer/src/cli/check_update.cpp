// leo-installer check-update: is a newer broker in the repositories? (exit 100: yes, 0: no)
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/installer/upgrade.hpp"
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
        const auto info = installer::check_update(root(), m_repos.selection());
        for (const auto& w : info.warnings) std::cerr << k_prog << ": warning: " << w << "\n";
        if (m_json) {
            nlohmann::json j{{"installed", info.installed.nevra()}, {"available", nlohmann::json::array()}};
            for (const auto& c : info.available)
                j["available"].push_back({{"nevra", c.entry.nevra()}, {"repo", c.repo.id}, {"url", repo::redact_url(c.entry.url())}});
            j["update"] = info.update ? nlohmann::json(info.update->entry.nevra()) : nlohmann::json(nullptr);
            print_json(j);
        } else if (info.update) {
            std::cout << fmt::format("update available: {} (installed {}) from {}\n", info.update->entry.nevra(),
                                     info.installed.nevra(), info.update->repo.id);
        } else {
            std::cout << fmt::format("no update: {} is the newest available\n", info.installed.nevra());
        }
        return info.update ? static_cast<int>(ExitCode::update_available) : 0;
    }

private:
    RepoOptions m_repos;
};

} // namespace

std::unique_ptr<Command> make_check_update_command() { return std::make_unique<CheckUpdateCommand>(); }

} // namespace leo::cli
