// leo-installer clean [metadata|packages|all]: remove the download cache, as `dnf clean` does.
#include "command.hpp"

#include "leo/common/system_root.hpp"
#include "leo/installer/lock.hpp"
#include "leo/repo/cache.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {

namespace {

class CleanCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
        add_wait(sub);
        sub.add_option("what", m_what, "metadata, packages or all (default: all)")
            ->check(CLI::IsMember({"metadata", "packages", "all"}));
    }
    int run() override {
        const auto r = root();
        // An upgrade that is downloading must not lose its files under it: the run lock.
        const auto lock = installer::RunLock::acquire(r, "clean " + m_what);
        const auto kind = m_what == "metadata"   ? repo::CleanKind::metadata
                          : m_what == "packages" ? repo::CleanKind::packages
                                                 : repo::CleanKind::all;
        const auto result = repo::clean_cache(fs::SystemRoot(r), kind);
        if (m_json) {
            nlohmann::json j{{"clean", m_what}, {"files", result.files}, {"bytes", result.bytes},
                             {"removed", nlohmann::json::array()}};
            for (const auto& p : result.removed) j["removed"].push_back(p.string());
            print_json(j);
        } else if (result.removed.empty()) {
            std::cout << fmt::format("nothing to clean ({} cache of {} is empty)\n", m_what, r.string());
        } else {
            std::cout << fmt::format("{} files removed ({} bytes) from {}\n", result.files, result.bytes,
                                     fs::SystemRoot(r).host(fs::SystemRoot::k_cache).string());
        }
        return 0;
    }

private:
    std::string m_what = "all";
};

} // namespace

std::unique_ptr<Command> make_clean_command() { return std::make_unique<CleanCommand>(); }

} // namespace leo::cli
