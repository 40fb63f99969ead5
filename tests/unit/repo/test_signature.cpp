// repo_gpgcheck on the public librepo fixture repo_yum_01 (repomd.xml signed by
// repomd.xml.key; repomd.xml_bad does not match the same .asc), through file:// URLs.
#include "leo/common/error.hpp"
#include "leo/repo/metadata.hpp"
#include "leo/repo/signature.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace {
namespace stdfs = std::filesystem;
using leo::repo::RepoConfig;
using leo::repo::SigningKey;

stdfs::path fixture_repo() { return leo::test::fixtures_dir() / "librepo/repo_yum_01"; }
std::string fixture(const std::string& name) { return leo::test::slurp(fixture_repo() / "repodata" / name); }

RepoConfig repo_at(const stdfs::path& dir) {
    RepoConfig r;
    r.id = "signed";
    r.baseurls = {"file://" + dir.string()};
    r.repo_gpgcheck = true;
    r.gpgcheck = false;
    r.source = "/etc/yum.repos.d/signed.repo";
    return r;
}

std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const leo::RepoError& e) {
        return e.what();
    }
    return "<no error>";
}

void expect_has(const std::string& text, const std::string& part) {
    EXPECT_NE(text.find(part), std::string::npos) << "expected \"" << part << "\" in: " << text;
}

TEST(RepomdSignature, GoodSignatureVerifies) {
    const RepoConfig r = repo_at(fixture_repo());
    EXPECT_NO_THROW(leo::repo::verify_repomd_signature(r, r.baseurls[0], fixture("repomd.xml"),
                                                       {SigningKey{fixture("repomd.xml.key"), "file:///key"}}));
}

TEST(RepomdSignature, ChangedRepomdIsBadAndNamesTheKey) {
    const RepoConfig r = repo_at(fixture_repo());
    const auto m = message_of([&] {
        leo::repo::verify_repomd_signature(r, r.baseurls[0], fixture("repomd.xml_bad"),
                                           {SigningKey{fixture("repomd.xml.key"), "file:///key"}});
    });
    expect_has(m, "repository signed: the signature repodata/repomd.xml.asc from file://");
    expect_has(m, "does not verify with key 97BDB7906441EDF5");
    expect_has(m, "none of the repository's metadata is used");
}

TEST(RepomdSignature, UnknownKeyNamesSignerAndKeysTried) {
    leo::test::TempDir dir;
    const auto other = leo::test::make_signing_key(dir.path(), "other");
    const RepoConfig r = repo_at(fixture_repo());
    const auto m = message_of([&] {
        leo::repo::verify_repomd_signature(r, r.baseurls[0], fixture("repomd.xml"),
                                           {SigningKey{leo::test::slurp(other), "https://example.com/RPM-GPG-KEY"}});
    });
    expect_has(m, "is signed by key 97BDB7906441EDF5, which is not among the repository's keys (tried: ");
    expect_has(m, " from https://example.com/RPM-GPG-KEY)");
    expect_has(m, "Check gpgkey= in /etc/yum.repos.d/signed.repo");
    const auto none = message_of([&] { leo::repo::verify_repomd_signature(r, r.baseurls[0], fixture("repomd.xml"), {}); });
    expect_has(none, "(tried: none: gpgkey= is not set)");
}

TEST(RepomdSignature, MissingSignatureIsItsOwnError) {
    leo::test::TempDir dir;
    stdfs::create_directories(dir.path() / "repodata");
    std::ofstream(dir.path() / "repodata/repomd.xml") << fixture("repomd.xml");
    const RepoConfig r = repo_at(dir.path());
    const auto m = message_of([&] {
        leo::repo::verify_repomd_signature(r, r.baseurls[0], fixture("repomd.xml"),
                                           {SigningKey{fixture("repomd.xml.key"), "file:///key"}});
    });
    expect_has(m, "repository signed: repo_gpgcheck=1, but repodata/repomd.xml.asc is missing at file://");
    expect_has(m, "set repo_gpgcheck=0 in /etc/yum.repos.d/signed.repo");
}

TEST(RepomdSignature, LoadMetadataChecksBeforePrimaryIsFetched) {
    // the bad repomd.xml in place of the good one, with the good .asc: primary never fetched
    leo::test::TempDir dir;
    stdfs::create_directories(dir.path() / "repodata");
    std::ofstream(dir.path() / "repodata/repomd.xml") << fixture("repomd.xml_bad");
    std::ofstream(dir.path() / "repodata/repomd.xml.asc") << fixture("repomd.xml.asc");
    leo::test::TempDir root;
    const leo::fs::SystemRoot sys(root.path());
    const RepoConfig r = repo_at(dir.path());
    const auto m = message_of([&] {
        (void)leo::repo::load_metadata(r, sys, "/var/cache/leo-installer/metadata", nullptr,
                                       {SigningKey{fixture("repomd.xml.key"), "file:///key"}});
    });
    expect_has(m, "does not verify with key 97BDB7906441EDF5");
    EXPECT_FALSE(stdfs::exists(root.path() / "var/cache/leo-installer/metadata/signed"));

    // the fixture repository itself verifies and loads
    const auto md = leo::repo::load_metadata(repo_at(fixture_repo()), sys, "/var/cache/leo-installer/metadata",
                                             nullptr, {SigningKey{fixture("repomd.xml.key"), "file:///key"}});
    EXPECT_FALSE(md.packages.empty());
}

} // namespace
