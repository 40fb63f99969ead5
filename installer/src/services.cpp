// The broker's components as every command acts on them (services.hpp): their names, the
// stopped-for-change record, start_components() / stop_components(), and what a change
// (upgrade, rollback, recover, switch_database.pl) stops and starts again. The
// implementations are in managers.cpp and supervisor.cpp, the health probe in health.cpp.
#include "leo/installer/services.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/error.hpp"
#include "leo/common/system_root.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <sstream>
#include <vector>

namespace leo::installer {
namespace stdfs = std::filesystem;

std::string_view to_string(Component c) {
    switch (c) {
    case Component::db: return "db";
    case Component::httpd: return "httpd";
    case Component::queue: return "queue";
    }
    return "?";
}

std::string_view component_title(Component c) {
    switch (c) {
    case Component::db: return "the database";
    case Component::httpd: return "the web server";
    case Component::queue: return "the work-queue worker";
    }
    return "?";
}

std::optional<Component> parse_component(std::string_view name) {
    if (name == "db" || name == "database") return Component::db;
    if (name == "httpd" || name == "web") return Component::httpd;
    if (name == "queue" || name == "worker") return Component::queue;
    return std::nullopt;
}

std::string_view to_string(ComponentStatus::State s) {
    switch (s) {
    case ComponentStatus::State::running: return "running";
    case ComponentStatus::State::stopped: return "stopped";
    case ComponentStatus::State::not_managed: return "not managed here";
    }
    return "?";
}

namespace {

// ---- the record of what a change stopped (rpm's try-restart, kept across a crash) ----

constexpr const char* k_stopped_marker = "/run/leostream/stopped-for-change";

std::vector<Component> read_marker(const fs::SystemRoot& sys) {
    std::vector<Component> out;
    const auto text = sys.try_read(k_stopped_marker, 4096);
    if (!text) return out;
    std::istringstream in(*text);
    std::string word;
    while (in >> word)
        if (auto c = parse_component(word); c && std::find(out.begin(), out.end(), *c) == out.end()) out.push_back(*c);
    return out;
}

void write_marker(const fs::SystemRoot& sys, const std::vector<Component>& components) {
    if (components.empty()) {
        sys.remove(k_stopped_marker);
        return;
    }
    std::string text;  // in start order, whatever order they were stopped in
    for (auto c : k_all_components)
        if (std::find(components.begin(), components.end(), c) != components.end())
            text += std::string(to_string(c)) + "\n";
    sys.make_dirs(k_supervisor_run_dir, 0755, fs::Owner{0, 0});
    sys.write_atomic(k_stopped_marker, text, 0644, fs::Owner{0, 0});
}

} // namespace

void forget_stopped_for_change(const std::filesystem::path& root) { write_marker(fs::SystemRoot(root), {}); }

namespace {

bool has(const std::vector<Component>& v, Component c) { return std::find(v.begin(), v.end(), c) != v.end(); }
void add(std::vector<Component>& v, Component c) {
    if (!has(v, c)) v.push_back(c);
}

/// `which` without the database, refused one by one with [services] commands: they act on
/// the whole broker, so "the web server alone" cannot be done with them.
std::vector<Component> broker_part(const ServiceManager& manager, const std::vector<Component>& which,
                                   const char* verb) {
    std::vector<Component> out;
    for (auto c : k_broker_components)
        if (has(which, c)) out.push_back(c);
    if (manager.whole_broker_command(ServiceManager::Whole::start) && !out.empty() &&
        out.size() != std::size(k_broker_components))
        throw Error(fmt::format("{} {} alone is not supported with installer.conf [services] commands, which act "
                                "on the whole broker: run {} without a component",
                                verb, to_string(out.front()), command_hint(std::string("service ") + verb)));
    return out;
}

} // namespace

std::vector<Component> start_components(const stdfs::path& root, ServiceManager& manager,
                                        const std::vector<Component>& which, const OnStep& on_step,
                                        const OnStep& on_unchanged) {
    const fs::SystemRoot sys(root);
    const auto part = broker_part(manager, which, "start");
    std::vector<Component> started;
    if (part.empty()) return started;
    if (const auto command = manager.whole_broker_command(ServiceManager::Whole::start)) {
        if (command->empty())
            throw Error("installer.conf has [services] commands but no start_command: nothing here can start the "
                        "broker components; add start_command, or start them yourself");
        manager.run_whole_broker(ServiceManager::Whole::start);
        started = part;
        if (on_step) on_step(fmt::format("started the broker components (`{}`)", *command));
    } else {
        for (auto c : part) {
            if (const auto st = manager.status(c); st.state == ComponentStatus::State::not_managed) {
                if (on_unchanged) on_unchanged(fmt::format("not managed here: {} ({})", component_title(c), st.detail));
                continue;
            }
            if (manager.start(c)) {
                started.push_back(c);
                if (on_step) on_step(fmt::format("started {} ({})", component_title(c), manager.name()));
            } else if (on_unchanged) {
                on_unchanged(fmt::format("already running: {}", component_title(c)));
            }
            // It runs now: nothing is left for a later change or `recover` to start.
            auto record = read_marker(sys);
            if (has(record, c)) {
                record.erase(std::find(record.begin(), record.end(), c));
                write_marker(sys, record);
            }
        }
        return started;
    }
    auto record = read_marker(sys);
    std::erase_if(record, [&](Component c) { return has(part, c); });
    write_marker(sys, record);
    return started;
}

std::vector<Component> stop_components(const stdfs::path& root, ServiceManager& manager,
                                       const std::vector<Component>& which, RecordStop record,
                                       const OnStep& on_step, const OnStep& on_unchanged) {
    const fs::SystemRoot sys(root);
    const auto part = broker_part(manager, which, "stop");
    std::vector<Component> stopped;
    if (part.empty()) return stopped;
    if (const auto command = manager.whole_broker_command(ServiceManager::Whole::stop)) {
        if (command->empty())
            throw Error("installer.conf has [services] commands but no stop_command: nothing here can stop the "
                        "broker components; add stop_command, or stop them yourself");
        if (record == RecordStop::yes) {  // before the stop: a crash after it starts them again
            auto marker = read_marker(sys);
            for (auto c : part) add(marker, c);
            write_marker(sys, marker);
        }
        manager.run_whole_broker(ServiceManager::Whole::stop);
        if (on_step) on_step(fmt::format("stopped the broker components (`{}`)", *command));
        return part;
    }
    for (auto it = part.rbegin(); it != part.rend(); ++it) {
        const Component c = *it;
        const auto st = manager.status(c);
        if (st.state == ComponentStatus::State::not_managed) {
            if (on_unchanged) on_unchanged(fmt::format("not managed here: {} ({})", component_title(c), st.detail));
            continue;
        }
        if (st.state != ComponentStatus::State::running) {
            if (on_unchanged) on_unchanged(fmt::format("not running: {}", component_title(c)));
            // A stale pid file goes (stop() of what does not run changes nothing else).
            (void)manager.stop(c);
            continue;
        }
        if (record == RecordStop::yes) {
            auto marker = read_marker(sys);
            add(marker, c);
            write_marker(sys, marker);  // before the stop: a crash after it starts it again
        }
        if (manager.stop(c)) {
            stopped.push_back(c);
            if (on_step) on_step(fmt::format("stopped {} ({})", component_title(c), manager.name()));
        } else if (on_unchanged) {
            on_unchanged(fmt::format("not running: {}", component_title(c)));
        }
    }
    std::reverse(stopped.begin(), stopped.end());  // said in start order
    return stopped;
}

void require_stoppable(const stdfs::path& root, bool administrator_stopped) {
    if (administrator_stopped) return;
    const auto manager = service_manager(root);
    if (!manager->can_act())
        throw RefusedError(fmt::format(
            "nothing here can stop the broker components (this system runs systemd but has no unit {} or {}, and "
            "installer.conf has no [services] commands); stop them yourself and run again with "
            "--components-stopped, or install the broker's units; nothing was changed",
            k_httpd_unit, k_queue_unit));
    if (const auto stop = manager->whole_broker_command(ServiceManager::Whole::stop); stop && stop->empty())
        throw RefusedError("installer.conf has a [services] start_command but no stop_command: nothing here can "
                           "stop the broker components; add stop_command, or stop them yourself and run again "
                           "with --components-stopped; nothing was changed");
}

StoppedComponents stop_for_change(const stdfs::path& root, bool administrator_stopped, const OnStep& on_step) {
    require_stoppable(root, administrator_stopped);
    const auto manager = service_manager(root);
    StoppedComponents out;
    out.manager = manager->name();
    if (administrator_stopped) {
        out.stopped_by_administrator = true;
        if (on_step) on_step("the broker components were stopped by the administrator (--components-stopped)");
        return out;
    }
    // What an interrupted run stopped is still to be started again.
    out.were_running = read_marker(fs::SystemRoot(root));
    const std::vector<Component> broker(std::begin(k_broker_components), std::end(k_broker_components));
    for (auto c : stop_components(root, *manager, broker, RecordStop::yes, on_step)) add(out.were_running, c);
    return out;
}

void start_after_change(const stdfs::path& root, const StoppedComponents& stopped, const OnStep& on_step) {
    const fs::SystemRoot sys(root);
    auto to_start = stopped.were_running;
    for (auto c : read_marker(sys)) add(to_start, c);
    if (to_start.empty()) return;
    const auto manager = service_manager(root);
    if (const auto start = manager->whole_broker_command(ServiceManager::Whole::start); start && start->empty()) {
        // Stopped by stop_command, and nothing here starts them: the administrator does.
        if (on_step) on_step("no [services] start_command in /etc/leo-installer/installer.conf: start the broker "
                             "components yourself");
        write_marker(sys, {});
        return;
    }
    if (manager->whole_broker_command(ServiceManager::Whole::start))  // the command starts them all
        to_start.assign(std::begin(k_broker_components), std::end(k_broker_components));
    (void)start_components(root, *manager, to_start, on_step);
}

std::string services_plan(const stdfs::path& root) {
    const auto manager = service_manager(root);
    if (const auto stop = manager->whole_broker_command(ServiceManager::Whole::stop)) {
        const auto start = manager->whole_broker_command(ServiceManager::Whole::start);
        return fmt::format("The broker components are stopped before (`{}`) and started after (`{}`)",
                           stop->empty() ? "nothing" : *stop, start->empty() ? "nothing" : *start);
    }
    if (!manager->can_act())
        return fmt::format("This tool cannot stop the broker components here (no [services] commands in "
                           "/etc/leo-installer/installer.conf, no systemd unit {}): stop them before you answer yes, "
                           "and start them when it is done",
                           k_httpd_unit);
    std::string running;
    for (auto c : k_broker_components)
        if (manager->status(c).state == ComponentStatus::State::running)
            running += (running.empty() ? "" : " and ") + std::string(component_title(c));
    if (running.empty()) return fmt::format("No broker component is running ({}): nothing is stopped", manager->name());
    return fmt::format("{} {} stopped before and started again after ({})", running,
                       running.find(" and ") != std::string::npos ? "are" : "is", manager->name());
}

ServiceOutcome stop_broker(const stdfs::path& root) {
    ServiceOutcome out;
    const auto manager = service_manager(root);
    if (!manager->can_act()) {
        out.message = fmt::format("no way to stop the broker components here (no [services] stop_command in "
                                  "/etc/leo-installer/installer.conf and no systemd unit {} on this system): stop "
                                  "them yourself",
                                  k_httpd_unit);
        return out;
    }
    if (const auto stop = manager->whole_broker_command(ServiceManager::Whole::stop); stop && stop->empty()) {
        out.message = "no [services] stop_command in /etc/leo-installer/installer.conf: stop the broker components "
                      "yourself";
        return out;
    }
    std::string said;
    const auto stopped = stop_for_change(root, false, [&](const std::string& s) { said += (said.empty() ? "" : "; ") + s; });
    out.ran = true;
    out.command = manager->name();
    out.message = said.empty() ? "broker components: none was running" : "broker components: " + said;
    return out;
}

ServiceOutcome start_broker(const stdfs::path& root) {
    ServiceOutcome out;
    const auto manager = service_manager(root);
    if (!manager->can_act()) {
        out.message = fmt::format("no way to start the broker components here (no [services] start_command in "
                                  "/etc/leo-installer/installer.conf and no systemd unit {} on this system): start "
                                  "them yourself",
                                  k_httpd_unit);
        return out;
    }
    if (const auto start = manager->whole_broker_command(ServiceManager::Whole::start)) {
        if (start->empty()) {
            out.message = "no [services] start_command in /etc/leo-installer/installer.conf: start the broker "
                          "components yourself";
            return out;
        }
        // The start command runs whether or not the stop ran (an administrator's own stop).
        const std::vector<Component> broker(std::begin(k_broker_components), std::end(k_broker_components));
        (void)start_components(root, *manager, broker, {});
        out.ran = true;
        out.command = *start;
        out.message = fmt::format("broker components: start ran `{}`", out.command);
        return out;
    }
    std::string said;
    start_after_change(root, {}, [&](const std::string& s) { said += (said.empty() ? "" : "; ") + s; });
    out.ran = true;
    out.command = manager->name();
    out.message = said.empty() ? "broker components: none to start again" : "broker components: " + said;
    return out;
}

} // namespace leo::installer
