// `leo-installer hook pre|pretrans|posttrans` run directly on sandbox roots, in the order
// rpm runs them around a real `rpm -U` (made with --noscripts here: these tests are about
// the hooks; test_hooks_rpm.cpp lets rpm run the scriptlets themselves). Real librpm,
// real PostgreSQL, the packages of scripts/build-test-packages.sh.
#include "test_support.hpp"

#include "leo/common/fs.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// The line of `name` in `file` ("" when none).
std::string line_of(const stdfs::path& file, const std::string& name) {
    const std::string text = leo::test::slurp(file);
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto end = text.find('\n', pos);
        const std::string line = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        if (line.rfind(name + ":", 0) == 0) return line;
        if (end == std::string::npos) break;
        pos = end + 1;
    }
    return "";
}

class HooksTest : public ::testing::Test {
protected:
    void SetUp() override {
        root = tmp.path() / "root";
        leo::test::make_sandbox_root(root);
    }
    void TearDown() override {
        for (const auto& r : {root, other})
            if (!r.empty() && stdfs::exists(r / "home/leo/pgsql/data/postmaster.pid"))
                (void)run_installer({"db", "stop", "--root", r.string()});
    }
    [[nodiscard]] stdfs::path package(const std::string& dir, const std::string& nevra) const {
        return leo::test::test_packages_dir() / dir / (nevra + ".rpm");
    }
    leo::subprocess::Result hook(const std::vector<std::string>& args, const leo::subprocess::Options& o = {}) {
        std::vector<std::string> a{"hook"};
        a.insert(a.end(), args.begin(), args.end());
        a.insert(a.end(), {"--root", root.string()});
        return run_installer(a, o);
    }
    /// rpm -U of `file` into `root` without its scriptlets (the hooks are run by the test).
    void rpm_upgrade(const stdfs::path& r, const stdfs::path& file) {
        leo::test::run_ok({"rpm", "--root", r.string(), "--dbpath", "/var/lib/rpm", "-U", "--noscripts",
                           "--nosignature", "--nodeps", file.string()});
    }
    /// What `yum localinstall` of `file` runs, in rpm's order: pretrans, pre, the
    /// transaction, posttrans. Returns posttrans' result.
    leo::subprocess::Result as_rpm_would(const stdfs::path& file, bool upgrade) {
        auto pt = hook({"pretrans"});
        EXPECT_EQ(pt.exit_code, 0) << pt.out << pt.err;
        auto pre = hook({"pre", upgrade ? "--upgrade" : "--install"});
        EXPECT_EQ(pre.exit_code, 0) << pre.out << pre.err;
        rpm_upgrade(root, file);
        return hook({"posttrans"});
    }
    [[nodiscard]] nlohmann::json status(const stdfs::path& r) {
        int exit_code = -1;
        auto j = leo::test::status_json(r, &exit_code);
        EXPECT_EQ(exit_code, 0) << j.dump(2);
        return j;
    }

    leo::test::TempDir tmp;
    stdfs::path root;
    stdfs::path other;
};

const std::string k_907 = "leostream-broker-9.0.7-1.x86_64";

TEST_F(HooksTest, PreChecksThenCreatesTheUserOnceAndEndsWithTheSummaryLine) {
    auto first = hook({"pre", "--install"});
    ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
    EXPECT_TRUE(contains(first.err, "preflight (install profile): ")) << first.err;
    EXPECT_TRUE(contains(first.err, "0 inhibitors: passed")) << first.err;
    EXPECT_TRUE(contains(first.out, "ready for the install (created the leo user)")) << first.out;
    const std::string passwd = leo::test::slurp(root / "etc/passwd");
    EXPECT_TRUE(contains(line_of(root / "etc/passwd", "leo"), ":/home/leo:")) << passwd;
    EXPECT_EQ(leo::test::mode_of(root / "home/leo"), 0755U);

    // Idempotent: the second run changes nothing.
    const auto before = leo::test::snapshot_tree(root);
    auto second = hook({"pre", "--install"});
    ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
    EXPECT_TRUE(contains(second.out, "ready for the install (the leo user exists)")) << second.out;
    EXPECT_EQ(leo::test::snapshot_tree(root), before);
    // The upgrade profile adds upgrade-space.
    auto up = hook({"pre", "--upgrade"});
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_TRUE(contains(up.err, "preflight (upgrade profile): 9 passed")) << up.err;
}

TEST_F(HooksTest, PreWithAnInhibitorExitsThreeWithTheReportOnStderrAndChangesNothing) {
    // /home at 0700: every other check passes, and leo could never reach /home/leo.
    ASSERT_EQ(::chmod((root / "home").c_str(), 0700), 0);
    const auto before = leo::test::snapshot_tree(root);
    auto r = hook({"pre", "--install"});
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "home-traversable")) << r.err;
    EXPECT_TRUE(contains(r.err, "user leo cannot traverse " + (root / "home").string() + " (mode 0700)")) << r.err;
    EXPECT_TRUE(contains(r.err, "chmod o+x " + (root / "home").string())) << r.err;
    EXPECT_TRUE(contains(r.err, "1 inhibitor: refused (not passed: home-traversable)")) << r.err;
    EXPECT_TRUE(contains(r.err, "preflight refused the install of leostream-broker")) << r.err;
    EXPECT_TRUE(contains(r.err, "nothing was changed")) << r.err;
    EXPECT_EQ(leo::test::snapshot_tree(root), before);
    EXPECT_EQ(line_of(root / "etc/passwd", "leo"), "");
    // The same root is refused by `preflight` itself (it was passed before this check).
    auto p = run_installer({"preflight", "--root", root.string()});
    EXPECT_EQ(p.exit_code, 3) << p.out << p.err;
    EXPECT_TRUE(contains(p.out, "preflight (install profile): 7 passed, 0 warnings, 1 inhibitor: refused")) << p.out;
}

TEST_F(HooksTest, EveryHookDoesNothingInsideLeoInstallersOwnTransaction) {
    leo::subprocess::Options o;
    o.env["LEO_INSTALLER_TRANSACTION"] = "4242";
    const auto before = leo::test::snapshot_tree(root);
    for (const auto& args : std::vector<std::vector<std::string>>{{"pre", "--install"}, {"pretrans"}, {"posttrans"}}) {
        auto r = hook(args, o);
        EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.out << r.err;
        EXPECT_TRUE(contains(r.out, "nothing to do: inside leo-installer's own rpm transaction (pid 4242)")) << r.out;
    }
    EXPECT_EQ(leo::test::snapshot_tree(root), before);
}

TEST_F(HooksTest, RpmInstallThroughTheHooksEqualsLeoInstallerInstall) {
    auto post = as_rpm_would(package("repo", k_907), false);
    ASSERT_EQ(post.exit_code, 0) << post.out << post.err;
    EXPECT_TRUE(contains(post.out, "hook posttrans: " + k_907 + " is ready; schema version")) << post.out;
    // Idempotent: nothing applied the second time.
    auto again = hook({"posttrans"});
    ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
    EXPECT_TRUE(contains(again.out, "(0 migrations applied)")) << again.out;

    other = tmp.path() / "other";
    leo::test::make_sandbox_root(other);
    leo::test::install_test_broker(other, k_907);

    // Same user, same database, same schema.
    EXPECT_EQ(line_of(root / "etc/passwd", "leo"), line_of(other / "etc/passwd", "leo"));
    EXPECT_EQ(line_of(root / "etc/group", "leo"), line_of(other / "etc/group", "leo"));
    const auto a = status(root);
    const auto b = status(other);
    ASSERT_TRUE(a.is_object() && b.is_object());
    for (const char* key : {"installed", "schema_version", "schema_broker_version", "packaged_schema_version",
                            "schema_matches_package", "database_in_use", "unfinished_run", "exit_code"}) {
        ASSERT_TRUE(a.contains(key) && b.contains(key)) << key << "\n" << a.dump(2);
        EXPECT_EQ(a[key], b[key]) << key;
    }
    EXPECT_EQ(a["database"].value("state", ""), b["database"].value("state", ""));
    EXPECT_EQ(a["schema_matches_package"], true) << a.dump(2);
    // The tables and their rows (the history's timestamps differ, not its rows).
    auto shape = [](const std::string& sums) {
        std::string out;
        std::size_t pos = 0;
        while (pos < sums.size()) {
            auto end = sums.find('\n', pos);
            const auto line = sums.substr(pos, end - pos);
            out += line.substr(0, line.find(':')) + "\n";
            if (end == std::string::npos) break;
            pos = end + 1;
        }
        return out;
    };
    EXPECT_EQ(shape(leo::test::table_checksums(root)), shape(leo::test::table_checksums(other)));
}

TEST_F(HooksTest, UpgradeThroughTheHooksMigratesAndSaysPlainlyWhyNoRestorePointWasTaken) {
    ASSERT_EQ(as_rpm_would(package("repo", k_907), false).exit_code, 0);
    // rpm -U kept no copy of the package it installed: the restore point cannot be taken.
    auto pt = hook({"pretrans"});
    EXPECT_EQ(pt.exit_code, 0) << pt.out << pt.err;
    EXPECT_TRUE(contains(pt.err, "no restore point was taken: ")) << pt.err;
    EXPECT_TRUE(contains(pt.err, "the transaction goes on without one")) << pt.err;
    EXPECT_TRUE(contains(pt.err, "snapshot create -y")) << pt.err;

    auto post = as_rpm_would(package("repo", "leostream-broker-9.1.2-1.x86_64"), true);
    ASSERT_EQ(post.exit_code, 0) << post.out << post.err;
    EXPECT_TRUE(contains(post.out, "leostream-broker-9.1.2-1.x86_64 is ready")) << post.out;
    const auto s = status(root);
    EXPECT_EQ(s["schema_matches_package"], true) << s.dump(2);
    EXPECT_EQ(s["installed"][0].value("nevra", ""), "leostream-broker-9.1.2-1.x86_64") << s.dump(2);
    EXPECT_FALSE(contains(post.out, "(0 migrations applied)")) << post.out;
}

TEST_F(HooksTest, PretransTakesARestorePointOfABrokerLeoInstallerInstalled) {
    leo::test::install_test_broker(root, k_907);  // its RPM is kept: a restore point can be taken
    auto post = as_rpm_would(package("repo", "leostream-broker-9.1.2-1.x86_64"), true);
    ASSERT_EQ(post.exit_code, 0) << post.out << post.err;
    auto list = run_installer({"snapshot", "list", "--json", "--root", root.string()});
    ASSERT_EQ(list.exit_code, 0) << list.out << list.err;
    EXPECT_TRUE(contains(list.out, k_907)) << list.out;
    EXPECT_TRUE(contains(list.out, "before an rpm transaction (hook pretrans)")) << list.out;
    EXPECT_EQ(status(root)["schema_matches_package"], true);
}

TEST_F(HooksTest, AFailingMigrationInPosttransIsReportedWithTheRecoveryCommand) {
    ASSERT_EQ(as_rpm_would(package("repo", k_907), false).exit_code, 0);
    ASSERT_EQ(hook({"pre", "--upgrade"}).exit_code, 0);
    rpm_upgrade(root, package("bad", "leostream-broker-9.3.0-1.x86_64"));
    for (int attempt = 0; attempt < 2; ++attempt) {  // the same report each time
        auto post = hook({"posttrans"});
        EXPECT_EQ(post.exit_code, 1) << post.out << post.err;
        EXPECT_TRUE(contains(post.err, "THE BROKER IS INSTALLED BUT NOT READY")) << post.err;
        EXPECT_TRUE(contains(post.err, "leostream-broker-9.3.0-1.x86_64 is installed, but its posttrans step "
                                       "`database` failed"))
            << post.err;
        EXPECT_TRUE(contains(post.err, "leo-installer recover")) << post.err;
        EXPECT_TRUE(contains(post.err, "no_such_column")) << post.err;
    }
    // recover knows the run and what it will do.
    auto plan = run_installer({"recover", "--dry-run", "--root", root.string()});
    EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;
    EXPECT_TRUE(contains(plan.out, "finish the posttrans of leostream-broker-9.3.0-1.x86_64")) << plan.out;
    // Another change is refused until it is recovered.
    auto pre = hook({"pre", "--upgrade"});
    EXPECT_EQ(pre.exit_code, 3) << pre.out << pre.err;
    EXPECT_TRUE(contains(pre.err, "recover")) << pre.err;
}

TEST_F(HooksTest, AnOptionOfAnotherStageIsAUsageErrorAndChangesNothing) {
    const auto before = leo::test::snapshot_tree(root, {});
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
        {{"pre", "--install", "--lease-wait", "5"}, "--lease-wait is an option of `hook posttrans`, not of `hook pre`"},
        {{"pre", "--upgrade", "--allow-remote-upgrade"}, "--allow-remote-upgrade is an option of `hook posttrans`"},
        {{"posttrans", "--install"}, "--install is an option of `hook pre`, not of `hook posttrans`"},
        {{"pretrans", "--skip", "memory", "--reason", "r"}, "--skip is an option of `hook pre`, not of `hook pretrans`"},
    };
    for (const auto& [args, message] : cases) {
        auto r = hook(args);
        EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
        EXPECT_TRUE(contains(r.err, message)) << r.err;
        EXPECT_TRUE(contains(r.err, "leo-installer hook --help")) << r.err;
    }
    EXPECT_EQ(leo::test::snapshot_tree(root, {}), before);
}

} // namespace
