// Integration tests of the internal PostgreSQL instance: real initdb, pg_ctl and server,
// run as the sandbox root's leo uid under nss_wrapper.
#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "db_support.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <memory>

#include <sys/stat.h>

namespace leo::migrations {
namespace {

namespace stdfs = std::filesystem;

/// Set an environment variable for one scope, restoring the previous value.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : m_name(name) {
        if (const char* old = std::getenv(name))
            m_old = old;
        if (value != nullptr)
            ::setenv(name, value, 1);
        else
            ::unsetenv(name);
    }
    ~ScopedEnv() {
        if (m_old)
            ::setenv(m_name.c_str(), m_old->c_str(), 1);
        else
            ::unsetenv(m_name.c_str());
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    std::string m_name;
    std::optional<std::string> m_old;
};

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const DatabaseError& e) {
        return e.what();
    }
    return "<no DatabaseError>";
}

class InternalDbTest : public test::SandboxDatabaseTest {};

TEST_F(InternalDbTest, Layout) {
    EXPECT_EQ(m_db->pgsql_dir(), m_root / "home/leo/pgsql");
    EXPECT_EQ(m_db->data_dir(), m_root / "home/leo/pgsql/data");
    EXPECT_EQ(m_db->socket_dir(), m_root / "home/leo/pgsql");
    EXPECT_EQ(m_db->log_file(), m_root / "home/leo/pgsql/postgresql.log");
    EXPECT_NE(m_db->conninfo().find("dbname='leo'"), std::string::npos) << m_db->conninfo();
    EXPECT_EQ(m_db->status().state, DbState::not_initialised);
}

TEST_F(InternalDbTest, InitStartStatusConnectStop) {
    m_db->check_prerequisites();
    ASSERT_TRUE(m_db->init());

    // init leaves the server stopped; the data directory is leo's and private.
    auto st = m_db->status();
    EXPECT_EQ(st.state, DbState::stopped);
    EXPECT_FALSE(st.pid);
    EXPECT_EQ(st.server_version, "15");
    EXPECT_EQ(st.data_dir, m_db->data_dir().string());
    struct stat sb {};
    ASSERT_EQ(::stat(m_db->pgsql_dir().c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 07777, 0700U);
    ASSERT_EQ(::stat(m_db->data_dir().c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 07777, 0700U);
    EXPECT_NE(sb.st_uid, 0U);
    EXPECT_FALSE(stdfs::exists(m_db->pgsql_dir() / "data.init"));

    ASSERT_TRUE(m_db->start());
    st = m_db->status();
    EXPECT_EQ(st.state, DbState::running);
    ASSERT_TRUE(st.pid);
    EXPECT_GT(*st.pid, 0);
    EXPECT_FALSE(m_db->start()) << "a second start does nothing";
    EXPECT_TRUE(stdfs::exists(m_db->socket_dir() / ".s.PGSQL.5432"));

    {
        auto conn = Connection::open(m_db->conninfo());
        auto rows = conn.query("SELECT current_user, current_database(), current_setting('listen_addresses'), "
                               "pg_catalog.pg_encoding_to_char(encoding) FROM pg_database WHERE datname = $1",
                               {std::string("leo")});
        ASSERT_EQ(rows.rows.size(), 1U);
        EXPECT_EQ(rows.at(0, 0), "leo");
        EXPECT_EQ(rows.at(0, 1), "leo");
        EXPECT_EQ(rows.at(0, 2), "");
        EXPECT_EQ(rows.at(0, 3), "UTF8");
        EXPECT_GE(conn.server_version_num(), 90100);
    }

    ASSERT_TRUE(m_db->stop());
    st = m_db->status();
    EXPECT_EQ(st.state, DbState::stopped);
    EXPECT_FALSE(m_db->stop()) << "a second stop does nothing";
    EXPECT_FALSE(stdfs::exists(m_db->data_dir() / "postmaster.pid"));
}

TEST_F(InternalDbTest, InitTwiceIsIdempotent) {
    ASSERT_TRUE(m_db->init());
    const auto before = test::snapshot_tree(m_db->data_dir());
    EXPECT_FALSE(m_db->init());
    EXPECT_EQ(test::snapshot_tree(m_db->data_dir()), before);
    // and when running, init leaves the server alone
    ASSERT_TRUE(m_db->start());
    EXPECT_FALSE(m_db->init());
    EXPECT_EQ(m_db->status().state, DbState::running);
}

TEST_F(InternalDbTest, InitRedoesAnUnfinishedInit) {
    // What an interrupted initdb leaves: leo's files (init() removes them as leo).
    stdfs::create_directories(m_db->pgsql_dir() / "data.init");
    std::ofstream(m_db->pgsql_dir() / "data.init/leftover") << "x";
    const auto leo = accounts::find_user(m_root, "leo");
    ASSERT_TRUE(leo);
    for (const char* p : {"", "/data.init", "/data.init/leftover"})
        ASSERT_EQ(::chown((m_db->pgsql_dir().string() + p).c_str(), leo->uid, leo->gid), 0) << p;
    ASSERT_TRUE(m_db->init());
    EXPECT_FALSE(stdfs::exists(m_db->pgsql_dir() / "data.init"));
    EXPECT_EQ(m_db->status().state, DbState::stopped);
}

TEST_F(InternalDbTest, StartBeforeInitIsRefused) {
    const auto msg = error_of([&] { m_db->start(); });
    EXPECT_NE(msg.find("not initialised"), std::string::npos) << msg;
    EXPECT_FALSE(m_db->stop());
}

TEST_F(InternalDbTest, StartFailureQuotesTheServerLog) {
    ASSERT_TRUE(m_db->init());
    std::ofstream(m_db->data_dir() / "postgresql.conf", std::ios::app) << "leo_bogus_setting = 1\n";
    const auto msg = error_of([&] { m_db->start(); });
    EXPECT_NE(msg.find("server log"), std::string::npos) << msg;
    EXPECT_NE(msg.find("leo_bogus_setting"), std::string::npos) << msg;
    EXPECT_EQ(m_db->status().state, DbState::stopped);
}

TEST_F(InternalDbTest, NonTraversableParentIsReportedAndNothingChanges) {
    const auto home = m_root / "home";
    ASSERT_EQ(::chmod(home.c_str(), 0700), 0);
    const auto before = test::snapshot_tree(m_root);
    const auto msg = error_of([&] { m_db->check_prerequisites(); });
    EXPECT_NE(msg.find("cannot traverse " + home.string() + " (mode 0700 owner root)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("chmod o+x " + home.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("runs as leo (uid"), std::string::npos) << msg;
    EXPECT_EQ(error_of([&] { m_db->init(); }), msg);
    EXPECT_EQ(test::snapshot_tree(m_root), before);
    ASSERT_EQ(::chmod(home.c_str(), 0755), 0);
    EXPECT_NO_THROW(m_db->check_prerequisites());
}

TEST_F(InternalDbTest, MissingUserIsReported) {
    test::TempDir other;
    test::make_sandbox_root(other.path() / "r");
    InternalDatabase db(other.path() / "r");
    const auto msg = error_of([&] { db.check_prerequisites(); });
    EXPECT_NE(msg.find("user leo does not exist"), std::string::npos) << msg;
}

TEST_F(InternalDbTest, LongSocketPathIsReported) {
    const auto deep = m_tmp.path() / std::string(90, 'd');
    test::make_sandbox_root(deep);
    test::create_leo_user(deep);
    InternalDatabase db(deep);
    const auto msg = error_of([&] { db.check_prerequisites(); });
    EXPECT_NE(msg.find("shorter than 108 bytes"), std::string::npos) << msg;
}

TEST(FindPgBindir, FindsTheServerBinaries) {
    ScopedEnv unset("LEO_PG_BINDIR", nullptr);
    const auto dir = find_pg_bindir();
    EXPECT_TRUE(stdfs::exists(dir / "initdb")) << dir;
    EXPECT_TRUE(stdfs::exists(dir / "postgres")) << dir;
}

TEST(FindPgBindir, HonoursLeoPgBindirOnly) {
    {
        ScopedEnv env("LEO_PG_BINDIR", "/nonexistent");
        const auto msg = error_of([] { (void)find_pg_bindir(); });
        EXPECT_NE(msg.find("PostgreSQL server binaries (initdb, postgres) not found in LEO_PG_BINDIR=/nonexistent"),
                  std::string::npos)
            << msg;
        EXPECT_NE(msg.find("install the postgresql server package"), std::string::npos) << msg;

        test::TempDir root;
        InternalDatabase db(root.path());
        EXPECT_NE(error_of([&] { db.check_prerequisites(); }).find("LEO_PG_BINDIR=/nonexistent"), std::string::npos);
    }
    ScopedEnv unset("LEO_PG_BINDIR", nullptr);
    const auto found = find_pg_bindir();
    ScopedEnv env("LEO_PG_BINDIR", found.c_str());
    EXPECT_EQ(find_pg_bindir(), found);
}

} // namespace
} // namespace leo::migrations
