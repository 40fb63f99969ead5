// A repository's keys and signed metadata through the real binary: gpgkey over plain http
// refused (then allowed, with a warning), a key shown and imported with consent on first
// use and pinned, a key replaced at its URL reported and never trusted, install --gpgkey
// importing its key, the NOKEY message, and repo_gpgcheck (repomd.xml.asc good, bad, by
// an unknown key, missing). Real librpm into a sandbox root, a loopback HTTP server, gpg
// and rpmsign for the keys and signatures made here.
#include "broker_runs.hpp"
#include "http_server.hpp"
#include "repo_support.hpp"
#include "sandbox_root.hpp"
#include "test_support.hpp"

#include "leo/common/subprocess.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/rpm/keys.hpp"

#include <cctype>
#include <fstream>

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;
using leo::test::slurp;

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class RepoKeysTest : public leo::test::SandboxRootTest {
protected:
    void SetUp() override {
        SandboxRootTest::SetUp();
        www = tmp.path() / "www";
        stdfs::create_directories(www / "keys");
        stdfs::copy(pkgs / "repo", www / "repo", stdfs::copy_options::recursive);
        stdfs::copy_file(key(), www / "keys/RPM-GPG-KEY-leo");
        server = std::make_unique<leo::test::HttpServer>(www);
    }

    leo::rpm::PublicKey parsed(const stdfs::path& file) const { return leo::rpm::parse_public_key(slurp(file), file); }

    /// The broker 9.0.7 in the rpmdb only (no scriptlets, no database): enough for runs
    /// refused while they plan.
    void rpm_only_broker() {
        leo::test::run_ok({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-i", "--nodeps",
                           "--noscripts", "--nosignature", "--justdb",
                           (pkgs / "repo/leostream-broker-9.0.7-1.x86_64.rpm").string()});
    }
    /// The broker 9.0.7 installed for real (database included), without importing a key.
    void installed_broker_without_key() {
        auto r = run_installer({"install", "--rpm", (pkgs / "repo/leostream-broker-9.0.7-1.x86_64.rpm").string(),
                                "--root", root.string(), "--nogpgcheck", "-y"});
        ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
        leo::test::add_support_licence(root);
    }
    /// ROOT/etc/yum.repos.d/leo.repo: name and enabled=1, then `body`.
    void write_repo(const std::string& body) {
        leo::test::write_repo_file(root, "leo", "name=Broker\nenabled=1\n" + body);
    }
    std::string gpg_pubkeys() {
        return leo::test::rpm_query(root, "gpg-pubkey").out;
    }
    std::string tree() {
        return leo::test::snapshot_tree(root, {"var/log", "var/lib/leo-installer/lock", "var/lib/leo-installer/journal",
                                               "var/lib/rpm/rpmdb.sqlite-shm", "var/cache"});
    }
    /// Run and expect a refusal (`code`, `message` in stderr) that changed nothing.
    leo::subprocess::Result expect_refused(const std::vector<std::string>& args, int code,
                                           const std::vector<std::string>& messages) {
        const std::string before = tree();
        const std::string keys_before = gpg_pubkeys();
        const std::string broker_before = installed();
        auto r = run_installer(args);
        EXPECT_EQ(r.exit_code, code) << r.out << r.err;
        for (const auto& m : messages) EXPECT_TRUE(has(r.err, m)) << "expected \"" << m << "\" in: " << r.err;
        EXPECT_EQ(tree(), before) << "the root changed";
        EXPECT_EQ(gpg_pubkeys(), keys_before) << "the keys of the rpmdb changed";
        EXPECT_EQ(installed(), broker_before);
        return r;
    }
    /// Re-sign the 9.2.0 package of www/repo with the key `name` of `gnupghome` into
    /// www/DIR, and make DIR a repository.
    void resigned_repo(const std::string& dir, const stdfs::path& gnupghome, const std::string& name) {
        stdfs::create_directories(www / dir);
        const auto rpm = www / dir / "leostream-broker-9.2.0-1.x86_64.rpm";
        stdfs::copy_file(pkgs / "repo/leostream-broker-9.2.0-1.x86_64.rpm", rpm);
        leo::subprocess::Options o;
        o.env["GNUPGHOME"] = gnupghome.string();
        auto d = leo::subprocess::run({"rpmsign", "--delsign", rpm.string()}, o);
        ASSERT_TRUE(d.ok()) << d.err;
        auto s = leo::subprocess::run({"rpmsign", "--define", "__gpg /usr/bin/gpg", "--define", "_gpg_name " + name,
                                       "--addsign", rpm.string()},
                                      o);
        ASSERT_TRUE(s.ok()) << s.err;
        (void)leo::subprocess::run({"gpgconf", "--kill", "gpg-agent"}, o);
        leo::test::run_ok({"createrepo_c", "--quiet", (www / dir).string()});
    }

    stdfs::path www;
    std::unique_ptr<leo::test::HttpServer> server;
};

TEST_F(RepoKeysTest, GpgkeyOverPlainHttpIsRefused) {
    rpm_only_broker();
    write_repo("baseurl=" + server->url() + "/repo\ngpgcheck=1\ngpgkey=" + server->url() + "/keys/RPM-GPG-KEY-leo\n");
    expect_refused({"upgrade", "--root", root.string(), "-y"}, 1,
                   {"repository leo: gpgkey " + server->url() +
                        "/keys/RPM-GPG-KEY-leo is fetched over plain http; use https or a file, or set "
                        "allow_http_gpgkey=1 in " +
                        (root / "etc/yum.repos.d/leo.repo").string() + " to accept the risk"});
    EXPECT_FALSE(has(gpg_pubkeys(), "gpg-pubkey-"));
}

TEST_F(RepoKeysTest, FirstUseWithAssumeyesShowsImportsAndPinsAnHttpKeyAllowedExplicitly) {
    installed_broker_without_key();
    const std::string url = server->url() + "/keys/RPM-GPG-KEY-leo";
    write_repo("baseurl=" + server->url() + "/repo\ngpgcheck=1\ngpgkey=" + url + "\nallow_http_gpgkey=1\n");
    const auto k = parsed(key());
    auto r = run_installer({"upgrade", "--root", root.string(), "-y"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(has(r.err, "gpgkey " + url + " is fetched over plain http (allow_http_gpgkey=1 in ")) << r.err;
    EXPECT_TRUE(has(r.out, "Importing GPG key " + k.short_id() + ":")) << r.out;
    EXPECT_TRUE(has(r.out, "Userid     : \"" + k.user_id + "\"")) << r.out;
    EXPECT_TRUE(has(r.out, "Fingerprint: " + k.fingerprint_text())) << r.out;
    EXPECT_TRUE(has(r.out, "From       : " + url)) << r.out;
    EXPECT_EQ(installed(), "leostream-broker-9.2.0-1.x86_64");
    EXPECT_TRUE(has(gpg_pubkeys(), "gpg-pubkey-" + k.key_id.substr(8))) << gpg_pubkeys();
    const auto pin = root / "var/lib/leo-installer/keys/leo.json";
    ASSERT_TRUE(stdfs::exists(pin));
    EXPECT_EQ(leo::test::mode_of(pin), 0600U);
    EXPECT_EQ(leo::test::mode_of(pin.parent_path()), 0700U);
    EXPECT_EQ(leo::test::owner_of(pin), 0U);
    const auto j = nlohmann::json::parse(slurp(pin));
    EXPECT_EQ(j["keys"][url], k.fingerprint);
}

TEST_F(RepoKeysTest, WithoutTerminalAndWithoutAssumeyesTheKeyIsShownAndNothingChanges) {
    rpm_only_broker();
    write_repo("baseurl=" + server->url() + "/repo\ngpgcheck=1\ngpgkey=" + leo::test::key_in_root(root, key()) + "\n");
    const auto k = parsed(key());
    expect_refused({"upgrade", "--root", root.string()}, 3,
                   {"GPG key " + k.short_id() + " (fingerprint " + k.fingerprint_text() +
                        ") from file:///etc/pki/rpm-gpg/RPM-GPG-KEY-leo-test is not imported yet, and there is no "
                        "terminal to ask",
                    "run again with -y to import it"});
    EXPECT_FALSE(stdfs::exists(root / "var/lib/leo-installer/keys"));
}

TEST_F(RepoKeysTest, OnATerminalTheQuestionIsAskedAndNoKeepsEverything) {
    rpm_only_broker();
    write_repo("baseurl=" + server->url() + "/repo\ngpgcheck=1\ngpgkey=" + leo::test::key_in_root(root, key()) + "\n");
    const auto k = parsed(key());
    const std::string before = tree();
    auto t = leo::test::runs::start_on_terminal({"upgrade", "--root", root.string()});
    ASSERT_TRUE(t.read_until("Is this ok [y/N]:")) << t.seen;
    EXPECT_TRUE(has(t.seen, "Fingerprint: " + k.fingerprint_text())) << t.seen;
    ASSERT_EQ(::write(t.master, "n\n", 2), 2);
    EXPECT_EQ(t.wait_exit(), 3) << t.seen;
    EXPECT_TRUE(has(t.seen, "was not imported: nothing was changed")) << t.seen;
    EXPECT_EQ(tree(), before);
    EXPECT_FALSE(has(gpg_pubkeys(), "gpg-pubkey-"));
}

TEST_F(RepoKeysTest, NokeyNamesTheSignerAndEverySourceThenAReplacedKeyIsNeverTrusted) {
    rpm_only_broker();
    // 9.2.0 signed by another key; the repository's key (https would be the rule; the
    // administrator allowed http here) is the old one
    leo::test::TempDir other_dir;
    const auto other_pub = leo::test::make_signing_key(other_dir.path(), "leo-rotated");
    resigned_repo("rotated", other_dir.path() / "gnupg", "leo-rotated");
    const std::string url = server->url() + "/keys/RPM-GPG-KEY-leo";
    write_repo("baseurl=" + server->url() + "/rotated\ngpgcheck=1\ngpgkey=" + url + "\nallow_http_gpgkey=1\n");
    const auto old_key = parsed(key());
    const auto new_key = parsed(other_pub);

    // First use with consent: the key is imported and pinned; the package is NOKEY.
    auto r = run_installer({"upgrade", "--root", root.string(), "-y", "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string()});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    std::string signer = new_key.key_id;
    for (auto& c : signer) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_TRUE(has(r.err, "NOKEY: signed with key " + signer + ", which is in none of the keys tried: the rpmdb of " +
                               root.string() + " (imported: " + old_key.short_id() + ")"))
        << r.err;
    EXPECT_TRUE(has(r.err, "--gpgkey " + (pkgs / "RPM-GPG-KEY-leo-test").string() + " (" + old_key.short_id() + ")"))
        << r.err;
    EXPECT_TRUE(has(r.err, "gpgkey " + url + " of repository leo (" + old_key.short_id() + ")")) << r.err;
    EXPECT_TRUE(has(r.err, "check gpgkey= of repository leo in " + (root / "etc/yum.repos.d/leo.repo").string()))
        << r.err;
    EXPECT_EQ(installed(), "leostream-broker-9.0.7-1.x86_64");
    EXPECT_TRUE(has(gpg_pubkeys(), "gpg-pubkey-" + old_key.key_id.substr(8)));

    // The key at the URL is replaced by the one the package is signed with: reported,
    // both fingerprints named, the package not installed, nothing changed.
    stdfs::copy_file(other_pub, www / "keys/RPM-GPG-KEY-leo", stdfs::copy_options::overwrite_existing);
    expect_refused({"upgrade", "--root", root.string(), "-y"}, 1,
                   {"repository leo: the key at gpgkey " + url + " changed: its pinned fingerprint is " +
                        old_key.fingerprint + ", the key there now is " + new_key.short_id(),
                    "fingerprint " + new_key.fingerprint + "); it is not trusted and nothing was changed",
                    "remove the pin " + (root / "var/lib/leo-installer/keys/leo.json").string()});
    EXPECT_FALSE(has(gpg_pubkeys(), "gpg-pubkey-" + new_key.key_id.substr(8)));
}

TEST_F(RepoKeysTest, InstallGpgkeyImportsTheKeySoTheNextUpgradeNeedsNoGpgkey) {
    auto i = run_installer({"install", "--rpm", (pkgs / "repo/leostream-broker-9.0.7-1.x86_64.rpm").string(), "--root",
                            root.string(), "--gpgkey", key().string(), "-y"});
    ASSERT_EQ(i.exit_code, 0) << i.out << i.err;
    leo::test::add_support_licence(root);
    const auto k = parsed(key());
    EXPECT_TRUE(has(i.out, "imported GPG key " + k.short_id())) << i.out;
    EXPECT_TRUE(has(gpg_pubkeys(), "gpg-pubkey-" + k.key_id.substr(8))) << gpg_pubkeys();
    // the repository names the same key: found in the rpmdb, no question, pinned
    write_repo("baseurl=" + server->url() + "/repo\ngpgcheck=1\ngpgkey=" + leo::test::key_in_root(root, key()) + "\n");
    auto u = run_installer({"upgrade", "--root", root.string(), "-y"});
    ASSERT_EQ(u.exit_code, 0) << u.out << u.err;
    EXPECT_FALSE(has(u.out, "Importing GPG key")) << u.out;
    EXPECT_EQ(installed(), "leostream-broker-9.2.0-1.x86_64");
    EXPECT_TRUE(stdfs::exists(root / "var/lib/leo-installer/keys/leo.json"));
}

// ---- repo_gpgcheck ---------------------------------------------------------------------

class SignedMetadataTest : public RepoKeysTest {
protected:
    void SetUp() override {
        RepoKeysTest::SetUp();
        rpm_only_broker();
        // the key is in the rpmdb already: the runs below ask nothing and import nothing
        leo::test::run_ok({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "--import", key().string()});
        write_repo("baseurl=" + server->url() + "/repo\ngpgcheck=0\nrepo_gpgcheck=1\ngpgkey=" +
                   leo::test::key_in_root(root, key()) + "\n");
    }
    void sign(const stdfs::path& gnupghome, const std::string& name) {
        stdfs::remove(www / "repo/repodata/repomd.xml.asc");
        leo::subprocess::Options o;
        o.env["GNUPGHOME"] = gnupghome.string();
        auto r = leo::subprocess::run({"gpg", "--batch", "--yes", "--local-user", name, "--detach-sign", "--armor",
                                       (www / "repo/repodata/repomd.xml").string()},
                                      o);
        (void)leo::subprocess::run({"gpgconf", "--kill", "gpg-agent"}, o);
        ASSERT_TRUE(r.ok()) << r.err;
    }
    bool primary_fetched() { return server->request_count("-primary.xml.gz") > 0; }
};

TEST_F(SignedMetadataTest, GoodSignatureIsAccepted) {
    sign(pkgs / "gnupg", "leo-test");
    auto r = run_installer({"check-update", "--root", root.string()});
    EXPECT_EQ(r.exit_code, 100) << r.out << r.err;
}

TEST_F(SignedMetadataTest, ChangedRepomdIsRefusedAndNothingIsInstalled) {
    // the reported fault: gpgcheck=0, repo_gpgcheck=1, repomd.xml.asc no longer matches
    sign(pkgs / "gnupg", "leo-test");
    std::ofstream(www / "repo/repodata/repomd.xml", std::ios::app) << "<!-- changed after signing -->\n";
    const auto k = parsed(key());
    std::string id = k.key_id;
    for (auto& c : id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    expect_refused({"upgrade", "--root", root.string(), "-y"}, 1,
                   {"the signature repodata/repomd.xml.asc from " + server->url() +
                        "/repo/repodata/repomd.xml.asc does not verify with key " + id,
                    "none of the repository's metadata is used"});
    EXPECT_FALSE(primary_fetched());
    EXPECT_FALSE(stdfs::exists(root / "var/cache/leo-installer/packages/leostream-broker-9.2.0-1.x86_64.rpm"));
    expect_refused({"check-update", "--root", root.string()}, 1, {"does not verify with key " + id});
}

TEST_F(SignedMetadataTest, SignatureByAnotherKeyIsAnUnknownKey) {
    leo::test::TempDir other_dir;
    (void)leo::test::make_signing_key(other_dir.path(), "leo-stranger");
    const auto stranger = parsed(other_dir.path() / "leo-stranger.pub");
    sign(other_dir.path() / "gnupg", "leo-stranger");
    std::string id = stranger.key_id;
    for (auto& c : id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string mine = parsed(key()).key_id;
    for (auto& c : mine) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    expect_refused({"upgrade", "--root", root.string(), "-y"}, 1,
                   {"is signed by key " + id + ", which is not among the repository's keys (tried: " + mine +
                        " from file:///etc/pki/rpm-gpg/RPM-GPG-KEY-leo-test)",
                    "Check gpgkey= in " + (root / "etc/yum.repos.d/leo.repo").string()});
    EXPECT_FALSE(primary_fetched());
}

TEST_F(SignedMetadataTest, MissingSignatureIsItsOwnError) {
    expect_refused({"upgrade", "--root", root.string(), "-y"}, 1,
                   {"repo_gpgcheck=1, but repodata/repomd.xml.asc is missing at " + server->url() +
                    "/repo/repodata/repomd.xml.asc"});
    EXPECT_FALSE(primary_fetched());
}

} // namespace
