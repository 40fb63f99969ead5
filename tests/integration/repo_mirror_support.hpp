#pragma once
// Helpers of the mirror, TLS and proxy tests of leo::repo (test_repo_mirrors.cpp,
// test_repo_transport.cpp): the repository repo_02 that scripts/build-test-packages.sh
// builds at test time (copied to break it) and short repositories; the assertions on
// messages and on disk are tests/support/repo_support.hpp's.
#include "http_server.hpp"
#include "repo_support.hpp"
#include "test_support.hpp"

#include "leo/common/fs.hpp"
#include "leo/repo/metadata.hpp"

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

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

/// A repository of the mirror tests: repo_config() with retries=2 (one retry of a transient
/// failure) and timeout=5 s, to keep the tests short.
inline repo::RepoConfig make_repo(const std::string& id, std::vector<std::string> baseurls) {
    repo::RepoConfig r = repo_config(id, std::move(baseurls));
    r.retries = 2;
    r.timeout = 5;
    return r;
}

using leo::fs::SystemRoot;
using leo::repo::Metadata;
using leo::test::closed_port_url;
using leo::test::Contains;
using leo::test::HttpServer;
using leo::test::list_dir;
using leo::test::repo_error;
using leo::test::TempDir;
/// find_package() under the tests' short name.
inline constexpr auto find = &leo::test::find_package;

} // namespace leo::test::mirrors
