#pragma once
// The fixture of the check-update cache tests (test_repo_cache.cpp, test_warm_answer.cpp): a
// sandbox root whose rpmdb holds a broker (recorded with rpm --justdb: check-update reads only
// the rpmdb) and a copy of the test repository served on loopback; and the way to run the
// built program as another, unprivileged user with a home of its own.
#include "http_server.hpp"
#include "sandbox_root.hpp"
#include "test_support.hpp"

#include "leo/common/subprocess.hpp"

#include <filesystem>
#include <memory>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace leo::test {

class ServedRepoTest : public SandboxRootTest {
protected:
    /// The uid (and gid) another user's runs have (as_other_user).
    static constexpr uid_t k_other_user = 54321;

    void SetUp() override {
        SandboxRootTest::SetUp();
        docroot = tmp.path() / "www";
        std::filesystem::create_directories(docroot);
        std::filesystem::copy(pkgs / "repo", docroot / "repo", std::filesystem::copy_options::recursive);
        install_justdb("9.0.7");
        server = std::make_unique<HttpServer>(docroot);
    }
    /// Record leostream-broker VERSION-1 in the root's rpmdb (rpm -U --justdb).
    void install_justdb(const std::string& version) {
        run_ok({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-U", "--justdb", "--nodeps", "--noscripts",
                "--nosignature", (pkgs / ("repo/leostream-broker-" + version + "-1.x86_64.rpm")).string()});
    }
    /// Options that run a command as k_other_user with HOME TMP/home (its own) and no
    /// XDG_CACHE_HOME, after making the root and its rpmdb readable to that user (a monitoring
    /// check's account). Fails the test when a step fails.
    subprocess::Options as_other_user() {
        for (const auto& d : {tmp.path(), root, root / "var", root / "var/lib", root / "var/lib/rpm"})
            EXPECT_EQ(::chmod(d.c_str(), 0755), 0) << d;
        for (const auto& e : std::filesystem::directory_iterator(root / "var/lib/rpm"))
            EXPECT_EQ(::chmod(e.path().c_str(), 0644), 0) << e.path();
        const auto home = tmp.path() / "home";
        std::filesystem::create_directories(home);
        EXPECT_EQ(::chown(home.c_str(), k_other_user, k_other_user), 0);
        subprocess::Options o;
        o.uid = k_other_user;
        o.gid = k_other_user;
        o.env["HOME"] = home.string();
        o.env["XDG_CACHE_HOME"] = "";
        return o;
    }

    std::filesystem::path docroot;
    std::unique_ptr<HttpServer> server;
};

} // namespace leo::test
