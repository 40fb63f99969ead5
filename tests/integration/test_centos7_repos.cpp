// A root as an appliance meets it: the stock CentOS 7.9 yum configuration
// (tests/fixtures/centos7: mirrorlist repositories that cannot be reached here) plus the
// broker's repository on a loopback HTTP server, and the real installer binary. What yum
// does with it: the unreachable OS repositories are skipped with one warning each, exclude,
// priority and cost choose the broker, skip_if_unavailable=0 and --repo make a repository
// required, and $releasever comes from the rpmdb's release package.
#include "http_server.hpp"
#include "repo_support.hpp"
#include "sandbox_root.hpp"
#include "test_support.hpp"

#include <chrono>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;
using Strings = std::vector<std::string>;

/// The lines of `err` that are warnings ("leo-installer: warning: ...").
Strings warnings_of(const std::string& err) {
    Strings out;
    std::istringstream in(err);
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("leo-installer: warning: ")) out.push_back(line.substr(24));
    return out;
}

/// `rpm -i --justdb` of `file` into `root`: in the rpmdb, no files, no scriptlets.
void register_package(const stdfs::path& root, const stdfs::path& file) {
    leo::test::run_ok({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-i", "--justdb", "--nodeps",
                       "--noscripts", "--nosignature", file.string()});
}

class CentOS7ReposTest : public leo::test::SandboxRootTest {
protected:
    void SetUp() override {
        SandboxRootTest::SetUp();
        stdfs::copy(leo::test::source_dir() / "tests/fixtures/centos7/etc", root / "etc",
                    stdfs::copy_options::recursive | stdfs::copy_options::overwrite_existing);
        register_package(root, pkgs / "repo/leostream-broker-9.0.7-1.x86_64.rpm");
        server = std::make_unique<leo::test::HttpServer>(pkgs);
        write_repo("leostream", "baseurl=" + server->url() + "/repo\n");
    }
    /// ROOT/etc/yum.repos.d/ID.repo: `extra` lines (its baseurl), gpgcheck with the test key.
    void write_repo(const std::string& id, const std::string& extra) {
        leo::test::write_repo_file(root, id,
                                   "name=Leostream broker\n" + extra + "enabled=1\ngpgcheck=1\ngpgkey=" +
                                       leo::test::key_in_root(root, key()) + "\n");
    }
    void append_main(const std::string& lines) {
        std::ofstream(root / "etc/yum.conf", std::ios::app) << "\n[main]\n" << lines;
    }
    leo::subprocess::Result check_update(Strings extra = {}) {
        Strings args{"check-update", "--root", root.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_installer(args);
    }

    std::unique_ptr<leo::test::HttpServer> server;
};

TEST_F(CentOS7ReposTest, CheckUpdateAnswersWithOneWarningPerUnreachableOSRepository) {
    const auto start = std::chrono::steady_clock::now();
    const auto r = check_update();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.exit_code, 100) << r.out << r.err;
    EXPECT_NE(r.out.find("update available: leostream-broker-9.2.0-1.x86_64"), std::string::npos) << r.out;
    const auto warnings = warnings_of(r.err);
    ASSERT_EQ(warnings.size(), 3u) << r.err;
    const Strings ids{"base", "updates", "extras"};
    for (std::size_t i = 0; i < ids.size(); ++i)
        EXPECT_TRUE(warnings[i].starts_with("repository " + ids[i] + " is skipped: ")) << warnings[i];
    EXPECT_LT(seconds, 20.0) << "the unreachable mirrorlist host must not hold the answer up";

    // --json: stdout is the JSON alone, the warnings stay on stderr
    const auto j = check_update({"--json"});
    EXPECT_EQ(j.exit_code, 100) << j.err;
    EXPECT_EQ(nlohmann::json::parse(j.out)["update"], "leostream-broker-9.2.0-1.x86_64");
    EXPECT_EQ(warnings_of(j.err).size(), 3u) << j.err;
}

TEST_F(CentOS7ReposTest, OnlyTheBrokerRepositoryWithRepo) {
    const auto r = check_update({"--repo", "leostream", "--json"});
    EXPECT_EQ(r.exit_code, 100) << r.err;
    EXPECT_TRUE(warnings_of(r.err).empty()) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["update"], "leostream-broker-9.2.0-1.x86_64");
}

TEST_F(CentOS7ReposTest, ARepositoryNamedWithRepoMustLoad) {
    const auto r = check_update({"--repo", "base"});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("repository base"), std::string::npos) << r.err;
    EXPECT_TRUE(warnings_of(r.err).empty()) << "an error, not a skip: " << r.err;
}

TEST_F(CentOS7ReposTest, AnUnreachableBaseurlOSRepositoryIsSkippedToo) {
    // The reported fault: with baseurl= instead of mirrorlist=, an unreachable OS
    // repository failed the plain check-update.
    const int port = leo::test::free_port();
    std::ofstream(root / "etc/yum.repos.d/CentOS-Base.repo")
        << "[base]\nname=CentOS-$releasever - Base\nbaseurl=http://127.0.0.1:" << port
        << "/centos/$releasever/os/$basearch/\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7\n";
    const auto r = check_update();
    EXPECT_EQ(r.exit_code, 100) << r.out << r.err;
    const auto warnings = warnings_of(r.err);
    ASSERT_EQ(warnings.size(), 1u) << r.err;
    EXPECT_TRUE(warnings[0].starts_with("repository base is skipped: ")) << warnings[0];
    EXPECT_NE(warnings[0].find("127.0.0.1:" + std::to_string(port) + "/centos/7/os/x86_64/"), std::string::npos)
        << warnings[0];
}

TEST_F(CentOS7ReposTest, WhenNoRepositoryThatOffersTheBrokerIsLeftTheErrorNamesEachSkipped) {
    write_repo("leostream", "baseurl=http://127.0.0.1:" + std::to_string(leo::test::free_port()) + "/repo\n");
    const auto r = check_update();
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    const std::string error = r.err.substr(r.err.rfind("leo-installer: error: "));
    EXPECT_NE(error.find("no repository that offers leostream-broker could be read; skipped: base ("),
              std::string::npos)
        << error;
    for (const char* id : {"updates (", "extras (", "leostream ("})
        EXPECT_NE(error.find(id), std::string::npos) << id << " in " << error;
}

TEST_F(CentOS7ReposTest, SkipIfUnavailableZeroMakesARepositoryRequired) {
    const int port = leo::test::free_port();
    write_repo("leostream", "baseurl=http://127.0.0.1:" + std::to_string(port) + "/repo\nskip_if_unavailable=0\n");
    const auto r = check_update();
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("repository leostream"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("no repository that offers"), std::string::npos) << "leostream's own error: " << r.err;
    // in [main], it is every repository's: the first OS repository stops the command
    write_repo("leostream", "baseurl=" + server->url() + "/repo\n");
    append_main("skip_if_unavailable=0\n");
    const auto m = check_update();
    EXPECT_EQ(m.exit_code, 1) << m.out << m.err;
    EXPECT_NE(m.err.find("repository base"), std::string::npos) << m.err;
    // and skip_if_unavailable=1 of a section wins over [main]'s 0
    std::string base = leo::test::slurp(root / "etc/yum.repos.d/CentOS-Base.repo");
    const std::string skip = "skip_if_unavailable=1\n";
    for (auto pos = base.find("gpgcheck=1\n"); pos != std::string::npos;
         pos = base.find("gpgcheck=1\n", pos + skip.size() + 1))
        base.insert(pos, skip);
    std::ofstream(root / "etc/yum.repos.d/CentOS-Base.repo") << base;
    const auto s1 = check_update();
    EXPECT_EQ(s1.exit_code, 100) << s1.out << s1.err;
    EXPECT_EQ(warnings_of(s1.err).size(), 3u) << s1.err;
}

TEST_F(CentOS7ReposTest, ExcludeInMainLeavesAVersionOut) {
    append_main("exclude=leostream-broker-9.2*\n");
    const auto r = check_update({"--json"});
    EXPECT_EQ(r.exit_code, 100) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["update"], "leostream-broker-9.1.10-1.x86_64");
    for (const auto& a : j["available"]) EXPECT_EQ(a["nevra"].get<std::string>().find("9.2.0"), std::string::npos);
}

TEST_F(CentOS7ReposTest, ExcludeMatchingEverythingSaysSo) {
    write_repo("leostream", "baseurl=" + server->url() + "/repo\nexclude=leostream-broker\n");
    const auto r = check_update({"--repo", "leostream"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto warnings = warnings_of(r.err);
    ASSERT_EQ(warnings.size(), 1u) << r.err;
    EXPECT_TRUE(warnings[0].starts_with("every leostream-broker package of the repositories is left out by "
                                        "exclude/includepkgs: leostream-broker-"))
        << warnings[0];
    EXPECT_NE(warnings[0].find("-1.x86_64 in leostream (exclude=leostream-broker in " +
                               (root / "etc/yum.repos.d/leostream.repo").string() + ")"),
              std::string::npos)
        << warnings[0];
    // includepkgs that names another package leaves the broker out the same way
    write_repo("leostream", "baseurl=" + server->url() + "/repo\nincludepkgs=other-*\n");
    const auto i = check_update({"--repo", "leostream"});
    EXPECT_EQ(i.exit_code, 0) << i.err;
    EXPECT_NE(i.err.find("(includepkgs=other-* in "), std::string::npos) << i.err;
}

TEST_F(CentOS7ReposTest, PriorityChoosesTheRepositoryAndCostTheCopy) {
    // "epoch" offers 1:9.0.1, newer than 9.2.0 by epoch; a lower priority number wins first
    write_repo("epoch", "baseurl=" + server->url() + "/epoch\npriority=10\n");
    write_repo("leostream", "baseurl=" + server->url() + "/repo\npriority=5\n");
    auto r = check_update({"--json"});
    EXPECT_EQ(r.exit_code, 100) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["update"], "leostream-broker-9.2.0-1.x86_64");
    write_repo("epoch", "baseurl=" + server->url() + "/epoch\npriority=1\n");
    r = check_update({"--json"});
    EXPECT_EQ(nlohmann::json::parse(r.out)["update"], "leostream-broker-1:9.0.1-1.x86_64");
    // the same repository twice, at the same priority: the cheaper one serves each NEVRA
    stdfs::remove(root / "etc/yum.repos.d/epoch.repo");
    write_repo("leostream", "baseurl=" + server->url() + "/repo\n");
    write_repo("mirror", "baseurl=" + server->url() + "/repo\ncost=10\n");
    r = check_update({"--json", "--repo", "leostream", "--repo", "mirror"});
    EXPECT_EQ(r.exit_code, 100) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["available"].size(), 5u) << "one entry per NEVRA: " << r.out;
    for (const auto& a : j["available"]) EXPECT_EQ(a["repo"], "mirror") << a;
}

TEST_F(CentOS7ReposTest, ReleaseverComesFromTheReleasePackageInTheRpmdb) {
    // RHEL's rule: the provide's version ("7Server") when it is not the package's name
    leo::test::TestPackage release;
    release.name = "redhat-release-server";
    release.version = "7.9";
    release.release = "6.el7";
    release.provides = {"system-release(releasever) = 7Server", "redhat-release = 7.9-6.el7"};
    register_package(root, leo::test::build_test_package(tmp.path(), release));
    stdfs::remove(root / "etc/os-release");
    // yum.conf says distroverpkg=centos-release (not installed here): fall back to yum's list
    std::string conf = leo::test::slurp(root / "etc/yum.conf");
    conf.replace(conf.find("distroverpkg=centos-release"), 27, "#distroverpkg=centos-release");
    std::ofstream(root / "etc/yum.conf") << conf;
    stdfs::create_directories(tmp.path() / "www");
    stdfs::create_directory_symlink(pkgs / "repo", tmp.path() / "www/7Server");
    write_repo("leostream", "baseurl=file://" + (tmp.path() / "www").string() + "/$releasever\n");
    const auto r = check_update({"--repo", "leostream"});
    EXPECT_EQ(r.exit_code, 100) << r.out << r.err;
    EXPECT_TRUE(warnings_of(r.err).empty()) << r.err;
}

} // namespace
