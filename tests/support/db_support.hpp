#pragma once
/// A test fixture with a sandbox root, its `leo` user and its internal PostgreSQL
/// instance (not initialised: tests call init()/start() or start_database()). TearDown
/// always stops the server, whatever the test did.

#include "test_support.hpp"

#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"

#include <memory>

#include <gtest/gtest.h>

namespace leo::test {

class SandboxDatabaseTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_root = m_tmp.path() / "r";
        make_sandbox_root(m_root);
        create_leo_user(m_root);
        m_db = std::make_unique<migrations::InternalDatabase>(m_root);
    }
    void TearDown() override {
        m_conn.reset();
        if (!m_db) return;
        try {
            m_db->stop();
        } catch (const std::exception& e) {
            ADD_FAILURE() << "stop in teardown: " << e.what();
        }
    }
    /// init() and start() the server, then connect m_conn to database "leo".
    void start_database() {
        ASSERT_TRUE(m_db->init());
        ASSERT_TRUE(m_db->start());
        m_conn = std::make_unique<migrations::Connection>(migrations::Connection::open(m_db->conninfo()));
    }

    TempDir m_tmp;
    std::filesystem::path m_root;
    std::unique_ptr<migrations::InternalDatabase> m_db;
    std::unique_ptr<migrations::Connection> m_conn;
};

/// A second PostgreSQL server standing in for an external database server: its own
/// sandbox root and leo user, listening on 127.0.0.1:port() with scram-sha-256 password
/// authentication for TCP clients (its unix socket, for the test's own superuser
/// session, stays trusted). stop() runs on destruction.
class ExternalPostgres {
public:
    /// `extra_conf` is appended to postgresql.conf ("wal_level = logical\n") and
    /// `extra_hba` to pg_hba.conf ("host replication leo 127.0.0.1/32 trust\n") before
    /// the server starts.
    explicit ExternalPostgres(const std::string& extra_conf = "", const std::string& extra_hba = "");
    ~ExternalPostgres();
    ExternalPostgres(const ExternalPostgres&) = delete;
    ExternalPostgres& operator=(const ExternalPostgres&) = delete;

    [[nodiscard]] int port() const { return m_port; }
    /// The server's data directory (owned by its sandbox root's leo user).
    [[nodiscard]] std::filesystem::path data_dir() const { return m_db->data_dir(); }
    /// A superuser session on `dbname` over the unix socket.
    [[nodiscard]] migrations::Connection admin(const std::string& dbname = "postgres") const;
    /// CREATE ROLE name LOGIN PASSWORD password [CREATEDB].
    void create_role(const std::string& name, const std::string& password, bool createdb) const;
    /// CREATE DATABASE name OWNER owner.
    void create_database(const std::string& name, const std::string& owner) const;
    [[nodiscard]] bool database_exists(const std::string& name) const;
    /// "host=127.0.0.1 port=N dbname=D user=U password=P".
    [[nodiscard]] std::string conninfo(const std::string& dbname, const std::string& user,
                                       const std::string& password) const;

private:
    TempDir m_tmp;
    std::filesystem::path m_root;
    std::unique_ptr<migrations::InternalDatabase> m_db;
    int m_port = 0;
};

/// Tables whose names need quoting, holding rows: "AuditLog" (mixed case, a serial),
/// "audit log" (a space), "a.b" (a dot), "quo""te" (a double quote), in public; and
/// audit.events (a bigserial sequence), a.b (the same text as public."a.b" qualified) and
/// "Ops.Team"."Mixed Case" in other schemas. Made in `conn`'s database.
void create_odd_tables(migrations::Connection& conn);
/// Every row of the tables of create_odd_tables, in full ("schema.table:" then each row as
/// text, sorted), and each sequence's last_value, to compare before and after.
[[nodiscard]] std::string odd_table_contents(migrations::Connection& conn);

/// A TCP port on 127.0.0.1 that nothing listens on now (bind to port 0, read, close).
int free_loopback_port();

} // namespace leo::test
