// OpenPGP keys and detached signatures through librpm: key id, fingerprint, user id
// (checked against gpg's own listing of the public librepo fixture key), and the four
// outcomes of verify_detached.
#include "leo/common/error.hpp"
#include "leo/rpm/keys.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cctype>

namespace {
namespace stdfs = std::filesystem;
using leo::rpm::DetachedState;

stdfs::path fixture(const std::string& name) { return leo::test::fixtures_dir() / "librepo/repo_yum_01/repodata" / name; }

TEST(PublicKey, ParsesTheFixtureKeyAsGpgListsIt) {
    // repomd.xml.key is a binary key (gpg --export without --armor)
    const auto key = leo::rpm::parse_public_key(leo::test::slurp(fixture("repomd.xml.key")), "repomd.xml.key");
    // gpg --with-colons --fingerprint of the same file
    EXPECT_EQ(key.key_id, "97bdb7906441edf5");
    EXPECT_EQ(key.fingerprint, "F4FC5B6AC58696023B9DBFB197BDB7906441EDF5");
    EXPECT_EQ(key.fingerprint_text(), "F4FC 5B6A C586 9602 3B9D BFB1 97BD B790 6441 EDF5");
    EXPECT_EQ(key.user_id, "repository signing key (test key) <noone@example.org>");
    EXPECT_EQ(key.short_id(), "0x6441EDF5");
    // its one subkey (C4101E247506302F) is for encryption: librpm lists signing subkeys only
    EXPECT_TRUE(key.subkey_ids.empty());
    EXPECT_TRUE(key.has_id("97BDB7906441EDF5"));
    EXPECT_FALSE(key.has_id("C4101E247506302F"));
    EXPECT_FALSE(key.has_id("0000000000000000"));
}

TEST(PublicKey, NotAKeyIsRefusedByName) {
    try {
        (void)leo::rpm::parse_public_key("<html>404</html>", "http://h/RPM-GPG-KEY");
        FAIL() << "no error";
    } catch (const leo::RpmError& e) {
        EXPECT_NE(std::string(e.what()).find("http://h/RPM-GPG-KEY: not an OpenPGP public key (armored or binary)"),
                  std::string::npos)
            << e.what();
    }
    // a signature is not a key either
    EXPECT_THROW((void)leo::rpm::parse_public_key(leo::test::slurp(fixture("repomd.xml.asc")), "asc"), leo::RpmError);
}

TEST(PublicKey, ArmoredKeyAsGpgExportsIt) {
    leo::test::TempDir dir;
    const auto pub = leo::test::make_signing_key(dir.path(), "armored");
    const auto key = leo::rpm::parse_public_key(leo::test::slurp(pub), pub.string());
    // gpg's own listing of the same key
    const auto listing = leo::test::run_ok({"gpg", "--homedir", (dir.path() / "gnupg").string(), "--with-colons",
                                            "--fingerprint", "armored"});
    EXPECT_NE(listing.find("fpr:::::::::" + key.fingerprint + ":"), std::string::npos) << listing;
    EXPECT_EQ(key.user_id, "armored <armored@example.invalid>");
    EXPECT_EQ(key.key_id, [&] {
        std::string id = key.fingerprint.substr(24);
        for (auto& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return id;
    }());
}

TEST(DetachedSignature, GoodBadUnknownMalformed) {
    const auto key = leo::rpm::parse_public_key(leo::test::slurp(fixture("repomd.xml.key")), "repomd.xml.key");
    const std::string asc = leo::test::slurp(fixture("repomd.xml.asc"));

    const auto good = leo::rpm::verify_detached(leo::test::slurp(fixture("repomd.xml")), asc, {key});
    EXPECT_EQ(good.state, DetachedState::ok) << good.detail;
    EXPECT_EQ(good.signer_key_id, "97bdb7906441edf5");

    const auto bad = leo::rpm::verify_detached(leo::test::slurp(fixture("repomd.xml_bad")), asc, {key});
    EXPECT_EQ(bad.state, DetachedState::bad);
    EXPECT_EQ(bad.signer_key_id, "97bdb7906441edf5");
    EXPECT_FALSE(bad.detail.empty());

    const auto none = leo::rpm::verify_detached(leo::test::slurp(fixture("repomd.xml")), asc, {});
    EXPECT_EQ(none.state, DetachedState::unknown_key);
    EXPECT_EQ(none.signer_key_id, "97bdb7906441edf5");

    leo::test::TempDir dir;
    const auto other = leo::rpm::parse_public_key(
        leo::test::slurp(leo::test::make_signing_key(dir.path(), "other")), "other.pub");
    const auto unknown = leo::rpm::verify_detached(leo::test::slurp(fixture("repomd.xml")), asc, {other});
    EXPECT_EQ(unknown.state, DetachedState::unknown_key);

    const auto malformed = leo::rpm::verify_detached("x", "not a signature", {key});
    EXPECT_EQ(malformed.state, DetachedState::malformed);
}

} // namespace
