// A cluster of brokers sharing one external PostgreSQL (TCP on 127.0.0.1, scram-sha-256):
// three roots upgraded by three concurrent processes (one at a time under the lease, the
// shared schema migrated exactly once, no pending job lost); a broker frozen in the middle
// of the migration (SIGSTOP, then SIGKILL) does not freeze the cluster; a broker left behind
// says so and catches up without migrating; the gate on --allow-remote-upgrade.
#include "broker_runs.hpp"
#include "cluster_support.hpp"
#include "db_support.hpp"
#include "test_support.hpp"

#include "leo/common/fs.hpp"
#include "leo/common/process_info.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/db_snapshot.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <optional>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {
namespace stdfs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using leo::test::run_installer;

using leo::test::cluster::Cluster;
using leo::test::cluster::k_new;
using leo::test::cluster::k_old;
using leo::test::cluster::k_password;

TEST_F(Cluster, ThreeConcurrentUpgradesOneAtATimeSchemaMigratedOnceNoJobLost) {
    for (int site = 1; site <= 3; ++site) add_broker(site);
    {
        auto c = shared();
        // Site 9 left the cluster; its pending jobs must go to members, none lost.
        c.exec("INSERT INTO sites (site_id, name) VALUES (2, 's2'), (3, 's3'), (9, 'gone')");
        c.exec("INSERT INTO work_queue (site_id, job_type, status) SELECT 9, 'sync', 'pending' FROM "
               "generate_series(1, 7)");
        c.exec("INSERT INTO work_queue (site_id, job_type, status) SELECT 2, 'sync', 'pending' FROM "
               "generate_series(1, 5)");
    }
    std::vector<leo::subprocess::Result> results(3);
    std::vector<std::thread> runs;
    for (size_t i = 0; i < 3; ++i)
        runs.emplace_back([&, i] { results[i] = run_installer(upgrade_args(roots[i], true)); });
    for (auto& t : runs) t.join();
    int migrated = 0;
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(results[i].exit_code, 0) << results[i].out << results[i].err;
        EXPECT_EQ(installed(roots[i]), k_new);
        if (results[i].out.find("migrating the shared database") != std::string::npos) ++migrated;
    }
    EXPECT_EQ(migrated, 1) << "exactly one broker migrates the shared schema";
    auto c = shared();
    // Each migration recorded once.
    EXPECT_EQ(c.query("SELECT count(*)::text FROM leo_schema_history WHERE version = '9.1.0.1'").at(0, 0), "1");
    EXPECT_EQ(c.query("SELECT count(*)::text FROM leo_schema_history WHERE version = '9.1.0.2'").at(0, 0), "1");
    // One at a time: three acquisitions, three tokens; every member on the new version.
    EXPECT_EQ(c.query("SELECT token::text FROM leo_installer.upgrade_lease").at(0, 0), "3");
    EXPECT_EQ(c.query("SELECT count(*)::text FROM leo_installer.cluster_members WHERE broker_version = '9.1.2' "
                      "AND state = 'running'")
                  .at(0, 0),
              "3");
    // No job lost; none left on the site that left.
    EXPECT_EQ(c.query("SELECT count(*)::text FROM work_queue WHERE status = 'pending'").at(0, 0), "12");
    EXPECT_EQ(c.query("SELECT count(*)::text FROM work_queue WHERE site_id = 9").at(0, 0), "0");
    // The last one to finish reports the moves.
    int reported = 0;
    for (const auto& r : results)
        if (r.out.find("pending jobs moved from sites that left the cluster: 7") != std::string::npos) ++reported;
    EXPECT_EQ(reported, 1);
}

TEST_F(Cluster, NextBrokersNeedNoFlagAndTheFirstNeedsIt) {
    add_broker(1);
    add_broker(2);
    const auto before = shared().query("SELECT count(*)::text FROM leo_schema_history").at(0, 0);
    auto refused = run_installer(upgrade_args(roots[1], false));
    EXPECT_EQ(refused.exit_code, 3) << refused.err;
    EXPECT_THAT(refused.err, HasSubstr("--allow-remote-upgrade"));
    EXPECT_THAT(refused.err, HasSubstr("nothing was changed"));
    EXPECT_EQ(installed(roots[1]), k_old);
    EXPECT_EQ(shared().query("SELECT count(*)::text FROM leo_schema_history").at(0, 0), before);

    auto first = run_installer(upgrade_args(roots[0], true));
    ASSERT_EQ(first.exit_code, 0) << first.err;
    // Left behind: status says exactly that, not "run recover".
    auto st = run_installer({"status", "--root", roots[1].string()});
    EXPECT_THAT(st.out, HasSubstr("is older than the shared database's schema 9.1.0.2"));
    EXPECT_THAT(st.out, ::testing::Not(HasSubstr("leo-installer recover")));
    auto next = run_installer(upgrade_args(roots[1], false));
    EXPECT_EQ(next.exit_code, 0) << next.err;
    EXPECT_THAT(next.out, HasSubstr("only the package is replaced"));
    EXPECT_EQ(installed(roots[1]), k_new);
}

TEST_F(Cluster, ABrokerFrozenMidMigrationDoesNotFreezeTheCluster) {
    // A short lease, so the frozen holder's expires within the test.
    add_broker(1, "[cluster]\nlease_ttl = 4\n");
    add_broker(2, "[cluster]\nlease_ttl = 4\n");
    // Broker 1 stops itself inside its migration's transaction (it holds the table lock
    // and the migration lock, idle in transaction), as a broker that lost its network.
    ::setenv("LEO_FAULT_INJECT", "migrate.inside", 1);
    ::setenv("LEO_FAULT_SIGNAL", "19", 1);  // SIGSTOP
    auto frozen = leo::test::runs::start_background(upgrade_args(roots[0], true), tmp.path());
    ::unsetenv("LEO_FAULT_INJECT");
    ::unsetenv("LEO_FAULT_SIGNAL");
    bool stopped = false;
    for (int i = 0; i < 600 && !stopped; ++i) {
        const auto p = leo::proc::read_process(frozen.pid);
        stopped = p && p->state == 'T';
        if (!stopped) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(stopped) << leo::fs::read_file(frozen.err);
    // Its sessions are on the server: one idle in a transaction.
    EXPECT_EQ(ext->admin("leo_cluster")
                  .query("SELECT count(*)::text FROM pg_stat_activity WHERE state = 'idle in transaction' AND "
                         "application_name LIKE 'leo-migrate %pid " +
                         std::to_string(frozen.pid) + "'")
                  .at(0, 0),
              "1");
    // Broker 2 waits for the lease, names its holder, takes it over when it expires (ending
    // only the frozen broker's sessions) and upgrades.
    const auto t0 = std::chrono::steady_clock::now();
    auto second = run_installer(upgrade_args(roots[1], true));
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(second.exit_code, 0) << second.out << second.err;
    EXPECT_THAT(second.out, HasSubstr("expired"));
    EXPECT_THAT(second.out, HasSubstr("ended session pid"));
    EXPECT_LT(took, 60.0) << "the takeover must not wait for TCP or idle timeouts";
    EXPECT_EQ(installed(roots[1]), k_new);
    EXPECT_EQ(shared().query("SELECT count(*)::text FROM leo_schema_history WHERE version = '9.1.0.2' AND success")
                  .at(0, 0),
              "1");
    // The frozen broker is killed; its root is recovered to its old version, which then
    // says it is behind and catches up without migrating.
    ::kill(frozen.pid, SIGKILL);
    EXPECT_EQ(frozen.wait_exit(), 128 + SIGKILL);
    auto rec = run_installer({"recover", "--root", roots[0].string(), "-y"});
    EXPECT_EQ(rec.exit_code, 0) << rec.err;
    EXPECT_EQ(installed(roots[0]), k_old);
    auto catchup = run_installer(upgrade_args(roots[0], false));
    EXPECT_EQ(catchup.exit_code, 0) << catchup.out << catchup.err;
    EXPECT_THAT(catchup.out, HasSubstr("only the package is replaced"));
    EXPECT_EQ(installed(roots[0]), k_new);
}

TEST_F(Cluster, DryRunFindsAFailingMigrationAndChangesNothing) {
    add_broker(1);
    const auto pkgs = leo::test::test_packages_dir();
    const auto before = shared().query("SELECT count(*)::text FROM leo_schema_history").at(0, 0);
    auto dry = run_installer({"upgrade", "--root", roots[0].string(), "--rpm",
                              (pkgs / "bad/leostream-broker-9.3.0-1.x86_64.rpm").string(), "--gpgkey",
                              (pkgs / "RPM-GPG-KEY-leo-test").string(), "--dry-run", "--allow-remote-upgrade"});
    EXPECT_EQ(dry.exit_code, 1) << dry.out << dry.err;
    EXPECT_THAT(dry.err, HasSubstr("fail on a throw-away copy"));
    EXPECT_THAT(dry.err, HasSubstr("V9.3.0.1__broken.sql"));
    EXPECT_EQ(installed(roots[0]), k_old);
    EXPECT_EQ(shared().query("SELECT count(*)::text FROM leo_schema_history").at(0, 0), before);
    EXPECT_FALSE(ext->database_exists("leo_dryrun_" + std::to_string(0)));
    EXPECT_EQ(ext->admin().query("SELECT count(*)::text FROM pg_database WHERE datname LIKE 'leo_dryrun_%'").at(0, 0),
              "0");
    // The good package's dry run prints the plan with the cluster.
    auto good = run_installer({"upgrade", "--root", roots[0].string(), "--rpm",
                               (pkgs / "repo" / (std::string(k_new) + ".rpm")).string(), "--gpgkey",
                               (pkgs / "RPM-GPG-KEY-leo-test").string(), "--dry-run", "--allow-remote-upgrade"});
    EXPECT_EQ(good.exit_code, 0) << good.err;
    EXPECT_THAT(good.out, HasSubstr("migrations to apply: 2"));
    EXPECT_THAT(good.out, HasSubstr("V9.1.0.1__jobs_attempts.sql"));
    EXPECT_EQ(installed(roots[0]), k_old);
}

/// The dry-run copies on the shared server: "name|comment" lines.
std::string dry_run_copies(const leo::test::ExternalPostgres& ext) {
    std::string out;
    const auto rows = ext.admin().query("SELECT datname::text, coalesce(shobj_description(oid, 'pg_database'), '') "
                                        "FROM pg_database WHERE datname LIKE 'leo_dryrun_%' ORDER BY 1");
    for (size_t r = 0; r < rows.rows.size(); ++r) out += rows.at(r, 0) + "|" + rows.rows[r][1].value_or("") + "\n";
    return out;
}

/// The dry-run dump directories in `dir`.
std::vector<std::string> dump_dirs(const stdfs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : stdfs::directory_iterator(dir))
        if (e.path().filename().string().rfind("leo-dry-run.", 0) == 0) out.push_back(e.path().filename().string());
    return out;
}

TEST_F(Cluster, AKilledDryRunsCopyAndDumpAreCleanedByTheNextOneOnlyThem) {
    add_broker(1);
    add_broker(2);
    const auto pkgs = leo::test::test_packages_dir();
    const stdfs::path tmpdir = tmp.path() / "t";
    stdfs::create_directories(tmpdir);
    const auto dry_args = [&](const stdfs::path& root) {
        return std::vector<std::string>{"upgrade", "--root", root.string(), "--rpm",
                                        (pkgs / "repo" / (std::string(k_new) + ".rpm")).string(), "--gpgkey",
                                        (pkgs / "RPM-GPG-KEY-leo-test").string(), "--dry-run",
                                        "--allow-remote-upgrade"};
    };
    // Another host's copy (its process is not ours to judge) and a database of the
    // administrator's: both must survive.
    ext->admin().exec("CREATE DATABASE leo_dryrun_0badc0de_1 OWNER broker");
    ext->admin().exec("COMMENT ON DATABASE leo_dryrun_0badc0de_1 IS 'leo-installer upgrade --dry-run copy; "
                      "host=another-host; pid=1; start=1; member=another-host; time=2026-01-01T00:00:00Z'");
    ext->admin().exec("CREATE DATABASE leo_dryrun_notes OWNER broker");
    // Broker 1's dry run is killed (SIGKILL) once its copy is made.
    auto killed = leo::test::runs::start_background(
        dry_args(roots[0]), tmp.path(), {{"LEO_FAULT_INJECT", "dry_run.after_copy"}, {"TMPDIR", tmpdir.string()}},
        "killed");
    EXPECT_EQ(killed.wait_exit(), 128 + SIGKILL) << leo::fs::read_file(killed.err);
    const auto left = dry_run_copies(*ext);
    const std::string name = "leo_dryrun_";
    // Named after the member (8 hex digits of its hash) and the pid; its COMMENT says whose.
    EXPECT_TRUE(std::regex_search(left, std::regex("leo_dryrun_[0-9a-f]{8}_" + std::to_string(killed.pid) +
                                                   "\\|leo-installer upgrade --dry-run copy; host=[^;]+; pid=" +
                                                   std::to_string(killed.pid) + "; start=[0-9]+; member=[^;]+ " +
                                                   roots[0].string() + "; time=")))
        << left;
    ASSERT_EQ(dump_dirs(tmpdir).size(), 1u);
    EXPECT_THAT(dump_dirs(tmpdir)[0], HasSubstr("leo-dry-run." + std::to_string(killed.pid) + "."));
    // Another member's dry run never drops broker 1's copy (a broker in a container, or on
    // a cloned VM, can bear the same host name: its processes are not ours to judge).
    leo::subprocess::Options o;
    o.env["TMPDIR"] = tmpdir.string();
    auto other = run_installer(dry_args(roots[1]), o);
    EXPECT_EQ(other.exit_code, 0) << other.out << other.err;
    EXPECT_THAT(other.out, Not(HasSubstr("dropped the throw-away copy")));
    EXPECT_THAT(dry_run_copies(*ext), HasSubstr("_" + std::to_string(killed.pid) + "|"));
    // Broker 1's next dry run cleans its own dead run's leftovers up, and nothing else.
    auto next = run_installer(dry_args(roots[0]), o);
    EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
    EXPECT_THAT(next.out, HasSubstr("cleaned up first: dropped the throw-away copy leo_dryrun_"));
    EXPECT_THAT(next.out, HasSubstr("of a dry run (pid " + std::to_string(killed.pid) + " on "));
    EXPECT_THAT(other.out, HasSubstr("cleaned up first: removed the dump directory " +
                                     (tmpdir / "leo-dry-run.").string() + std::to_string(killed.pid) + "."));
    EXPECT_EQ(dry_run_copies(*ext),
              "leo_dryrun_0badc0de_1|leo-installer upgrade --dry-run copy; host=another-host; pid=1; start=1; "
              "member=another-host; time=2026-01-01T00:00:00Z\nleo_dryrun_notes|\n");
    EXPECT_TRUE(dump_dirs(tmpdir).empty());
    EXPECT_EQ(installed(roots[0]), k_old);
    EXPECT_EQ(installed(roots[1]), k_old);
}

TEST_F(Cluster, AnInterruptedDryRunDropsItsCopyAndDump) {
    add_broker(1);
    const auto pkgs = leo::test::test_packages_dir();
    const stdfs::path tmpdir = tmp.path() / "t";
    stdfs::create_directories(tmpdir);
    for (int sig : {SIGINT, SIGTERM}) {
        auto run = leo::test::runs::start_background(
            {"upgrade", "--root", roots[0].string(), "--rpm", (pkgs / "repo" / (std::string(k_new) + ".rpm")).string(),
             "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "--dry-run", "--allow-remote-upgrade"},
            tmp.path(),
            {{"LEO_FAULT_INJECT", "dry_run.after_copy"},
             {"LEO_FAULT_SIGNAL", std::to_string(sig)},
             {"TMPDIR", tmpdir.string()}},
            "sig");
        EXPECT_EQ(run.wait_exit(), 128 + sig) << leo::fs::read_file(run.err);
        EXPECT_THAT(leo::fs::read_file(run.err), HasSubstr("dry run interrupted by "));
        EXPECT_THAT(leo::fs::read_file(run.err), HasSubstr("is dropped and its dump removed; nothing was changed"));
        EXPECT_EQ(dry_run_copies(*ext), "");
        EXPECT_TRUE(dump_dirs(tmpdir).empty());
    }
    EXPECT_EQ(installed(roots[0]), k_old);
}

TEST_F(Cluster, ADryRunThatCannotMakeItsCopyFails) {
    add_broker(1);
    ext->admin().exec("ALTER ROLE broker NOCREATEDB");
    const auto pkgs = leo::test::test_packages_dir();
    auto c = shared();
    const auto before = leo::migrations::table_checksums(c);
    auto dry = run_installer({"upgrade", "--root", roots[0].string(), "--rpm",
                              (pkgs / "repo" / (std::string(k_new) + ".rpm")).string(), "--gpgkey",
                              (pkgs / "RPM-GPG-KEY-leo-test").string(), "--dry-run", "--allow-remote-upgrade"});
    EXPECT_EQ(dry.exit_code, 1) << dry.out << dry.err;
    EXPECT_THAT(dry.err, HasSubstr("dry run: no throw-away copy of the broker database could be made (creating "
                                   "leo_dryrun_"));
    EXPECT_THAT(dry.err, HasSubstr("needs CREATEDB"));
    EXPECT_THAT(dry.err, HasSubstr("permission denied to create database"));
    EXPECT_THAT(dry.out, ::testing::Not(HasSubstr("is possible")));
    EXPECT_EQ(dry_run_copies(*ext), "");
    auto after = shared();
    EXPECT_EQ(leo::migrations::table_checksums(after), before);
    EXPECT_EQ(installed(roots[0]), k_old);
}

TEST_F(Cluster, ASlowStepKeepsTheLeaseAndNoOtherBrokerTakesItOver) {
    add_broker(1, "[cluster]\nlease_ttl = 3\n");
    add_broker(2, "[cluster]\nlease_ttl = 3\n");
    // Broker 1 sleeps 10 s (three ttls) after its restore point, holding the lease.
    auto slow = leo::test::runs::start_background(
        upgrade_args(roots[0], true), tmp.path(),
        {{"LEO_FAULT_INJECT", "upgrade.after_restore_point"}, {"LEO_FAULT_SLEEP", "10"}}, "slow");
    bool held = false;
    for (int i = 0; i < 600 && !held; ++i) {
        try {
            held = !shared()
                        .query("SELECT 1 FROM leo_installer.upgrade_lease WHERE holder_pid = $1::integer",
                               {std::to_string(slow.pid)})
                        .empty();
        } catch (const std::exception&) {
        }
        if (!held) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(held) << leo::fs::read_file(slow.err);
    auto second = run_installer(upgrade_args(roots[1], true));
    EXPECT_EQ(slow.wait_exit(), 0) << leo::fs::read_file(slow.out) << leo::fs::read_file(slow.err);
    EXPECT_EQ(second.exit_code, 0) << second.out << second.err;
    EXPECT_THAT(second.out, HasSubstr("waiting for the cluster's upgrade lease"));
    EXPECT_THAT(second.out, ::testing::Not(HasSubstr("expired")));
    EXPECT_THAT(second.out, ::testing::Not(HasSubstr("ended session")));
    EXPECT_THAT(leo::fs::read_file(slow.err), ::testing::Not(HasSubstr("lost")));
    EXPECT_EQ(installed(roots[0]), k_new);
    EXPECT_EQ(installed(roots[1]), k_new);
    // Two acquisitions, one after the other: no takeover.
    EXPECT_EQ(shared().query("SELECT token::text FROM leo_installer.upgrade_lease").at(0, 0), "2");
}

using leo::test::free_port;

/// A broken 9.1.2 (its web server still says 9.1.1: the spot-check fails after the
/// shared schema was migrated), built into `dir`.
std::string build_broken_package(const stdfs::path& dir) {
    leo::subprocess::Options o;
    o.env["HEALTH_VERSION"] = "9.1.1";
    auto built =
        leo::subprocess::run({(leo::test::source_dir() / "scripts/build-broker-rpm.sh").string(), "9.1.2", dir.string()}, o);
    EXPECT_EQ(built.exit_code, 0) << built.err;
    return leo::subprocess::last_line(built.out);
}

/// The broker of `root` answers its health endpoint on a free port (not 8080).
void use_free_health_port(const stdfs::path& root) {
    auto conf = leo::fs::read_file(root / "home/leo/etc/broker.conf");
    const std::string line = "health_port = 8080";
    conf.replace(conf.find(line), line.size(), "health_port = " + std::to_string(leo::test::free_port()));
    std::ofstream(root / "home/leo/etc/broker.conf") << conf;
}

/// pg_database names matching `pattern` on the external server, comma-separated.
std::string databases_like(const leo::test::ExternalPostgres& ext, const std::string& pattern) {
    return ext.admin()
        .query("SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '') FROM pg_database WHERE datname LIKE $1",
               {pattern})
        .at(0, 0);
}

TEST_F(Cluster, AFailedSpotCheckRollsTheSharedDatabaseBackByRenames) {
    const auto root = add_broker(1, "[spot_check]\ntimeout = 3\n");
    use_free_health_port(root);
    // Database-level state a copy does not carry by itself: put back by the rollback.
    shared().exec("COMMENT ON DATABASE leo_cluster IS 'the cluster''s database'");
    shared().exec("ALTER DATABASE leo_cluster SET work_mem = '5MB'");
    {
        shared().exec("INSERT INTO work_queue (site_id, job_type, status, payload) VALUES (1, 'sync', 'failed', "
                      "'attempts=4')");
    }
    // The broker's tables (the cluster's own, in leo_installer, record the run itself).
    const auto broker_tables = [&] {
        auto c = shared();
        auto all = leo::migrations::table_checksums(c);
        for (auto it = all.begin(); it != all.end();)
            it = it->first.rfind("\"leo_installer\".", 0) == 0 ? all.erase(it) : std::next(it);
        return all;
    };
    const auto before = broker_tables();
    auto started = run_installer({"service", "start", "--root", root.string()});
    ASSERT_EQ(started.exit_code, 0) << started.out << started.err;
    const auto state_before = ext->admin().query(
        "SELECT shobj_description(d.oid, 'pg_database'), array_to_string(s.setconfig, ',') FROM pg_database d LEFT "
        "JOIN pg_db_role_setting s ON s.setdatabase = d.oid AND s.setrole = 0 WHERE d.datname = 'leo_cluster'");
    // Every broker is stopped (the upgrade stops this one's components), the role owns the
    // database and may create databases: the restore point is a template copy on the
    // server, and the rollback two renames.
    auto up = run_installer({"upgrade", "--root", root.string(), "--rpm", build_broken_package(tmp.path() / "broken"),
                             "--nogpgcheck", "-y", "--allow-remote-upgrade"});
    EXPECT_EQ(up.exit_code, 1) << up.out << up.err;
    EXPECT_THAT(up.err, HasSubstr("spot-check"));
    EXPECT_THAT(up.err, HasSubstr("rolled back"));
    EXPECT_THAT(up.out, HasSubstr("a template copy leo_rp_"));
    EXPECT_THAT(up.out, HasSubstr("switching the shared database"));
    EXPECT_EQ(installed(root), k_old);
    // The copy is the live database now; the migrated one is kept, frozen, for inspection.
    EXPECT_EQ(databases_like(*ext, "leo_rp_%"), "");
    EXPECT_THAT(databases_like(*ext, "leo_before_rollback_%"), ::testing::StartsWith("leo_before_rollback_"));
    const auto state_after = ext->admin().query(
        "SELECT shobj_description(d.oid, 'pg_database'), array_to_string(s.setconfig, ','), d.datallowconn::text "
        "FROM pg_database d LEFT JOIN pg_db_role_setting s ON s.setdatabase = d.oid AND s.setrole = 0 WHERE "
        "d.datname = 'leo_cluster'");
    EXPECT_EQ(state_after.at(0, 0), state_before.at(0, 0));
    EXPECT_EQ(state_after.at(0, 1), state_before.at(0, 1));
    EXPECT_EQ(state_after.at(0, 2), "true");
    // The shared database holds exactly what it held: schema, rows, the payload column.
    EXPECT_EQ(broker_tables(), before);
    EXPECT_EQ(shared().query("SELECT max(version) FROM leo_schema_history").at(0, 0), "9.0.0.2");
    // The old version runs again; the lease is free.
    auto status = run_installer({"service", "status", "--root", root.string()});
    EXPECT_EQ(status.exit_code, 0) << status.out;
    EXPECT_EQ(shared().query("SELECT count(*)::text FROM leo_installer.upgrade_lease WHERE holder IS NOT NULL").at(0, 0),
              "0");
    (void)run_installer({"service", "stop", "--root", root.string()});
}

TEST_F(Cluster, WithoutCreatedbTheRestorePointIsADirectoryDumpAndTheRollbackRestoresIt) {
    const auto root = add_broker(1, "[spot_check]\ntimeout = 3\n");
    use_free_health_port(root);
    ext->admin().exec("ALTER ROLE broker NOCREATEDB");
    auto started = run_installer({"service", "start", "--root", root.string()});
    ASSERT_EQ(started.exit_code, 0) << started.out << started.err;
    shared().exec("INSERT INTO work_queue (site_id, job_type, status, payload) VALUES (1, 'sync', 'failed', "
                  "'attempts=2')");
    const auto before = [&] {
        auto c = shared();
        return leo::migrations::table_checksums(c);
    }();
    auto up = run_installer({"upgrade", "--root", root.string(), "--rpm", build_broken_package(tmp.path() / "broken"),
                             "--nogpgcheck", "-y", "--allow-remote-upgrade"});
    EXPECT_EQ(up.exit_code, 1) << up.out << up.err;
    EXPECT_THAT(up.out, HasSubstr("not a template copy: the role broker may not create databases"));
    EXPECT_THAT(up.out, HasSubstr("restoring the shared database"));
    EXPECT_EQ(installed(root), k_old);
    EXPECT_EQ(databases_like(*ext, "leo_rp_%"), "");
    auto c = shared();
    auto after = leo::migrations::table_checksums(c);
    for (auto it = after.begin(); it != after.end();)
        it = it->first.rfind("\"leo_installer\".", 0) == 0 ? after.erase(it) : std::next(it);
    (void)run_installer({"service", "stop", "--root", root.string()});
    auto want = before;
    for (auto it = want.begin(); it != want.end();)
        it = it->first.rfind("\"leo_installer\".", 0) == 0 ? want.erase(it) : std::next(it);
    EXPECT_EQ(after, want);
}

TEST_F(Cluster, ASessionThatConnectsJustBeforeTheCopyMakesItADumpNotAFailure) {
    // The demo met it: another broker's lease-wait session connected to the shared database
    // between the "no other session" check and the template copy, and the upgrade failed.
    const auto root = add_broker(1);
    leo::subprocess::Options o;
    const auto reached = tmp.path() / "at-the-copy";
    o.env["LEO_FAULT_INJECT"] = "restore_point.external_copy";  // just before the copy...
    o.env["LEO_FAULT_SLEEP"] = "4";                               // ...made slow
    o.env["LEO_FAULT_REACHED"] = reached.string();               // ...and announced
    std::optional<leo::migrations::Connection> intruder;
    std::thread connect([&] {
        // The upgrade has checked that nobody else uses the database: a client arrives now.
        for (int i = 0; i < 1200 && !intruder; ++i) {
            if (stdfs::exists(reached)) intruder.emplace(shared());
            else std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
    });
    auto up = run_installer(upgrade_args(root, true), o);
    connect.join();
    ASSERT_TRUE(intruder.has_value()) << "the test could not place its session";
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_THAT(up.out, HasSubstr("not a template copy: other sessions connected while the copy was being made"));
    EXPECT_EQ(databases_like(*ext, "leo_rp_%"), "") << "no copy is left behind";
    EXPECT_EQ(installed(root), k_new);
}

TEST_F(Cluster, ASessionThatEndsSoonAfterTheCopyWasRefusedGetsTheCopyTriedAgain) {
    // CI met it: another broker polling for the lease held a session of milliseconds at the
    // moment of the copy; the upgrade failed instead of trying the copy again.
    const auto root = add_broker(1);
    const auto log_file = root / "var/log/leo-installer/installer.log";
    leo::subprocess::Options o;
    const auto reached = tmp.path() / "at-the-copy";
    o.env["LEO_FAULT_INJECT"] = "restore_point.external_copy";
    o.env["LEO_FAULT_SLEEP"] = "3";
    o.env["LEO_FAULT_REACHED"] = reached.string();
    bool placed = false;
    bool left = false;
    std::thread connect([&] {
        std::optional<leo::migrations::Connection> intruder;
        for (int i = 0; i < 1200 && !placed; ++i) {
            if (stdfs::exists(reached)) {
                intruder.emplace(shared());
                placed = true;
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(25));
            }
        }
        // The session ends as soon as the first copy attempt was refused because of it.
        for (int i = 0; i < 1200 && placed && !left; ++i) {
            if (stdfs::exists(log_file) &&
                leo::fs::read_file(log_file).find("template copy not possible yet") != std::string::npos) {
                intruder.reset();
                left = true;
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        }
    });
    auto up = run_installer(upgrade_args(root, true), o);
    connect.join();
    ASSERT_TRUE(placed) << "the test could not place its session";
    ASSERT_TRUE(left) << up.out << up.err;
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_THAT(up.out, Not(HasSubstr("not a template copy")));
    EXPECT_THAT(leo::fs::read_file(log_file), HasSubstr("template copy not possible yet: cannot copy the database "
                                                        "leo_cluster: other sessions are connected to it: pid "));
    EXPECT_THAT(databases_like(*ext, "leo_rp_%"), HasSubstr("leo_rp_")) << "the restore point is a template copy";
    EXPECT_EQ(installed(root), k_new);
}

TEST_F(Cluster, ManualRollbackOfTheSharedDatabaseNeedsTheFlagAndCanItselfBeRolledBack) {
    const auto root = add_broker(1);
    auto up = run_installer(upgrade_args(root, true));
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_THAT(up.out, HasSubstr("a template copy leo_rp_"));
    EXPECT_THAT(up.out, HasSubstr("--allow-remote-upgrade --root " + root.string() + "` returns to it"));
    // Off the critical path: the copy's directory dump is taken after the upgrade.
    auto list = run_installer({"snapshot", "list", "--root", root.string(), "--json"});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    const auto points = nlohmann::json::parse(list.out);
    ASSERT_EQ(points.size(), 1U) << list.out;
    EXPECT_EQ(points[0]["database"]["dump"]["state"], "complete") << list.out;
    EXPECT_EQ(points[0]["database"]["dump"]["file"], "database.dir") << list.out;
    shared().exec("INSERT INTO sites (site_id, name) VALUES (42, 'written after the upgrade')");
    const auto history = [&] { return shared().query("SELECT max(version) FROM leo_schema_history").at(0, 0); };
    ASSERT_EQ(history(), "9.1.0.2");

    // Without the flag: the old version cannot run on the new schema; refused, nothing changed.
    auto refused = run_installer({"rollback", "--root", root.string(), "-y"});
    EXPECT_EQ(refused.exit_code, 3) << refused.out << refused.err;
    EXPECT_THAT(refused.err, HasSubstr("needs --allow-remote-upgrade"));
    EXPECT_THAT(refused.err, HasSubstr("nothing was changed"));
    EXPECT_EQ(installed(root), k_new);
    EXPECT_EQ(history(), "9.1.0.2");
    EXPECT_EQ(databases_like(*ext, "leo_before_rollback_%"), "");

    auto rb = run_installer({"rollback", "--root", root.string(), "-y", "--allow-remote-upgrade"});
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_THAT(rb.out, HasSubstr("for every broker of the cluster"));
    EXPECT_THAT(rb.out, HasSubstr("switching the shared database"));
    EXPECT_EQ(installed(root), k_old);
    EXPECT_EQ(history(), "9.0.0.2");
    EXPECT_EQ(shared().query("SELECT count(*)::text FROM sites WHERE site_id = 42").at(0, 0), "0");
    EXPECT_EQ(shared().query("SELECT count(*)::text FROM leo_installer.upgrade_lease WHERE holder IS NOT NULL").at(0, 0),
              "0");
    const auto marker = std::string("the state before this rollback is restore point ");
    const auto at = rb.out.find(marker);
    ASSERT_NE(at, std::string::npos) << rb.out;
    const auto left = rb.out.substr(at + marker.size(), rb.out.find(' ', at + marker.size()) - at - marker.size());
    EXPECT_THAT(rb.out, HasSubstr("`leo-installer rollback " + left + " --allow-remote-upgrade --root " + root.string() +
                                  "` returns to it"));

    // The rollback rolled back: the upgraded schema and the row written after it return.
    auto again = run_installer({"rollback", left, "--root", root.string(), "-y", "--allow-remote-upgrade"});
    ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
    EXPECT_EQ(installed(root), k_new);
    EXPECT_EQ(history(), "9.1.0.2");
    EXPECT_EQ(shared().query("SELECT count(*)::text FROM sites WHERE site_id = 42").at(0, 0), "1");
}

TEST_F(Cluster, SnapshotCreateOfAnExternalBrokerIsADirectoryDump) {
    const auto root = add_broker(1);
    auto snap = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
    ASSERT_EQ(snap.exit_code, 0) << snap.out << snap.err;
    EXPECT_THAT(snap.out, HasSubstr("directory dump of the shared database"));
    EXPECT_THAT(snap.err, HasSubstr("not a template copy: a restore point taken by hand"));
    EXPECT_EQ(databases_like(*ext, "leo_rp_%"), "");
    auto list = run_installer({"snapshot", "list", "--root", root.string(), "--json"});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    const auto points = nlohmann::json::parse(list.out);
    ASSERT_EQ(points.size(), 1U);
    EXPECT_EQ(points[0]["kind"], "manual");
    // Rolled back to (same schema, no flag): package and configuration only, the shared
    // database left as it is, and said so.
    shared().exec("INSERT INTO sites (site_id, name) VALUES (43, 'kept')");
    auto rb = run_installer({"rollback", points[0]["id"].get<std::string>(), "--root", root.string(), "-y"});
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_THAT(rb.out, HasSubstr("is left as it is"));
    EXPECT_EQ(shared().query("SELECT count(*)::text FROM sites WHERE site_id = 43").at(0, 0), "1");
}

TEST_F(Cluster, ARestorePointOfTheInternalDatabaseIsRefusedOnceTheBrokerIsExternal) {
    const auto root = add_broker(1, "", true);
    const std::string conf_before = leo::fs::read_file(root / "etc/leostream/database.conf");
    auto list = run_installer({"snapshot", "list", "--root", root.string(), "--json"});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    const auto points = nlohmann::json::parse(list.out);
    ASSERT_EQ(points.size(), 1U) << list.out;
    ASSERT_EQ(points[0]["database"]["location"], "internal");
    auto rb = run_installer({"rollback", points[0]["id"].get<std::string>(), "--root", root.string(), "-y"});
    EXPECT_EQ(rb.exit_code, 3) << rb.out << rb.err;
    EXPECT_THAT(rb.err, HasSubstr("holds the internal database"));
    EXPECT_THAT(rb.err, HasSubstr("nothing was changed"));
    EXPECT_EQ(leo::fs::read_file(root / "etc/leostream/database.conf"), conf_before);
    EXPECT_EQ(installed(root), k_old);
    auto again = run_installer({"snapshot", "list", "--root", root.string(), "--json"});
    EXPECT_EQ(nlohmann::json::parse(again.out).size(), 1U) << "no restore point of a state left was taken";
}

TEST_F(Cluster, KilledBetweenTheRenamesThenRecoverLeavesExactlyOneSharedDatabase) {
    const auto root = add_broker(1);
    auto up = run_installer(upgrade_args(root, true));
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    leo::subprocess::Options o;
    o.env["LEO_FAULT_INJECT"] = "restore.switch";
    auto killed = run_installer({"rollback", "--root", root.string(), "-y", "--allow-remote-upgrade"}, o);
    EXPECT_EQ(killed.signal, SIGKILL) << killed.out << killed.err;
    // Between the renames: no database of the broker's name on the server.
    EXPECT_FALSE(ext->database_exists("leo_cluster"));
    auto rec = run_installer({"recover", "--root", root.string(), "-y"});
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_TRUE(ext->database_exists("leo_cluster"));
    EXPECT_EQ(installed(root), k_old);
    EXPECT_EQ(shared().query("SELECT max(version) FROM leo_schema_history").at(0, 0), "9.0.0.2");
    EXPECT_EQ(databases_like(*ext, "leo_rp_%"), "");
    // The lease the killed run held is free at once, not after its ttl; the broker is running.
    EXPECT_EQ(shared().query("SELECT count(*)::text FROM leo_installer.upgrade_lease WHERE holder IS NOT NULL").at(0, 0),
              "0");
    EXPECT_EQ(shared().query("SELECT state FROM leo_installer.cluster_members").at(0, 0), "running");
}

TEST_F(Cluster, ACopyLeftOnTheExternalServerByAKillIsListedAndDroppedAndNoOtherIsTouched) {
    const auto root = add_broker(1);
    // Another user's database named like a copy (its comment names no broker of ours).
    ext->admin().exec("CREATE DATABASE leo_rp_not_ours");
    ext->admin().exec("COMMENT ON DATABASE leo_rp_not_ours IS 'leo-installer restore point x of someone else (y)'");
    leo::subprocess::Options o;
    o.env["LEO_FAULT_INJECT"] = "restore_point.external_copied";
    auto killed = run_installer(upgrade_args(root, true), o);
    EXPECT_EQ(killed.signal, SIGKILL) << killed.out << killed.err;
    const auto copies = databases_like(*ext, "leo_rp_%");
    ASSERT_THAT(copies, HasSubstr(",leo_rp_not_ours")) << "the killed run left its copy";
    auto list = run_installer({"snapshot", "list", "--root", root.string()});
    EXPECT_THAT(list.out, HasSubstr("on the external server is a copy of this broker no restore point names"));
    EXPECT_THAT(list.out, Not(HasSubstr("leo_rp_not_ours")));
    auto rec = run_installer({"recover", "--root", root.string(), "-y"});
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_EQ(databases_like(*ext, "leo_rp_%"), "leo_rp_not_ours");
    EXPECT_EQ(installed(root), k_old);
    EXPECT_EQ(shared().query("SELECT count(*)::text FROM leo_installer.upgrade_lease WHERE holder IS NOT NULL").at(0, 0),
              "0");
}

TEST_F(Cluster, ARecoverThatDiesAfterTakingTheLeaseDoesNotMakeTheNextOneSkipTheSharedDatabase) {
    const auto root = add_broker(1);
    leo::subprocess::Options o;
    o.env["LEO_FAULT_INJECT"] = "upgrade.after_migrate";
    auto killed = run_installer(upgrade_args(root, true), o);
    ASSERT_EQ(killed.signal, SIGKILL) << killed.out << killed.err;
    o.env["LEO_FAULT_INJECT"] = "restore.left";
    auto first = run_installer({"recover", "--root", root.string(), "-y"}, o);
    ASSERT_EQ(first.signal, SIGKILL) << first.out << first.err;
    auto second = run_installer({"recover", "--root", root.string(), "-y"});
    ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
    EXPECT_THAT(second.out, Not(HasSubstr("another broker took the cluster's upgrade lease")));
    EXPECT_EQ(installed(root), k_old);
    EXPECT_EQ(shared().query("SELECT max(version) FROM leo_schema_history").at(0, 0), "9.0.0.2");
    EXPECT_EQ(shared().query("SELECT count(*)::text FROM leo_installer.upgrade_lease WHERE holder IS NOT NULL").at(0, 0),
              "0");
}

TEST_F(Cluster, AfterTheSharedDatabaseWentBackTheOtherBrokersAreNamedAndCanGoBackToo) {
    const auto b1 = add_broker(1);
    const auto b2 = add_broker(2);
    ASSERT_EQ(run_installer(upgrade_args(b1, true)).exit_code, 0);
    ASSERT_EQ(run_installer(upgrade_args(b2, false)).exit_code, 0);
    auto rb = run_installer({"rollback", "--root", b1.string(), "-y", "--allow-remote-upgrade"});
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_THAT(rb.out, HasSubstr("other brokers run another version on it"));
    EXPECT_THAT(rb.out, HasSubstr(b2.string() + " (9.1.2"));
    // The registry is the cluster's present, not the copy's: b2 still says 9.1.2.
    EXPECT_EQ(shared()
                  .query("SELECT broker_version FROM leo_installer.cluster_members WHERE member LIKE '%' || $1",
                         {b2.string()})
                  .at(0, 0),
              "9.1.2");
    // b2's restore point recorded the migrated schema, but its package ships the one the
    // shared database is at again: it goes back (package and configuration only).
    auto rb2 = run_installer({"rollback", "--root", b2.string(), "-y"});
    ASSERT_EQ(rb2.exit_code, 0) << rb2.out << rb2.err;
    EXPECT_EQ(installed(b2), k_old);
    auto st = run_installer({"status", "--root", b2.string()});
    EXPECT_EQ(st.exit_code, 0) << st.out;
}

TEST_F(Cluster, AnEmptyRestorePointIdIsAUsageErrorNotTheNewest) {
    const auto root = add_broker(1);
    ASSERT_EQ(run_installer(upgrade_args(root, true)).exit_code, 0);
    auto rb = run_installer({"rollback", "", "--root", root.string(), "-y", "--allow-remote-upgrade"});
    EXPECT_EQ(rb.exit_code, 2) << rb.out << rb.err;
    EXPECT_EQ(installed(root), k_new);
    EXPECT_EQ(shared().query("SELECT max(version) FROM leo_schema_history").at(0, 0), "9.1.0.2");
}

TEST_F(Cluster, ALinkOutOfTheConfigurationRefusesTheRollbackBeforeItIsRecorded) {
    const auto root = add_broker(1);
    ASSERT_EQ(run_installer(upgrade_args(root, true)).exit_code, 0);
    const auto etc = root / "home/leo/etc";
    stdfs::rename(etc, root / "home/leo/etc.moved");
    stdfs::create_symlink(tmp.path(), etc);
    auto rb = run_installer({"rollback", "--root", root.string(), "-y", "--allow-remote-upgrade"});
    EXPECT_EQ(rb.exit_code, 3) << rb.out << rb.err;
    EXPECT_THAT(rb.err, HasSubstr("nothing was changed"));
    EXPECT_EQ(installed(root), k_new);
    EXPECT_EQ(shared().query("SELECT max(version) FROM leo_schema_history").at(0, 0), "9.1.0.2");
    // No unfinished run: nothing for recover, and the other commands are not blocked.
    stdfs::remove(etc);
    stdfs::rename(root / "home/leo/etc.moved", etc);
    auto st = run_installer({"status", "--root", root.string()});
    EXPECT_NE(st.exit_code, 5) << st.out;
}

TEST_F(Cluster, KilledInTheMigrationThenRecoverPutsTheSharedDatabaseBackAndFreesTheLease) {
    const auto root = add_broker(1);
    leo::subprocess::Options o;
    o.env["LEO_FAULT_INJECT"] = "migrate.inside";
    auto killed = run_installer(upgrade_args(root, true), o);
    EXPECT_EQ(killed.signal, SIGKILL) << killed.out << killed.err;
    EXPECT_EQ(shared().query("SELECT count(*)::text FROM leo_installer.upgrade_lease WHERE holder IS NOT NULL").at(0, 0),
              "1");
    auto rec = run_installer({"recover", "--root", root.string(), "-y"});
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_THAT(rec.out, HasSubstr("switching the shared database"));
    EXPECT_EQ(installed(root), k_old);
    EXPECT_EQ(shared().query("SELECT max(version) FROM leo_schema_history").at(0, 0), "9.0.0.2");
    EXPECT_EQ(shared().query("SELECT count(*)::text FROM leo_installer.upgrade_lease WHERE holder IS NOT NULL").at(0, 0),
              "0");
    // And the cluster can be upgraded again at once.
    auto up = run_installer(upgrade_args(root, true));
    EXPECT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_EQ(installed(root), k_new);
}

} // namespace
