// `rpm --root SANDBOX -U leostream-broker.rpm` and `dnf --installroot SANDBOX localinstall
// leostream-broker.rpm` with the package's scriptlets: rpm (librpm, under dnf) chroots into
// the sandbox and runs the package's Lua %pretrans/%pre/%posttrans, which run
// /usr/bin/leo-installer hook ... inside it. Each test runs with both tools (Debian's dnf 4
// takes its rpmdb path from the `%_dbpath` macro of the host, `~/.rpmdb` on Debian: it runs
// with a HOME whose .rpmmacros says /var/lib/rpm, as on EL7, and with no repository). The sandbox gets what that needs: the
// leo-installer package (rpm/specs/leo-installer.spec, built here from the built program;
// installed --nodeps, as its libc & co. are not in the sandbox's rpmdb) with the libraries
// `ldd` lists, useradd/groupadd with theirs, and the /proc files preflight reads (a chroot
// has no /proc). The broker package is the shipped form, with Requires(pre,posttrans):
// leo-installer, installed without --nodeps. The sandbox has no PostgreSQL server, so
// %posttrans fails there, loudly, as on a host whose database cannot start; `recover` run
// from outside then finishes it, and the result is compared with `leo-installer install`
// and `leo-installer upgrade` of the same packages in another root.
#include "test_support.hpp"

#include "leo/common/fs.hpp"
#include "leo/common/subprocess.hpp"

#include <fstream>
#include <regex>
#include <sstream>

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// Every library `ldd file` lists, copied to the same paths under `root`.
void copy_libraries(const stdfs::path& root, const stdfs::path& file) {
    const auto ldd = leo::subprocess::run({"ldd", file.string()});
    ASSERT_EQ(ldd.exit_code, 0) << ldd.err;
    static const std::regex lib(R"((/[^ \t]+) \(0x)");
    std::istringstream lines(ldd.out);
    std::string line;
    while (std::getline(lines, line)) {
        std::smatch m;
        if (!std::regex_search(line, m, lib)) continue;
        const stdfs::path p = m[1].str();
        stdfs::create_directories((root / p.relative_path()).parent_path());
        stdfs::copy_file(p, root / p.relative_path(), stdfs::copy_options::overwrite_existing);  // follows links
    }
}

std::string line_of(const stdfs::path& file, const std::string& name) {
    std::istringstream in(leo::test::slurp(file));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(name + ":", 0) == 0) return line;
    return "";
}

/// The two roots hold the same leo user and group, package, and schema, and both are ready.
void expect_same_result(const stdfs::path& root, const stdfs::path& other) {
    EXPECT_EQ(line_of(root / "etc/passwd", "leo"), line_of(other / "etc/passwd", "leo"));
    EXPECT_EQ(line_of(root / "etc/group", "leo"), line_of(other / "etc/group", "leo"));
    const auto a = leo::test::status_json(root);
    const auto b = leo::test::status_json(other);
    ASSERT_TRUE(a.is_object() && b.is_object());
    for (const char* key : {"installed", "schema_version", "schema_broker_version", "packaged_schema_version",
                            "schema_matches_package", "database_in_use", "unfinished_run"})
        EXPECT_EQ(a[key], b[key]) << key << "\n" << a.dump(2);
    EXPECT_EQ(a["schema_matches_package"], true) << a.dump(2);
}

/// The packages, built once for the suite.
struct Packages {
    leo::test::TempDir dir;
    stdfs::path installer;  // leo-installer, from the built program
    stdfs::path broker;     // leostream-broker 9.0.7 with Requires: leo-installer
    stdfs::path newer;      // leostream-broker 9.1.2 with Requires: leo-installer
};
Packages* g_pkgs = nullptr;

stdfs::path built(const std::vector<std::string>& argv, const leo::subprocess::Options& o = {}) {
    const auto r = leo::subprocess::run(argv, o);
    if (r.exit_code != 0) throw std::runtime_error(argv[0] + " failed: " + r.err);
    return leo::subprocess::last_line(r.out);
}

enum class Tool { rpm, dnf };
void PrintTo(Tool t, std::ostream* os) { *os << (t == Tool::rpm ? "rpm -U" : "dnf localinstall"); }

class HooksRpmTest : public ::testing::TestWithParam<Tool> {
protected:
    static void SetUpTestSuite() {
        g_pkgs = new Packages;
        const auto scripts = leo::test::source_dir() / "scripts";
        g_pkgs->installer = built({(scripts / "build-installer-rpm.sh").string(), LEO_INSTALLER_BIN,
                                   (g_pkgs->dir.path() / "rpms").string()});
        leo::subprocess::Options o;
        o.env["INSTALLER_REQUIRES"] = "1";
        g_pkgs->broker = built({(scripts / "build-broker-rpm.sh").string(), "9.0.7",
                                (g_pkgs->dir.path() / "rpms").string()},
                               o);
        g_pkgs->newer = built({(scripts / "build-broker-rpm.sh").string(), "9.1.2",
                               (g_pkgs->dir.path() / "rpms").string()},
                              o);
        // dnf's HOME: the rpmdb where rpm --root puts it, and an empty repository directory.
        stdfs::create_directories(g_pkgs->dir.path() / "dnf-home/repos.d");
        std::ofstream(g_pkgs->dir.path() / "dnf-home/.rpmmacros") << "%_dbpath /var/lib/rpm\n";
    }
    static void TearDownTestSuite() {
        delete g_pkgs;
        g_pkgs = nullptr;
    }
    void SetUp() override {
        root = tmp.path() / "root";
        leo::test::make_sandbox_root(root);
        leo::test::run_ok({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-U", "--nodeps",
                           "--nosignature", g_pkgs->installer.string()});
        copy_libraries(root, LEO_INSTALLER_BIN);
        copy_libraries(root, stdfs::path(LEO_INSTALLER_BIN).parent_path().parent_path() /
                                 "libexec/leo-installer/leo-installer");
        for (const stdfs::path tool : {"/usr/sbin/useradd", "/usr/sbin/groupadd"}) {
            stdfs::create_directories(root / "usr/sbin");
            stdfs::copy_file(tool, root / tool.relative_path(), stdfs::copy_options::overwrite_existing);
            copy_libraries(root, tool);
        }
        // What a system root has and the sandbox lacks: /dev/null (every child's stdin)
        // and rpm's own configuration (librpm reads it in the hooks too).
        stdfs::create_directories(root / "dev");
        ASSERT_EQ(::mknod((root / "dev/null").c_str(), S_IFCHR | 0666, ::makedev(1, 3)), 0);
        stdfs::create_directories(root / "usr/lib/rpm");
        for (const char* f : {"rpmrc", "macros"})
            stdfs::copy_file(stdfs::path("/usr/lib/rpm") / f, root / "usr/lib/rpm" / f);
        // What preflight reads under /proc, as this host has it (a chroot has no /proc).
        stdfs::create_directories(root / "proc/self");
        std::ofstream(root / "proc/meminfo") << leo::test::slurp("/proc/meminfo");
        std::ofstream(root / "proc/cpuinfo") << leo::test::slurp("/proc/cpuinfo");
        std::ofstream(root / "proc/self/mountinfo") << "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n";
    }
    void TearDown() override {
        for (const auto& r : {root, other})
            if (!r.empty() && stdfs::exists(r / "home/leo/pgsql/data/postmaster.pid"))
                (void)run_installer({"db", "stop", "--root", r.string()});
    }
    /// `rpm -U FILE` or `dnf localinstall FILE` with the scriptlets (the signature is not
    /// what this test is about).
    leo::subprocess::Result transaction(const stdfs::path& file) {
        if (GetParam() == Tool::rpm)
            return leo::subprocess::run({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-U",
                                         "--nosignature", file.string()});
        const auto home = g_pkgs->dir.path() / "dnf-home";
        leo::subprocess::Options o;
        o.env["HOME"] = home.string();
        return leo::subprocess::run({"dnf", "--installroot", root.string(), "--setopt=reposdir=" +
                                     (home / "repos.d").string(), "--releasever", "7", "--disableplugin=*",
                                     "--nogpgcheck", "-y", "localinstall", file.string()},
                                    o);
    }
    /// This host's PostgreSQL server programs (and their libraries) at the same paths in the
    /// root. (Not before the first install: initdb needs /bin/sh, which the sandbox lacks.)
    void give_postgres_programs() {
        const auto pg_config = leo::subprocess::run({"pg_config", "--bindir"});
        ASSERT_EQ(pg_config.exit_code, 0) << pg_config.err;
        for (const auto& e : stdfs::directory_iterator("/usr/lib/postgresql")) {
            const auto bin = e.path() / "bin";
            if (!stdfs::is_directory(bin)) continue;
            stdfs::create_directories(root / bin.relative_path());
            for (const char* program : {"postgres", "initdb", "pg_ctl", "pg_dump", "pg_restore"}) {
                if (!stdfs::exists(bin / program)) continue;
                stdfs::copy_file(bin / program, root / (bin / program).relative_path(),
                                 stdfs::copy_options::overwrite_existing);
                copy_libraries(root, bin / program);
            }
        }
    }
    /// What rpm and dnf write under the root themselves (rpmdb, their logs and caches).
    static std::vector<std::string> tools_own() {
        return {"var/log", "var/lib/rpm", "var/lib/dnf", "var/cache", "etc/dnf"};
    }

    leo::test::TempDir tmp;
    stdfs::path root;
    stdfs::path other;
};

const std::string k_907 = "leostream-broker-9.0.7-1.x86_64";
const std::string k_912 = "leostream-broker-9.1.2-1.x86_64";

TEST_P(HooksRpmTest, AnInhibitorInPreStopsTheTransactionWithNothingInstalled) {
    ASSERT_EQ(::chmod((root / "home").c_str(), 0700), 0);
    const auto before = leo::test::snapshot_tree(root, tools_own());
    auto r = transaction(g_pkgs->broker);
    EXPECT_NE(r.exit_code, 0) << r.out << r.err;
    // The hook's report and the scriptlet's refusal, on rpm's stderr.
    EXPECT_TRUE(contains(r.err, "user leo cannot traverse /home (mode 0700)")) << r.err;
    EXPECT_TRUE(contains(r.err, "1 inhibitor: refused (not passed: home-traversable)")) << r.err;
    EXPECT_TRUE(contains(r.out + r.err, "`leo-installer hook pre --install` refused")) << r.out << r.err;
    EXPECT_NE(leo::test::rpm_query(root, "leostream-broker").exit_code, 0);
    EXPECT_EQ(leo::test::snapshot_tree(root, tools_own()), before);
    EXPECT_FALSE(stdfs::exists(root / "home/leo/VERSION"));
    EXPECT_EQ(line_of(root / "etc/passwd", "leo"), "");
}

TEST_P(HooksRpmTest, AnInstallRunsTheHooksAndRecoverFinishesWhatTheSandboxCannotRun) {
    auto r = transaction(g_pkgs->broker);
    const std::string said = r.out + r.err;
    // %pretrans: nothing installed yet; %pre: preflight passed, the user created in the root.
    EXPECT_TRUE(contains(said, "hook pretrans: nothing to do: no leostream-broker is installed")) << said;
    EXPECT_TRUE(contains(said, "preflight (install profile): ")) << said;
    EXPECT_TRUE(contains(said, "hook pre: ready for the install (created the leo user)")) << said;
    EXPECT_EQ(leo::subprocess::last_line(leo::test::rpm_query(root, "leostream-broker").out), k_907);
    EXPECT_TRUE(stdfs::exists(root / "home/leo/VERSION"));
    EXPECT_NE(line_of(root / "etc/passwd", "leo"), "");
    // %posttrans ran too; the sandbox has no PostgreSQL server, so it failed, loudly, with
    // the command that finishes it.
    EXPECT_TRUE(contains(said, "THE BROKER IS INSTALLED BUT NOT READY")) << said;
    EXPECT_TRUE(contains(said, "leo-installer recover")) << said;
    EXPECT_FALSE(stdfs::exists(root / "home/leo/pgsql/data/PG_VERSION"));

    auto rec = run_installer({"recover", "-y", "--root", root.string()});
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_TRUE(contains(rec.out, "finished it")) << rec.out;
    auto again = run_installer({"recover", "-y", "--root", root.string()});
    EXPECT_TRUE(contains(again.out, "nothing to recover")) << again.out << again.err;

    other = tmp.path() / "other";
    leo::test::make_sandbox_root(other);
    leo::test::install_test_broker(other, k_907);
    expect_same_result(root, other);
}

TEST_P(HooksRpmTest, AnUpgradeRunsTheHooksAndEndsAsLeoInstallersUpgradeDoes) {
    (void)transaction(g_pkgs->broker);
    auto rec = run_installer({"recover", "-y", "--root", root.string()});
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;

    // The server runs (recover started it); the hooks inside the chroot also need its
    // programs (pg_dump for the restore point), as on a host.
    give_postgres_programs();
    // rpm kept no file of 9.0.7; yum with keepcache=1 keeps it in its cache, where the
    // restore point of %pretrans finds it (the very build: its header digest).
    const auto yum_cache = root / "var/cache/yum/x86_64/7/leostream/packages";
    stdfs::create_directories(yum_cache);
    stdfs::copy_file(g_pkgs->broker, yum_cache / (k_907 + ".rpm"));
    auto r = transaction(g_pkgs->newer);
    const std::string said = r.out + r.err;
    EXPECT_TRUE(contains(said, "hook pretrans: taking a restore point of " + k_907)) << said;
    static const std::regex taken(R"(restore point (\d{8}T\d{6}Z) taken: `leo-installer rollback )");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(said, m, taken)) << said;
    const std::string restore_point = m[1].str();
    EXPECT_TRUE(stdfs::exists(root / "var/lib/leo-installer/packages" / (k_907 + ".rpm")));
    EXPECT_TRUE(contains(said, "preflight (upgrade profile): ")) << said;
    EXPECT_TRUE(contains(said, "hook pre: ready for the upgrade (the leo user exists)")) << said;
    EXPECT_EQ(leo::subprocess::last_line(leo::test::rpm_query(root, "leostream-broker").out), k_912);
    // The database runs (recover started it), so %posttrans, inside the chroot, migrates
    // it: the upgrade is done by the scriptlets alone.
    EXPECT_FALSE(contains(said, "NOT READY")) << said;
    EXPECT_FALSE(contains(said, "initialising the internal database")) << said;
    EXPECT_TRUE(contains(said, "hook posttrans: " + k_912 + " is ready; schema version 9.1.0.2 (2 migrations "
                                                            "applied)"))
        << said;
    EXPECT_EQ(leo::test::status_json(root)["schema_matches_package"], true);
    rec = run_installer({"recover", "-y", "--root", root.string()});
    EXPECT_TRUE(contains(rec.out, "nothing to recover")) << rec.out << rec.err;

    // And back: the restore point of %pretrans reinstalls 9.0.7 and its database.
    auto back = run_installer({"rollback", restore_point, "-y", "--root", root.string()});
    ASSERT_EQ(back.exit_code, 0) << back.out << back.err;
    EXPECT_EQ(leo::subprocess::last_line(leo::test::rpm_query(root, "leostream-broker").out), k_907);
    EXPECT_EQ(leo::test::status_json(root)["schema_matches_package"], true);
    rec = run_installer({"upgrade", "--rpm", g_pkgs->newer.string(), "--nogpgcheck", "-y", "--root", root.string()});
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;

    other = tmp.path() / "other";
    leo::test::make_sandbox_root(other);
    leo::test::install_test_broker(other, k_907);
    auto up = run_installer({"upgrade", "--rpm",
                             (leo::test::test_packages_dir() / "repo" / (k_912 + ".rpm")).string(), "--root",
                             other.string(), "-y"});
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_EQ(leo::subprocess::last_line(leo::test::rpm_query(other, "leostream-broker").out), k_912);
    expect_same_result(root, other);
}

INSTANTIATE_TEST_SUITE_P(Tools, HooksRpmTest, ::testing::Values(Tool::rpm, Tool::dnf),
                         [](const ::testing::TestParamInfo<Tool>& i) {
                             return std::string(i.param == Tool::rpm ? "RpmU" : "DnfLocalinstall");
                         });

/// leo-installer's own librpm transaction (once: it is not about rpm or dnf).
class OwnTransactionTest : public HooksRpmTest {};

TEST_P(OwnTransactionTest, LeoInstallersOwnTransactionRunsTheScriptletsWhichDoNothing) {
    // The scriptlets run in `install`'s librpm transaction too (the root can run them), and
    // return at once: the user is created once, by install, and the database step is its own.
    auto r = run_installer({"install", "--rpm", g_pkgs->broker.string(), "--root", root.string(), "--nogpgcheck",
                            "-y"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_FALSE(contains(r.out + r.err, "hook pre")) << r.out << r.err;
    EXPECT_FALSE(contains(r.out + r.err, "NOT READY")) << r.out << r.err;
    EXPECT_EQ(leo::test::status_json(root)["schema_matches_package"], true);
}

INSTANTIATE_TEST_SUITE_P(Once, OwnTransactionTest, ::testing::Values(Tool::rpm));

/// The RPM of a broker installed by rpm -U is not kept: given by the administrator, it is
/// checked to be the very build installed.
class KeptPackageTest : public HooksRpmTest {};

TEST_P(KeptPackageTest, TheInstalledRpmIsKeptOnlyWhenItIsTheVeryBuildRpmInstalled) {
    (void)transaction(g_pkgs->broker);
    ASSERT_EQ(run_installer({"recover", "-y", "--root", root.string()}).exit_code, 0);
    const auto kept = root / "var/lib/leo-installer/packages" / (k_907 + ".rpm");
    const auto before = leo::test::snapshot_tree(root / "var/lib/leo-installer", {"lock", "journal"});
    auto none = run_installer({"snapshot", "create", "-y", "--root", root.string()});
    EXPECT_NE(none.exit_code, 0);
    EXPECT_TRUE(contains(none.err, "the RPM of the installed " + k_907 + " is not kept in")) << none.err;
    EXPECT_TRUE(contains(none.err, "give the file with --installed-rpm FILE")) << none.err;

    auto wrong = run_installer({"snapshot", "create", "-y", "--root", root.string(), "--installed-rpm",
                                g_pkgs->newer.string()});
    EXPECT_NE(wrong.exit_code, 0);
    EXPECT_TRUE(contains(wrong.err, "it is " + k_912 + ", not the installed " + k_907 + "; nothing was changed"))
        << wrong.err;
    // The same NEVRA built again: another header (build time, host), refused.
    const auto rebuilt = built({(leo::test::source_dir() / "scripts/build-broker-rpm.sh").string(), "9.0.7",
                                (tmp.path() / "rebuilt").string()});
    auto other_build =
        run_installer({"snapshot", "create", "-y", "--root", root.string(), "--installed-rpm", rebuilt.string()});
    EXPECT_NE(other_build.exit_code, 0);
    EXPECT_TRUE(contains(other_build.err, "it is another build of " + k_907 + " (header digest sha256:"))
        << other_build.err;
    EXPECT_EQ(leo::test::snapshot_tree(root / "var/lib/leo-installer", {"lock", "journal"}), before);
    EXPECT_FALSE(stdfs::exists(kept));

    auto right = run_installer({"snapshot", "create", "-y", "--root", root.string(), "--installed-rpm",
                                g_pkgs->broker.string()});
    ASSERT_EQ(right.exit_code, 0) << right.out << right.err;
    EXPECT_TRUE(contains(right.out, "restore point ")) << right.out;
    EXPECT_EQ(leo::test::mode_of(kept), 0600u);
    EXPECT_EQ(leo::test::slurp(kept), leo::test::slurp(g_pkgs->broker));
}

INSTANTIATE_TEST_SUITE_P(Once, KeptPackageTest, ::testing::Values(Tool::rpm));

} // namespace
