// leo-installer snapshot: list, create or delete restore points.
#include "command.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/signals.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/kept_package.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/restore_point.hpp"
#include "leo/rpm/transaction.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {
namespace stdfs = std::filesystem;

namespace {

class SnapshotCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        add_json(sub);
        add_assumeyes(sub);
        sub.add_option("action", m_action, "list | create | verify ID | delete ID")
            ->required()
            ->check(CLI::IsMember({"list", "create", "verify", "delete"}));
        sub.add_option("id", m_id, "Restore point id (verify, delete)")->option_text("SNAPSHOT");
        sub.add_option("--installed-rpm", m_installed_rpm,
                       "create: the RPM file of the installed broker, kept for the restore point when it is not "
                       "kept yet (a broker installed by rpm -U or yum localinstall); checked to be that very build")
            ->option_text("FILE");
    }
    int run() override {
        const auto r = root();
        if ((m_action == "list" || m_action == "create") && !m_id.empty())
            throw UsageError(fmt::format("snapshot {} takes no restore point id (got '{}')", m_action, m_id));
        if (m_action != "create" && !m_installed_rpm.empty())
            throw UsageError("--installed-rpm is for snapshot create");
        if (m_action == "list") return list(r);
        if (m_action == "verify") return verify(r);
        open_log(r);
        if (m_action == "create") {
            // The lock first, held through the question (a second run cannot slip in).
            auto lock = installer::RunLock::acquire(r, "snapshot create");
            installer::Journal(r).refuse_if_unfinished();
            const auto database = installer::load_database_config(r);
            const bool external = database.mode == installer::DatabaseMode::external;
            if (!ask("Take a restore point of " + r.string() + "?"))
                throw RefusedError("cancelled: nothing was changed");
            // Deferred: a signal lets the restore point finish (a partial one is never listed).
            const signals::Deferred deferred("finishing the restore point; please wait");
            const auto config = installer::load_config(r);
            const auto warn = [](const std::string& w) { std::cerr << k_prog << ": warning: " << w << "\n"; };
            if (!m_installed_rpm.empty()) {
                const auto installed = rpm::query_installed(r, installer::k_broker_package);
                if (installed.size() != 1)
                    throw InstallError(fmt::format("--installed-rpm: {} broker packages are installed in {} (expected "
                                                   "one); nothing was changed",
                                                   installed.size(), r.string()));
                (void)installer::keep_installed_package(r, installed.front(), stdfs::path(m_installed_rpm));
            }
            installer::RestorePoint rp;
            if (external) {
                // A broker of a cluster: the shared database as a directory dump (the other
                // brokers keep running on it; pg_dump's snapshot is consistent).
                installer::ExternalDatabasePart part;
                part.conninfo = installer::external_conninfo(database);
                part.endpoint = database.external.display();
                part.dump = true;
                part.no_copy_reason = "a restore point taken by hand, while the other brokers of the cluster keep "
                                      "using the shared database";
                rp = installer::create_external_restore_point(
                    r, "taken by snapshot create", config, installer::RestorePointKind::manual, part,
                    [](const std::string& s) { std::cerr << "==> " << s << "\n"; }, warn);
            } else {
                rp = installer::create_restore_point(r, "taken by snapshot create", config, warn,
                                                     installer::RestorePointKind::manual);
            }
            const auto problem = installer::finish_restore_point(r, rp, nullptr);
            if (!problem.empty()) warn("its dump could not be taken (the database copy is there): " + problem);
            const auto pruned = installer::prune_restore_points(r, config.keep_restore_points);
            if (m_json) {
                print_json({{"created", installer::to_json(rp)}, {"deleted", pruned}});
                return 0;
            }
            std::cout << "restore point " << rp.id << " taken (" << rp.nevra << ", "
                      << (rp.copy ? "database copy " + rp.copy->name
                                  : "directory dump of the shared database " + rp.external_endpoint)
                      << ")" << (rp.vm_snapshot_id.empty() ? "" : ", VM snapshot " + rp.vm_snapshot_id) << "\n";
            if (problem.empty())
                std::cout << (rp.copy ? "its dump is complete and its checksums recorded\n"
                                      : "its directory dump is complete\n");
            for (const auto& id : pruned)
                std::cout << "deleted restore point " << id << " (keeping the newest " << config.keep_restore_points
                          << ")\n";
            return 0;
        }
        if (m_id.empty()) throw UsageError("snapshot delete needs the restore point id (see `snapshot list`)");
        auto lock = installer::RunLock::acquire(r, "snapshot delete");
        installer::Journal(r).refuse_if_unfinished();
        const auto rp = installer::find_restore_point(r, m_id);
        if (!ask("Delete restore point " + rp.id + "?"))
            throw RefusedError("cancelled: nothing was changed");
        const signals::Deferred deferred("finishing the deletion; please wait");
        installer::delete_restore_point(r, rp.id);
        if (m_json)
            print_json({{"deleted", {rp.id}}});
        else
            std::cout << "deleted restore point " << rp.id << "\n";
        return 0;
    }

private:
    int list(const std::filesystem::path& r) {
        const auto all = installer::list_restore_points(r);
        const auto leftovers = installer::find_leftovers(r);
        if (m_json) {
            nlohmann::json j = nlohmann::json::array();
            for (const auto& rp : all) {
                auto e = installer::to_json(rp);
                e["state"] = rp.state();
                e["usable"] = rp.usable();
                e["size_bytes"] = size_of(rp);
                j.push_back(e);
            }
            print_json(j);
            return 0;
        }
        if (all.empty()) std::cout << "no restore points\n";
        else {
            std::cout << fmt::format("{:<26} {:<16} {:<9} {:>10} {:<34} {:<9} {:<8} {}\n", "ID", "KIND", "STATE",
                                     "SIZE", "PACKAGE", "SCHEMA", "VM", "REASON");
            for (const auto& rp : all)
                std::cout << fmt::format("{:<26} {:<16} {:<9} {:>10} {:<34} {:<9} {:<8} {}\n", rp.id,
                                         installer::to_string(rp.kind), rp.state(), mib(size_of(rp)),
                                         rp.nevra.empty() ? "-" : rp.nevra, rp.schema_version.value_or("-"),
                                         rp.vm_snapshot_id.empty() ? "-" : rp.vm_snapshot_id, rp.reason);
            for (const auto& rp : all) {
                if (rp.dump_state.rfind("failed", 0) == 0)
                    std::cout << fmt::format("{}: dump {}\n", rp.id, rp.dump_state);
                if (rp.verification.rfind("failed", 0) == 0)
                    std::cout << fmt::format("{}: verification {} (a rollback refuses it without --force)\n", rp.id,
                                             rp.verification);
                if (!rp.usable())
                    std::cout << fmt::format("{}: cannot be rolled back to ({})\n", rp.id,
                                             rp.package_sha256.empty() ? "its package was not kept; its database is "
                                                                         "kept for inspection"
                                                                       : "its copy was used by a rollback and it has "
                                                                         "no dump");
            }
        }
        for (const auto& d : leftovers.databases)
            std::cout << fmt::format("leftover: the database {} ({}) is a copy no restore point names; `leo-installer "
                                     "recover` removes it\n",
                                     d.name, mib(d.size_bytes));
        for (const auto& d : leftovers.external_databases)
            std::cout << fmt::format("leftover: the database {} ({}) on the external server is a copy of this broker "
                                     "no restore point names; {} removes it\n",
                                     d.name, mib(d.size_bytes), installer::command_hint("recover"));
        for (const auto& name : leftovers.thawed)
            std::cout << fmt::format("leftover: the database copy {} accepts connections; {} freezes it again\n",
                                     name, installer::command_hint("recover"));
        for (const auto& p : leftovers.partial_dirs)
            std::cout << fmt::format("leftover: the unfinished restore point directory {}; {} removes it\n", p,
                                     installer::command_hint("recover"));
        return 0;
    }

    int verify(const std::filesystem::path& r) {
        if (m_id.empty()) throw UsageError("snapshot verify needs the restore point id (see `snapshot list`)");
        auto lock = installer::RunLock::acquire(r, "snapshot verify " + m_id);
        open_log(r);
        auto rp = installer::find_restore_point(r, m_id);
        const signals::Deferred deferred("finishing the verification; please wait");
        const auto result = installer::check_restore_point(
            r, rp, [this](const std::string& s) { (m_json ? std::cerr : std::cout) << "==> " << s << "\n" << std::flush; });
        if (m_json)
            print_json({{"id", rp.id}, {"verification", result}});
        else
            std::cout << fmt::format("restore point {}: {}\n", rp.id, result);
        return result == "verified" ? 0 : 1;
    }

    /// Bytes of the restore point: its files and its database copy (when it still is one).
    static std::uint64_t size_of(const installer::RestorePoint& rp) {
        std::uint64_t total = rp.has_copy() ? rp.copy->size_bytes : 0;
        std::error_code ec;
        for (const char* f : {"package.rpm", "config.tar.gz", "database.dump", "manifest.json"}) {
            const auto n = std::filesystem::file_size(rp.dir / f, ec);
            if (!ec) total += n;
        }
        return total;
    }
    static std::string mib(std::uint64_t bytes) {
        return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
    }

    std::string m_action;
    std::string m_id;
    std::string m_installed_rpm;
};

} // namespace

std::unique_ptr<Command> make_snapshot_command() { return std::make_unique<SnapshotCommand>(); }

} // namespace leo::cli
