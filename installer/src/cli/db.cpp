// leo-installer db: init, start, stop, restart, report or purge the internal PostgreSQL instance.
#include "command.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/error.hpp"

#include "leo/common/log.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/db_purge.hpp"
#include "leo/installer/lock.hpp"
#include "leo/migrations/internal_db.hpp"

#include <iostream>
#include <optional>
#include <string>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace leo::cli {

namespace {

/// `db status` exit codes (LSB init-script convention): 0 running, 3 not running.
constexpr int k_status_running = 0;
constexpr int k_status_not_running = 3;

/// One line: the state, and what else the administrator should know.
std::string status_line(const migrations::DbStatus& st, const std::filesystem::path& root) {
    std::string line = "internal database: ";
    switch (st.state) {
    case migrations::DbState::not_initialised:
        line += "not initialised (" + st.detail + "; `leo-installer db init --root " + root.string() +
                "` creates it)";
        break;
    case migrations::DbState::stopped:
        line += "stopped (" + (st.detail.empty() ? std::string() : st.detail + "; ") + st.data_dir + ", PostgreSQL " +
                st.server_version + ")";
        break;
    case migrations::DbState::running:
        line += "running, pid " + std::to_string(st.pid.value_or(0)) + " (" + st.data_dir + ", PostgreSQL " +
                st.server_version + ")";
        break;
    }
    if (!st.ownership_problem.empty())
        line += "; " + st.ownership_problem;
    return line;
}

class DbCommand final : public Command {
public:
    /// `db status` is read-only for every user; init, start, stop and restart need root.
    [[nodiscard]] bool needs_root() const override { return m_action != "status"; }
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        add_assumeyes(sub);
        sub.add_option("action", m_action,
                       "init | start | stop | restart | status | purge (empty the internal broker database back to "
                       "a fresh install's schema; a restore point first)")
            ->required()
            ->check(CLI::IsMember({"init", "start", "stop", "restart", "status", "purge"}));
    }
    int run() override {
        const auto r = root();
        // Before anything: a root with shell characters would reach /bin/sh through initdb.
        migrations::check_root_for_postgres(r);
        if (m_action == "purge") return purge(r);
        if (m_assumeyes || m_assumeno)
            throw UsageError(fmt::format("`db {}` asks nothing: -y/--assumeyes and --assumeno are for `db purge`",
                                         m_action));
        migrations::InternalDatabase db(r);
        if (m_action == "status") {
            migrations::DbStatus st;
            try {
                st = db.status();
            } catch (const SystemError&) {
                if (::geteuid() == 0) throw;
                // Said, not guessed: another user cannot see leo's data directory.
                std::throw_with_nested(NeedsRootError(fmt::format(
                    "the state of the internal database in {} cannot be read as this user: run {} as root",
                    r.string(), installer::command_hint("db status"))));
            }
            std::cout << status_line(st, r) << "\n";
            return st.state == migrations::DbState::running ? k_status_running : k_status_not_running;
        }
        // Not under a run: an upgrade's migrations or restore point must not lose their
        // server to an administrator's `db stop`. A root without the state directory has
        // never had a run (and gets none from us here).
        std::optional<installer::RunLock> lock;
        if (fs::SystemRoot(r).exists(fs::SystemRoot::k_state_dir))
            lock.emplace(installer::RunLock::acquire(r, "db " + m_action));
        open_log(r);
        log::info("db {} --root {}", m_action, r.string());
        const auto say = [](const std::string& line) { std::cout << line << "\n"; };
        if (m_action == "init") {
            db.check_prerequisites();
            std::cout << (db.init() ? "initialised the internal database in "
                                    : "the internal database is already initialised in ")
                      << db.data_dir().string() << "\n";
        } else if (m_action == "start") {
            if (db.start(say))
                std::cout << "started the internal database, pid " << db.status().pid.value_or(0) << "\n";
            else
                std::cout << "the internal database is already running, pid " << db.status().pid.value_or(0) << "\n";
        } else if (m_action == "stop") {
            stop(db);
        } else if (m_action == "restart") {
            const bool was_running = stop(db);
            const bool started = db.start(say);
            const auto pid = db.status().pid.value_or(0);
            if (started)
                std::cout << (was_running ? "started it again, pid " : "started the internal database, pid ") << pid
                          << "\n";
            else
                std::cout << "the internal database was started meanwhile by someone else, pid " << pid << "\n";
        }
        return 0;
    }

private:
    /// `db purge` (installer/db_purge.hpp): the library takes the lock and asks.
    int purge(const std::filesystem::path& r) {
        open_log(r);
        log::info("db purge --root {}", r.string());
        installer::PurgeRequest req;
        req.root = r;
        req.confirm = [this](const std::string& plan) { return ask(plan); };
        installer::PurgeCallbacks cb;
        cb.on_step = [](const std::string& line) { std::cout << line << "\n" << std::flush; };
        cb.on_warning = [](const std::string& line) {
            std::cerr << k_prog << ": warning: " << line << "\n" << std::flush;
            log::warning("{}", line);
        };
        const auto out = installer::purge_internal_database(req, cb);
        std::cout << fmt::format("purged the internal database: schema {} of {} ({} migrations applied); restore "
                                 "point {} holds what it held ({} puts it back)\n",
                                 out.schema_version.value_or("none"), out.nevra, out.applied.size(),
                                 out.restore_point, installer::command_hint("rollback " + out.restore_point));
        return 0;
    }

    /// Stop the server when it runs; say which. True when it was running.
    static bool stop(migrations::InternalDatabase& db) {
        const auto before = db.status();
        if (before.state == migrations::DbState::running && db.stop()) {
            std::cout << "stopped the internal database (pid " << before.pid.value_or(0) << ")\n";
            return true;
        }
        std::cout << "the internal database was not running";
        if (before.state == migrations::DbState::not_initialised)
            std::cout << " (not initialised)";
        else if (!before.detail.empty())
            std::cout << " (" << before.detail << "; that process was not signalled)";
        std::cout << "\n";
        return false;
    }

    std::string m_action;
};

} // namespace

std::unique_ptr<Command> make_db_command() { return std::make_unique<DbCommand>(); }

} // namespace leo::cli
