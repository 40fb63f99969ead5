// The fault matrix: an upgrade (and a rollback) killed with SIGKILL at every step
// boundary and inside the long steps (LEO_FAULT_INJECT), then `recover`: the broker ends
// exactly on the old or exactly on the new version, files, schema, data and
// configuration consistent with it, and a second `recover` does nothing.
#include "test_support.hpp"

#include "leo/common/fs.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"

#include <ctime>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;

const std::string k_old = "leostream-broker-9.0.7-1.x86_64";

/// `leo-installer status` text for `root`.
std::string status_text(const stdfs::path& root) { return run_installer({"status", "--root", root.string()}).out; }
const std::string k_new = "leostream-broker-9.2.0-1.x86_64";

struct FaultCase {
    std::string point;     ///< LEO_FAULT_INJECT value
    std::string command;   ///< "upgrade" or "rollback"
    std::string expected;  ///< NEVRA after recover
    bool journaled = true; ///< the run was in the journal when it died (else: nothing to recover)
};

std::ostream& operator<<(std::ostream& os, const FaultCase& c) { return os << c.command << "@" << c.point; }

class FaultMatrix : public ::testing::TestWithParam<FaultCase> {
protected:
    void SetUp() override {
        pkgs = leo::test::test_packages_dir();
        root = tmp.path() / "root";
        leo::test::make_sandbox_root(root);
        leo::test::install_test_broker(root, k_old);
        sql("INSERT INTO work_queue (site_id, job_type, status, payload) VALUES (1, 'sync', 'failed', 'attempts=2'), "
            "(1, 'power', 'pending', NULL)");
        std::ofstream(root / "home/leo/etc/broker.conf", std::ios::app) << "local_setting = kept\n";
        old_tables = leo::test::table_checksums(root);
        old_conf = leo::fs::read_file(root / "home/leo/etc/broker.conf");
    }
    void TearDown() override {
        if (stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"))
            (void)run_installer({"db", "stop", "--root", root.string()});
    }
    leo::migrations::Rows sql(const std::string& text) {
        leo::migrations::InternalDatabase db(root);
        auto conn = leo::migrations::Connection::open(db.conninfo());
        return conn.query(text);
    }
    /// Upgrade from the repository (file:// baseurl): the newest is 9.2.0.
    std::vector<std::string> upgrade_args() {
        leo::test::write_file_repo(root);
        return {"upgrade", "--root", root.string(), "-y"};
    }

    leo::test::TempDir tmp;
    stdfs::path pkgs;
    stdfs::path root;
    std::string old_tables;
    std::string old_conf;
};

TEST_P(FaultMatrix, KilledThenRecoveredEndsOnOneVersion) {
    const FaultCase& c = GetParam();
    leo::subprocess::Options faulty;
    faulty.env["LEO_FAULT_INJECT"] = c.point;
    if (c.command == "rollback") {
        auto up = run_installer(upgrade_args());
        ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
        auto rb = run_installer({"rollback", "--root", root.string(), "-y"}, faulty);
        ASSERT_EQ(rb.signal, 9) << "the fault point was not reached: " << rb.out << rb.err;
    } else {
        auto up = run_installer(upgrade_args(), faulty);
        ASSERT_EQ(up.signal, 9) << "the fault point was not reached: " << up.out << up.err;
    }

    // Every other command refuses while the run is unfinished.
    if (c.journaled) {
        auto refused = run_installer(upgrade_args());
        EXPECT_EQ(refused.exit_code, 3) << refused.out << refused.err;
        EXPECT_NE(refused.err.find("leo-installer recover"), std::string::npos) << refused.err;
    }

    auto rec = run_installer({"recover", "--root", root.string(), "-y"});
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;

    // Exactly one broker NEVRA, the expected one, and its files match the package.
    auto q = leo::subprocess::run({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-q", "leostream-broker"});
    EXPECT_EQ(q.out, c.expected + "\n") << rec.out;
    // (--noconfig: broker.conf was edited by the administrator, on purpose)
    auto v = leo::subprocess::run(
        {"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-V", "--noconfig", "leostream-broker"});
    EXPECT_EQ(v.exit_code, 0) << v.out;
    // The schema is the package's; on the old version every table is as before.
    const auto schema = sql("SELECT max(version) FROM leo_schema_history WHERE success").at(0, 0);
    if (c.expected == k_old) {
        EXPECT_EQ(schema, "9.0.0.2");
        EXPECT_EQ(leo::test::table_checksums(root), old_tables);
        EXPECT_EQ(leo::fs::read_file(root / "home/leo/etc/broker.conf"), old_conf);
    } else {
        EXPECT_EQ(schema, "9.1.0.2");
        EXPECT_EQ(sql("SELECT count(*), sum(attempts) FROM work_queue").at(0, 1), "2");
        EXPECT_NE(leo::fs::read_file(root / "home/leo/etc/broker.conf").find("local_setting = kept"), std::string::npos);
    }

    // Exactly one broker database in place, and no copy or directory left unreported: what
    // the crash left was removed by recover, or belongs to a listed restore point.
    auto list = run_installer({"snapshot", "list", "--root", root.string()});
    EXPECT_EQ(list.exit_code, 0) << list.err;
    EXPECT_EQ(list.out.find("leftover"), std::string::npos) << list.out;
    EXPECT_EQ(sql("SELECT count(*) FROM pg_database WHERE datname = 'leo'").at(0, 0), "1");

    // A second recover does nothing.
    auto again = run_installer({"recover", "--root", root.string(), "-y"});
    EXPECT_EQ(again.exit_code, 0);
    EXPECT_NE(again.out.find("nothing to recover"), std::string::npos) << again.out;
}

INSTANTIATE_TEST_SUITE_P(
    EveryStep, FaultMatrix,
    ::testing::Values(FaultCase{"download", "upgrade", k_old, false},
                      FaultCase{"upgrade.begin", "upgrade", k_old},
                      FaultCase{"restore_point.package", "upgrade", k_old},
                      FaultCase{"restore_point.database", "upgrade", k_old},
                      FaultCase{"restore_point.copy", "upgrade", k_old},
                      FaultCase{"upgrade.after_restore_point", "upgrade", k_old},
                      FaultCase{"upgrade.before_transaction", "upgrade", k_old},
                      FaultCase{"rpm.install", "upgrade", k_old},
                      FaultCase{"upgrade.after_transaction", "upgrade", k_old},
                      FaultCase{"migrate.inside", "upgrade", k_old},
                      FaultCase{"migrate.between", "upgrade", k_old},
                      FaultCase{"upgrade.after_migrate", "upgrade", k_old},
                      FaultCase{"upgrade.after_spot_check", "upgrade", k_new},
                      FaultCase{"upgrade.before_end", "upgrade", k_new},
                      FaultCase{"restore_point.dump", "upgrade", k_new, false},
                      FaultCase{"restore.left", "rollback", k_old},
                      FaultCase{"restore.database", "rollback", k_old},
                      FaultCase{"restore.rpm", "rollback", k_old},
                      FaultCase{"restore.config", "rollback", k_old},
                      FaultCase{"restore.switch", "rollback", k_old}),
    [](const ::testing::TestParamInfo<FaultCase>& p) {
        std::string name = p.param.command + "_" + p.param.point;
        for (auto& ch : name)
            if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
        return name;
    });

} // namespace

namespace {
struct InstallFault {
    std::string point;
    bool installed_after;  ///< the broker is installed (and its database complete) after recover
};
std::ostream& operator<<(std::ostream& os, const InstallFault& c) { return os << "install@" << c.point; }

class InstallFaultMatrix : public ::testing::TestWithParam<InstallFault> {
protected:
    void TearDown() override {
        if (stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"))
            (void)run_installer({"db", "stop", "--root", root.string()});
    }
    leo::test::TempDir tmp;
    stdfs::path root = tmp.path() / "root";
};

TEST_P(InstallFaultMatrix, KilledFirstInstallIsFinishedOrUndone) {
    const auto pkgs = leo::test::test_packages_dir();
    leo::test::make_sandbox_root(root);
    leo::subprocess::Options faulty;
    faulty.env["LEO_FAULT_INJECT"] = GetParam().point;
    const std::vector<std::string> args{"install", "--rpm", (pkgs / "repo" / (k_old + ".rpm")).string(), "--root",
                                        root.string(), "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y"};
    auto r = run_installer(args, faulty);
    ASSERT_EQ(r.signal, 9) << "the fault point was not reached: " << r.out << r.err;

    auto rec = run_installer({"recover", "--root", root.string(), "-y"});
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    auto q = leo::test::rpm_query(root, "leostream-broker");
    if (GetParam().installed_after) {
        EXPECT_EQ(q.out, k_old + "\n") << rec.out;
        auto st = status_text(root);
        EXPECT_NE(st.find("schema version:   9.0.0.2"), std::string::npos) << st;
    } else {
        EXPECT_NE(q.exit_code, 0) << q.out << rec.out;
        EXPECT_FALSE(stdfs::exists(root / "home/leo/VERSION")) << rec.out;
        // and the install can simply be run again
        auto again = run_installer(args);
        EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
    }
    auto second = run_installer({"recover", "--root", root.string(), "-y"});
    EXPECT_NE(second.out.find("nothing to recover"), std::string::npos) << second.out;
}

INSTANTIATE_TEST_SUITE_P(EveryStep, InstallFaultMatrix,
                         ::testing::Values(InstallFault{"install.begin", false}, InstallFault{"install.after_user", false},
                                           InstallFault{"rpm.install", false},
                                           InstallFault{"install.after_transaction", true},
                                           InstallFault{"install.after_database_init", true},
                                           InstallFault{"install.before_end", true}),
                         [](const ::testing::TestParamInfo<InstallFault>& p) {
                             std::string name = p.param.point;
                             for (auto& ch : name)
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return name;
                         });
} // namespace

namespace {
// Killed at a random moment: the upgrade's whole process group gets SIGKILL after a
// random delay (the seed is printed, so a failure can be replayed with LEO_KILL_SEED).
TEST(RandomKill, UpgradeKilledAtARandomMomentNeverEndsBetweenVersions) {
    const auto pkgs = leo::test::test_packages_dir();
    const char* seed_env = std::getenv("LEO_KILL_SEED");
    const unsigned seed = seed_env != nullptr ? static_cast<unsigned>(std::stoul(seed_env))
                                              : static_cast<unsigned>(std::time(nullptr));
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> delay_ms(200, 4000);
    for (int round = 0; round < 3; ++round) {
        leo::test::TempDir tmp;
        const auto root = tmp.path() / "root";
        leo::test::make_sandbox_root(root);
        auto inst = run_installer({"install", "--rpm", (pkgs / "repo" / (k_old + ".rpm")).string(), "--root",
                                   root.string(), "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y"});
        ASSERT_EQ(inst.exit_code, 0) << inst.err;
        const auto before = leo::test::table_checksums(root);
        leo::subprocess::Options killer;
        const int delay = delay_ms(rng);
        killer.timeout = std::chrono::milliseconds(delay);
        auto up = run_installer({"upgrade", "--root", root.string(), "--rpm", (pkgs / "repo" / (k_new + ".rpm")).string(),
                                 "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y"},
                                killer);
        SCOPED_TRACE("seed " + std::to_string(seed) + ", round " + std::to_string(round) + ", killed after " +
                     std::to_string(delay) + " ms (finished first: " + (up.timed_out ? "no" : "yes") + ")");
        auto rec = run_installer({"recover", "--root", root.string(), "-y"});
        ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
        auto q = leo::test::rpm_query(root, "leostream-broker");
        ASSERT_TRUE(q.out == k_old + "\n" || q.out == k_new + "\n") << q.out;
        auto v = leo::subprocess::run({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-V", "--noconfig",
                                       "leostream-broker"});
        EXPECT_EQ(v.exit_code, 0) << v.out;
        (void)run_installer({"db", "start", "--root", root.string()});
        const auto schema = run_installer({"status", "--root", root.string(), "--json"}).out;
        if (q.out == k_old + "\n") {
            EXPECT_NE(schema.find("\"schema_version\": \"9.0.0.2\""), std::string::npos) << schema;
            EXPECT_EQ(leo::test::table_checksums(root), before);
        } else {
            EXPECT_NE(schema.find("\"schema_version\": \"9.1.0.2\""), std::string::npos) << schema;
        }
        (void)run_installer({"db", "stop", "--root", root.string()});
    }
}
} // namespace
