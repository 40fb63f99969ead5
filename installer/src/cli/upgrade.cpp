// leo-installer upgrade: upgrade the broker from the repositories or a local RPM, restore point first.
#include "command.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/redact.hpp"
#include "leo/installer/upgrade.hpp"

#include <iostream>
#include <nlohmann/json.hpp>

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
        add_json(sub);
        m_repos.add(sub);
        auto* rpm_opt = sub.add_option("--rpm", m_pkg.rpm, "Upgrade to this local package file")->option_text("FILE");
        m_pkg.version_opt = sub.add_option("--version", m_pkg.version, "Upgrade to this version from the repositories")
                            ->option_text("V")
                            ->excludes(rpm_opt);
        rpm_opt->excludes(sub.get_option("--repo"))->excludes(sub.get_option("--repofrompath"));
        sub.add_option("package", m_pkg.positional,
                       "Upgrade to this local FILE.rpm, or leostream-broker[-VERSION] from the repositories (as dnf takes "
                       "it; the same as --rpm FILE or --version V)")
            ->option_text("FILE.rpm|NAME");
        sub.add_option("--gpgkey", m_keys, "Armored public key to verify with (repeatable)")->option_text("FILE");
        sub.add_flag("--nogpgcheck", m_nogpgcheck, "Do not require a valid signature (warns)");
        sub.add_option("--installed-rpm", m_installed_rpm,
                       "The RPM file of the installed broker, kept for the restore point when it is not kept yet "
                       "(a broker installed by rpm -U or yum localinstall); checked to be that very build")
            ->option_text("FILE");
        sub.add_flag("--dry-run", m_dry_run,
                     "Plan, download and verify only; change nothing. Prints the whole plan, then the gates that "
                     "would refuse a real run: exit 3 when one would, 0 when none");
        sub.add_flag("--allow-remote-upgrade", m_allow_remote, "Allow migrating an external database");
        sub.add_option("--rpmdb-wait", m_rpmdb_wait,
                       "Wait up to SECONDS for another rpm/yum/dnf transaction on the root (default 60)")
            ->option_text("SECONDS")
            ->check(CLI::Range(0, 86400));
        sub.add_option("--lease-wait", m_lease_wait,
                       "In a cluster, wait up to SECONDS for another broker's upgrade lease (default 900)")
            ->option_text("SECONDS")
            ->check(CLI::Range(0, 86400));
        sub.add_flag("--components-stopped", m_components_stopped,
                     "The broker's components are stopped already: do not stop, start or probe them");
        auto* now = sub.add_flag("--now", m_now, "Upgrade outside the maintenance window (needs --reason)");
        auto* reason = sub.add_option("--reason", m_reason, "Why the maintenance window is overridden (logged)")
                           ->option_text("TEXT");
        now->needs(reason);
        reason->needs(now);
    }
    int run() override {
        installer::UpgradeRequest req;
        req.root = root();
        m_pkg.take_positional(m_repos);
        if (!m_pkg.rpm.empty()) req.package_file = m_pkg.rpm;
        if (!m_installed_rpm.empty()) req.installed_package_file = m_installed_rpm;
        if (m_pkg.version_opt->count() > 0 || m_pkg.version_given) req.version = m_pkg.version;
        req.repos = m_repos.selection();
        req.gpgkeys.assign(m_keys.begin(), m_keys.end());
        req.gpgcheck = m_nogpgcheck ? installer::GpgCheck::no : installer::GpgCheck::yes;
        req.dry_run = m_dry_run;
        req.rpmdb_wait = std::chrono::seconds(m_rpmdb_wait);
        req.components_stopped = m_components_stopped;
        req.allow_remote_upgrade = m_allow_remote;
        req.lease_wait = std::chrono::seconds(m_lease_wait);
        if (m_now) {
            if (m_reason.empty()) throw UsageError("--reason: empty; say why the maintenance window is overridden");
            req.override_reason = m_reason;
        }
        open_log(req.root);
        installer::UpgradeCallbacks cb;
        // With --json, stdout carries the report alone; the steps go to stderr.
        std::ostream& steps = json() ? std::cerr : std::cout;
        // Lines may quote the database (member names, publications): control characters are
        // escaped, so another party's text never drives this terminal.
        cb.on_step = [&steps](const std::string& s) { steps << "==> " << printable(s) << "\n" << std::flush; };
        cb.on_gates = [&steps](const std::vector<installer::GateVerdict>& gates) {
            for (const auto& g : gates)
                steps << fmt::format("    gate {:<19} {:<10} {}\n", g.id, installer::to_string(g.state),
                                     printable(g.detail));
        };
        cb.on_warning = [](const std::string& s) { std::cerr << k_prog << ": warning: " << s << "\n"; };
        cb.on_preflight = print_problems;
        cb.confirm = [this](const std::string& q) { return ask(q); };
        cb.on_download = progress_bar("download");
        cb.on_progress = progress_bar("upgrade");
        const auto out = installer::upgrade(req, cb);
        // A dry run that a gate would refuse: the plan is shown all the same, and exit 3
        // says a real run would be refused (DESIGN.md's "preflight or gate refused").
        const int code = out.kind == installer::UpgradeOutcome::Kind::dry_run && !out.would_refuse.empty()
                             ? static_cast<int>(ExitCode::refused)
                             : 0;
        if (json()) {
            print_json(report_json(out));
            return code;
        }
        switch (out.kind) {
        case installer::UpgradeOutcome::Kind::nothing_to_do:
            std::cout << out.from
                      << (out.already_that_version ? " is installed: nothing to do\n"
                                                   : " is already the newest: nothing to do\n");
            break;
        case installer::UpgradeOutcome::Kind::dry_run:
            print_plan(out);
            if (out.would_refuse.empty()) {
                std::cout << fmt::format("dry run: {} -> {} is possible; nothing was changed\n", out.from, out.to);
            } else {
                std::cout << fmt::format("dry run: a real run of {} -> {} would be refused:\n", out.from, out.to);
                for (const auto& r : out.would_refuse) std::cout << "  " << printable(r) << "\n";
                std::cout << "nothing was changed\n";
            }
            break;
        case installer::UpgradeOutcome::Kind::upgraded:
            if (out.lease_token != 0)  // a cluster: the shared database goes back only when asked
                std::cout << fmt::format("upgraded {} -> {}; schema version {}; restore point {} keeps {} and its "
                                         "configuration{} ({} returns to it)\n",
                                         out.from, out.to, out.schema_version.value_or("none"), out.restore_point,
                                         out.from, out.migrates ? ", and the shared database" : "",
                                         installer::command_hint("rollback " + out.restore_point +
                                                                 (out.migrates ? " --allow-remote-upgrade" : "")));
            else
                std::cout << fmt::format("upgraded {} -> {}; schema version {}; restore point {} ({} returns to "
                                         "{})\n",
                                         out.from, out.to, out.schema_version.value_or("none"), out.restore_point,
                                         installer::command_hint("rollback " + out.restore_point), out.from);
            print_migrations(out.migrations_applied);
            print_report(out);
            break;
        }
        return code;
    }

    static nlohmann::json report_json(const installer::UpgradeOutcome& out) {
        nlohmann::json j;
        j["outcome"] = out.kind == installer::UpgradeOutcome::Kind::upgraded  ? "upgraded"
                       : out.kind == installer::UpgradeOutcome::Kind::dry_run ? "dry-run"
                                                                               : "nothing-to-do";
        j["from"] = out.from;
        j["to"] = out.to;
        j["restore_point"] = out.restore_point.empty() ? nlohmann::json(nullptr) : nlohmann::json(out.restore_point);
        j["schema_version"] = out.schema_version ? nlohmann::json(*out.schema_version) : nlohmann::json(nullptr);
        j["migrations_applied"] = out.migrations_applied;
        j["gates"] = nlohmann::json::array();
        for (const auto& g : out.gates)
            j["gates"].push_back({{"id", g.id}, {"state", installer::to_string(g.state)}, {"detail", g.detail}});
        j["service_manager"] = out.service_manager;
        j["components_stopped"] = nlohmann::json::array();
        for (auto c : out.components_stopped) j["components_stopped"].push_back(std::string(installer::to_string(c)));
        j["downtime_seconds"] = out.downtime_seconds ? nlohmann::json(*out.downtime_seconds) : nlohmann::json(nullptr);
        if (out.trial) {
            j["migration_trial"] = {{"ran", out.trial->ran},
                                    {"why_not", out.trial->why_not},
                                    {"cleaned_up", out.trial->cleaned_up},
                                    {"applied", out.trial->applied},
                                    {"schema_after", out.trial->schema_after ? nlohmann::json(*out.trial->schema_after)
                                                                             : nlohmann::json(nullptr)}};
            j["database_bytes"] = out.database_bytes;
            j["package_bytes"] = out.package_bytes;
            j["space_needed_bytes"] = out.space_needed_bytes;
            j["space_free_bytes"] = out.space_free_bytes;
        }
        if (out.kind == installer::UpgradeOutcome::Kind::dry_run) j["would_refuse"] = out.would_refuse;
        j["steps"] = nlohmann::json::array();
        for (const auto& [name, seconds] : out.step_seconds) j["steps"].push_back({{"step", name}, {"seconds", seconds}});
        if (out.lease_token != 0 || !out.cluster.empty()) {
            nlohmann::json cluster = {{"lease_token", out.lease_token},
                                      {"all_upgraded", out.cluster_upgraded},
                                      {"members", nlohmann::json::array()},
                                      {"jobs_moved", nlohmann::json::array()}};
            for (const auto& m : out.cluster)
                cluster["members"].push_back({{"member", m.member},
                                              {"site_id", m.site_id ? nlohmann::json(*m.site_id) : nlohmann::json(nullptr)},
                                              {"broker_version", m.broker_version},
                                              {"state", m.state},
                                              {"heartbeat", m.heartbeat}});
            for (const auto& mv : out.jobs_moved)
                cluster["jobs_moved"].push_back({{"job_id", mv.job_id}, {"from_site", mv.from_site}, {"to_site", mv.to_site}});
            j["cluster"] = cluster;
        } else {
            j["cluster"] = nullptr;
        }
        return j;
    }

    static void print_plan(const installer::UpgradeOutcome& out) {
        std::cout << fmt::format("plan: {} -> {}\n", out.from, out.to);
        std::string which;
        for (auto c : out.components_stopped) which += (which.empty() ? "" : ", ") + std::string(installer::to_string(c));
        std::cout << fmt::format("  components to stop and start again: {} ({})\n", which.empty() ? "none running" : which,
                                 out.service_manager);
        if (out.trial)
            for (const auto& line : out.trial->cleaned_up) std::cout << "  cleaned up first: " << line << "\n";
        if (out.trial && out.trial->ran) {
            std::cout << fmt::format("  migrations to apply: {} (run in the throw-away copy {}: schema {} afterwards; "
                                     "dropped)\n",
                                     out.trial->applied.size(), out.trial->copy_name,
                                     out.trial->schema_after.value_or("none"));
            for (const auto& m : out.trial->applied) std::cout << "    " << m << "\n";
        } else if (out.trial) {
            std::cout << "  migrations: not tried: " << out.trial->why_not << "\n";
        }
        if (!out.migrates) std::cout << "  the shared schema is at the target already: this broker would not migrate\n";
        std::cout << fmt::format("  restore point: the package ({:.1f} MiB), the configuration, and the database "
                                 "({:.1f} MiB: a template copy in the instance, or a dump of a shared database)\n",
                                 static_cast<double>(out.package_bytes) / 1048576.0,
                                 static_cast<double>(out.database_bytes) / 1048576.0);
        std::cout << fmt::format("  space: the restore point needs about {:.1f} MiB; {:.1f} MiB are free where restore "
                                 "points are kept\n",
                                 static_cast<double>(out.space_needed_bytes) / 1048576.0,
                                 static_cast<double>(out.space_free_bytes) / 1048576.0);
        if (!out.cluster.empty()) {
            std::cout << "  cluster:\n";
            for (const auto& m : out.cluster)
                std::cout << fmt::format("    {:<40} site {:<4} {:<10} {}\n", printable(m.member),
                                         m.site_id ? std::to_string(*m.site_id) : std::string("-"), m.broker_version,
                                         m.state);
        }
    }

    /// The migrations a run applied, one per line (none: says so).
    static void print_migrations(const std::vector<std::string>& applied) {
        if (applied.empty()) {
            std::cout << "migrations: none to apply\n";
            return;
        }
        std::cout << fmt::format("migrations applied ({}):\n", applied.size());
        for (const auto& m : applied) std::cout << "  " << m << "\n";
    }

    static void print_report(const installer::UpgradeOutcome& out) {
        std::cout << "report:\n";
        for (const auto& [name, seconds] : out.step_seconds)
            std::cout << fmt::format("  {:<14} {:8.2f} s\n", name, seconds);
        if (out.downtime_seconds) {
            std::string which;
            for (auto c : out.components_stopped) which += (which.empty() ? "" : ", ") + std::string(installer::to_string(c));
            std::cout << fmt::format("  downtime       {:8.2f} s ({} stopped to healthy, {})\n", *out.downtime_seconds,
                                     which, out.service_manager);
        } else {
            std::cout << "  downtime       none (no broker component was running)\n";
        }
        if (out.lease_token != 0) {
            std::cout << fmt::format("cluster (upgrade lease token {}):\n", out.lease_token);
            for (const auto& m : out.cluster)
                std::cout << fmt::format("  {:<40} site {:<4} {:<10} {}\n", printable(m.member),
                                         m.site_id ? std::to_string(*m.site_id) : std::string("-"), m.broker_version,
                                         m.state);
            std::cout << (out.cluster_upgraded ? "  every member runs the new version"
                                               : "  members still to upgrade remain (upgrade them one by one)")
                      << "\n";
            if (out.cluster_upgraded)
                std::cout << fmt::format("  pending jobs moved from sites that left the cluster: {}\n",
                                         out.jobs_moved.size());
        }
    }

private:
    RepoOptions m_repos;
    PackageChoice m_pkg;
    std::string m_installed_rpm;
    std::vector<std::string> m_keys;
    bool m_nogpgcheck = false;
    bool m_dry_run = false;
    bool m_allow_remote = false;
    int m_rpmdb_wait = 60;
    bool m_components_stopped = false;
    int m_lease_wait = 900;
    bool m_now = false;
    std::string m_reason;
};

} // namespace

std::unique_ptr<Command> make_upgrade_command() { return std::make_unique<UpgradeCommand>(); }

} // namespace leo::cli
