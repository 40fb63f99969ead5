// The upgrade's replication gate against real replication: a primary (ExternalPostgres,
// TCP on 127.0.0.1, wal_level = logical) that a broker root uses as its shared database;
// a streaming standby made from it with `pg_basebackup -R`; a publication on it and a
// subscription from a second instance. The gate refuses (exit 3) naming each, nothing
// changes; run against the standby itself it refuses a database in recovery.
#include "db_support.hpp"
#include "test_support.hpp"

#include "leo/common/error.hpp"
#include "leo/installer/gates.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/db_snapshot.hpp"
#include "leo/migrations/internal_db.hpp"

#include <chrono>
#include <fstream>
#include <sstream>

#include <unistd.h>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {
namespace stdfs = std::filesystem;
using ::testing::HasSubstr;
using leo::test::run_installer;
using namespace std::chrono_literals;

constexpr const char* k_password = "gate-secret";
constexpr const char* k_old = "leostream-broker-9.0.7-1.x86_64";
constexpr const char* k_new = "leostream-broker-9.1.2-1.x86_64";

/// A streaming standby of `primary` in a sandbox root of its own: `pg_basebackup -R` over
/// 127.0.0.1 as the replication role, run as that root's leo; its own socket, no TCP,
/// cluster_name (its walreceiver's application_name) `name`. Stopped on destruction.
class Standby {
public:
    Standby(const leo::test::ExternalPostgres& primary, const std::string& user, const std::string& password,
            const std::string& name) {
        m_root = m_tmp.path() / "s";
        leo::test::make_sandbox_root(m_root);
        leo::test::create_leo_user(m_root);
        m_db = std::make_unique<leo::migrations::InternalDatabase>(m_root);
        // pgsql/ as the server wants it: leo's, 0700 (leo's uid and gid from the root's passwd).
        {
            std::ifstream passwd(m_root / "etc/passwd");
            std::string line;
            while (std::getline(passwd, line))
                if (line.rfind("leo:", 0) == 0) {
                    std::stringstream fields(line);
                    std::string login, x, uid, gid;
                    std::getline(fields, login, ':');
                    std::getline(fields, x, ':');
                    std::getline(fields, uid, ':');
                    std::getline(fields, gid, ':');
                    stdfs::create_directories(m_db->pgsql_dir());
                    if (::chown(m_db->pgsql_dir().c_str(), static_cast<uid_t>(std::stoul(uid)),
                                static_cast<gid_t>(std::stoul(gid))) != 0)
                        throw std::runtime_error("chown " + m_db->pgsql_dir().string());
                    stdfs::permissions(m_db->pgsql_dir(), stdfs::perms::owner_all);
                }
        }
        const auto bindir = leo::migrations::find_pg_bindir();
        auto r = leo::subprocess::run({(bindir / "pg_basebackup").string(), "-d",
                                       primary.conninfo("postgres", user, password), "-D", m_db->data_dir().string(),
                                       "-R", "-X", "stream", "--no-sync"},
                                      leo::migrations::leo_program_options(m_root));
        if (r.exit_code != 0) throw std::runtime_error("pg_basebackup: " + r.out + r.err);
        // Later settings win: the primary's listener, port and socket are not the standby's.
        std::ofstream(m_db->data_dir() / "postgresql.conf", std::ios::app)
            << "\nlisten_addresses = ''\nport = 5432\nunix_socket_directories = '" << m_db->socket_dir().string()
            << "'\ncluster_name = '" << name << "'\nhot_standby = on\n";
        m_db->start();
    }
    ~Standby() {
        try {
            m_db->stop();
        } catch (...) {
        }
    }
    [[nodiscard]] std::string conninfo(const std::string& dbname) const { return m_db->conninfo(dbname); }

private:
    leo::test::TempDir m_tmp;
    stdfs::path m_root;
    std::unique_ptr<leo::migrations::InternalDatabase> m_db;
};

class ReplicationGate : public ::testing::Test {
protected:
    void SetUp() override {
        primary = std::make_unique<leo::test::ExternalPostgres>("wal_level = logical\n");
        primary->create_role("broker", k_password, true);
        primary->create_role("replicator", k_password, false);
        primary->admin().exec("ALTER ROLE replicator SUPERUSER REPLICATION");
        std::ofstream(password_file) << k_password << "\n";
        root = tmp.path() / "b1";
        leo::test::make_sandbox_root(root);
        const auto pkgs = leo::test::test_packages_dir();
        auto r = run_installer({"install", "--rpm", (pkgs / "repo" / (std::string(k_old) + ".rpm")).string(), "--root",
                                root.string(), "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        auto s = leo::subprocess::run({(root / "usr/bin/switch_database.pl").string(), "--root", root.string(),
                                       "--to_external", "new", "--db_vendor", "postgres", "--db_host", "127.0.0.1",
                                       "--port", std::to_string(primary->port()), "--db_name", "leo_cluster",
                                       "--username", "broker", "--password_file", password_file.string(),
                                       "--site_id", "1", "--skip_confirmation"});
        ASSERT_EQ(s.exit_code, 0) << s.out << s.err;
        (void)run_installer({"db", "stop", "--root", root.string()});
    }
    void TearDown() override { (void)run_installer({"db", "stop", "--root", root.string()}); }

    leo::migrations::Connection shared() const {
        return leo::migrations::Connection::open(primary->conninfo("leo_cluster", "broker", k_password));
    }
    std::string installed() const {
        auto r = leo::subprocess::run({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-q",
                                       "leostream-broker"});
        return leo::subprocess::last_line(r.out);
    }
    std::vector<std::string> upgrade_args() const {
        const auto pkgs = leo::test::test_packages_dir();
        return {"upgrade", "--root", root.string(), "--rpm", (pkgs / "repo" / (std::string(k_new) + ".rpm")).string(),
                "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y", "--allow-remote-upgrade", "--lease-wait",
                "5"};
    }
    /// The upgrade: exit 3, `messages` in the refusal, and nothing changed (the root's
    /// files, the shared database's tables, the installed package). Returns stderr.
    std::string expect_refused(const std::vector<std::string>& messages) {
        const std::vector<std::string> ignore{"var/log", "var/cache", "home/leo/pgsql", "home/leo/run", "home/leo/logs",
                                              "var/lib/leo-installer/lock", "var/lib/rpm/rpmdb.sqlite-shm"};
        const auto files = leo::test::snapshot_tree(root, ignore);
        auto c = shared();
        const auto tables = leo::migrations::table_checksums(c);
        auto r = run_installer(upgrade_args());
        EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
        EXPECT_THAT(r.err, HasSubstr("the upgrade's gates refused it: replication: the broker database is replicated ("));
        for (const auto& m : messages) EXPECT_THAT(r.err, HasSubstr(m));
        EXPECT_THAT(r.err, HasSubstr("stop the replication first; nothing was changed"));
        EXPECT_EQ(leo::test::snapshot_tree(root, ignore), files) << "the root changed";
        auto after = shared();
        EXPECT_EQ(leo::migrations::table_checksums(after), tables) << "the shared database changed";
        EXPECT_EQ(installed(), k_old);
        return r.err;
    }
    /// The gates evaluated directly on `conninfo`'s database; the replication verdict.
    static leo::installer::GateVerdict replication_on(const std::string& conninfo) {
        auto c = leo::migrations::Connection::open(conninfo);
        leo::installer::GateInputs in;
        in.installed.name = in.target.name = "leostream-broker";
        in.installed.version = "9.0.7";
        in.target.version = "9.1.2";
        const auto verdicts = leo::installer::evaluate_gates(c, in);
        for (const auto& v : verdicts)
            if (v.id == "replication") {
                try {
                    leo::installer::enforce_gates({v});
                    EXPECT_EQ(v.state, leo::installer::GateState::passed);
                } catch (const leo::RefusedError& e) {
                    EXPECT_EQ(e.code(), leo::ExitCode::refused);
                }
                return v;
            }
        ADD_FAILURE() << "no replication verdict";
        return {};
    }
    /// Waits until pg_stat_replication of the primary lists `name` streaming.
    void wait_for_walsender(const std::string& name) {
        for (int i = 0; i < 300; ++i) {
            if (!primary->admin()
                     .query("SELECT 1 FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'",
                            {name})
                     .empty())
                return;
            std::this_thread::sleep_for(100ms);
        }
        FAIL() << name << " never streamed";
    }

    leo::test::TempDir tmp;
    std::unique_ptr<leo::test::ExternalPostgres> primary;
    stdfs::path password_file = tmp.path() / "password";
    stdfs::path root;
};

TEST_F(ReplicationGate, AConnectedStandbyIsRefusedByNameAndAddressAndTheStandbyItselfIsInRecovery) {
    Standby standby(*primary, "replicator", k_password, "standby_a");
    wait_for_walsender("standby_a");
    // The broker's role sees the standby's name, not its address (pg_read_all_stats).
    auto err = expect_refused({"connected standby \"standby_a\" (walsender pid ",
                               "its address needs superuser or pg_read_all_stats to be shown"});
    EXPECT_THAT(err, ::testing::Not(HasSubstr("upgrades_enabled: ")));
    // With pg_read_all_stats it sees where the standby connects from, and its state.
    primary->admin().exec("GRANT pg_read_all_stats TO broker");
    expect_refused({"connected standby \"standby_a\" from 127.0.0.1 (streaming)"});
    // The gate on the standby itself: a database in recovery.
    const auto v = replication_on(standby.conninfo("leo_cluster"));
    EXPECT_EQ(v.state, leo::installer::GateState::refused);
    EXPECT_THAT(v.detail, HasSubstr("the database server is a standby in recovery"));
}

TEST_F(ReplicationGate, APublicationAndASubscriptionAreRefusedByName) {
    {
        shared().exec("CREATE TABLE replicated (id integer PRIMARY KEY)");
        primary->admin("leo_cluster").exec("CREATE PUBLICATION leo_pub FOR TABLE replicated");
    }
    leo::test::ExternalPostgres subscriber;
    subscriber.create_role("broker", k_password, true);
    subscriber.create_database("leo_copy", "broker");
    {
        auto c = subscriber.admin("leo_copy");
        c.exec("CREATE TABLE replicated (id integer PRIMARY KEY)");
        c.exec("CREATE SUBSCRIPTION leo_sub CONNECTION " +
               c.quote_literal(primary->conninfo("leo_cluster", "replicator", k_password)) + " PUBLICATION leo_pub");
    }
    // On the publishing side: the publication and the subscription's logical slot.
    expect_refused({"replication slot leo_sub (logical)", "publication leo_pub"});
    // On the subscribing side: the subscription, with what it subscribes to.
    const auto v = replication_on(subscriber.conninfo("leo_copy", "broker", k_password));
    EXPECT_EQ(v.state, leo::installer::GateState::refused);
    EXPECT_THAT(v.detail, HasSubstr("subscription leo_sub (to publication leo_pub)"));
    // Dropped, the gate passes on both sides again.
    subscriber.admin("leo_copy").exec("DROP SUBSCRIPTION leo_sub");
    primary->admin("leo_cluster").exec("DROP PUBLICATION leo_pub");
    EXPECT_EQ(replication_on(subscriber.conninfo("leo_copy", "broker", k_password)).state,
              leo::installer::GateState::passed);
    EXPECT_EQ(replication_on(primary->conninfo("leo_cluster", "broker", k_password)).state,
              leo::installer::GateState::passed);
}

} // namespace
