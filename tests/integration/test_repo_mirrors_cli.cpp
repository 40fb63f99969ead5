// Mirrors and proxies through the real binary: a root with the broker installed (the signed
// test packages of LEO_TEST_PACKAGES, a real PostgreSQL), `upgrade -y` from a repository
// whose first mirror lags (metadata, but 404 for the package), and `check-update` through
// a real tinyproxy with BasicAuth whose password never appears in any output or log.
#include "http_server.hpp"
#include "test_support.hpp"

#include "leo/common/fs.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;

const std::string k_newest = "leostream-broker-9.2.0-1.x86_64";

class MirrorsCli : public ::testing::Test {
  protected:
    void SetUp() override {
        pkgs = leo::test::test_packages_dir();
        root = tmp.path() / "root";
        leo::test::make_sandbox_root(root);
        leo::test::install_test_broker(root, "leostream-broker-9.0.7-1.x86_64");
        // the upgrade gates want a valid support licence
        leo::migrations::InternalDatabase db(root);
        auto conn = leo::migrations::Connection::open(db.conninfo());
        (void)conn.query("INSERT INTO support_licence (licence_key, customer, expires_on) VALUES ('K-1', 'Acme', "
                         "'2027-12-31')");
    }
    void TearDown() override {
        if (stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"))
            (void)run_installer({"db", "stop", "--root", root.string()});
    }
    void write_repo(const std::string& body) {
        stdfs::create_directories(root / "etc/yum.repos.d");
        std::ofstream(root / "etc/yum.repos.d/leo.repo") << "[leo]\nname=Broker\nenabled=1\ngpgcheck=1\ngpgkey="
                                                         << leo::test::key_in_root(root, pkgs / "RPM-GPG-KEY-leo-test")
                                                         << "\n"
                                                         << body;
    }
    std::string installed() { return leo::subprocess::last_line(leo::test::rpm_query(root, "leostream-broker").out); }

    leo::test::TempDir tmp;
    stdfs::path pkgs;
    stdfs::path root;
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

/// tinyproxy -d with BasicAuth, stopped at destruction.
class Proxy {
  public:
    Proxy(const stdfs::path& dir, const std::string& user, const std::string& password) : m_log(dir / "proxy.log") {
        m_port = leo::test::free_port();
        leo::fs::write_file_atomic(dir / "proxy.conf", "Port " + std::to_string(m_port) +
                                                           "\nListen 127.0.0.1\nTimeout 30\nLogFile \"" +
                                                           m_log.string() +
                                                           "\"\nLogLevel Info\nAllow 127.0.0.1\n"
                                                           "BasicAuth " +
                                                           user + " " + password + "\n");
        std::vector<std::string> args{"tinyproxy", "-d", "-c", (dir / "proxy.conf").string()};
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
        if (posix_spawnp(&m_pid, "tinyproxy", &actions, nullptr, argv.data(), environ) != 0) {
            posix_spawn_file_actions_destroy(&actions);
            throw std::runtime_error("cannot start tinyproxy (apt-get install tinyproxy)");
        }
        posix_spawn_file_actions_destroy(&actions);
        for (int i = 0; i < 100 && leo::test::slurp(m_log).find("Accepting connections") == std::string::npos; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ~Proxy() {
        ::kill(m_pid, SIGTERM);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
    }
    Proxy(const Proxy&) = delete;
    Proxy& operator=(const Proxy&) = delete;
    [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port); }
    [[nodiscard]] std::string log() const { return leo::test::slurp(m_log); }

  private:
    stdfs::path m_log;
    int m_port = 0;
    pid_t m_pid = -1;
};

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
    Proxy proxy(proxy_dir.path(), "leoproxy", password);
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
