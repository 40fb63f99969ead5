// Integration tests of the migration engine's cluster behaviour against a real
// PostgreSQL (the internal instance of a sandbox root): the cluster lock across
// processes, kill -9 of a migrator, allow_remote_upgrade, no-transaction migrations,
// baseline, history format upgrade, timeouts and dry-run plans.
//
// The worker processes are this test binary run again with
// --gtest_filter=MigrationsWorker.Run and LEO_MIG_WORKER_* in the environment; without
// them that test is skipped.
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "db_support.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <thread>

extern char** environ;

namespace leo::migrations {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

const std::string k_broker = "9.1.2";

stdfs::path shipped_sql() { return test::source_dir() / "migrations/sql"; }

void copy_shipped(const stdfs::path& dir, const std::string& prefix = "") {
    for (const auto& m : load_migrations(shipped_sql()))
        if (m.version.starts_with(prefix))
            stdfs::copy_file(m.path, dir / m.script, stdfs::copy_options::overwrite_existing);
}

void write(const stdfs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
}

struct Refusal {
    std::string message;
    ExitCode code = ExitCode::ok;
};
Refusal refusal_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const MigrationError& e) {
        return {e.what(), e.code()};
    }
    return {"<no MigrationError>", ExitCode::ok};
}

/// Start this test binary as a migrating worker; returns its pid.
pid_t spawn_worker(const std::string& conninfo, const stdfs::path& dir, const std::string& out_file) {
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e)
        env_strings.emplace_back(*e);
    env_strings.push_back("LEO_MIG_WORKER_CONNINFO=" + conninfo);
    env_strings.push_back("LEO_MIG_WORKER_DIR=" + dir.string());
    env_strings.push_back("LEO_MIG_WORKER_OUT=" + out_file);
    std::vector<char*> envp;
    for (auto& e : env_strings)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string self = stdfs::read_symlink("/proc/self/exe").string();
    std::string filter = "--gtest_filter=MigrationsWorker.Run";
    std::vector<char*> argv{self.data(), filter.data(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        throw std::runtime_error("posix_spawn failed");
    return pid;
}

int wait_exit(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(MigrationsWorker, Run) {
    const char* conninfo = std::getenv("LEO_MIG_WORKER_CONNINFO");
    const char* dir = std::getenv("LEO_MIG_WORKER_DIR");
    const char* out = std::getenv("LEO_MIG_WORKER_OUT");
    if (conninfo == nullptr || dir == nullptr || out == nullptr)
        GTEST_SKIP() << "runs only as a worker process of the cluster tests";
    auto conn = Connection::open(conninfo);
    MigrateOptions options;
    options.lock.wait = 60s;
    options.site_id = static_cast<int>(::getpid());
    std::string report;
    try {
        const auto result = migrate(conn, load_migrations(dir), k_broker, options);
        for (const auto& a : result.applied)
            report += a + "\n";
    } catch (const std::exception& e) {
        report = std::string("ERROR ") + e.what() + "\n";
    }
    write(out, report);
    EXPECT_EQ(report.find("ERROR"), std::string::npos) << report;
}

class ClusterTest : public test::SandboxDatabaseTest {
  protected:
    void SetUp() override {
        SandboxDatabaseTest::SetUp();
        start_database();
    }
    void TearDown() override {
        for (pid_t pid : m_workers) {
            ::kill(pid, SIGKILL);
            (void)wait_exit(pid);
        }
        SandboxDatabaseTest::TearDown();
    }

    std::string scalar(const std::string& sql, const std::vector<std::optional<std::string>>& params = {}) {
        return m_conn->query(sql, params).at(0, 0);
    }
    bool table_exists(const std::string& name) {
        return scalar("SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                      "ON n.oid = c.relnamespace WHERE c.relname = $1 AND n.nspname = current_schema()",
                      {name}) != "0";
    }
    std::string history_dump() {
        if (!table_exists("leo_schema_history"))
            return "<no history>";
        std::string out;
        for (const auto& row : m_conn->query("SELECT * FROM leo_schema_history ORDER BY installed_rank").rows) {
            for (const auto& v : row)
                out += v.value_or("NULL") + " ";
            out += "\n";
        }
        return out;
    }
    /// Poll `sql` until it returns `want` (or `timeout` passes); returns the last value.
    std::string wait_for(const std::string& sql, const std::string& want, std::chrono::milliseconds timeout = 15s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::string got;
        for (;;) {
            got = scalar(sql);
            if (got == want || std::chrono::steady_clock::now() >= deadline)
                return got;
            std::this_thread::sleep_for(50ms);
        }
    }

    std::vector<pid_t> m_workers;
};

TEST_F(ClusterTest, FourProcessesApplyEachMigrationExactlyOnce) {
    test::TempDir dir;
    write(dir.path() / "V1__log.sql", "CREATE TABLE apply_log (version text NOT NULL, backend integer NOT NULL);\n");
    for (int i = 2; i <= 16; ++i)
        write(dir.path() / fmt::format("V{}__step.sql", i),
              fmt::format("CREATE TABLE step_{0} (x integer);\n"
                          "INSERT INTO apply_log VALUES ('{0}', pg_backend_pid());\nSELECT pg_sleep(0.05);\n",
                          i));
    std::vector<std::string> outs;
    for (int w = 0; w < 4; ++w) {
        outs.push_back((m_tmp.path() / fmt::format("worker{}.out", w)).string());
        m_workers.push_back(spawn_worker(m_db->conninfo(), dir.path(), outs.back()));
    }
    for (pid_t pid : m_workers)
        EXPECT_EQ(wait_exit(pid), 0);
    m_workers.clear();

    size_t applied_total = 0;
    for (const auto& out : outs) {
        const auto report = fs::read_file(out);
        EXPECT_EQ(report.find("ERROR"), std::string::npos) << report;
        applied_total += static_cast<size_t>(std::count(report.begin(), report.end(), '\n'));
    }
    EXPECT_EQ(applied_total, 16U); // every migration reported by exactly one worker
    EXPECT_EQ(scalar("SELECT count(*) FROM leo_schema_history WHERE success"), "16");
    EXPECT_EQ(scalar("SELECT count(*) FROM apply_log"), "15");
    EXPECT_EQ(scalar("SELECT count(DISTINCT version) FROM apply_log"), "15");
    EXPECT_EQ(scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
    const auto state = read_schema_state(*m_conn);
    EXPECT_EQ(state.schema_version, "16");
    EXPECT_TRUE(state.failed.empty());
}

TEST_F(ClusterTest, KillDashNineReleasesTheLockAndRollsBackItsMigration) {
    test::TempDir dir;
    write(dir.path() / "V1__config.sql", "CREATE TABLE slow_config (seconds float NOT NULL);\n"
                                         "INSERT INTO slow_config VALUES (60);\n");
    write(dir.path() / "V2__slow.sql", "CREATE TABLE half_built (x integer);\n"
                                       "SELECT pg_sleep((SELECT seconds FROM slow_config));\n");
    const auto out = (m_tmp.path() / "killed.out").string();
    const pid_t pid = spawn_worker(m_db->conninfo(), dir.path(), out);
    m_workers.push_back(pid);
    ASSERT_EQ(wait_for("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep((SELECT seconds%' "
                       "AND state = 'active' AND pid <> pg_backend_pid()",
                       "1", 60s),
              "1");
    EXPECT_EQ(scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"), "1");
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    EXPECT_EQ(wait_exit(pid), 128 + SIGKILL);
    m_workers.clear();

    // The lock went with the lock session; the migrating session notices its client is
    // gone (client_connection_check_interval) and rolls back.
    EXPECT_EQ(wait_for("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'", "0", 10s), "0");
    EXPECT_EQ(wait_for("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep((SELECT seconds%' "
                       "AND pid <> pg_backend_pid()",
                       "0", 10s),
              "0");
    EXPECT_FALSE(table_exists("half_built"));
    auto state = read_schema_state(*m_conn);
    EXPECT_EQ(state.schema_version, "1");
    EXPECT_TRUE(state.failed.empty());

    m_conn->exec("UPDATE slow_config SET seconds = 0");
    const auto result = migrate(*m_conn, load_migrations(dir.path()), k_broker);
    EXPECT_EQ(result.applied, (std::vector<std::string>{"V2__slow.sql"}));
    EXPECT_TRUE(table_exists("half_built"));
    EXPECT_EQ(scalar("SELECT count(*) FROM leo_schema_history WHERE version = '2'"), "1");
}

TEST_F(ClusterTest, LockHeldElsewhereIsRefusedNamingTheHolder) {
    auto holder = Connection::open(m_db->conninfo());
    holder.exec("SET application_name = 'leo-migrate-lock broker7.example pid 4242'");
    ASSERT_EQ(holder.query("SELECT pg_try_advisory_lock($1::bigint)", {std::to_string(k_migration_lock_key)}).at(0, 0),
              "t");
    MigrateOptions options;
    options.lock.wait = 400ms;
    const auto started = std::chrono::steady_clock::now();
    const auto r = refusal_of([&] { (void)migrate(*m_conn, load_migrations(shipped_sql()), k_broker, options); });
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    EXPECT_NE(r.message.find("another migration of this database is running"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("leo-migrate-lock broker7.example pid 4242"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("held by server pid"), std::string::npos) << r.message;
    EXPECT_EQ(r.code, ExitCode::refused);
    EXPECT_FALSE(table_exists("leo_schema_history"));
}

TEST_F(ClusterTest, ConnectionsCarryAnApplicationNameWithHostAndPid) {
    const auto name = scalar("SHOW application_name");
    EXPECT_EQ(name, application_name());
    EXPECT_NE(name.find(host_name()), std::string::npos) << name;
    EXPECT_NE(name.find(fmt::format("pid {}", ::getpid())), std::string::npos) << name;
    // restored after a migration
    (void)migrate(*m_conn, load_migrations(shipped_sql()), k_broker);
    EXPECT_EQ(scalar("SHOW application_name"), name);
}

TEST_F(ClusterTest, OlderExternalDatabaseNeedsTheFlag) {
    test::TempDir dir;
    copy_shipped(dir.path(), "9.0.");
    (void)migrate(*m_conn, load_migrations(dir.path()), "9.0.40");
    const auto before = history_dump();
    const auto all = load_migrations(shipped_sql());

    MigrateOptions external;
    external.kind = DatabaseKind::external;
    const auto r = refusal_of([&] { (void)migrate(*m_conn, all, k_broker, external); });
    EXPECT_NE(r.message.find("the external database's schema 9.0.0.2 (written by broker 9.0.40) is older than this "
                             "broker's schema 9.1.0.2 (broker 9.1.2)"),
              std::string::npos)
        << r.message;
    EXPECT_NE(r.message.find("--allow-remote-upgrade"), std::string::npos) << r.message;
    EXPECT_EQ(r.code, ExitCode::refused);
    EXPECT_EQ(history_dump(), before);
    external.dry_run = DryRun::yes;
    EXPECT_EQ(refusal_of([&] { (void)migrate(*m_conn, all, k_broker, external); }).message, r.message);

    external.dry_run = DryRun::no;
    external.allow_remote_upgrade = AllowRemoteUpgrade::yes;
    const auto result = migrate(*m_conn, all, k_broker, external);
    EXPECT_EQ(result.action, UpgradeDecision::Action::upgrade);
    EXPECT_EQ(result.schema_after, "9.1.0.2");
    // equal now: nothing to do, flag or not
    external.allow_remote_upgrade = AllowRemoteUpgrade::no;
    EXPECT_TRUE(migrate(*m_conn, all, k_broker, external).applied.empty());
}

TEST_F(ClusterTest, NewerDatabaseIsAlwaysRefused) {
    test::TempDir dir;
    copy_shipped(dir.path());
    write(dir.path() / "V9.2.0.1__future.sql", "CREATE TABLE future_things (x integer);\n");
    (void)migrate(*m_conn, load_migrations(dir.path()), "9.2.0");
    const auto before = history_dump();
    for (auto kind : {DatabaseKind::internal, DatabaseKind::external})
        for (auto allow : {AllowRemoteUpgrade::no, AllowRemoteUpgrade::yes}) {
            MigrateOptions options;
            options.kind = kind;
            options.allow_remote_upgrade = allow;
            const auto r =
                refusal_of([&] { (void)migrate(*m_conn, load_migrations(shipped_sql()), k_broker, options); });
            EXPECT_NE(r.message.find("database schema 9.2.0.1 is newer than this broker's newest migration 9.1.0.2"),
                      std::string::npos)
                << r.message;
            EXPECT_NE(r.message.find("install broker 9.2.0 or newer"), std::string::npos) << r.message;
            EXPECT_EQ(r.code, ExitCode::refused);
        }
    EXPECT_EQ(history_dump(), before);
}

TEST_F(ClusterTest, HistoryRecordsHostSiteAndTheOldestBroker) {
    MigrateOptions options;
    options.host = "broker1.example";
    options.site_id = 3;
    (void)migrate(*m_conn, load_migrations(shipped_sql()), k_broker, options);
    EXPECT_EQ(scalar("SELECT count(*) FROM leo_schema_history WHERE installed_host = 'broker1.example' "
                     "AND installed_site_id = 3 AND type = 'SQL' AND installed_by = 'leo'"),
              "4");
    EXPECT_EQ(scalar("SELECT min_broker_version FROM leo_schema_history WHERE version = '9.1.0.2'"), "9.1.0");
    const auto state = read_schema_state(*m_conn);
    EXPECT_EQ(state.history_format, k_history_format);
    EXPECT_EQ(state.min_broker_version, "9.1.0");
    EXPECT_EQ(state.broker_version, k_broker);
    ASSERT_EQ(state.applied.size(), 4U);
    EXPECT_EQ(state.applied[0].installed_host, "broker1.example");
    EXPECT_EQ(state.applied[0].installed_site_id, 3);
    EXPECT_EQ(state.applied[0].min_broker_version, "9.0.0");
}

TEST_F(ClusterTest, FirstFormatHistoryIsReadAndUpgradedInPlace) {
    // The history table and rows exactly as the first engine wrote them.
    m_conn->exec("CREATE TABLE leo_schema_history ( installed_rank serial PRIMARY KEY, version varchar(50) NOT NULL "
                 "UNIQUE, description text NOT NULL, script text NOT NULL, checksum varchar(128) NOT NULL, "
                 "checksum_algorithm varchar(64) NOT NULL, broker_version varchar(64) NOT NULL, installed_by "
                 "varchar(128) NOT NULL DEFAULT current_user, installed_on timestamp with time zone NOT NULL DEFAULT "
                 "now(), execution_time_ms integer NOT NULL, success boolean NOT NULL)");
    for (const auto& m : load_migrations(shipped_sql())) {
        if (!m.version.starts_with("9.0."))
            continue;
        m_conn->exec(fs::read_file(m.path));
        m_conn->query("INSERT INTO leo_schema_history (version, description, script, checksum, checksum_algorithm, "
                      "broker_version, execution_time_ms, success) VALUES ($1, $2, $3, $4, $5, '9.0.40', 5, true)",
                      {m.version, m.description, m.script, m.checksum, std::string(k_checksum_algorithm)});
    }
    auto state = read_schema_state(*m_conn);
    EXPECT_EQ(state.history_format, 1);
    EXPECT_EQ(state.schema_version, "9.0.0.2");
    EXPECT_EQ(state.min_broker_version, "9.0.0");

    const auto result = migrate(*m_conn, load_migrations(shipped_sql()), k_broker);
    EXPECT_EQ(result.applied.size(), 2U);
    state = read_schema_state(*m_conn);
    EXPECT_EQ(state.history_format, k_history_format);
    EXPECT_EQ(state.schema_version, "9.1.0.2");
    EXPECT_EQ(state.min_broker_version, "9.1.0");
    ASSERT_EQ(state.applied.size(), 4U);
    EXPECT_EQ(state.applied[0].broker_version, "9.0.40");
    EXPECT_EQ(state.applied[0].installed_host, "");
    EXPECT_EQ(state.applied[3].installed_host, host_name());
    // a broker of the first format can still insert its rows
    m_conn->exec("INSERT INTO leo_schema_history (version, description, script, checksum, checksum_algorithm, "
                 "broker_version, execution_time_ms, success) VALUES ('0.1', 'x', 'x', 'x', 'x', 'x', 1, true)");
}

TEST_F(ClusterTest, CrlfAndBomVariantsValidate) {
    (void)migrate(*m_conn, load_migrations(shipped_sql()), k_broker);
    test::TempDir dir;
    for (const auto& m : load_migrations(shipped_sql())) {
        std::string text = fs::read_file(m.path);
        std::string variant = m.version_parts.back() % 2 == 0 ? "\xEF\xBB\xBF" : "";
        for (char c : text)
            variant += c == '\n' ? std::string("\r\n") : std::string(1, c);
        write(dir.path() / m.script, variant);
    }
    const auto variants = load_migrations(dir.path());
    const auto v = validate(read_schema_state(*m_conn), variants, k_broker);
    EXPECT_TRUE(v.ok()) << v.message();
    EXPECT_TRUE(v.pending.empty());
    EXPECT_TRUE(migrate(*m_conn, variants, k_broker).applied.empty());
}

TEST_F(ClusterTest, ChangedFileIsRefusedWithBothChecksums) {
    (void)migrate(*m_conn, load_migrations(shipped_sql()), k_broker);
    const auto recorded = read_schema_state(*m_conn).applied[2].checksum;
    test::TempDir dir;
    copy_shipped(dir.path());
    write(dir.path() / "V9.1.0.1__jobs_attempts.sql", "ALTER TABLE work_queue ADD COLUMN attempts integer;\n");
    const auto files = load_migrations(dir.path());
    const auto r = refusal_of([&] { (void)migrate(*m_conn, files, k_broker); });
    EXPECT_NE(r.message.find("migration V9.1.0.1__jobs_attempts.sql changed after it was applied"), std::string::npos)
        << r.message;
    EXPECT_NE(r.message.find(recorded), std::string::npos) << r.message;
    EXPECT_NE(r.message.find(files[2].checksum), std::string::npos) << r.message;
    EXPECT_EQ(r.code, ExitCode::refused);
}

TEST_F(ClusterTest, NoTransactionMigrationRunsOutsideATransaction) {
    test::TempDir dir;
    copy_shipped(dir.path());
    write(dir.path() / "V9.1.0.3__jobs_created_index.sql",
          "-- leo:no-transaction\n-- CREATE INDEX CONCURRENTLY cannot run in a transaction block\n"
          "CREATE INDEX CONCURRENTLY work_queue_created_idx ON work_queue (created_at);\n");
    const auto result = migrate(*m_conn, load_migrations(dir.path()), k_broker);
    EXPECT_EQ(result.applied.size(), 5U);
    EXPECT_EQ(scalar("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                     "WHERE c.relname = 'work_queue_created_idx' AND i.indisvalid"),
              "1");
    EXPECT_EQ(read_schema_state(*m_conn).schema_version, "9.1.0.3");
    // the session's timeouts are back to their defaults
    EXPECT_EQ(scalar("SHOW statement_timeout"), "0");
}

TEST_F(ClusterTest, FailingNoTransactionMigrationDropsTheInvalidIndex) {
    test::TempDir dir;
    copy_shipped(dir.path());
    (void)migrate(*m_conn, load_migrations(dir.path()), k_broker);
    m_conn->exec("INSERT INTO settings (name, value) VALUES ('dup_a', 'same'), ('dup_b', 'same')");
    write(dir.path() / "V9.1.0.3__settings_value_unique.sql",
          "-- leo:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY settings_value_uidx ON settings (value);\n");
    const auto r = refusal_of([&] { (void)migrate(*m_conn, load_migrations(dir.path()), k_broker); });
    EXPECT_NE(r.message.find("migration V9.1.0.3__settings_value_unique.sql (no transaction) failed at statement 1 "
                             "of 1"),
              std::string::npos)
        << r.message;
    EXPECT_NE(r.message.find("could not create unique index"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("line 2 of the script"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("dropped the invalid index \"public\".\"settings_value_uidx\""), std::string::npos) << r.message;
    EXPECT_FALSE(table_exists("settings_value_uidx"));
    EXPECT_EQ(scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid"), "0");
    auto state = read_schema_state(*m_conn);
    EXPECT_EQ(state.schema_version, "9.1.0.2");
    EXPECT_TRUE(state.failed.empty());

    // fix the data: the next run builds it
    m_conn->exec("DELETE FROM settings WHERE name = 'dup_b'");
    const auto result = migrate(*m_conn, load_migrations(dir.path()), k_broker);
    EXPECT_EQ(result.applied, (std::vector<std::string>{"V9.1.0.3__settings_value_unique.sql"}));
    EXPECT_TRUE(table_exists("settings_value_uidx"));
}

TEST_F(ClusterTest, NoTransactionMigrationsOwnTransactionIsRolledBackAndOnlyWhatStaysCounts) {
    test::TempDir dir;
    write(dir.path() / "V0__start.sql", "CREATE TABLE start (x integer);\n");
    write(dir.path() / "V1__grouped.sql", "-- leo:no-transaction\n"
                                          "CREATE TABLE kept_one (x integer);\n"
                                          "BEGIN;\n"
                                          "CREATE TABLE in_tx (x integer);\n"
                                          "SELECT * FROM no_such_table;\n"
                                          "COMMIT;\n");
    const auto r = refusal_of([&] { (void)migrate(*m_conn, load_migrations(dir.path()), k_broker); });
    EXPECT_NE(r.message.find("migration V1__grouped.sql (no transaction) failed at statement 4 of 5: ERROR: relation "
                             "\"no_such_table\" does not exist (line 5 of the script); the transaction its statement "
                             "2 (line 3) opened was rolled back; its first 1 statement(s) had completed and stay "
                             "applied, and it is recorded as failed"),
              std::string::npos)
        << r.message;
    EXPECT_FALSE(m_conn->in_transaction());
    EXPECT_TRUE(table_exists("kept_one"));
    EXPECT_FALSE(table_exists("in_tx"));
    auto state = read_schema_state(*m_conn);
    ASSERT_EQ(state.failed.size(), 1U);
    EXPECT_EQ(state.failed[0].failure, "at statement 4 of 5 (line 5): ERROR: relation \"no_such_table\" does not "
                                       "exist (its transaction was rolled back); its first 1 statement(s) had "
                                       "completed");
    EXPECT_EQ(repair(*m_conn, state.failed).removed.size(), 1U);
    m_conn->exec("DROP TABLE kept_one");

    // Everything inside its own transaction: nothing stays, nothing is recorded, it runs again.
    write(dir.path() / "V1__grouped.sql", "-- leo:no-transaction\n"
                                          "BEGIN;\n"
                                          "CREATE TABLE in_tx (x integer);\n"
                                          "SELECT * FROM no_such_table;\n"
                                          "COMMIT;\n");
    const auto whole = refusal_of([&] { (void)migrate(*m_conn, load_migrations(dir.path()), k_broker); });
    EXPECT_NE(whole.message.find("failed at statement 3 of 4"), std::string::npos) << whole.message;
    EXPECT_EQ(whole.message.find("recorded as failed"), std::string::npos) << whole.message;
    EXPECT_FALSE(table_exists("in_tx"));
    EXPECT_EQ(scalar("SELECT count(*) FROM leo_schema_history"), "1");
    m_conn->exec("CREATE TABLE no_such_table (x integer)");
    EXPECT_EQ(migrate(*m_conn, load_migrations(dir.path()), k_broker).applied,
              (std::vector<std::string>{"V1__grouped.sql"}));
    EXPECT_TRUE(table_exists("in_tx"));

    // A BEGIN without COMMIT: what followed it is rolled back, what preceded it stays.
    write(dir.path() / "V2__open.sql", "-- leo:no-transaction\n"
                                       "CREATE TABLE before_open (x integer);\n"
                                       "BEGIN;\n"
                                       "CREATE TABLE after_open (x integer);\n");
    const auto open = refusal_of([&] { (void)migrate(*m_conn, load_migrations(dir.path()), k_broker); });
    EXPECT_NE(open.message.find("migration V2__open.sql (no transaction) failed after its last statement: it ended "
                                "inside the transaction its statement 2 (line 3) opened, without COMMIT; that "
                                "transaction was rolled back; its first 1 statement(s) had completed and stay "
                                "applied"),
              std::string::npos)
        << open.message;
    EXPECT_FALSE(m_conn->in_transaction());
    EXPECT_TRUE(table_exists("before_open"));
    EXPECT_FALSE(table_exists("after_open"));
    EXPECT_EQ(read_schema_state(*m_conn).failed.size(), 1U);
    EXPECT_EQ(scalar("SHOW statement_timeout"), "0");
}

TEST_F(ClusterTest, BaselineAdoptsADatabaseMadeBeforeTheEngine) {
    for (const auto& m : load_migrations(shipped_sql()))
        if (m.version.starts_with("9.0."))
            m_conn->exec(fs::read_file(m.path));
    const auto all = load_migrations(shipped_sql());

    const auto r = refusal_of([&] { (void)migrate(*m_conn, all, k_broker); });
    EXPECT_NE(r.message.find("but no leo_schema_history"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("--baseline VERSION"), std::string::npos) << r.message;
    EXPECT_FALSE(table_exists("leo_schema_history"));

    MigrateOptions options;
    options.baseline = "9.0.0.2";
    options.dry_run = DryRun::yes;
    const auto plan = migrate(*m_conn, all, k_broker, options);
    EXPECT_EQ(plan.baseline, "9.0.0.2");
    EXPECT_EQ(plan.applied, (std::vector<std::string>{"V9.1.0.1__jobs_attempts.sql", "V9.1.0.2__jobs_site_index.sql"}));
    EXPECT_FALSE(table_exists("leo_schema_history"));

    options.dry_run = DryRun::no;
    const auto result = migrate(*m_conn, all, k_broker, options);
    EXPECT_EQ(result.applied, plan.applied);
    EXPECT_EQ(result.schema_after, "9.1.0.2");
    const auto state = read_schema_state(*m_conn);
    EXPECT_EQ(state.baseline, "9.0.0.2");
    EXPECT_EQ(state.schema_version, "9.1.0.2");
    EXPECT_EQ(scalar("SELECT type || ' ' || version FROM leo_schema_history ORDER BY installed_rank LIMIT 1"),
              "BASELINE 9.0.0.2");
    // later runs validate: the files up to the baseline are neither required nor applied
    EXPECT_TRUE(migrate(*m_conn, all, k_broker).applied.empty());
    // a second baseline is refused
    const auto again = refusal_of([&] { (void)migrate(*m_conn, all, k_broker, options); });
    EXPECT_NE(again.message.find("already has a schema history"), std::string::npos) << again.message;
}

TEST_F(ClusterTest, DryRunReturnsThePlanAndTheSql) {
    test::TempDir dir;
    copy_shipped(dir.path());
    write(dir.path() / "V9.1.0.3__idx.sql", "\xEF\xBB\xBF-- leo:no-transaction\r\nCREATE INDEX CONCURRENTLY "
                                            "work_queue_created_idx ON work_queue (created_at);\r\n");
    MigrateOptions options;
    options.dry_run = DryRun::yes;
    const auto result = migrate(*m_conn, load_migrations(dir.path()), k_broker, options);
    ASSERT_EQ(result.plan.size(), 5U);
    EXPECT_EQ(result.action, UpgradeDecision::Action::initialise);
    EXPECT_EQ(result.plan[0].script, "V9.0.0.1__baseline.sql");
    EXPECT_NE(result.plan[0].sql.find("CREATE TABLE sites"), std::string::npos);
    EXPECT_TRUE(result.plan[0].transactional);
    EXPECT_FALSE(result.plan[4].transactional);
    EXPECT_TRUE(result.plan[4].sql.starts_with("-- leo:no-transaction")); // byte-order mark removed
    EXPECT_FALSE(table_exists("leo_schema_history"));
    EXPECT_EQ(scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
}

TEST_F(ClusterTest, TimeoutsAreSetServerSideForEachMigration) {
    test::TempDir dir;
    write(dir.path() / "V1__seen.sql", "CREATE TABLE seen AS SELECT current_setting('statement_timeout') AS st, "
                                       "current_setting('lock_timeout') AS lt;\n");
    MigrateOptions options;
    options.timeouts.statement_timeout = 1234ms;
    options.timeouts.lock_timeout = 567ms;
    (void)migrate(*m_conn, load_migrations(dir.path()), k_broker, options);
    EXPECT_EQ(scalar("SELECT st || ' ' || lt FROM seen"), "1234ms 567ms");
    EXPECT_EQ(scalar("SHOW statement_timeout"), "0");

    write(dir.path() / "V2__too_slow.sql", "CREATE TABLE too_slow (x integer);\nSELECT pg_sleep(5);\n");
    options.timeouts.statement_timeout = 200ms;
    const auto r = refusal_of([&] { (void)migrate(*m_conn, load_migrations(dir.path()), k_broker, options); });
    EXPECT_NE(r.message.find("migration V2__too_slow.sql failed: ERROR: canceling statement due to statement timeout"),
              std::string::npos)
        << r.message;
    EXPECT_FALSE(table_exists("too_slow"));

    // lock_timeout: a table locked by another session
    write(dir.path() / "V2__too_slow.sql", "ALTER TABLE seen ADD COLUMN y integer;\n");
    auto other = Connection::open(m_db->conninfo());
    other.exec("BEGIN; LOCK TABLE seen IN ACCESS EXCLUSIVE MODE");
    options.timeouts.statement_timeout = 10s;
    options.timeouts.lock_timeout = 200ms;
    const auto locked = refusal_of([&] { (void)migrate(*m_conn, load_migrations(dir.path()), k_broker, options); });
    EXPECT_NE(locked.message.find("canceling statement due to lock timeout"), std::string::npos) << locked.message;
    other.exec("ROLLBACK");
}

} // namespace
} // namespace leo::migrations
