// leo-installer rollback: return to a restore point (or revert the VM to its snapshot with --vm-snapshot).
#include "command.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/restore_point.hpp"
#include "leo/installer/recover.hpp"
#include "leo/installer/upgrade.hpp"

#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace leo::cli {

namespace {

/// "3 h 12 min ago" from an ISO-8601 UTC time ("2026-11-29T15:30:00Z"); the time itself
/// when it cannot be read or lies in the future.
std::string age_of(const std::string& created) {
    std::tm tm{};
    std::istringstream in(created);
    in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
    if (in.fail()) return created;
    const auto then = std::chrono::system_clock::from_time_t(::timegm(&tm));
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - then).count();
    if (secs < 0) return created;
    if (secs < 120) return fmt::format("{} s ago, at {}", secs, created);
    if (secs < 7200) return fmt::format("{} min ago, at {}", secs / 60, created);
    if (secs < 172800) return fmt::format("{} h {} min ago, at {}", secs / 3600, secs % 3600 / 60, created);
    return fmt::format("{} days ago, at {}", secs / 86400, created);
}

class RollbackCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        add_assumeyes(sub);
        sub.add_option("--rpmdb-wait", m_rpmdb_wait,
                       "Wait up to SECONDS for another rpm/yum/dnf transaction on the root (default 60)")
            ->option_text("SECONDS")
            ->check(CLI::Range(0, 86400));
        sub.add_flag("--force", m_force, "Use a restore point whose verification failed");
        sub.add_flag("--allow-remote-upgrade", m_allow_remote,
                     "On an external database: put the shared database back too, for every broker of the cluster");
        sub.add_option("--lease-wait", m_lease_wait,
                       "On an external database, wait up to SECONDS for another broker's upgrade lease (default 900)")
            ->option_text("SECONDS")
            ->check(CLI::Range(0, 86400));
        sub.add_option("id", m_id, "Restore point (default: the newest)")
            ->option_text("SNAPSHOT")
            // An empty id (a script's unset variable) is a mistake, never "the newest".
            ->check(CLI::Validator(
                [](std::string& v) { return v.empty() ? std::string("an empty restore point id") : std::string(); },
                "NONEMPTY"));
        sub.add_flag("--vm-snapshot", m_vm, "Revert the whole VM to the snapshot taken with the restore point "
                                            "(runs [vm_snapshot] restore_command)");
        sub.add_flag("--components-stopped", m_components_stopped,
                     "The broker's components are stopped already: do not stop or start them");
    }
    int run() override {
        const auto r = root();
        warn_about_maintenance_window(r);
        if (m_vm) {
            auto lock = installer::RunLock::acquire(r, "rollback --vm-snapshot");
            const auto rp = installer::find_restore_point(r, m_id);
            if (!ask(fmt::format("Revert the VM to snapshot {} (restore point {}, {})?",
                                                  rp.vm_snapshot_id.empty() ? "-" : rp.vm_snapshot_id, rp.id, rp.nevra)))
                throw RefusedError("rollback cancelled: nothing was changed");
            open_log(r);
            installer::run_vm_restore_hook(r, rp, installer::load_config(r));
            std::cout << "the VM-snapshot restore hook reverted to snapshot " << rp.vm_snapshot_id << "\n";
            return 0;
        }
        open_log(r);
        const auto result = installer::rollback(
            r, m_id, [](const std::string& s) { std::cout << "==> " << s << "\n" << std::flush; },
            [this, &r](const installer::RestorePoint& found) {
                return ask(
                               fmt::format("Roll {} back to restore point {} ({}, {}, taken {})? Everything changed "
                                           "since then (database rows, configuration) leaves the broker; it is kept "
                                           "as a new restore point, so this rollback can itself be rolled back",
                                           r.string(), found.id, found.nevra, found.reason, age_of(found.created)));
            },
            std::chrono::seconds(m_rpmdb_wait), m_force, m_components_stopped, m_allow_remote,
            std::chrono::seconds(m_lease_wait));
        const auto& rp = result.restore_point;
        std::cout << fmt::format("rolled back to restore point {}: {}, schema {}{}\n", rp.id, rp.nevra,
                                 rp.schema_version.value_or("none"),
                                 result.outcome.used_dump ? " (from its dump)" : "");
        for (const auto& f : result.outcome.saved_config)
            std::cout << fmt::format("kept your changed {} as {}.rpmsave\n", f, f);
        if (!result.outcome.left_restore_point.empty())
            std::cout << fmt::format("the state before this rollback is restore point {} ({} returns to it)\n",
                                     result.outcome.left_restore_point,
                                     installer::command_hint("rollback " + result.outcome.left_restore_point +
                                                             (result.outcome.shared_database ? " --allow-remote-upgrade"
                                                                                             : "")));
        for (const auto& id : result.pruned) std::cout << "deleted restore point " << id << " (retention)\n";
        return 0;
    }

private:
    bool m_components_stopped = false;
    std::string m_id;
    bool m_vm = false;
    int m_rpmdb_wait = 60;
    bool m_force = false;
    bool m_allow_remote = false;
    int m_lease_wait = 900;
};

} // namespace

std::unique_ptr<Command> make_rollback_command() { return std::make_unique<RollbackCommand>(); }

} // namespace leo::cli
