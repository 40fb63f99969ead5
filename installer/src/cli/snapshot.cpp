// leo-installer snapshot: list, create or delete restore points.
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/signals.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/restore_point.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {

namespace {

class SnapshotCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        add_json(sub);
        add_assumeyes(sub);
        sub.add_option("action", m_action, "list | create | delete")
            ->required()
            ->check(CLI::IsMember({"list", "create", "delete"}));
        sub.add_option("id", m_id, "Restore point id (delete)")->option_text("SNAPSHOT");
    }
    int run() override {
        const auto r = root();
        if (m_action != "delete" && !m_id.empty())
            throw UsageError(fmt::format("snapshot {} takes no restore point id (got '{}')", m_action, m_id));
        if (m_action == "list") {
            const auto all = installer::list_restore_points(r);
            if (m_json) {
                nlohmann::json j = nlohmann::json::array();
                for (const auto& rp : all) j.push_back(installer::to_json(rp));
                print_json(j);
            } else if (all.empty()) {
                std::cout << "no restore points\n";
            } else {
                std::cout << fmt::format("{:<22} {:<36} {:<10} {}\n", "ID", "PACKAGE", "SCHEMA", "REASON");
                for (const auto& rp : all)
                    std::cout << fmt::format("{:<22} {:<36} {:<10} {}\n", rp.id, rp.nevra,
                                             rp.schema_version.value_or("-"), rp.reason);
            }
            return 0;
        }
        log::open_log(r);
        if (m_action == "create") {
            // The lock first, held through the question (a second run cannot slip in).
            auto lock = installer::RunLock::acquire(r, "snapshot create");
            installer::Journal(r).refuse_if_unfinished();
            installer::require_internal_database(r, "a restore point");  // before the question
            if (!confirm(m_assumeyes, "Take a restore point of " + r.string() + "?"))
                throw RefusedError("cancelled: nothing was changed");
            // Deferred: a signal lets the restore point finish (a partial one is never listed).
            const signals::Deferred deferred("finishing the restore point; please wait");
            const auto config = installer::load_config(r);
            const auto rp = installer::create_restore_point(r, "taken by snapshot create", config, [](const std::string& w) {
                std::cerr << k_prog << ": warning: " << w << "\n";
            });
            std::cout << "restore point " << rp.id << " taken (" << rp.nevra << ")"
                      << (rp.vm_snapshot_id.empty() ? "" : ", VM snapshot " + rp.vm_snapshot_id) << "\n";
            for (const auto& id : installer::prune_restore_points(r, config.keep_restore_points))
                std::cout << "deleted restore point " << id << " (keeping the newest " << config.keep_restore_points
                          << ")\n";
            return 0;
        }
        if (m_id.empty()) throw UsageError("snapshot delete needs the restore point id (see `snapshot list`)");
        auto lock = installer::RunLock::acquire(r, "snapshot delete");
        installer::Journal(r).refuse_if_unfinished();
        const auto rp = installer::find_restore_point(r, m_id);
        if (!confirm(m_assumeyes, "Delete restore point " + rp.id + "?"))
            throw RefusedError("cancelled: nothing was changed");
        const signals::Deferred deferred("finishing the deletion; please wait");
        installer::delete_restore_point(r, rp.id);
        std::cout << "deleted restore point " << rp.id << "\n";
        return 0;
    }

private:
    std::string m_action;
    std::string m_id;
};

} // namespace

std::unique_ptr<Command> make_snapshot_command() { return std::make_unique<SnapshotCommand>(); }

} // namespace leo::cli
