// End to end: `leo-installer install` into sandbox roots with real librpm transactions,
// a real PostgreSQL server (the internal database) and real signed packages.
#include "test_support.hpp"

#include "leo/common/fs.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"

#include <fstream>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;

/// Packages shared by every test: built once (rpmbuild + rpmsign take seconds).
struct Packages {
    leo::test::TempDir dir;
    stdfs::path pubkey;
    stdfs::path signed_rpm;    // leostream-broker 9.0.40, signed
    stdfs::path unsigned_rpm;  // leostream-broker 9.0.41, unsigned
    stdfs::path other_pubkey;  // a key that did not sign anything we install
};
Packages* g_pkgs = nullptr;

class InstallTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        g_pkgs = new Packages;
        g_pkgs->pubkey = leo::test::make_signing_key(g_pkgs->dir.path() / "k1", "leo-test");
        g_pkgs->other_pubkey = leo::test::make_signing_key(g_pkgs->dir.path() / "k2", "leo-other");
        g_pkgs->signed_rpm = leo::test::build_broker_rpm("9.0.40", g_pkgs->dir.path() / "rpms",
                                                         g_pkgs->dir.path() / "k1/gnupg", "leo-test");
        g_pkgs->unsigned_rpm = leo::test::build_broker_rpm("9.0.41", g_pkgs->dir.path() / "rpms");
    }
    static void TearDownTestSuite() {
        delete g_pkgs;
        g_pkgs = nullptr;
    }
    void SetUp() override {
        root = tmp.path() / "root";
        leo::test::make_sandbox_root(root);
    }
    void TearDown() override {
        // Never leave a server running, whatever the test did.
        if (stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid")) (void)run_installer({"db", "stop", "--root", root.string()});
    }

    /// Expect `args` to fail with `exit_code`, `message` on stderr, and nothing changed.
    void expect_refused(const std::vector<std::string>& args, int exit_code, const std::string& message,
                        const leo::subprocess::Options& options = {}) {
        const std::string before = leo::test::snapshot_tree(root);
        auto r = run_installer(args, options);
        EXPECT_EQ(r.exit_code, exit_code) << r.out << r.err;
        EXPECT_NE(r.err.find(message), std::string::npos) << "stderr: " << r.err;
        EXPECT_EQ(leo::test::snapshot_tree(root), before) << "the root changed";
        EXPECT_FALSE(stdfs::exists(root / "var/lib/rpm/rpmdb.sqlite")) << "an rpmdb was created";
        EXPECT_EQ(leo::fs::try_read_file(root / "etc/passwd").value_or("").find("leo:"), std::string::npos) << "user created";
        EXPECT_FALSE(stdfs::exists(root / "home/leo/pgsql")) << "a database was created";
    }

    leo::test::TempDir tmp;
    stdfs::path root;
};

TEST_F(InstallTest, SignedBrokerInstallsEndToEnd) {
    auto r = run_installer({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", root.string(), "--gpgkey",
                            g_pkgs->pubkey.string(), "-y"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("installed leostream-broker-9.0.40-1.x86_64"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("schema version 9.0.0.2"), std::string::npos) << r.out;

    // rpm itself sees exactly the package, and every file matches it.
    auto q = leo::test::rpm_query(root, "leostream-broker");
    EXPECT_EQ(q.exit_code, 0);
    EXPECT_EQ(leo::subprocess::last_line(q.out), "leostream-broker-9.0.40-1.x86_64");
    auto verify = leo::subprocess::run({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-V",
                                        "leostream-broker"});
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
    EXPECT_EQ(leo::fs::read_file(root / "home/leo/VERSION"), "9.0.40\n");
    EXPECT_TRUE(stdfs::exists(root / "home/leo/share/migrations/V9.0.0.1__baseline.sql"));
    EXPECT_FALSE(stdfs::exists(root / "home/leo/share/migrations/V9.1.0.1__jobs_attempts.sql"))
        << "a 9.0 package must not ship 9.1 migrations";
    EXPECT_TRUE(stdfs::exists(root / "var/lib/leo-installer/packages/leostream-broker-9.0.40-1.x86_64.rpm"));

    // The leo user: a system account, home /home/leo, no password (locked).
    const std::string passwd = leo::fs::read_file(root / "etc/passwd");
    EXPECT_NE(passwd.find("leo:x:"), std::string::npos) << passwd;
    EXPECT_NE(passwd.find(":/home/leo:"), std::string::npos) << passwd;
    const std::string shadow = leo::fs::read_file(root / "etc/shadow");
    EXPECT_NE(shadow.find("leo:!"), std::string::npos) << shadow;

    // The database: tables, schema version, broker version.
    leo::migrations::InternalDatabase db(root);
    auto conn = leo::migrations::Connection::open(db.conninfo());
    auto tables = conn.query(
        "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'");
    EXPECT_EQ(tables.at(0, 0), "cluster_members,leo_schema_history,settings,sites,support_licence,work_queue");
    auto history = conn.query("SELECT max(version), min(broker_version), count(*) FROM leo_schema_history");
    EXPECT_EQ(history.at(0, 1), "9.0.40");
    EXPECT_EQ(history.at(0, 2), "2");

    auto status = run_installer({"status", "--root", root.string(), "--json"});
    ASSERT_EQ(status.exit_code, 0) << status.err;
    auto j = nlohmann::json::parse(status.out);
    EXPECT_EQ(j["installed"][0]["nevra"], "leostream-broker-9.0.40-1.x86_64");
    EXPECT_EQ(j["schema_version"], "9.0.0.2");
    EXPECT_EQ(j["database"]["state"], "running");

    // Installing the same version again: nothing to do, exit 0, nothing changed.
    const std::string before = leo::test::snapshot_tree(root, {"var/log", "home/leo/pgsql", "var/lib/rpm/rpmdb.sqlite-shm", "var/lib/leo-installer/lock"});
    auto again = run_installer({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", root.string(),
                                "--gpgkey", g_pkgs->pubkey.string(), "-y"});
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_NE(again.out.find("nothing to do"), std::string::npos) << again.out;
    auto after = leo::test::snapshot_tree(root, {"var/log", "home/leo/pgsql", "var/lib/rpm/rpmdb.sqlite-shm", "var/lib/leo-installer/lock"});
    // only the installer's log may differ
    EXPECT_EQ(after, before);

    // A different version is not replaced by `install`.
    auto other = run_installer({"install", "--rpm", g_pkgs->unsigned_rpm.string(), "--root", root.string(),
                                "--nogpgcheck", "-y"});
    EXPECT_EQ(other.exit_code, 1);
    EXPECT_NE(other.err.find("leostream-broker-9.0.40-1.x86_64 is already installed"), std::string::npos)
        << other.err;
    EXPECT_EQ(leo::subprocess::last_line(leo::test::rpm_query(root, "leostream-broker").out),
              "leostream-broker-9.0.40-1.x86_64");
}

TEST_F(InstallTest, KeyImportedIntoTheRootsRpmdbIsUsed) {
    leo::test::run_ok({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "--import",
                       g_pkgs->pubkey.string()});
    auto r = run_installer({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", root.string(), "-y"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(leo::test::rpm_query(root, "leostream-broker").exit_code, 0);
}

TEST_F(InstallTest, APackageOfAnotherNameIsRefusedEvenWithNogpgcheck) {
    // It used to be installed, its database initialised and its migrations applied, and
    // `status` then said "broker: not installed".
    const auto foo = leo::test::test_packages_dir() / "other/foo-1.0-1.noarch.rpm";
    expect_refused({"install", "--rpm", foo.string(), "--root", root.string(), "--nogpgcheck", "-y"}, 1,
                   "is foo-1.0-1.noarch, not the broker package leostream-broker; nothing was changed");
    EXPECT_NE(leo::test::rpm_query(root, "foo").exit_code, 0);
}

// ---- bad input: one clear line, exit code, nothing changed -------------------------------

TEST_F(InstallTest, MissingFileIsRefused) {
    expect_refused({"install", "--rpm", (tmp.path() / "nope.rpm").string(), "--root", root.string(), "-y"}, 1,
                   "nope.rpm: No such file or directory");
}

TEST_F(InstallTest, NotAnRpmIsRefused) {
    const auto f = tmp.path() / "text.rpm";
    std::ofstream(f) << "this is not a package\n";
    expect_refused({"install", "--rpm", f.string(), "--root", root.string(), "-y"}, 1, "is not an RPM package");
}

TEST_F(InstallTest, CorruptPayloadIsRefused) {
    const auto f = tmp.path() / "corrupt.rpm";
    std::string data = leo::fs::read_file(g_pkgs->signed_rpm);
    data[data.size() - 40] = static_cast<char>(data[data.size() - 40] ^ 0x5a);
    std::ofstream(f, std::ios::binary) << data;
    expect_refused({"install", "--rpm", f.string(), "--root", root.string(), "--gpgkey", g_pkgs->pubkey.string(), "-y"},
                   1, "does not verify: package digests do not match");
}

TEST_F(InstallTest, TruncatedPackageIsRefused) {
    const auto f = tmp.path() / "truncated.rpm";
    std::string data = leo::fs::read_file(g_pkgs->signed_rpm);
    std::ofstream(f, std::ios::binary) << data.substr(0, data.size() / 2);
    expect_refused({"install", "--rpm", f.string(), "--root", root.string(), "--nogpgcheck", "-y"}, 1,
                   "does not verify");
}

TEST_F(InstallTest, NokeyIsRefused) {
    expect_refused({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", root.string(), "-y"}, 1, "NOKEY");
    expect_refused({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", root.string(), "--gpgkey",
                    g_pkgs->other_pubkey.string(), "-y"},
                   1, "NOKEY");
}

TEST_F(InstallTest, BadSignatureIsRefused) {
    // Re-sign the header region: flip one byte inside the signed main header.
    const auto f = tmp.path() / "badsig.rpm";
    std::string data = leo::fs::read_file(g_pkgs->signed_rpm);
    const auto pos = data.find("Example connection broker");
    ASSERT_NE(pos, std::string::npos);
    data[pos] = 'e';
    std::ofstream(f, std::ios::binary) << data;
    expect_refused({"install", "--rpm", f.string(), "--root", root.string(), "--gpgkey", g_pkgs->pubkey.string(), "-y"},
                   1, "does not verify");
}

TEST_F(InstallTest, UnsignedIsRefusedWithoutNogpgcheck) {
    expect_refused({"install", "--rpm", g_pkgs->unsigned_rpm.string(), "--root", root.string(), "-y"}, 1,
                   "is not signed and signatures are required");
    const auto hello = leo::test::test_packages_dir() / "other/hello-2.0-1.x86_64.rpm";
    expect_refused({"install", "--rpm", hello.string(), "--root", root.string(), "-y"}, 1,
                   "is not signed and signatures are required");
}

TEST_F(InstallTest, WrongArchIsRefused) {
    const auto i686 = leo::test::test_packages_dir() / "other/hello-2.0-1.i686.rpm";
    expect_refused({"install", "--rpm", i686.string(), "--root", root.string(), "--nogpgcheck", "-y"}, 1,
                   "is built for i686");
}

TEST_F(InstallTest, UnknownFlagIsAUsageError) {
    expect_refused({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", root.string(), "--frobnicate"}, 2,
                   "--frobnicate");
}

TEST_F(InstallTest, RootThatIsNotADirectoryIsAUsageError) {
    const auto f = tmp.path() / "afile";
    std::ofstream(f) << "x";
    expect_refused({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", f.string(), "-y"}, 2,
                   "not a directory");
    expect_refused({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", (tmp.path() / "missing").string(), "-y"},
                   2, "no such directory");
}

TEST_F(InstallTest, MissingPostgresqlBinariesChangeNothing) {
    leo::subprocess::Options opts;
    opts.env["LEO_PG_BINDIR"] = (tmp.path() / "no-postgres").string();
    expect_refused({"install", "--rpm", g_pkgs->unsigned_rpm.string(), "--root", root.string(), "--nogpgcheck", "-y"},
                   1, "PostgreSQL server binaries", opts);
}

TEST_F(InstallTest, PreflightInhibitorRefusesWithExit3) {
    leo::test::make_sandbox_root(root, "rocky8");
    expect_refused({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", root.string(), "--gpgkey",
                    g_pkgs->pubkey.string(), "-y"},
                   3, "preflight refused the install");
}

TEST_F(InstallTest, NoTerminalWithoutAssumeyesIsRefused) {
    expect_refused({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", root.string(), "--gpgkey",
                    g_pkgs->pubkey.string()},
                   3, "pass -y");
}

TEST_F(InstallTest, SkippedPreflightCheckIsRecordedInOutputAndLog) {
    leo::test::make_sandbox_root(root, "rocky8");
    auto r = run_installer({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", root.string(), "--gpgkey",
                            g_pkgs->pubkey.string(), "-y", "--skip", "os", "--reason", "lab test on Rocky 8"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("lab test on Rocky 8"), std::string::npos) << r.out;
    const auto log = leo::fs::read_file(root / "var/log/leo-installer/installer.log");
    EXPECT_NE(log.find("lab test on Rocky 8"), std::string::npos) << log;
}

} // namespace

namespace {
TEST_F(InstallTest, UnresolvedDependenciesChangeNothing) {
    // A broker package that needs libc.so.6, which nothing in the empty sandbox provides;
    // the test transaction refuses it, and the rpmdb it opened is removed again.
    leo::test::TestPackage needy;
    needy.name = "leostream-broker";
    needy.version = "9.0.50";
    needy.requires_ = {"libc.so.6()(64bit)"};
    const auto rpm = leo::test::build_test_package(tmp.path() / "needy", needy);
    expect_refused({"install", "--rpm", rpm.string(), "--root", root.string(), "--nogpgcheck", "-y"}, 1,
                   "is needed by leostream-broker-9.0.50-1.noarch");
}
} // namespace

namespace {
TEST_F(InstallTest, SecondRunWhileTheFirstHoldsTheLockIsRefused) {
    // Hold the run lock as another leo-installer would (flock on the state directory, its
    // holder line in the lock file).
    stdfs::create_directories(root / "var/lib/leo-installer");
    leo::subprocess::Options opts;
    opts.timeout = std::chrono::seconds(60);
    const std::string lockdir = (root / "var/lib/leo-installer").string();
    std::ofstream(lockdir + "/lock") << "pid 4242, leo-installer install --rpm other.rpm, started 2026-11-29T10:00:00Z";
    auto holder = std::async(std::launch::async, [&] {
        return leo::subprocess::run({"flock", lockdir, "sleep", "6"});
    });
    std::this_thread::sleep_for(std::chrono::seconds(1));
    auto r = run_installer({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", root.string(), "--gpgkey",
                            g_pkgs->pubkey.string(), "-y"});
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_NE(r.err.find("another leo-installer run is in progress on"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("pid 4242"), std::string::npos) << r.err;
    EXPECT_NE(leo::test::rpm_query(root, "leostream-broker").exit_code, 0);
    EXPECT_EQ(leo::fs::read_file(root / "etc/passwd").find("leo:"), std::string::npos);
    holder.wait();
}

TEST_F(InstallTest, HomeThatIsASymlinkIsRefusedBeforeAnyChange) {
    stdfs::create_directories(root / "srv/leo");
    stdfs::create_symlink("/srv/leo", root / "home/leo");
    expect_refused({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", root.string(), "--gpgkey",
                    g_pkgs->pubkey.string(), "-y"},
                   1, "is a symbolic link");
}

TEST_F(InstallTest, RootWithShellMetacharactersIsRefusedBeforeAnyChange) {
    const auto odd = tmp.path() / "r$(id)";
    leo::test::make_sandbox_root(odd);
    root = odd;
    expect_refused({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", root.string(), "--gpgkey",
                    g_pkgs->pubkey.string(), "-y"},
                   1, "contains '$'");
}

TEST_F(InstallTest, RootWithoutAccountFilesIsRefused) {
    stdfs::remove(root / "etc/passwd");
    expect_refused({"install", "--rpm", g_pkgs->signed_rpm.string(), "--root", root.string(), "--gpgkey",
                    g_pkgs->pubkey.string(), "-y"},
                   1, "does not look like an operating system root");
}
} // namespace
