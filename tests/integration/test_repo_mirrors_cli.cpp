// Mirrors and proxies through the real binary: a root with the broker installed (the signed
// test packages of LEO_TEST_PACKAGES, a real PostgreSQL), `upgrade -y` from a repository
// whose first mirror lags (metadata, but 404 for the package), and `check-update` through
// a real tinyproxy with BasicAuth whose password never appears in any output or log.
#include "http_server.hpp"
#include "repo_support.hpp"
#include "sandbox_root.hpp"
#include "test_support.hpp"
#include "tinyproxy.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;

const std::string k_newest = "leostream-broker-9.2.0-1.x86_64";

/// A sandbox root with the broker 9.0.7 installed and a valid support licence.
class MirrorsCli : public leo::test::SandboxRootTest {
  protected:
    void SetUp() override {
        SandboxRootTest::SetUp();
        leo::test::install_test_broker(root, "leostream-broker-9.0.7-1.x86_64");
        leo::test::add_support_licence(root); // the upgrade gates want a valid support licence
    }
    /// ROOT/etc/yum.repos.d/leo.repo: the signed test repository, its baseurl in `body`.
    void write_repo(const std::string& body) {
        leo::test::write_repo_file(root, "leo", leo::test::signed_repo_lines(root, "") + body);
    }
};

TEST_F(MirrorsCli, UpgradeFromTheSecondMirrorWhenTheFirstLags) {
    leo::test::HttpServer lagging(pkgs);
    leo::test::HttpServer good(pkgs);
    lagging.fail(k_newest + ".rpm", 404);
    write_repo("baseurl=" + lagging.url() + "/repo\n        " + good.url() + "/repo\n");
    auto up = run_installer({"upgrade", "--root", root.string(), "-y"});
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_EQ(installed(), k_newest);
    EXPECT_EQ(lagging.request_count(k_newest + ".rpm"), 1u);
    EXPECT_EQ(good.request_count(k_newest + ".rpm"), 1u);
    EXPECT_EQ(good.request_count("repomd.xml"), 0u) << "the first mirror served the metadata";
}

TEST_F(MirrorsCli, EveryMirrorFailsForThePackage) {
    leo::test::HttpServer a(pkgs);
    leo::test::HttpServer b(pkgs);
    a.fail(k_newest + ".rpm", 404);
    b.fail(k_newest + ".rpm", 404);
    write_repo("baseurl=" + a.url() + "/repo " + b.url() + "/repo\n");
    // what a run touches without changing anything: its log, the metadata cache, the journal
    // and lock, the running database, and sqlite's shared-memory index of the rpmdb (reads)
    const std::vector<std::string> moving = {"var/log", "var/cache", "var/lib/leo-installer", "home/leo/pgsql",
                                             "var/lib/rpm/rpmdb.sqlite-shm"};
    const std::string before = leo::test::snapshot_tree(root, moving);
    auto up = run_installer({"upgrade", "--root", root.string(), "-y"});
    EXPECT_EQ(up.exit_code, 1) << up.out << up.err;
    EXPECT_NE(up.err.find("repository leo: every baseurl failed (2 tried): package " + k_newest + ": HTTP 404 for " +
                          a.url() + "/repo/" + k_newest + ".rpm"),
              std::string::npos)
        << up.err;
    EXPECT_NE(up.err.find("HTTP 404 for " + b.url() + "/repo/" + k_newest + ".rpm"), std::string::npos) << up.err;
    EXPECT_EQ(installed(), "leostream-broker-9.0.7-1.x86_64");
    EXPECT_EQ(leo::test::snapshot_tree(root, moving), before) << "nothing changed outside the cache and the logs";
    for (const auto& e : stdfs::recursive_directory_iterator(root / "var/cache/leo-installer")) {
        EXPECT_FALSE(e.path().string().ends_with(".part")) << e.path();
        EXPECT_FALSE(e.path().string().ends_with(".rpm")) << e.path();
    }
}

/// Every file under `dir` that holds `secret`.
std::vector<std::string> files_holding(const stdfs::path& dir, const std::string& secret) {
    std::vector<std::string> out;
    for (const auto& e : stdfs::recursive_directory_iterator(dir, stdfs::directory_options::skip_permission_denied)) {
        if (e.is_regular_file() && !e.is_symlink() && e.path().filename() != "leo.repo" &&
            leo::test::slurp(e.path()).find(secret) != std::string::npos)
            out.push_back(e.path().string());
    }
    return out;
}

TEST_F(MirrorsCli, CheckUpdateThroughAnAuthenticatingProxy) {
    const std::string password = "Pr0xy-S3cret-pw";
    leo::test::TempDir proxy_dir;
    leo::test::Tinyproxy proxy(proxy_dir.path(), "leoproxy " + password);
    leo::test::HttpServer server(pkgs);
    write_repo("baseurl=" + server.url() + "/repo\nproxy=" + proxy.url() +
               "\nproxy_username=leoproxy\nproxy_password=" + password + "-wrong\n");
    const std::vector<std::string> moving = {"var/log", "home/leo/pgsql", "var/lib/rpm/rpmdb.sqlite-shm"};
    const std::string before = leo::test::snapshot_tree(root, moving);
    auto refused = run_installer({"check-update", "--root", root.string()});
    EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
    EXPECT_NE(refused.err.find("HTTP 401 for " + server.url() + "/repo/repodata/repomd.xml: credentials refused"),
              std::string::npos)
        << refused.err;
    EXPECT_EQ((refused.out + refused.err).find(password), std::string::npos);
    EXPECT_EQ(server.request_count(), 0u) << "nothing reached the server past the proxy";
    EXPECT_EQ(leo::test::snapshot_tree(root, moving), before) << "a refused check-update changes nothing";

    write_repo("baseurl=" + server.url() + "/repo\nproxy=" + proxy.url() +
               "\nproxy_username=leoproxy\nproxy_password=" + password + "\n");
    auto r = run_installer({"check-update", "--root", root.string(), "--json"});
    EXPECT_EQ(r.exit_code, 100) << r.out << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["update"], k_newest);
    EXPECT_NE(proxy.log().find("GET " + server.url() + "/repo/repodata/repomd.xml"), std::string::npos) << proxy.log();
    EXPECT_EQ((r.out + r.err).find(password), std::string::npos);
    EXPECT_EQ(files_holding(root, password), std::vector<std::string>{}) << "no secret in the root's files and logs";
}

} // namespace
