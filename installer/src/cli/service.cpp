// leo-installer service: start, stop, restart or report the broker's components.
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/cluster.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/services.hpp"

#include <algorithm>
#include <iostream>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {

namespace {

/// `service status` exit codes (LSB init-script convention): 0 every component asked
/// about runs, 3 one does not.
constexpr int k_status_running = 0;
constexpr int k_status_not_running = 3;

class ServiceCommand final : public Command {
public:
    /// `service status` is read-only for every user; the rest needs root.
    [[nodiscard]] bool needs_root() const override { return m_action != "status"; }
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        add_json(sub);
        sub.add_option("action", m_action, "start | stop | restart | status")
            ->required()
            ->check(CLI::IsMember({"start", "stop", "restart", "status"}));
        sub.add_option("component", m_component, "httpd | db | queue (default: every component)")
            ->check(CLI::IsMember({"httpd", "db", "queue"}));
    }
    int run() override {
        const auto r = root();
        std::vector<installer::Component> components;
        if (m_component.empty())
            components.assign(std::begin(installer::k_all_components), std::end(installer::k_all_components));
        else
            components.push_back(*installer::parse_component(m_component));
        const auto manager = installer::service_manager(r);
        warn_about_maintenance_window(r);
        if (m_action == "status") {
            bool all_running = true;
            nlohmann::json out = {{"manager", manager->name()}, {"components", nlohmann::json::array()}};
            for (auto c : components) {
                const auto st = manager->status(c);
                if (st.state != installer::ComponentStatus::State::running &&
                    st.state != installer::ComponentStatus::State::not_managed)
                    all_running = false;
                if (json()) {
                    out["components"].push_back({{"component", std::string(installer::to_string(c))},
                                                 {"state", std::string(installer::to_string(st.state))},
                                                 {"detail", st.detail}});
                } else {
                    std::cout << fmt::format("{:<6} {}{}\n", installer::to_string(c), installer::to_string(st.state),
                                             st.detail.empty() ? "" : " (" + st.detail + ")");
                }
            }
            if (json()) print_json(out);
            else std::cout << "(" << manager->name() << ")\n";
            return all_running ? k_status_running : k_status_not_running;
        }
        // Under the run lock: an upgrade stops and starts these itself.
        std::optional<installer::RunLock> lock;
        if (fs::SystemRoot(r).exists(fs::SystemRoot::k_state_dir))
            lock.emplace(installer::RunLock::acquire(r, "service " + m_action));
        // Starting the broker over an interrupted upgrade would run a package on a schema
        // that does not match it: `recover` first (stopping is always allowed).
        if (m_action != "stop") installer::Journal(r).refuse_if_unfinished();
        open_log(r);
        log::info("service {} {} --root {} ({})", m_action, m_component, r.string(), manager->name());
        // The broker's own components go through start_components() / stop_components(), as
        // every other command's do: with installer.conf [services] commands those run.
        const auto print = [](const std::string& line) { std::cout << line << "\n"; };
        const bool db = std::find(components.begin(), components.end(), installer::Component::db) != components.end();
        const auto act_on_db = [&](bool start) {
            if (!db || manager->status(installer::Component::db).state ==
                           installer::ComponentStatus::State::not_managed)
                return;
            const bool acted = start ? manager->start(installer::Component::db) : manager->stop(installer::Component::db);
            std::cout << (acted ? (start ? "started " : "stopped ") : (start ? "already running: " : "not running: "))
                      << installer::component_title(installer::Component::db) << "\n";
        };
        if (m_action == "stop" || m_action == "restart") {
            // In the reverse of the start order: the database last.
            (void)installer::stop_components(r, *manager, components, installer::RecordStop::no, print, print);
            act_on_db(false);
        }
        if (m_action == "start" || m_action == "restart") {
            act_on_db(true);
            // The administrator starts them: a stopped-for-change record of them is done with.
            (void)installer::start_components(r, *manager, components, print, print);
        }
        // A broker of a cluster says in the shared database what it runs now.
        if (const auto problem = installer::register_this_broker(r, m_action == "stop" ? "stopped" : "running");
            !problem.empty())
            std::cerr << k_prog << ": warning: " << problem << "\n";
        return 0;
    }

private:
    std::string m_action;
    std::string m_component;
};

} // namespace

std::unique_ptr<Command> make_service_command() { return std::make_unique<ServiceCommand>(); }

} // namespace leo::cli
