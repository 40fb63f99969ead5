// leo-installer migrate: the schema migrations alone (--dry-run, --validate, --baseline).
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/signals.hpp"
#include "leo/installer/lock.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/journal.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/rpm/transaction.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace leo::cli {
namespace stdfs = std::filesystem;

namespace {

/// `leo-installer migrate`: the schema migrations alone (DESIGN.md "Migrations").
class MigrateCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        sub.add_flag("--dry-run", m_dry_run, "Print the plan and the SQL; change nothing");
        sub.add_flag("--validate", m_validate, "Check the history against the files; change nothing");
        sub.add_flag("--allow-remote-upgrade", m_allow_remote, "Allow migrating an older external database");
        sub.add_option("--baseline", m_baseline, "Adopt a database made before the engine at this version")
            ->option_text("VERSION");
        sub.add_option("--migrations", m_dir, "Migration files (default: ROOT/home/leo/share/migrations)")
            ->option_text("DIR");
        sub.add_option("--db", m_db, "An external database (libpq conninfo); default: the one the broker uses")
            ->option_text("CONNINFO");
    }
    int run() override {
        namespace mig = leo::migrations;
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
            if (db.status().state != mig::DbState::running) db.start();
            conninfo = db.conninfo();
        }
        auto conn = mig::Connection::open(conninfo);
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
            if (!v.ok()) throw RefusedError(v.message());
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
            log::open_log(r);
            // Each migration is its own transaction: a signal lets the one running finish.
            deferred.emplace("finishing the migrations; please wait");
        }
        const auto res = mig::migrate(conn, files, broker_version, o);
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
