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

} // namespace leo::test
