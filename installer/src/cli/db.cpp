// leo-installer db: init, start, stop or report the internal PostgreSQL instance.
#include "command.hpp"

#include "leo/common/log.hpp"
#include "leo/migrations/internal_db.hpp"

#include <iostream>

#include <CLI/CLI.hpp>

namespace leo::cli {

namespace {

class DbCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        sub.add_option("action", m_action, "init | start | stop | status")
            ->required()
            ->check(CLI::IsMember({"init", "start", "stop", "status"}));
    }
    int run() override {
        const auto r = root();
        // Before anything: a root with shell characters would reach /bin/sh through initdb.
        migrations::check_root_for_postgres(r);
        migrations::InternalDatabase db(r);
        if (m_action == "status") {
            const auto st = db.status();
            switch (st.state) {
            case migrations::DbState::not_initialised:
                std::cout << "internal database: not initialised (" << db.data_dir().string() << ")\n";
                return 3;
            case migrations::DbState::stopped:
                std::cout << "internal database: stopped (" << st.data_dir << ")\n";
                return 3;
            case migrations::DbState::running:
                std::cout << "internal database: running, pid " << st.pid.value_or(0) << " (" << st.data_dir
                          << ", PostgreSQL " << st.server_version << ")\n";
                return 0;
            }
        }
        log::open_log(r);
        log::info("db {} --root {}", m_action, r.string());
        if (m_action == "init") {
            db.check_prerequisites();
            std::cout << (db.init() ? "initialised the internal database in "
                                    : "the internal database is already initialised in ")
                      << db.data_dir().string() << "\n";
        } else if (m_action == "start") {
            std::cout << (db.start() ? "started the internal database\n" : "the internal database is already running\n");
        } else if (m_action == "stop") {
            std::cout << (db.stop() ? "stopped the internal database\n" : "the internal database was not running\n");
        }
        return 0;
    }

private:
    std::string m_action;
};

} // namespace

std::unique_ptr<Command> make_db_command() { return std::make_unique<DbCommand>(); }

} // namespace leo::cli
