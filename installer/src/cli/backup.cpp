// leo-installer backup: create, list, verify or prune database backups (backup.hpp).
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/signals.hpp"
#include "leo/installer/backup.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {

namespace {

std::string mib(std::uint64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }

class BackupCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        add_json(sub);
        add_assumeyes(sub);
        sub.add_option("action", m_action, "create | list | verify [ID] | prune")
            ->required()
            ->check(CLI::IsMember({"create", "list", "verify", "prune"}));
        sub.add_option("id", m_id, "Backup id (verify; default: the newest)")->option_text("ID");
    }

    int run() override {
        const auto r = root();
        if (m_action != "verify" && !m_id.empty())
            throw UsageError(fmt::format("backup {} takes no backup id (got '{}')", m_action, m_id));
        // installer.conf first: a bad [backup] setting stops every action before anything.
        const auto config = installer::load_config(r);
        if (m_action == "list") return list(r, config);
        open_log(r);
        auto lock = installer::RunLock::acquire(r, "backup " + m_action);
        if (m_action == "create") return create(r, config);
        if (m_action == "verify") return verify(r, config);
        return prune(r, config);
    }

private:
    void step(const std::string& s) const { (m_json ? std::cerr : std::cout) << "==> " << s << "\n" << std::flush; }

    int create(const std::filesystem::path& r, const installer::InstallerConfig& config) {
        // A database between two versions (an interrupted upgrade) is no state to keep.
        installer::Journal(r).refuse_if_unfinished();
        if (!ask("Take a backup of the broker database into " +
                 (r / installer::backups_inside(config).relative_path()).string() + "?"))
            throw RefusedError("cancelled: nothing was changed");
        const auto b = installer::create_backup(r, config, [this](const std::string& s) { step(s); });
        if (m_json) {
            print_json(installer::to_json(b));
            return 0;
        }
        std::cout << fmt::format("backup {} taken: {} database {}, {} tables, schema {}, {}, sha256 {}\n", b.id,
                                 b.database_location, b.database, b.table_checksums.size(),
                                 b.schema_version.value_or("none"), mib(b.size_bytes), b.sha256);
        return 0;
    }

    int list(const std::filesystem::path& r, const installer::InstallerConfig& config) {
        const auto listing = installer::list_backups(r, config);
        if (m_json) {
            nlohmann::json j{{"directory", listing.dir.string()},
                             {"keep", config.backup_keep},
                             {"backups", nlohmann::json::array()},
                             {"broken", listing.broken},
                             {"partial", listing.partial}};
            for (const auto& b : listing.backups) j["backups"].push_back(installer::to_json(b));
            print_json(j);
            return 0;
        }
        if (listing.backups.empty())
            std::cout << "no backups in " << listing.dir.string() << "\n";
        else {
            std::cout << fmt::format("{:<20} {:<21} {:>10} {:<10} {:<9} {:<34} {}\n", "ID", "CREATED", "SIZE",
                                     "SCHEMA", "DATABASE", "BROKER", "TABLES");
            for (const auto& b : listing.backups)
                std::cout << fmt::format("{:<20} {:<21} {:>10} {:<10} {:<9} {:<34} {}\n", b.id, b.created,
                                         mib(b.size_bytes), b.schema_version.value_or("-"), b.database_location,
                                         b.broker_nevra.empty() ? "-" : b.broker_nevra, b.table_checksums.size());
            std::cout << fmt::format("{} backup(s) in {}; `backup prune` keeps the newest {}\n",
                                     listing.backups.size(), listing.dir.string(), config.backup_keep);
        }
        for (const auto& b : listing.broken) std::cout << "not a usable backup: " << b << "\n";
        for (const auto& p : listing.partial)
            std::cout << "partial: " << p << " (a run that did not finish; the next create or prune removes it)\n";
        return 0;
    }

    int verify(const std::filesystem::path& r, const installer::InstallerConfig& config) {
        const auto backup = installer::find_backup(installer::list_backups(r, config), m_id);
        // Deferred: a Ctrl-C lets the verify finish and drop its scratch database. (create is
        // not: a killed create leaves only a partial directory, never a listed backup.)
        const signals::Deferred deferred("finishing the verification and dropping its scratch database; please wait");
        const auto v = installer::verify_backup(r, config, backup, [this](const std::string& s) { step(s); });
        if (m_json) {
            print_json({{"id", backup.id},
                        {"restores", v.ok},
                        {"problems", v.problems},
                        {"scratch_database", v.scratch_database},
                        {"tables_compared", v.tables_compared}});
        } else if (v.ok) {
            std::cout << fmt::format("backup {} restores: its SHA-256 matches, and restored into a scratch database "
                                     "(dropped again) its {} tables and its schema history ({}) equal the manifest\n",
                                     backup.id, v.tables_compared, backup.schema_version.value_or("none"));
        } else {
            std::cout << fmt::format("backup {} does NOT restore as recorded:\n", backup.id);
            for (const auto& p : v.problems) std::cout << "  " << p << "\n";
        }
        return v.ok ? 0 : 1;
    }

    int prune(const std::filesystem::path& r, const installer::InstallerConfig& config) {
        const auto listing = installer::list_backups(r, config);
        const auto doomed = installer::backups_to_prune(listing, config.backup_keep);
        if (doomed.empty() && listing.partial.empty()) {
            if (m_json)
                print_json({{"deleted", nlohmann::json::array()}, {"kept", listing.backups.size()}});
            else
                std::cout << fmt::format("nothing to prune: {} backup(s), keeping the newest {}\n",
                                         listing.backups.size(), config.backup_keep);
            return 0;
        }
        std::string ids;
        for (const auto& b : doomed) ids += (ids.empty() ? "" : ", ") + b.id;
        const auto question =
            doomed.empty() ? fmt::format("Remove {} partial backup directory(ies)?", listing.partial.size())
                           : fmt::format("Delete {} backup(s) ({}), keeping the newest {}?", doomed.size(), ids,
                                         config.backup_keep);
        if (!ask(question)) throw RefusedError("cancelled: nothing was changed");
        std::vector<std::string> deleted;
        for (const auto& b : doomed) {
            installer::delete_backup(r, config, b.id);
            deleted.push_back(b.id);
        }
        const auto partial = installer::remove_partial_backups(r, config);
        if (m_json) {
            print_json({{"deleted", deleted}, {"partial_removed", partial},
                        {"kept", listing.backups.size() - deleted.size()}});
            return 0;
        }
        for (const auto& id : deleted) std::cout << "deleted backup " << id << "\n";
        for (const auto& p : partial) std::cout << "removed the partial directory " << p << "\n";
        std::cout << fmt::format("{} backup(s) kept\n", listing.backups.size() - deleted.size());
        return 0;
    }

    std::string m_action;
    std::string m_id;
};

} // namespace

std::unique_ptr<Command> make_backup_command() { return std::make_unique<BackupCommand>(); }

} // namespace leo::cli
