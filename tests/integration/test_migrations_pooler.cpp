// The migration engine behind pgbouncer (Debian's, on 127.0.0.1): in transaction mode a
// session-level advisory lock cannot serialise the brokers of a cluster, so migrate()
// refuses with an explanation and changes nothing; in session mode it migrates.
#include "db_support.hpp"
#include "test_support.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/migrations/engine.hpp"

#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include <csignal>
#include <unistd.h>

namespace {
namespace stdfs = std::filesystem;
namespace mig = leo::migrations;

class Pooler : public leo::test::SandboxDatabaseTest {
protected:
    void TearDown() override {
        for (const auto& pidfile : m_pidfiles)
            if (auto pid = leo::fs::try_read_file(pidfile)) ::kill(std::stoi(*pid), SIGTERM);
        SandboxDatabaseTest::TearDown();
    }

    /// Start pgbouncer (as the sandbox's leo uid: it refuses root) in `pool_mode` in front
    /// of the sandbox database; returns a conninfo through it.
    std::string start_pgbouncer(const std::string& pool_mode) {
        const auto leo = leo::accounts::find_user(m_root, "leo");
        if (!leo) throw std::runtime_error("no leo user");
        const auto dir = m_tmp.path() / ("pgb-" + pool_mode);
        stdfs::create_directories(dir);
        const int port = leo::test::free_loopback_port();
        std::ofstream(dir / "userlist.txt") << "\"leo\" \"\"\n";
        std::ofstream(dir / "pgbouncer.ini")
            << "[databases]\nleo = host=" << m_db->socket_dir().string() << " port=5432 dbname=leo user=leo\n"
            << "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = " << port << "\nunix_socket_dir =\n"
            << "auth_type = trust\nauth_file = " << (dir / "userlist.txt").string() << "\npool_mode = " << pool_mode
            << "\nlogfile = " << (dir / "pgbouncer.log").string() << "\npidfile = " << (dir / "pgbouncer.pid").string()
            << "\ndefault_pool_size = 4\n";
        leo::test::run_ok({"chown", "-R", std::to_string(leo->uid) + ":" + std::to_string(leo->gid), dir.string()});
        leo::subprocess::Options o;
        o.uid = leo->uid;
        o.gid = leo->gid;
        const auto r = leo::subprocess::run({"pgbouncer", "-d", (dir / "pgbouncer.ini").string()}, o);
        if (!r.ok()) throw std::runtime_error("pgbouncer did not start: " + r.err + r.out);
        m_pidfiles.push_back(dir / "pgbouncer.pid");
        const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port) + " dbname=leo user=leo";
        for (int i = 0; i < 100; ++i) {
            try {
                (void)mig::Connection::open(conninfo);
                return conninfo;
            } catch (const leo::DatabaseError&) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        }
        throw std::runtime_error("pgbouncer does not answer: " +
                                 leo::fs::try_read_file(dir / "pgbouncer.log").value_or(""));
    }

    std::vector<stdfs::path> m_pidfiles;
};

TEST_F(Pooler, TransactionModeIsRefusedAndNothingChanges) {
    start_database();
    const auto files = mig::load_migrations(leo::test::source_dir() / "migrations/sql");
    auto through = mig::Connection::open(start_pgbouncer("transaction"));
    try {
        (void)mig::migrate(through, files, "9.1.0");
        ADD_FAILURE() << "migrate through a transaction-mode pooler was not refused";
    } catch (const leo::MigrationError& e) {
        EXPECT_EQ(e.code(), leo::ExitCode::refused);
        EXPECT_NE(std::string(e.what()).find("connection pooler in transaction mode"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(mig::read_schema_state(*m_conn).has_history) << "the refused migration changed the database";
}

TEST_F(Pooler, SessionModeMigrates) {
    start_database();
    const auto files = mig::load_migrations(leo::test::source_dir() / "migrations/sql");
    auto through = mig::Connection::open(start_pgbouncer("session"));
    const auto res = mig::migrate(through, files, "9.1.0");
    EXPECT_EQ(res.schema_after, std::optional<std::string>(files.back().version));
    EXPECT_EQ(mig::read_schema_state(*m_conn).schema_version, std::optional<std::string>(files.back().version));
}

} // namespace
