#pragma once
// Helpers of the mirror, TLS and proxy tests of leo::repo (test_repo_mirrors.cpp,
// test_repo_transport.cpp): repositories made in the test, the repository repo_02 that
// scripts/build-test-packages.sh builds at test time, copied to break it, and assertions on
// messages and on what is left on disk.
#include "test_support.hpp"

#include "leo/common/error.hpp"
#include "leo/repo/metadata.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <filesystem>
#include <functional>
#include <netinet/in.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

namespace leo::test::mirrors {
namespace stdfs = std::filesystem;

inline const std::string k_fake_bash = "fake_bash-1.1.1-1.x86_64.rpm";

/// fake_bash-1.1.1-1.x86_64 and super_kernel-6.0.1-2.x86_64 in a createrepo_c repository,
/// built at test time (test_packages_dir()/repo_02): no built package is committed.
inline stdfs::path repo_02() { return test_packages_dir() / "repo_02"; }

/// The primary metadata file of the createrepo_c repository `repo`
/// (repodata/<sha256>-primary.xml.gz); throws std::runtime_error when there is none.
inline stdfs::path primary_of(const stdfs::path& repo) {
    for (const auto& e : stdfs::directory_iterator(repo / "repodata")) {
        if (e.path().filename().string().ends_with("-primary.xml.gz")) return e.path();
    }
    throw std::runtime_error("no *-primary.xml.gz in " + (repo / "repodata").string());
}

/// A copy of repo_02 at `dir`, to break.
inline stdfs::path copy_repo_02(const stdfs::path& dir) {
    stdfs::copy(repo_02(), dir, stdfs::copy_options::recursive);
    return dir;
}

inline repo::RepoConfig make_repo(const std::string& id, std::vector<std::string> baseurls) {
    repo::RepoConfig r;
    r.id = id;
    r.name = id;
    r.baseurls = std::move(baseurls);
    r.source = "/etc/yum.repos.d/test.repo";
    r.retries = 2; // transient failures: one retry, keeps the tests short
    r.timeout = 5;
    return r;
}

inline ::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
    if (text.find(part) != std::string::npos) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

/// The message of the leo::RepoError `f` throws; fails the test when it throws nothing.
inline std::string repo_error(const std::function<void()>& f) {
    try {
        f();
    } catch (const leo::RepoError& e) {
        return e.what();
    }
    ADD_FAILURE() << "no leo::RepoError thrown";
    return {};
}

/// Every path under `dir`, sorted ("" entries when it does not exist).
inline std::vector<std::string> list_dir(const stdfs::path& dir) {
    std::vector<std::string> names;
    if (stdfs::exists(dir)) {
        for (const auto& e : stdfs::recursive_directory_iterator(dir)) {
            names.push_back(stdfs::relative(e.path(), dir).string());
        }
    }
    std::sort(names.begin(), names.end());
    return names;
}

inline const repo::PackageEntry& find(const repo::Metadata& md, const std::string& name) {
    for (const auto& p : md.packages) {
        if (p.name == name) {
            return p;
        }
    }
    throw std::runtime_error("no package " + name);
}

/// An http URL on 127.0.0.1 where nothing listens.
inline std::string closed_port_url() { return "http://127.0.0.1:" + std::to_string(free_port()); }

} // namespace leo::test::mirrors
