// `leo-installer install` from the repositories (no --rpm): the newest or --version V (a
// version, an EVR or a NEVRA), staged as `upgrade` stages it, from a createrepo_c repository
// of signed broker packages served over HTTP on 127.0.0.1 or given as a plain directory; and
// the refusals: an unknown version, another version installed, a package that is not the broker.
#include "http_server.hpp"
#include "repo_support.hpp"
#include "sandbox_root.hpp"
#include "test_support.hpp"

#include <memory>

#include <gtest/gtest.h>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;

/// A sandbox root with nothing installed, and the test packages served on loopback.
class InstallRepoTest : public leo::test::SandboxRootTest {
protected:
    void SetUp() override {
        SandboxRootTest::SetUp();
        server = std::make_unique<leo::test::HttpServer>(pkgs);
    }

    /// ROOT/etc/yum.repos.d/ID.repo: the signed test repository at `url`, then `extra` lines.
    void write_repo(const std::string& id, const std::string& url, const std::string& extra = {}) {
        leo::test::write_repo_file(root, id, leo::test::signed_repo_lines(root, url, id) + extra);
    }
    /// The root without its log, its download cache (a cache is not a change), the running
    /// database's own files, and what a reader touches (the run lock's time, the rpmdb's
    /// shared-memory index).
    std::string tree() {
        return leo::test::snapshot_tree(root, {"var/log", "var/cache", "home/leo/pgsql", "var/lib/leo-installer/lock",
                                               "var/lib/rpm/rpmdb.sqlite-shm"});
    }

    std::unique_ptr<leo::test::HttpServer> server;
};

TEST_F(InstallRepoTest, InstallsTheNewestAndListsTheMigrationsItApplied) {
    write_repo("leo", server->url() + "/repo");
    auto r = run_installer({"install", "--root", root.string(), "-y"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(installed(), "leostream-broker-9.2.0-1.x86_64");
    EXPECT_NE(r.out.find("downloading leostream-broker-9.2.0-1.x86_64 from leo"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("installed leostream-broker-9.2.0-1.x86_64 in " + root.string()), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("  applied "), std::string::npos) << r.out;  // each migration, by name
    auto status = run_installer({"status", "--root", root.string()});
    EXPECT_NE(status.out.find("leostream-broker-9.2.0-1.x86_64"), std::string::npos) << status.out;
    // the download was verified and kept for rollback, like a --rpm install's package
    EXPECT_TRUE(stdfs::exists(root / "var/lib/leo-installer/packages/leostream-broker-9.2.0-1.x86_64.rpm"));
}

TEST_F(InstallRepoTest, VersionTakesAVersionAnEvrOrANevra) {
    write_repo("leo", server->url() + "/repo");
    auto r = run_installer(
        {"install", "--root", root.string(), "--version", "leostream-broker-9.1.2-1.x86_64", "-y"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(installed(), "leostream-broker-9.1.2-1.x86_64");
    // the same version again, spelled as an EVR: nothing to do
    auto again = run_installer({"install", "--root", root.string(), "--version", "0:9.1.2-1", "-y"});
    EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
    EXPECT_NE(again.out.find("is already installed"), std::string::npos) << again.out;
}

TEST_F(InstallRepoTest, APlainDirectoryWithRepofrompath) {
    auto r = run_installer({"install", "--root", root.string(), "--repofrompath", "local," + (pkgs / "repo").string(),
                            "--gpgkey", key().string(), "--version", "9.0.7", "-y"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(installed(), "leostream-broker-9.0.7-1.x86_64");
}

TEST_F(InstallRepoTest, TheSameNevraFromADearerRepositoryWhenTheCheapOneLacksThePackage) {
    // yum's cost: the cheapest repository is tried first; its package is missing (a mirror
    // that has the metadata, not the file), so the same NEVRA comes from the other one.
    leo::test::HttpServer lagging(pkgs);
    lagging.fail(".rpm", 404);
    write_repo("cheap", lagging.url() + "/repo", "cost=100\n");
    write_repo("dear", server->url() + "/repo", "cost=2000\n");
    auto r = run_installer({"install", "--root", root.string(), "-y"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(installed(), "leostream-broker-9.2.0-1.x86_64");
    EXPECT_GE(lagging.request_count(".rpm"), 1u);
    EXPECT_EQ(server->request_count("leostream-broker-9.2.0-1.x86_64.rpm"), 1u);
}

TEST_F(InstallRepoTest, AnUnknownVersionListsTheNevrasAndChangesNothing) {
    write_repo("leo", server->url() + "/repo");
    const std::string before = tree();
    auto r = run_installer({"install", "--root", root.string(), "--version", "8.0", "-y"});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("version 8.0 of leostream-broker is not in the repositories (available: "
                         "leostream-broker-9.2.0-1.x86_64, leostream-broker-9.2.0~rc1-1.x86_64"),
              std::string::npos)
        << r.err;
    EXPECT_TRUE(tree() == before) << "the root changed";
}

TEST_F(InstallRepoTest, AnotherVersionInstalledIsRefusedWithHintsForThisRoot) {
    write_repo("leo", server->url() + "/repo");
    auto first = run_installer({"install", "--root", root.string(), "--version", "9.0.7", "-y"});
    ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
    const std::string before = tree();
    auto r = run_installer({"install", "--root", root.string(), "-y"});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("leostream-broker-9.0.7-1.x86_64 is already installed"), std::string::npos) << r.err;
    // A newer package: the one advice is upgrade (rollback is the advice for an older one).
    EXPECT_NE(r.err.find("upgrade to leostream-broker-9.2.0-1.x86_64 with `leo-installer upgrade --root " +
                         root.string() + "`"),
              std::string::npos)
        << r.err;
    EXPECT_TRUE(tree() == before) << "the root changed";
    EXPECT_EQ(installed(), "leostream-broker-9.0.7-1.x86_64");
}

TEST_F(InstallRepoTest, NoRepositoryAndAMissingDirectoryAreClearErrors) {
    const std::string before = tree();
    auto none = run_installer({"install", "--root", root.string(), "-y"});
    EXPECT_EQ(none.exit_code, 1) << none.out << none.err;
    EXPECT_NE(none.err.find("no enabled repository"), std::string::npos) << none.err;
    auto missing = run_installer(
        {"install", "--root", root.string(), "--repofrompath", "x," + (tmp.path() / "nope").string(), "-y"});
    EXPECT_EQ(missing.exit_code, 2) << missing.out << missing.err;
    EXPECT_NE(missing.err.find((tmp.path() / "nope").string() + " is not a directory"), std::string::npos)
        << missing.err;
    EXPECT_TRUE(tree() == before) << "the root changed";
}

} // namespace
