// `leo-installer verify` and leo::rpm::verify_package on the public fixtures (real
// packages signed by rpm.org's test key) and on packages built from our spec.
#include "test_support.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/rpm/package.hpp"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using leo::rpm::SignatureState;

stdfs::path fixture(const std::string& rel) { return leo::test::test_packages_dir() / rel; }
// Built at test time (scripts/build-test-packages.sh): hello 2.0 unsigned, and a copy signed
// by a throwaway key that is not the broker packages' key.
const std::string k_signed = "other/hello-2.0-1.x86_64-signed.rpm";
const std::string k_key = "RPM-GPG-KEY-hello-test";
/// The long key id of k_key (lower-case hex), as the build wrote it.
std::string hello_key_id() {
    std::string id = leo::fs::read_file(leo::test::test_packages_dir() / "hello-test.keyid");
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    return id;
}

TEST(Verify, SignedFixtureIsNokeyWithoutItsKey) {
    auto v = leo::rpm::verify_package(fixture(k_signed), {});
    EXPECT_EQ(v.signature, SignatureState::nokey);
    EXPECT_TRUE(v.digests_ok);
    EXPECT_EQ(v.key_id.size(), 16U) << v.key_id;
    EXPECT_EQ(v.key_id, hello_key_id());
    EXPECT_EQ(v.package.nevra(), "hello-2.0-1.x86_64");
}

TEST(Verify, SignedFixtureIsOkWithItsKey) {
    auto v = leo::rpm::verify_package(fixture(k_signed), {{}, {fixture(k_key)}, {}});
    EXPECT_EQ(v.signature, SignatureState::ok);
    EXPECT_TRUE(v.digests_ok);
    EXPECT_EQ(v.sha256.size(), 64u);
}

TEST(Verify, UnsignedFixtureIsUnsigned) {
    auto v = leo::rpm::verify_package(fixture("other/hello-2.0-1.x86_64.rpm"), {{}, {fixture(k_key)}, {}});
    EXPECT_EQ(v.signature, SignatureState::unsigned_);
    EXPECT_TRUE(v.digests_ok);
    EXPECT_TRUE(v.key_id.empty());
}

TEST(Verify, KeyFromAnotherSignerIsNokey) {
    // A package signed by the broker packages' test key, verified against the hello key only.
    const auto signed_by_other = leo::test::test_packages_dir() / "repo/leostream-broker-9.0.7-1.x86_64.rpm";
    auto v = leo::rpm::verify_package(signed_by_other, {{}, {fixture(k_key)}, {}});
    EXPECT_EQ(v.signature, SignatureState::nokey);
    EXPECT_EQ(v.key_id.size(), 16U) << v.key_id;
    EXPECT_NE(v.key_id, hello_key_id()) << "the hello key's own id: that would be ok, not nokey";
}

TEST(Verify, FlippedPayloadByteIsBad) {
    leo::test::TempDir tmp;
    std::string data = leo::fs::read_file(fixture(k_signed));
    data[data.size() - 100] = static_cast<char>(data[data.size() - 100] ^ 0xff);
    const auto f = tmp.path() / "p.rpm";
    std::ofstream(f, std::ios::binary) << data;
    auto v = leo::rpm::verify_package(f, {{}, {fixture(k_key)}, {}});
    EXPECT_EQ(v.signature, SignatureState::bad);
    EXPECT_FALSE(v.digests_ok);
}

TEST(Verify, NotAnRpmAndMissingFileThrow) {
    leo::test::TempDir tmp;
    const auto f = tmp.path() / "x.rpm";
    std::ofstream(f) << "plain text\n";
    try {
        (void)leo::rpm::verify_package(f, {});
        FAIL() << "expected RpmError";
    } catch (const leo::RpmError& e) {
        EXPECT_NE(std::string(e.what()).find("is not an RPM package"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)leo::rpm::verify_package(tmp.path() / "missing.rpm", {}), leo::RpmError);
    EXPECT_THROW((void)leo::rpm::verify_package(fixture(k_signed), {{}, {tmp.path() / "nokey.pub"}, {}}), leo::RpmError);
}

TEST(Verify, PackageInfoIncludesEpoch) {
    // A package with a non-zero epoch, built here (as createrepo_c's test data has one).
    leo::test::TempDir tmp;
    leo::test::TestPackage archer;
    archer.name = "Archer";
    archer.epoch = 2;
    archer.version = "3.4.5";
    archer.release = "6";
    archer.arch = "x86_64";
    auto p = leo::rpm::read_package_info(leo::test::build_test_package(tmp.path(), archer));
    ASSERT_TRUE(p.epoch.has_value());
    EXPECT_EQ(*p.epoch, 2u);
    EXPECT_EQ(p.nevra(), "Archer-2:3.4.5-6.x86_64");
    archer.source = true;
    auto src = leo::rpm::read_package_info(leo::test::build_test_package(tmp.path(), archer));
    EXPECT_TRUE(src.source);
}

TEST(VerifyCli, JsonAndExitCodes) {
    auto nokey = leo::test::run_installer({"verify", "--rpm", fixture(k_signed).string(), "--json"});
    EXPECT_EQ(nokey.exit_code, 1);
    auto j = nlohmann::json::parse(nokey.out);
    EXPECT_EQ(j["signature"], "nokey");
    EXPECT_EQ(j["digests"], "ok");

    auto ok = leo::test::run_installer(
        {"verify", "--rpm", fixture(k_signed).string(), "--gpgkey", fixture(k_key).string(), "--json"});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_EQ(nlohmann::json::parse(ok.out)["signature"], "ok");

    auto text = leo::test::run_installer({"verify", "--rpm", fixture(k_signed).string()});
    EXPECT_NE(text.out.find("signature: nokey (key " + hello_key_id() + ")"), std::string::npos) << text.out;

    auto usage = leo::test::run_installer({"verify"});
    EXPECT_EQ(usage.exit_code, 2);
    EXPECT_NE(usage.err.find("--rpm is required"), std::string::npos) << usage.err;
}

TEST(VerifyCli, SignedBrokerPackageFromOurSpec) {
    leo::test::TempDir tmp;
    const auto pub = leo::test::make_signing_key(tmp.path(), "leo-verify");
    const auto rpm = leo::test::build_broker_rpm("9.1.2", tmp.path() / "rpms", tmp.path() / "gnupg", "leo-verify");
    auto v = leo::rpm::verify_package(rpm, {{}, {pub}, {}});
    EXPECT_EQ(v.signature, SignatureState::ok) << v.detail;
    EXPECT_EQ(v.package.nevra(), "leostream-broker-9.1.2-1.x86_64");
    auto files = leo::rpm::list_package_files(rpm);
    EXPECT_NE(std::find(files.begin(), files.end(), "/home/leo/share/migrations/V9.1.0.2__jobs_site_index.sql"),
              files.end());
}

} // namespace
