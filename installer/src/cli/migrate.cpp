// leo-installer migrate: the schema migrations alone (--dry-run, --validate, --baseline, --repair).
#include "command.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/signals.hpp"
#include "leo/installer/lock.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/restore_point.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/rpm/transaction.hpp"

#include <algorithm>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace leo::cli {
namespace stdfs = std::filesystem;

namespace {

namespace mig = leo::migrations;

/// What a refusal over failed entries adds about restore points: the newest restore point
/// of the root taken before the first failure, when the database is the internal one (a
/// restore point holds only that); "" when there is none. Its "created" and the entry's
/// installed_on are both UTC "YYYY-MM-DDTHH:MM:SSZ", so they compare as text; one of the
/// same second is not known to be before. The engine never mentions restore points: it
/// does not know of them.
std::string restore_point_advice(const stdfs::path& root, bool external, const mig::SchemaState& state) {
    if (external || state.failed.empty()) return "";
    std::string first_failure = state.failed.front().installed_on;
    for (const auto& f : state.failed) first_failure = std::min(first_failure, f.installed_on);
    std::vector<installer::RestorePoint> points;
    try {
        points = installer::list_restore_points(root);
    } catch (const std::exception&) {
        return "";  // an unreadable restore point is not advice
    }
    const installer::RestorePoint* before = nullptr;
    for (const auto& rp : points)  // oldest first
        if (!first_failure.empty() && rp.created < first_failure) before = &rp;  // the same second: unknown
    if (before == nullptr) return "";
    return fmt::format("; or put the whole broker back to restore point {} ({}: {}), taken before the migration "
                       "failed: {} (package, configuration and database; changes made since are lost)",
                       before->id, before->created, before->reason, installer::command_hint("rollback " + before->id));
}

/// "V9.1.0.3__x.sql (version 9.1.0.3, installed_rank 7, failed at ... by broker ... on host):
/// at statement 2 of 3 (line 5): ERROR: ...".
std::string describe_failed(const mig::FailedMigration& f) {
    std::string out = fmt::format("{} (version {}, installed_rank {}", f.script.empty() ? f.version : f.script,
                                  f.version, f.installed_rank);
    if (!f.installed_on.empty()) out += ", failed at " + f.installed_on;
    if (!f.broker_version.empty()) out += " by broker " + f.broker_version;
    if (!f.installed_host.empty()) out += " on " + f.installed_host;
    out += ")";
    if (!f.failure.empty()) out += ": " + f.failure;
    return out;
}

/// `leo-installer migrate`: the schema migrations alone (DESIGN.md "Migrations").
class MigrateCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        sub.add_flag("--dry-run", m_dry_run, "Print the plan and the SQL; change nothing");
        auto* validate = sub.add_flag("--validate", m_validate, "Check the history against the files; change nothing");
        sub.add_flag("--allow-remote-upgrade", m_allow_remote, "Allow migrating an older external database");
        auto* baseline =
            sub.add_option("--baseline", m_baseline, "Adopt a database made before the engine at this version")
                ->option_text("VERSION");
        sub.add_option("--migrations", m_dir, "Migration files (default: ROOT/home/leo/share/migrations)")
            ->option_text("DIR");
        sub.add_option("--db", m_db, "An external database (libpq conninfo); default: the one the broker uses")
            ->option_text("CONNINFO");
        auto* repair = sub.add_flag("--repair", m_repair,
                                    "Remove failed entries from the history, after the database was put right by "
                                    "hand (asks first; -y does not)");
        repair->excludes(validate)->excludes(baseline);
        add_assumeyes(sub);
    }
    int run() override {
        const auto r = root();
        const auto installed = rpm::query_installed(r, "leostream-broker");
        if (installed.size() != 1)
            throw Error(fmt::format("migrate needs exactly one installed broker in {} (found {}); the schema "
                                    "version follows the installed package",
                                    r.string(), installed.size()));
        const std::string broker_version = installed.front().version;
        bool external = !m_db.empty();
        std::string conninfo = m_db;
        if (!external) {
            // The database the broker uses (switch_database.pl records an external one).
            if (const auto cfg = installer::load_database_config(r); cfg.mode == installer::DatabaseMode::external) {
                conninfo = installer::external_conninfo(cfg);
                external = true;
            }
        }
        if (!external) {
            mig::InternalDatabase db(r);
            if (db.status().state != mig::DbState::running)
                db.start([](const std::string& notice) { std::cout << notice << "\n" << std::flush; });
            conninfo = db.conninfo();
        }
        auto conn = mig::Connection::open(conninfo);
        if (m_repair) return repair(r, conn, external);
        const auto files =
            mig::load_migrations(m_dir.empty() ? fs::SystemRoot(r).checked_host("/home/leo/share/migrations") : stdfs::path(m_dir));
        mig::MigrateOptions o;
        o.kind = external ? mig::DatabaseKind::external : mig::DatabaseKind::internal;
        o.allow_remote_upgrade = m_allow_remote ? mig::AllowRemoteUpgrade::yes : mig::AllowRemoteUpgrade::no;
        o.dry_run = m_dry_run ? mig::DryRun::yes : mig::DryRun::no;
        if (!m_baseline.empty()) o.baseline = m_baseline;
        if (m_validate) {
            const auto state = mig::read_schema_state(conn);
            const auto d = mig::decide_upgrade(state, files, broker_version, o.kind, o.allow_remote_upgrade);
            const auto v = mig::validate(state, files, broker_version);
            // --validate reads only: an older external schema is "pending", not a refusal.
            if (d.refused() && d.action != mig::UpgradeDecision::Action::refuse_remote) throw RefusedError(d.message);
            if (!v.ok()) throw RefusedError(v.message() + restore_point_advice(r, external, state));
            std::cout << fmt::format("schema {}: the history matches the {} migration files; {} pending\n",
                                     state.schema_version.value_or("none"), files.size(), v.pending.size());
            for (const auto* m : v.pending) std::cout << "  pending: " << m->script << "\n";
            if (d.action == mig::UpgradeDecision::Action::refuse_remote)
                std::cout << "  applying them to this external database needs --allow-remote-upgrade (every broker "
                             "sharing it then runs the new schema)\n";
            return 0;
        }
        std::optional<installer::RunLock> lock;
        std::optional<signals::Deferred> deferred;
        if (!m_dry_run) {
            lock.emplace(installer::RunLock::acquire(r, "migrate"));
            installer::Journal(r).refuse_if_unfinished();
            open_log(r);
            // Each migration is its own transaction: a signal lets the one running finish.
            deferred.emplace("finishing the migrations; please wait");
        }
        mig::MigrateResult res;
        try {
            res = mig::migrate(conn, files, broker_version, o);
        } catch (const MigrationError& e) {
            // Failed entries (there before, or recorded by this run): the advice may add a restore point.
            std::string advice;
            try {
                advice = restore_point_advice(r, external, mig::read_schema_state(conn));
            } catch (const std::exception&) {
            }
            if (advice.empty()) throw;
            throw MigrationError(e.what() + advice, e.code());
        }
        for (const auto& p : res.plan) {
            std::cout << (m_dry_run ? "would apply " : "applied ") << p.script
                      << (p.transactional ? "" : " (no transaction)") << "\n";
            if (m_dry_run) std::cout << p.sql << (p.sql.empty() || p.sql.back() == '\n' ? "" : "\n");
        }
        std::cout << fmt::format("schema {} -> {}{}\n", res.schema_before.value_or("none"),
                                 res.schema_after.value_or("none"), m_dry_run ? " (dry run: nothing changed)" : "");
        return 0;
    }

private:
    /// `migrate --repair`: list the failed entries, ask, remove them (Flyway's repair, for
    /// failed entries only: see mig::repair).
    int repair(const stdfs::path& r, mig::Connection& conn, bool external) {
        std::optional<installer::RunLock> lock;
        if (!m_dry_run) lock.emplace(installer::RunLock::acquire(r, "migrate --repair"));
        const auto state = mig::read_schema_state(conn);
        if (state.failed.empty()) {
            std::cout << "nothing to repair: leo_schema_history records no failed migration\n";
            return 0;
        }
        for (const auto& f : state.failed)
            std::cout << (m_dry_run ? "would remove" : "failed entry:") << " " << describe_failed(f) << "\n";
        if (m_dry_run) {
            std::cout << "(dry run: nothing changed)\n";
            return 0;
        }
        installer::Journal(r).refuse_if_unfinished();
        const size_t n = state.failed.size();
        if (!ask(
                     fmt::format("Remove {} failed entr{} from leo_schema_history? Do this only after undoing by hand "
                                 "what {} changed: {} then run{} again from the first statement",
                                 n, n == 1 ? "y" : "ies", n == 1 ? "the migration" : "the migrations",
                                 n == 1 ? "it" : "they", n == 1 ? "s" : "")))
            throw RefusedError("repair cancelled: nothing was changed");
        open_log(r);
        const auto res = mig::repair(conn, state.failed);
        for (const auto& f : res.removed) {
            std::cout << "removed the failed entry of " << describe_failed(f) << "\n";
            log::info("migrate --repair: removed the failed entry of {}{}", describe_failed(f),
                      external ? " (external database)" : "");
        }
        for (const auto& f : res.already_gone)
            std::cout << "no longer a failed entry (another run removed or completed it): " << describe_failed(f)
                      << "\n";
        if (!res.removed.empty())
            std::cout << installer::command_hint("migrate") << " now applies " << (res.removed.size() == 1 ? "it" : "them")
                      << " again\n";
        return 0;
    }

    bool m_repair = false;
    bool m_dry_run = false;
    bool m_validate = false;
    bool m_allow_remote = false;
    std::string m_baseline;
    std::string m_dir;
    std::string m_db;
};

} // namespace

std::unique_ptr<Command> make_migrate_command() { return std::make_unique<MigrateCommand>(); }

} // namespace leo::cli
