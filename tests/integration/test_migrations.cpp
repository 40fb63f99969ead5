// Integration tests of the migration engine against a real PostgreSQL (the internal
// instance of a sandbox root) with the repository's real migrations/sql.
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "db_support.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <memory>

namespace leo::migrations {
namespace {

namespace stdfs = std::filesystem;

const std::string k_broker = "9.1.2";

stdfs::path shipped_sql() { return test::source_dir() / "migrations/sql"; }

/// Copy the shipped migrations whose version starts with `prefix` ("" for all) into `dir`.
void copy_shipped(const stdfs::path& dir, const std::string& prefix = "") {
    for (const auto& m : load_migrations(shipped_sql()))
        if (m.version.starts_with(prefix))
            stdfs::copy_file(m.path, dir / m.script);
}

void write(const stdfs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
}

std::string migration_error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const MigrationError& e) {
        return e.what();
    }
    return "<no MigrationError>";
}

class MigrationsTest : public test::SandboxDatabaseTest {
protected:
    void SetUp() override {
        SandboxDatabaseTest::SetUp();
        start_database();
    }

    bool table_exists(const std::string& name) {
        return !m_conn
                    ->query("SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE c.relname = $1 AND n.nspname = current_schema()",
                            {name})
                    .empty();
    }
    bool column_exists(const std::string& table, const std::string& column) {
        return !m_conn
                    ->query("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                            "AND table_name = $1 AND column_name = $2",
                            {table, column})
                    .empty();
    }
    std::string scalar(const std::string& sql) { return m_conn->query(sql).at(0, 0); }
    /// Everything in the history, to compare before and after a refusal.
    std::string history_dump() {
        if (!table_exists("leo_schema_history"))
            return "<no history>";
        std::string out;
        auto rows = m_conn->query("SELECT installed_rank, version, checksum, broker_version, success "
                                  "FROM leo_schema_history ORDER BY installed_rank");
        for (const auto& row : rows.rows) {
            for (const auto& v : row)
                out += v.value_or("NULL") + " ";
            out += "\n";
        }
        return out;
    }
};

TEST_F(MigrationsTest, MigratesTheShippedSchema) {
    const auto migrations = load_migrations(shipped_sql());
    auto result = migrate(*m_conn, migrations, k_broker);
    EXPECT_FALSE(result.schema_before);
    ASSERT_TRUE(result.schema_after);
    EXPECT_EQ(*result.schema_after, "9.1.0.2");
    EXPECT_EQ(result.applied,
              (std::vector<std::string>{"V9.0.0.1__baseline.sql", "V9.0.0.2__default_settings.sql",
                                        "V9.1.0.1__jobs_attempts.sql", "V9.1.0.2__jobs_site_index.sql"}));

    for (const char* t :
         {"sites", "cluster_members", "work_queue", "settings", "support_licence", "leo_schema_history"})
        EXPECT_TRUE(table_exists(t)) << t;
    EXPECT_TRUE(column_exists("work_queue", "attempts"));
    EXPECT_TRUE(table_exists("work_queue_site_status_idx"));
    EXPECT_EQ(scalar("SELECT value FROM settings WHERE name = 'upgrades_enabled'"), "true");

    const auto state = read_schema_state(*m_conn);
    EXPECT_TRUE(state.has_history);
    EXPECT_EQ(state.schema_version, "9.1.0.2");
    EXPECT_EQ(state.broker_version, k_broker);
    ASSERT_EQ(state.applied.size(), 4U);
    EXPECT_TRUE(state.failed.empty());
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(state.applied[i].version, migrations[i].version);
        EXPECT_EQ(state.applied[i].checksum, migrations[i].checksum);
        EXPECT_EQ(state.applied[i].checksum_algorithm, k_checksum_algorithm);
        EXPECT_EQ(state.applied[i].broker_version, k_broker);
        EXPECT_EQ(state.applied[i].script, migrations[i].script);
    }
    EXPECT_EQ(state.applied[0].description, "baseline");
    EXPECT_EQ(scalar("SELECT count(*) FROM leo_schema_history WHERE success AND installed_by = 'leo' "
                     "AND execution_time_ms >= 0 AND installed_on <= now()"),
              "4");
}

TEST_F(MigrationsTest, SecondMigrateAppliesNothing) {
    const auto migrations = load_migrations(shipped_sql());
    (void)migrate(*m_conn, migrations, k_broker);
    const auto before = history_dump();
    auto again = migrate(*m_conn, migrations, "9.1.3");
    EXPECT_TRUE(again.applied.empty());
    EXPECT_EQ(again.schema_before, "9.1.0.2");
    EXPECT_EQ(again.schema_after, "9.1.0.2");
    EXPECT_EQ(history_dump(), before);
    EXPECT_EQ(read_schema_state(*m_conn).broker_version, k_broker);
}

TEST_F(MigrationsTest, OlderSchemaThenFullSet) {
    test::TempDir dir;
    copy_shipped(dir.path(), "9.0.");
    auto first = migrate(*m_conn, load_migrations(dir.path()), "9.0.40");
    EXPECT_EQ(first.applied.size(), 2U);
    EXPECT_EQ(first.schema_after, "9.0.0.2");
    EXPECT_FALSE(column_exists("work_queue", "attempts"));
    EXPECT_EQ(read_schema_state(*m_conn).broker_version, "9.0.40");

    // a pre-9.1 failed job whose attempt count lives in the payload moves to the column
    m_conn->exec("INSERT INTO work_queue (site_id, job_type, status, payload) VALUES (1, 'x', 'failed', 'attempts=3')");

    auto second = migrate(*m_conn, load_migrations(shipped_sql()), k_broker);
    EXPECT_EQ(second.schema_before, "9.0.0.2");
    EXPECT_EQ(second.schema_after, "9.1.0.2");
    EXPECT_EQ(second.applied,
              (std::vector<std::string>{"V9.1.0.1__jobs_attempts.sql", "V9.1.0.2__jobs_site_index.sql"}));
    EXPECT_EQ(scalar("SELECT attempts FROM work_queue"), "3");

    const auto state = read_schema_state(*m_conn);
    EXPECT_EQ(state.schema_version, "9.1.0.2");
    EXPECT_EQ(state.broker_version, k_broker);
    ASSERT_EQ(state.applied.size(), 4U);
    EXPECT_EQ(state.applied[0].broker_version, "9.0.40");
    EXPECT_EQ(state.applied[3].broker_version, k_broker);
}

TEST_F(MigrationsTest, FailingMigrationRollsBackOnlyItself) {
    test::TempDir dir;
    copy_shipped(dir.path(), "9.0.");
    write(dir.path() / "V9.0.0.3__bad.sql", "CREATE TABLE half_done (x integer);\nSELECT * FROM no_such_table;\n");
    write(dir.path() / "V9.0.0.4__after.sql", "CREATE TABLE after_bad (x integer);\n");

    const auto msg = migration_error_of([&] { (void)migrate(*m_conn, load_migrations(dir.path()), k_broker); });
    EXPECT_NE(msg.find("migration V9.0.0.3__bad.sql failed: ERROR: relation \"no_such_table\" does not exist"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;

    EXPECT_FALSE(table_exists("half_done"));
    EXPECT_FALSE(table_exists("after_bad"));
    EXPECT_TRUE(table_exists("sites"));
    auto state = read_schema_state(*m_conn);
    EXPECT_EQ(state.schema_version, "9.0.0.2");
    EXPECT_EQ(state.applied.size(), 2U);
    EXPECT_TRUE(state.failed.empty());

    // The connection is usable afterwards, and a fixed script applies.
    write(dir.path() / "V9.0.0.3__bad.sql", "CREATE TABLE half_done (x integer);\n");
    auto result = migrate(*m_conn, load_migrations(dir.path()), k_broker);
    EXPECT_EQ(result.applied, (std::vector<std::string>{"V9.0.0.3__bad.sql", "V9.0.0.4__after.sql"}));
    EXPECT_TRUE(table_exists("half_done"));
    EXPECT_TRUE(table_exists("after_bad"));
}

TEST_F(MigrationsTest, NewerSchemaIsRefusedBeforeAnythingChanges) {
    test::TempDir dir;
    copy_shipped(dir.path(), "9.0.");
    write(dir.path() / "V9.2.0.1__future.sql", "CREATE TABLE future_things (x integer);\n");
    (void)migrate(*m_conn, load_migrations(dir.path()), "9.2.0");
    const auto before = history_dump();

    const auto msg = migration_error_of([&] { (void)migrate(*m_conn, load_migrations(shipped_sql()), k_broker); });
    EXPECT_NE(msg.find("database schema 9.2.0.1 is newer than this broker's newest migration 9.1.0.2 (broker 9.1.2): "
                       "a broker cannot run an unknown schema; install broker 9.2.0 or newer"),
              std::string::npos)
        << msg;
    EXPECT_EQ(history_dump(), before);
    EXPECT_FALSE(column_exists("work_queue", "attempts"));

    // a dry run refuses in the same words
    EXPECT_EQ(
        migration_error_of([&] { (void)migrate(*m_conn, load_migrations(shipped_sql()), k_broker, DryRun::yes); }),
        msg);
}

TEST_F(MigrationsTest, ChecksumMismatchIsRefusedBeforeAnythingChanges) {
    test::TempDir dir;
    copy_shipped(dir.path(), "9.0.");
    (void)migrate(*m_conn, load_migrations(dir.path()), k_broker);
    const auto applied_checksum = read_schema_state(*m_conn).applied[1].checksum;
    const auto before = history_dump();

    // Line endings and a byte-order mark are not a change.
    const auto script = dir.path() / "V9.0.0.2__default_settings.sql";
    std::string text = fs::read_file(script);
    std::string crlf = "\xEF\xBB\xBF";
    for (char c : text)
        crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    write(script, crlf);
    EXPECT_TRUE(migrate(*m_conn, load_migrations(dir.path()), k_broker).applied.empty());

    // An edit is.
    write(script, text + "-- edited after release\n");
    copy_shipped(dir.path(), "9.1.");
    const auto migrations = load_migrations(dir.path());
    const auto msg = migration_error_of([&] { (void)migrate(*m_conn, migrations, k_broker); });
    EXPECT_NE(msg.find("V9.0.0.2__default_settings.sql"), std::string::npos) << msg;
    EXPECT_NE(msg.find(applied_checksum), std::string::npos) << msg;
    EXPECT_NE(msg.find(migrations[1].checksum), std::string::npos) << msg;
    EXPECT_NE(applied_checksum, migrations[1].checksum);
    EXPECT_EQ(history_dump(), before);
    EXPECT_FALSE(column_exists("work_queue", "attempts"));
}

TEST_F(MigrationsTest, DryRunChangesNothing) {
    const auto migrations = load_migrations(shipped_sql());
    auto fresh = migrate(*m_conn, migrations, k_broker, DryRun::yes);
    EXPECT_EQ(fresh.applied.size(), 4U);
    EXPECT_FALSE(fresh.schema_before);
    EXPECT_EQ(fresh.schema_after, "9.1.0.2");
    EXPECT_FALSE(table_exists("leo_schema_history"));
    EXPECT_FALSE(table_exists("sites"));
    EXPECT_FALSE(read_schema_state(*m_conn).has_history);

    test::TempDir dir;
    copy_shipped(dir.path(), "9.0.");
    (void)migrate(*m_conn, load_migrations(dir.path()), "9.0.40");
    const auto before = history_dump();
    auto partial = migrate(*m_conn, migrations, k_broker, DryRun::yes);
    EXPECT_EQ(partial.schema_before, "9.0.0.2");
    EXPECT_EQ(partial.schema_after, "9.1.0.2");
    EXPECT_EQ(partial.applied,
              (std::vector<std::string>{"V9.1.0.1__jobs_attempts.sql", "V9.1.0.2__jobs_site_index.sql"}));
    EXPECT_EQ(history_dump(), before);
    EXPECT_FALSE(column_exists("work_queue", "attempts"));
}

TEST_F(MigrationsTest, MissingAppliedFileIsRefused) {
    (void)migrate(*m_conn, load_migrations(shipped_sql()), k_broker);
    const auto before = history_dump();
    test::TempDir dir;
    copy_shipped(dir.path());
    stdfs::remove(dir.path() / "V9.0.0.1__baseline.sql");
    const auto migrations = load_migrations(dir.path());
    const auto msg = migration_error_of([&] { (void)migrate(*m_conn, migrations, k_broker); });
    EXPECT_NE(msg.find("migration V9.0.0.1__baseline.sql (version 9.0.0.1) was applied to the database by broker "
                       "9.1.2 but is missing from the migrations directory"),
              std::string::npos)
        << msg;
    const auto v = validate(read_schema_state(*m_conn), migrations, k_broker);
    ASSERT_EQ(v.problems.size(), 1U);
    EXPECT_EQ(v.problems[0].kind, ValidationProblem::Kind::missing_file);
    EXPECT_EQ(history_dump(), before);
}

TEST_F(MigrationsTest, UnappliedOlderMigrationIsRefused) {
    test::TempDir dir;
    copy_shipped(dir.path());
    stdfs::remove(dir.path() / "V9.0.0.2__default_settings.sql");
    (void)migrate(*m_conn, load_migrations(dir.path()), k_broker);
    copy_shipped(dir.path(), "9.0.0.2");
    const auto msg = migration_error_of([&] { (void)migrate(*m_conn, load_migrations(dir.path()), k_broker); });
    EXPECT_NE(msg.find("V9.0.0.2__default_settings.sql is older than the database schema 9.1.0.2"), std::string::npos)
        << msg;
}

TEST_F(MigrationsTest, TransactionalMigrationThatCommitsIsRefusedBeforeAnythingRuns) {
    test::TempDir dir;
    copy_shipped(dir.path(), "9.0.");
    (void)migrate(*m_conn, load_migrations(dir.path()), k_broker);
    const auto before = history_dump();
    // A clean migration comes first: it must not run either (the refusal is at plan time).
    write(dir.path() / "V9.0.0.3__clean.sql", "CREATE TABLE clean_first (x integer);\n");
    write(dir.path() / "V9.0.0.4__split.sql", "CREATE TABLE first_half (x integer);\n"
                                              "-- the author meant to keep the first half\n"
                                              "COMMIT;\n"
                                              "CREATE TABLE second_half (x integer);\n");
    const auto files = load_migrations(dir.path());

    const auto dry = migration_error_of([&] { (void)migrate(*m_conn, files, k_broker, DryRun::yes); });
    EXPECT_NE(dry.find("migration V9.0.0.4__split.sql, line 3: COMMIT: a migration runs in one transaction"),
              std::string::npos)
        << dry;
    EXPECT_NE(dry.find("remove the statement, or mark the migration with the line '-- leo:no-transaction'"),
              std::string::npos)
        << dry;
    const auto msg = migration_error_of([&] { (void)migrate(*m_conn, files, k_broker); });
    EXPECT_EQ(msg, dry);
    EXPECT_EQ(history_dump(), before);
    EXPECT_FALSE(table_exists("clean_first"));
    EXPECT_FALSE(table_exists("first_half"));
    EXPECT_FALSE(table_exists("second_half"));
    const auto v = validate(read_schema_state(*m_conn), files, k_broker);
    ASSERT_EQ(v.problems.size(), 1U);
    EXPECT_EQ(v.problems[0].kind, ValidationProblem::Kind::transaction_control);

    // Without the COMMIT it applies, both migrations.
    write(dir.path() / "V9.0.0.4__split.sql", "CREATE TABLE first_half (x integer);\n"
                                              "CREATE TABLE second_half (x integer);\n");
    EXPECT_EQ(migrate(*m_conn, load_migrations(dir.path()), k_broker).applied,
              (std::vector<std::string>{"V9.0.0.3__clean.sql", "V9.0.0.4__split.sql"}));
    EXPECT_TRUE(table_exists("second_half"));
}

TEST_F(MigrationsTest, EndInsideABodyOrACaseAndSavepointsAreNotRefused) {
    test::TempDir dir;
    std::string sql = "CREATE TABLE t (x integer);\n"
                      "DO $$\nBEGIN\n  INSERT INTO t VALUES (1);\nEND\n$$;\n"
                      "CREATE FUNCTION sign_of(i integer) RETURNS text LANGUAGE plpgsql AS $body$\n"
                      "BEGIN\n  RETURN CASE WHEN i > 0 THEN 'pos' ELSE 'neg' END;\nEND;\n$body$;\n"
                      "INSERT INTO t SELECT CASE WHEN count(*) > 0 THEN 2\nEND FROM t;\n"
                      "SAVEPOINT s;\nINSERT INTO t VALUES (99);\nROLLBACK TO SAVEPOINT s;\nRELEASE SAVEPOINT s;\n";
    if (m_conn->server_version_num() >= 140000) // SQL-standard bodies: PostgreSQL 14+
        sql += "CREATE FUNCTION three() RETURNS integer LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 3;\nEND;\n";
    write(dir.path() / "V1__bodies.sql", sql);
    const auto files = load_migrations(dir.path());
    EXPECT_TRUE(files[0].transaction_control.empty());
    EXPECT_EQ(migrate(*m_conn, files, k_broker).applied, (std::vector<std::string>{"V1__bodies.sql"}));
    EXPECT_EQ(scalar("SELECT string_agg(x::text, ',' ORDER BY x) FROM t"), "1,2");
    EXPECT_EQ(scalar("SELECT sign_of(-1)"), "neg");
}

TEST_F(MigrationsTest, NoTransactionMigrationFailingHalfwayIsRecordedAndRepaired) {
    test::TempDir dir;
    copy_shipped(dir.path(), "9.0.");
    write(dir.path() / "V9.0.0.3__two_steps.sql", "-- leo:no-transaction\n"
                                                  "CREATE TABLE step_one (x integer);\n"
                                                  "CREATE INDEX CONCURRENTLY step_two_idx ON later_table (x);\n");
    write(dir.path() / "V9.0.0.4__after.sql", "CREATE TABLE after_two_steps (x integer);\n");
    const auto files = load_migrations(dir.path());

    const auto failed = migration_error_of([&] { (void)migrate(*m_conn, files, k_broker); });
    EXPECT_NE(failed.find("migration V9.0.0.3__two_steps.sql (no transaction) failed at statement 2 of 2: ERROR: "
                          "relation \"later_table\" does not exist"),
              std::string::npos)
        << failed;
    EXPECT_NE(failed.find("line 3 of the script"), std::string::npos) << failed;
    EXPECT_NE(failed.find("its first 1 statement(s) had completed and stay applied, and it is recorded as failed"),
              std::string::npos)
        << failed;
    EXPECT_NE(failed.find("then remove the failed entry with `leo-installer migrate --repair`"), std::string::npos)
        << failed;
    EXPECT_EQ(failed.find("restore point"), std::string::npos) << "the engine knows no restore points: " << failed;
    EXPECT_TRUE(table_exists("step_one"));
    EXPECT_FALSE(table_exists("after_two_steps"));
    auto state = read_schema_state(*m_conn);
    EXPECT_EQ(state.schema_version, "9.0.0.2");
    ASSERT_EQ(state.failed.size(), 1U);
    EXPECT_EQ(state.failed[0].version, "9.0.0.3");
    EXPECT_EQ(state.failed[0].script, "V9.0.0.3__two_steps.sql");
    EXPECT_EQ(state.failed[0].broker_version, k_broker);
    EXPECT_FALSE(state.failed[0].installed_on.empty());
    EXPECT_EQ(state.failed[0].failure, "at statement 2 of 2 (line 3): ERROR: relation \"later_table\" does not exist; "
                                       "its first 1 statement(s) had completed");

    // Every later run refuses, changing nothing, and says what to do.
    const auto before = history_dump();
    const auto refused = migration_error_of([&] { (void)migrate(*m_conn, files, k_broker); });
    EXPECT_NE(refused.find("migration V9.0.0.3__two_steps.sql (version 9.0.0.3) failed part-way by broker 9.1.2"),
              std::string::npos)
        << refused;
    EXPECT_NE(refused.find(": at statement 2 of 2 (line 3): ERROR: relation \"later_table\" does not exist; its first "
                           "1 statement(s) had completed; leo_schema_history records it as failed"),
              std::string::npos)
        << refused;
    EXPECT_NE(refused.find("undo by hand what the migration changed (it runs again from its first statement), then "
                           "remove the failed entry with `leo-installer migrate --repair`"),
              std::string::npos)
        << refused;
    EXPECT_EQ(migration_error_of([&] { (void)migrate(*m_conn, files, k_broker, DryRun::yes); }), refused);
    EXPECT_EQ(history_dump(), before);
    EXPECT_FALSE(table_exists("after_two_steps"));
    const auto v = validate(state, files, k_broker);
    ASSERT_EQ(v.problems.size(), 1U);
    EXPECT_EQ(v.problems[0].kind, ValidationProblem::Kind::failed_migration);

    // repair removes exactly the confirmed entry; a second repair finds it gone.
    const auto repaired = repair(*m_conn, state.failed);
    ASSERT_EQ(repaired.removed.size(), 1U);
    EXPECT_EQ(repaired.removed[0].version, "9.0.0.3");
    EXPECT_TRUE(repaired.already_gone.empty());
    EXPECT_TRUE(read_schema_state(*m_conn).failed.empty());
    EXPECT_EQ(scalar("SELECT count(*) FROM leo_schema_history"), "2");
    const auto again = repair(*m_conn, state.failed);
    EXPECT_TRUE(again.removed.empty());
    EXPECT_EQ(again.already_gone.size(), 1U);
    EXPECT_EQ(scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");

    // Put right by hand (undo step one; what step two needs now exists): it applies.
    m_conn->exec("DROP TABLE step_one; CREATE TABLE later_table (x integer)");
    const auto result = migrate(*m_conn, files, k_broker);
    EXPECT_EQ(result.applied, (std::vector<std::string>{"V9.0.0.3__two_steps.sql", "V9.0.0.4__after.sql"}));
    EXPECT_TRUE(table_exists("step_two_idx"));
    EXPECT_TRUE(read_schema_state(*m_conn).failed.empty());
    EXPECT_EQ(read_schema_state(*m_conn).schema_version, "9.0.0.4");
}

TEST_F(MigrationsTest, MigrationLockIsReleased) {
    (void)migrate(*m_conn, load_migrations(shipped_sql()), k_broker);
    EXPECT_EQ(scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
    auto other = Connection::open(m_db->conninfo());
    EXPECT_EQ(other.query("SELECT pg_try_advisory_lock($1::bigint)", {std::to_string(k_migration_lock_key)}).at(0, 0),
              "t");
}

TEST_F(MigrationsTest, ConnectionErrorsCarryTheSql) {
    try {
        m_conn->exec("SELECT * FROM no_such_relation_here");
        FAIL() << "no error";
    } catch (const QueryError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("relation \"no_such_relation_here\" does not exist"), std::string::npos) << msg;
        EXPECT_NE(msg.find("SQL: SELECT * FROM no_such_relation_here"), std::string::npos) << msg;
        EXPECT_EQ(e.sqlstate(), "42P01");
    }
    auto rows = m_conn->query("SELECT $1::text AS a, $2::text AS b", {std::string("x"), std::nullopt});
    EXPECT_EQ(rows.columns, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(rows.at(0, 0), "x");
    EXPECT_FALSE(rows.rows[0][1]);
    EXPECT_EQ(scalar("SHOW client_min_messages"), "warning");
}

} // namespace
} // namespace leo::migrations
