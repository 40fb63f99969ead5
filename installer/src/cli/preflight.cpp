// leo-installer preflight: judge this host (or a saved `facts --json`) against a profile; exit 3 on an inhibitor.
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/preflight/checks.hpp"
#include "leo/preflight/facts.hpp"

#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {
namespace stdfs = std::filesystem;

namespace {

class PreflightCommand final : public Command {
public:
    [[nodiscard]] bool needs_root() const override { return false; }  // read-only for every user
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
        sub.add_option("--profile", m_profile,
                       "install | upgrade (adds upgrade-space) | rest-api (memory only)")
            ->option_text("PROFILE");
        std::string fixed;
        for (const auto& info : preflight::check_catalog())
            if (!info.skippable) fixed += fmt::format(" {} ({})", info.id, info.not_skippable_because);
        sub.footer("Checks that cannot be skipped:" + fixed);
        sub.add_option("--facts", m_facts, "Judge a saved `facts --json` output instead of this host")
            ->option_text("FILE");
        sub.add_option("--skip", m_skips, "Skip check ID (needs --reason; recorded)")->option_text("ID");
        sub.add_option("--reason", m_reasons, "Why the preceding --skip is safe")->option_text("TEXT");
    }
    int run() override {
        const auto profile = preflight::parse_profile(m_profile);
        const auto skips = skip_map(m_skips, m_reasons);
        const auto r = root();
        open_log(r);
        const auto facts = load_facts(m_facts, r);
        const auto report = preflight::run_checks(facts, profile, skips);
        for (const auto& res : report.results)
            if (res.verdict == preflight::Verdict::skipped)
                log::warning("preflight: check {} skipped ({}; would have been: {})", res.id, res.skip_reason,
                             preflight::to_string(res.judged));
        for (const auto& res : report.results)
            if (res.verdict == preflight::Verdict::inhibitor || res.verdict == preflight::Verdict::warning)
                log::warning("preflight: check {} {}: {}; fix: {}", res.id, preflight::to_string(res.verdict),
                             res.measured, res.remediation);
        log::info("{}", preflight::summary_line(report));
        if (m_json) print_json(preflight::to_json(report));
        else
            std::cout << preflight::to_table(report, {terminal_width(), preflight::TableOptions::Rows::all})
                      << preflight::summary_line(report) << "\n";
        if (report.inhibited()) {
            if (!m_json)
                std::cerr << k_prog << ": error: preflight found inhibitors; fix what the remediation lines say\n";
            return static_cast<int>(ExitCode::refused);
        }
        return 0;
    }

private:
    std::string m_profile = "install";
    std::string m_facts;
    std::vector<std::string> m_skips;
    std::vector<std::string> m_reasons;
};

} // namespace

std::unique_ptr<Command> make_preflight_command() { return std::make_unique<PreflightCommand>(); }

} // namespace leo::cli
