// leo-installer rollback: return to a restore point (or revert the VM to its snapshot with --vm-snapshot).
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/restore_point.hpp"
#include "leo/installer/upgrade.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace leo::cli {

namespace {

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
        sub.add_option("id", m_id, "Restore point (default: the newest)")->option_text("SNAPSHOT");
        sub.add_flag("--vm-snapshot", m_vm, "Revert the whole VM to the snapshot taken with the restore point "
                                            "(runs [vm_snapshot] restore_command)");
    }
    int run() override {
        const auto r = root();
        if (m_vm) {
            auto lock = installer::RunLock::acquire(r, "rollback --vm-snapshot");
            const auto rp = installer::find_restore_point(r, m_id);
            if (!confirm(m_assumeyes, fmt::format("Revert the VM to snapshot {} (restore point {}, {})?",
                                                  rp.vm_snapshot_id.empty() ? "-" : rp.vm_snapshot_id, rp.id, rp.nevra)))
                throw RefusedError("rollback cancelled: nothing was changed");
            log::open_log(r);
            installer::run_vm_restore_hook(r, rp, installer::load_config(r));
            std::cout << "the VM-snapshot restore hook reverted to snapshot " << rp.vm_snapshot_id << "\n";
            return 0;
        }
        log::open_log(r);
        const auto rp = installer::rollback(
            r, m_id, [](const std::string& s) { std::cout << "==> " << s << "\n" << std::flush; },
            [this, &r](const installer::RestorePoint& found) {
                return confirm(m_assumeyes, fmt::format("Roll {} back to restore point {} ({}, {})?", r.string(),
                                                        found.id, found.nevra, found.reason));
            },
            std::chrono::seconds(m_rpmdb_wait));
        std::cout << fmt::format("rolled back to restore point {}: {}, schema {}\n", rp.id, rp.nevra,
                                 rp.schema_version.value_or("none"));
        return 0;
    }

private:
    std::string m_id;
    bool m_vm = false;
    int m_rpmdb_wait = 60;
};

} // namespace

std::unique_ptr<Command> make_rollback_command() { return std::make_unique<RollbackCommand>(); }

} // namespace leo::cli
