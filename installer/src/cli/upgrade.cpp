// leo-installer upgrade: upgrade the broker from the repositories or a local RPM, restore point first.
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/installer/upgrade.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace leo::cli {

namespace {

class UpgradeCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        add_assumeyes(sub);
        m_repos.add(sub);
        auto* rpm_opt = sub.add_option("--rpm", m_rpm, "Upgrade to this local package file")->option_text("FILE");
        m_version_opt = sub.add_option("--version", m_version, "Upgrade to this version from the repositories")
                            ->option_text("V")
                            ->excludes(rpm_opt);
        rpm_opt->excludes(sub.get_option("--repo"))->excludes(sub.get_option("--repofrompath"));
        sub.add_option("--gpgkey", m_keys, "Armored public key to verify with (repeatable)")->option_text("FILE");
        sub.add_flag("--nogpgcheck", m_nogpgcheck, "Do not require a valid signature (warns)");
        sub.add_flag("--dry-run", m_dry_run, "Plan, download and verify only; change nothing");
        sub.add_flag("--allow-remote-upgrade", m_allow_remote, "Allow migrating an external database");
        sub.add_option("--rpmdb-wait", m_rpmdb_wait,
                       "Wait up to SECONDS for another rpm/yum/dnf transaction on the root (default 60)")
            ->option_text("SECONDS")
            ->check(CLI::Range(0, 86400));
    }
    int run() override {
        if (m_allow_remote)
            throw Error("upgrade --allow-remote-upgrade: external databases are not supported yet; this version "
                        "upgrades the internal database only");
        installer::UpgradeRequest req;
        req.root = root();
        if (!m_rpm.empty()) req.package_file = m_rpm;
        if (m_version_opt->count() > 0) req.version = m_version;
        req.repos = m_repos.selection();
        req.gpgkeys.assign(m_keys.begin(), m_keys.end());
        req.gpgcheck = m_nogpgcheck ? installer::GpgCheck::no : installer::GpgCheck::yes;
        req.dry_run = m_dry_run;
        req.rpmdb_wait = std::chrono::seconds(m_rpmdb_wait);
        open_log(req.root);
        installer::UpgradeCallbacks cb;
        cb.on_step = [](const std::string& s) { std::cout << "==> " << s << "\n" << std::flush; };
        cb.on_warning = [](const std::string& s) { std::cerr << k_prog << ": warning: " << s << "\n"; };
        cb.on_preflight = print_problems;
        cb.confirm = [this](const std::string& q) { return confirm(m_assumeyes, q); };
        cb.on_download = progress_bar("download");
        const auto out = installer::upgrade(req, cb);
        switch (out.kind) {
        case installer::UpgradeOutcome::Kind::nothing_to_do:
            std::cout << out.from
                      << (out.already_that_version ? " is installed: nothing to do\n"
                                                   : " is already the newest: nothing to do\n");
            break;
        case installer::UpgradeOutcome::Kind::dry_run:
            std::cout << fmt::format("dry run: {} -> {} is possible; nothing was changed\n", out.from, out.to);
            break;
        case installer::UpgradeOutcome::Kind::upgraded:
            std::cout << fmt::format("upgraded {} -> {}; schema version {}; restore point {} (`leo-installer "
                                     "rollback {}` returns to {})\n",
                                     out.from, out.to, out.schema_version.value_or("none"), out.restore_point,
                                     out.restore_point, out.from);
            break;
        }
        return 0;
    }

private:
    RepoOptions m_repos;
    std::string m_rpm;
    std::string m_version;
    CLI::Option* m_version_opt = nullptr;
    std::vector<std::string> m_keys;
    bool m_nogpgcheck = false;
    bool m_dry_run = false;
    bool m_allow_remote = false;
    int m_rpmdb_wait = 60;
};

} // namespace

std::unique_ptr<Command> make_upgrade_command() { return std::make_unique<UpgradeCommand>(); }

} // namespace leo::cli
