// leo-installer hook pre|pretrans|posttrans: what the broker package's scriptlets call
// (rpm/specs/leostream-broker.spec; the steps are in installer/src/hooks.cpp).
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/installer/hooks.hpp"
#include "leo/preflight/checks.hpp"

#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace leo::cli {

namespace {

class HookCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        m_app = &sub;
        add_root(sub);
        sub.add_option("stage", m_stage,
                       "pre (%pre: preflight, the leo user) | pretrans (%pretrans: a restore point) | posttrans "
                       "(%posttrans: database, migrations, components)")
            ->required()
            ->check(CLI::IsMember({"pre", "pretrans", "posttrans"}));
        auto* install = sub.add_flag("--install", m_install, "pre: a first install (rpm's $1 is 1)");
        auto* upgrade = sub.add_flag("--upgrade", m_upgrade, "pre: an upgrade (rpm's $1 is 2 or more)");
        install->excludes(upgrade);
        m_stage_options = {{"--install", "pre"},        {"--upgrade", "pre"},   {"--skip", "pre"},
                           {"--reason", "pre"},         {"--lease-wait", "posttrans"},
                           {"--allow-remote-upgrade", "posttrans"}};
        sub.add_flag("--allow-remote-upgrade", m_allow_remote,
                     "posttrans: migrate an external (shared) database whose schema is older (also: "
                     "LEO_ALLOW_REMOTE_UPGRADE=1 in the environment of yum or rpm)");
        sub.add_option("--lease-wait", m_lease_wait,
                       "posttrans, external database: how long to wait for the cluster's upgrade lease while "
                       "another broker holds it")
            ->option_text("SECONDS")
            ->check(CLI::Range(0, 86400));
        sub.add_option("--skip", m_skips, "pre: skip preflight check ID (needs --reason)")->option_text("ID");
        sub.add_option("--reason", m_reasons, "pre: why the preceding --skip is safe")->option_text("TEXT");
        sub.footer("Called by the scriptlets of the leostream-broker package (yum localinstall, rpm -U); inside "
                   "leo-installer's own rpm transaction they do nothing (it does these steps itself).");
    }

    int run() override {
        // An option of another stage is a mistake in the caller (a scriptlet or an
        // administrator), not something to ignore.
        for (const auto& [name, stage] : m_stage_options)
            if (stage != m_stage && m_app->get_option(name)->count() > 0)
                throw UsageError(fmt::format("{} is an option of `hook {}`, not of `hook {}`; run '{} hook --help' for "
                                             "each stage's options",
                                             name, stage, m_stage, k_prog));
        const auto r = root();
        open_log(r);
        log::info("hook {} --root {}", m_stage, r.string());
        installer::HookCallbacks cb;
        cb.on_step = [this](const std::string& s) { std::cout << k_prog << " hook " << m_stage << ": " << s << "\n" << std::flush; };
        cb.on_warning = [this](const std::string& s) {
            std::cerr << k_prog << " hook " << m_stage << ": warning: " << s << "\n" << std::flush;
        };
        if (m_stage == "pre") return pre(r, cb);
        if (m_stage == "pretrans") return pretrans(r, cb);
        return posttrans(r, cb);
    }

private:
    std::string m_stage;
    std::vector<std::pair<std::string, std::string>> m_stage_options;  ///< option, the stage it belongs to
    CLI::App* m_app = nullptr;
    bool m_install = false;
    bool m_upgrade = false;
    bool m_allow_remote = false;
    int m_lease_wait = 900;
    std::vector<std::string> m_skips;
    std::vector<std::string> m_reasons;

    void skipped(const std::string& why) const {
        log::info("hook {}: nothing to do: {}", m_stage, why);
        std::cout << k_prog << " hook " << m_stage << ": nothing to do: " << why << "\n";
    }

    int pre(const std::filesystem::path& r, installer::HookCallbacks& cb) {
        if (m_install == m_upgrade)
            throw UsageError("hook pre needs --install or --upgrade (the scriptlet passes rpm's $1: 1 is an install, "
                             "2 or more an upgrade)");
        installer::PreRequest req;
        req.root = r;
        req.mode = m_install ? installer::PreMode::install : installer::PreMode::upgrade;
        req.skips = skip_map(m_skips, m_reasons);
        // The report goes to stderr: rpm shows it with the scriptlet's failure.
        cb.on_preflight = [](const preflight::Report& rep) {
            if (!preflight::all_pass(rep))
                std::cerr << preflight::to_table(rep, {terminal_width(), preflight::TableOptions::Rows::problems});
            std::cerr << preflight::summary_line(rep) << "\n" << std::flush;
        };
        const auto out = installer::run_pre_hook(req, cb);
        if (out.skipped) {
            skipped(*out.skipped);
            return 0;
        }
        std::cout << k_prog << " hook pre: ready for the " << (m_install ? "install" : "upgrade")
                  << (out.user_created ? " (created the leo user)" : " (the leo user exists)") << "\n";
        return 0;
    }

    int pretrans(const std::filesystem::path& r, const installer::HookCallbacks& cb) const {
        const auto out = installer::run_pretrans_hook(r, cb);
        if (out.skipped) skipped(*out.skipped);
        // A restore point that cannot be taken is said (on_warning) and does not stop rpm.
        return 0;
    }

    int posttrans(const std::filesystem::path& r, const installer::HookCallbacks& cb) const {
        installer::PosttransRequest req;
        req.root = r;
        const char* env = std::getenv(installer::k_allow_remote_upgrade_env);
        req.allow_remote_upgrade = m_allow_remote || (env != nullptr && std::string(env) == "1");
        req.lease_wait = std::chrono::seconds(m_lease_wait);
        try {
            const auto out = installer::run_posttrans_hook(req, cb);
            if (out.skipped) {
                skipped(*out.skipped);
                return 0;
            }
            std::cout << fmt::format("{} hook posttrans: {} is ready; schema version {} ({} migration{} applied{})\n",
                                     k_prog, out.nevra, out.schema_version.value_or("none"),
                                     out.migrations_applied.size(), out.migrations_applied.size() == 1 ? "" : "s",
                                     out.restarted.empty() ? ""
                                                           : fmt::format("; restarted {}", fmt::join(out.restarted, ", ")));
            return 0;
        } catch (const std::exception&) {
            // Loud: rpm only prints a warning for a failed %posttrans, and the transaction stays.
            const std::string rule(72, '*');
            std::cerr << "\n"
                      << rule << "\n"
                      << fmt::format("* {:<68} *\n", "THE BROKER IS INSTALLED BUT NOT READY: its posttrans step failed.")
                      << fmt::format("* {:<68} *\n", "Fix the cause printed below, then run:   leo-installer recover")
                      << rule << "\n"
                      << std::flush;
            throw;
        }
    }
};

} // namespace

std::unique_ptr<Command> make_hook_command() { return std::make_unique<HookCommand>(); }

} // namespace leo::cli
