// database.conf in a sandbox root: save/load, the sealed password and its key file, owners and modes, bad files.
#include "leo/common/accounts.hpp"
#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/installer/database_config.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <exception>
#include <fstream>
#include <string>
#include <typeinfo>

#include <sys/stat.h>

namespace {
namespace stdfs = std::filesystem;
using namespace std::string_literals;
using leo::installer::DatabaseConfig;
using leo::installer::DatabaseMode;
using leo::installer::load_database_config;
using leo::installer::save_database_config;

const std::string k_password = "p@ss w'rd\\x";

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// describe() of the `E` that `f` throws; a test failure when it throws something else or nothing.
template <class E, class F> std::string error_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return leo::describe(e);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "expected " << typeid(E).name() << ", got " << typeid(e).name() << ": " << leo::describe(e);
        return {};
    }
    ADD_FAILURE() << "expected " << typeid(E).name() << ", nothing thrown";
    return {};
}

/// load_database_config() keeps the configuration and reports a password it cannot decrypt in
/// password_error (never the password); require_password() throws that.
std::string password_error_of(const stdfs::path& root) {
    const auto c = load_database_config(root);
    EXPECT_EQ(c.mode, leo::installer::DatabaseMode::external);
    EXPECT_TRUE(c.external.password.empty());
    EXPECT_FALSE(c.external.host.empty()) << "the rest of the configuration is kept";
    EXPECT_THROW((void)leo::installer::require_password(c), leo::Error);
    EXPECT_TRUE(leo::installer::masked_text(c).find("cannot be decrypted") != std::string::npos);
    return c.password_error;
}

struct FileStat {
    mode_t mode = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

FileStat stat_of(const stdfs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return {st.st_mode & 07777, st.st_uid, st.st_gid};
}

DatabaseConfig external_config(const std::string& password = k_password) {
    DatabaseConfig c;
    c.mode = DatabaseMode::external;
    c.external.vendor = leo::migrations::Vendor::postgres;
    c.external.host = "db.example.com";
    c.external.port = 6432;
    c.external.dbname = "leo_broker";
    c.external.username = "broker";
    c.external.password = password;
    c.site_id = 7;
    c.switched_at = "2026-11-29T18:00:00Z";
    return c;
}

class DatabaseConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        leo::test::make_sandbox_root(root());
        leo::test::create_leo_user(root());
        auto user = leo::accounts::find_user(root(), "leo");
        ASSERT_TRUE(user.has_value());
        leo_user = *user;
        // a sandbox user that is not root (the checks below would prove nothing for uid 0)
        ASSERT_NE(leo_user.uid, 0u);
    }

    [[nodiscard]] const stdfs::path& root() const { return m_tmp.path(); }
    [[nodiscard]] stdfs::path conf() const { return root() / "etc/leostream/database.conf"; }
    [[nodiscard]] stdfs::path key() const { return root() / "etc/leostream/database.key"; }

    /// Write database.conf by hand (as an administrator's editor would).
    void write_conf(const std::string& text) const {
        stdfs::create_directories(conf().parent_path());
        std::ofstream(conf(), std::ios::trunc) << text;
    }

    /// The usage error load_database_config throws for a hand-written file `text`.
    std::string usage_error_for(const std::string& text) const {
        write_conf(text);
        return error_of<leo::UsageError>([&] { (void)load_database_config(root()); });
    }

    leo::accounts::User leo_user;

private:
    leo::test::TempDir m_tmp;
};

TEST_F(DatabaseConfigTest, AbsentFileIsInternal) {
    ASSERT_FALSE(stdfs::exists(conf()));
    const auto c = load_database_config(root());
    EXPECT_EQ(c.mode, DatabaseMode::internal);
    EXPECT_FALSE(c.site_id.has_value());
    EXPECT_EQ(c.switched_at, "");
    EXPECT_EQ(c.external.password, "");
    // loading changes nothing
    EXPECT_FALSE(stdfs::exists(conf()));
    EXPECT_FALSE(stdfs::exists(key()));
}

TEST_F(DatabaseConfigTest, SaveThenLoadExternal) {
    const auto saved = external_config();
    save_database_config(root(), saved);
    const auto c = load_database_config(root());
    EXPECT_EQ(c.mode, DatabaseMode::external);
    EXPECT_EQ(c.external.vendor, leo::migrations::Vendor::postgres);
    EXPECT_EQ(c.external.host, "db.example.com");
    EXPECT_EQ(c.external.port, 6432);
    EXPECT_EQ(c.external.dbname, "leo_broker");
    EXPECT_EQ(c.external.username, "broker");
    EXPECT_EQ(c.external.password, k_password);
    EXPECT_EQ(c.site_id, 7);
    EXPECT_EQ(c.switched_at, "2026-11-29T18:00:00Z");
}

TEST_F(DatabaseConfigTest, SaveThenLoadEveryVendor) {
    for (const auto vendor :
         {leo::migrations::Vendor::postgres, leo::migrations::Vendor::mssqlserver, leo::migrations::Vendor::azuresql}) {
        auto saved = external_config();
        saved.external.vendor = vendor;
        saved.external.port = 1433;
        save_database_config(root(), saved);
        const auto c = load_database_config(root());
        EXPECT_EQ(c.external.vendor, vendor);
        EXPECT_EQ(c.external.port, 1433);
        EXPECT_EQ(c.external.password, k_password);
    }
}

TEST_F(DatabaseConfigTest, SaveThenLoadInternalAndNoPassword) {
    DatabaseConfig internal;
    internal.site_id = 3;
    save_database_config(root(), internal);
    auto c = load_database_config(root());
    EXPECT_EQ(c.mode, DatabaseMode::internal);
    EXPECT_EQ(c.site_id, 3);
    EXPECT_FALSE(c.switched_at.empty()) << "save records the time of the switch";
    EXPECT_FALSE(stdfs::exists(key())) << "no password stored, so no key is made";

    save_database_config(root(), external_config(""));
    c = load_database_config(root());
    EXPECT_EQ(c.mode, DatabaseMode::external);
    EXPECT_EQ(c.external.password, "");
    EXPECT_FALSE(has(leo::fs::read_file(conf()), "password =")) << leo::fs::read_file(conf());
}

TEST_F(DatabaseConfigTest, FileModeOwnerAndNoPlainPassword) {
    save_database_config(root(), external_config());
    const auto st = stat_of(conf());
    EXPECT_EQ(st.mode, 0600u);
    EXPECT_EQ(st.uid, leo_user.uid);
    EXPECT_EQ(st.gid, leo_user.gid);
    const auto text = leo::fs::read_file(conf());
    EXPECT_FALSE(has(text, k_password)) << text;
    EXPECT_FALSE(has(text, "p@ss")) << text;
    EXPECT_FALSE(has(text, "w'rd")) << text;
    EXPECT_TRUE(has(text, "password = aes256gcm:v1:")) << text;
    EXPECT_TRUE(has(text, "[database]")) << text;
    EXPECT_TRUE(has(text, "format = 1")) << text;
    EXPECT_TRUE(has(text, "mode = external")) << text;
    EXPECT_TRUE(has(text, "host = db.example.com")) << text;
    // the directory: root:leo, not readable by others
    const auto dir = stat_of(conf().parent_path());
    EXPECT_EQ(dir.mode, 0750u);
    EXPECT_EQ(dir.uid, 0u);
    EXPECT_EQ(dir.gid, leo_user.gid);
    // no temporary file left behind
    EXPECT_EQ(std::distance(stdfs::directory_iterator(conf().parent_path()), stdfs::directory_iterator()), 2);
}

TEST_F(DatabaseConfigTest, KeyFileModeOwnerAndContent) {
    save_database_config(root(), external_config());
    ASSERT_TRUE(stdfs::exists(key()));
    const auto st = stat_of(key());
    EXPECT_EQ(st.mode, 0400u);
    EXPECT_EQ(st.uid, leo_user.uid);
    EXPECT_EQ(st.gid, leo_user.gid);
    auto text = leo::fs::read_file(key());
    while (!text.empty() && text.back() == '\n') text.pop_back();
    EXPECT_EQ(leo::crypto::base64_decode(text).size(), leo::crypto::k_aes256_key_size);
    EXPECT_FALSE(has(leo::fs::read_file(key()), k_password));
}

TEST_F(DatabaseConfigTest, SecondSaveReusesKey) {
    save_database_config(root(), external_config());
    const auto key_before = leo::fs::read_file(key());
    const auto conf_before = leo::fs::read_file(conf());
    save_database_config(root(), external_config("another password"));
    EXPECT_EQ(leo::fs::read_file(key()), key_before);
    EXPECT_NE(leo::fs::read_file(conf()), conf_before);
    EXPECT_EQ(load_database_config(root()).external.password, "another password");
    // the same password sealed twice differs (fresh nonce) and both open
    save_database_config(root(), external_config());
    const auto first = leo::fs::read_file(conf());
    save_database_config(root(), external_config());
    EXPECT_NE(leo::fs::read_file(conf()), first);
    EXPECT_EQ(load_database_config(root()).external.password, k_password);
    EXPECT_EQ(leo::fs::read_file(key()), key_before);
}

TEST_F(DatabaseConfigTest, MaskedText) {
    const auto external = external_config();
    const auto text = leo::installer::masked_text(external);
    EXPECT_TRUE(has(text, "********")) << text;
    EXPECT_FALSE(has(text, k_password)) << text;
    EXPECT_FALSE(has(text, "p@ss")) << text;
    EXPECT_TRUE(has(text, "external")) << text;
    EXPECT_TRUE(has(text, "db.example.com")) << text;
    EXPECT_TRUE(has(text, "6432")) << text;
    EXPECT_TRUE(has(text, "leo_broker")) << text;
    EXPECT_TRUE(has(text, "broker")) << text;
    EXPECT_TRUE(has(text, "7")) << text;

    const auto none = leo::installer::masked_text(external_config(""));
    EXPECT_TRUE(has(none, "(none)")) << none;
    EXPECT_FALSE(has(none, "********")) << none;

    const auto internal = leo::installer::masked_text(DatabaseConfig{});
    EXPECT_TRUE(has(internal, "internal")) << internal;
    EXPECT_FALSE(has(internal, "********")) << internal;

    // after a round trip through the file too
    save_database_config(root(), external);
    const auto loaded = leo::installer::masked_text(load_database_config(root()));
    EXPECT_TRUE(has(loaded, "********")) << loaded;
    EXPECT_FALSE(has(loaded, k_password)) << loaded;
}

TEST_F(DatabaseConfigTest, EditedPasswordValueFailsToDecrypt) {
    save_database_config(root(), external_config());
    auto text = leo::fs::read_file(conf());
    const std::string marker = "password = aes256gcm:v1:";
    const auto at = text.find(marker);
    ASSERT_NE(at, std::string::npos) << text;
    // one base64 character of the sealed value, well inside it (a nonce byte)
    const auto pos = at + marker.size() + 5;
    text[pos] = text[pos] == 'A' ? 'B' : 'A';
    write_conf(text);
    const auto msg = password_error_of(root());
    EXPECT_TRUE(has(msg, "decrypt")) << msg;
    EXPECT_TRUE(has(msg, conf().string())) << msg;
    EXPECT_FALSE(has(msg, k_password)) << msg;
}

TEST_F(DatabaseConfigTest, EditedTagFailsToDecrypt) {
    save_database_config(root(), external_config());
    auto text = leo::fs::read_file(conf());
    const auto line_end = text.find('\n', text.find("password = aes256gcm:v1:"));
    ASSERT_NE(line_end, std::string::npos);
    // the sealed value ends in the tag; skip its padding
    auto pos = line_end - 1;
    while (text[pos] == '=') --pos;
    --pos;  // not the very last data character (its low bits may be padding)
    text[pos] = text[pos] == 'A' ? 'B' : 'A';
    write_conf(text);
    const auto msg = password_error_of(root());
    EXPECT_TRUE(has(msg, "decrypt")) << msg;
}

TEST_F(DatabaseConfigTest, MissingKeyFile) {
    save_database_config(root(), external_config());
    ASSERT_TRUE(stdfs::remove(key()));
    const auto msg = password_error_of(root());
    EXPECT_TRUE(has(msg, key().string())) << msg;
    EXPECT_FALSE(has(msg, k_password)) << msg;
    // open_secret throws the SystemError naming the key file
    const auto sealed = std::string("aes256gcm:v1:") +
                        leo::crypto::base64_encode(std::string(leo::crypto::k_gcm_nonce_size + 16, 'x'));
    const auto err = error_of<leo::SystemError>([&] { (void)leo::installer::open_secret(root(), sealed); });
    EXPECT_TRUE(has(err, key().string())) << err;
    // storing the password again makes a new key, and it can be read again
    save_database_config(root(), external_config());
    EXPECT_EQ(load_database_config(root()).external.password, k_password);
}

TEST_F(DatabaseConfigTest, AnotherKeyFileFailsToDecrypt) {
    save_database_config(root(), external_config());
    const auto original = leo::fs::read_file(key());
    const auto other = leo::crypto::base64_encode(leo::crypto::random_bytes(leo::crypto::k_aes256_key_size)) + "\n";
    ASSERT_NE(other, original);
    std::ofstream(key(), std::ios::trunc) << other;
    ASSERT_EQ(leo::fs::read_file(key()), other);
    const auto msg = password_error_of(root());
    EXPECT_TRUE(has(msg, "decrypt")) << msg;
    EXPECT_TRUE(has(msg, key().string())) << msg;
    // the right key opens it again
    std::ofstream(key(), std::ios::trunc) << original;
    EXPECT_EQ(load_database_config(root()).external.password, k_password);
}

TEST_F(DatabaseConfigTest, MalformedKeyFile) {
    save_database_config(root(), external_config());
    std::ofstream(key(), std::ios::trunc) << leo::crypto::base64_encode(std::string(16, 'k')) << "\n";
    auto msg = password_error_of(root());
    EXPECT_TRUE(has(msg, "is not a database key file (base64 of 32 bytes)")) << msg;
    std::ofstream(key(), std::ios::trunc) << "not base64 at all!\n";
    msg = password_error_of(root());
    EXPECT_TRUE(has(msg, "is not a database key file")) << msg;
    EXPECT_FALSE(has(msg, "not base64 at all")) << "key material is never echoed: " << msg;
    // a key file that is not a key cannot seal either: it says to remove it
    const auto err = error_of<leo::SystemError>([&] { save_database_config(root(), external_config()); });
    EXPECT_TRUE(has(err, "remove it")) << err;
}

TEST_F(DatabaseConfigTest, PlaintextPasswordRefused) {
    const auto msg = usage_error_for("[database]\n"       // 1
                                     "format = 1\n"       // 2
                                     "mode = external\n"  // 3
                                     "vendor = postgres\n"
                                     "host = db.example.com\n"
                                     "port = 5432\n"
                                     "name = leo\n"
                                     "username = broker\n"
                                     "password = hunter2\n"  // 9
                                     "switched_at = 2026-11-29T18:00:00Z\n");
    EXPECT_TRUE(has(msg, conf().string() + ":9:")) << msg;
    EXPECT_TRUE(has(msg, "password")) << msg;
    EXPECT_FALSE(has(msg, "hunter2")) << "the plain password is echoed: " << msg;
}

TEST_F(DatabaseConfigTest, PlaintextSecretLineRefused) {
    const auto msg = usage_error_for("[database]\nformat = 1\nmode = internal\npassword = secret\n");
    EXPECT_TRUE(has(msg, conf().string() + ":4:")) << msg;
    EXPECT_TRUE(has(msg, "password is not an encrypted value")) << msg;
}

TEST_F(DatabaseConfigTest, UnknownSettingRefused) {
    const auto msg = usage_error_for("[database]\nformat = 1\nmode = internal\ncolour = blue\n");
    EXPECT_TRUE(has(msg, conf().string() + ":4:")) << msg;
    EXPECT_TRUE(has(msg, "unknown setting colour")) << msg;
}

TEST_F(DatabaseConfigTest, BadPortRefused) {
    for (const char* port : {"0", "65536", "-1", "abc", "54 32"}) {
        const auto msg = usage_error_for(std::string("[database]\nformat = 1\nmode = external\nvendor = postgres\n"
                                                     "host = h\nport = ") +
                                         port + "\nname = leo\nusername = u\n");
        EXPECT_TRUE(has(msg, conf().string() + ":6:")) << msg;
        EXPECT_TRUE(has(msg, std::string("port = ") + port)) << msg;
    }
}

TEST_F(DatabaseConfigTest, UnknownVendorRefused) {
    const auto msg = usage_error_for("[database]\nformat = 1\nmode = external\nvendor = oracle\n");
    EXPECT_TRUE(has(msg, conf().string() + ":4:")) << msg;
    EXPECT_TRUE(has(msg, "vendor = oracle")) << msg;
}

TEST_F(DatabaseConfigTest, BadModeRefused) {
    const auto msg = usage_error_for("[database]\nformat = 1\nmode = sideways\n");
    EXPECT_TRUE(has(msg, conf().string() + ":3:")) << msg;
    EXPECT_TRUE(has(msg, "mode = sideways")) << msg;
}

TEST_F(DatabaseConfigTest, MissingModeRefused) {
    const auto msg = usage_error_for("[database]\nformat = 1\nsite_id = 2\n");
    EXPECT_TRUE(has(msg, conf().string())) << msg;
    EXPECT_TRUE(has(msg, "mode")) << msg;
}

TEST_F(DatabaseConfigTest, OtherFormatRefused) {
    const auto msg = usage_error_for("# a comment\n[database]\nformat = 2\nmode = internal\n");
    EXPECT_TRUE(has(msg, conf().string() + ":3:")) << msg;
    EXPECT_TRUE(has(msg, "format = 2")) << msg;
}

TEST_F(DatabaseConfigTest, ExternalWithoutHostRefused) {
    const auto msg = usage_error_for("[database]\nformat = 1\nmode = external\nname = leo\nusername = u\n");
    EXPECT_TRUE(has(msg, conf().string())) << msg;
    EXPECT_TRUE(has(msg, "host")) << msg;
}

TEST_F(DatabaseConfigTest, UnknownSectionAndSyntaxErrorRefused) {
    auto msg = usage_error_for("[database]\nformat = 1\nmode = internal\n[other]\nx = 1\n");
    EXPECT_TRUE(has(msg, conf().string() + ":5:")) << msg;
    EXPECT_TRUE(has(msg, "[other]")) << msg;
    msg = usage_error_for("[database]\nformat = 1\nthis line has no equals sign\nmode = internal\n");
    EXPECT_TRUE(has(msg, conf().string() + ":3:")) << msg;
}

TEST_F(DatabaseConfigTest, BadSiteIdRefused) {
    const auto msg = usage_error_for("[database]\nformat = 1\nmode = internal\nsite_id = 0\n");
    EXPECT_TRUE(has(msg, conf().string() + ":4:")) << msg;
    EXPECT_TRUE(has(msg, "site_id = 0")) << msg;
}

TEST_F(DatabaseConfigTest, SealOpenSecretRoundTrip) {
    ASSERT_FALSE(stdfs::exists(key()));
    const std::string secret = "s3cr3t \0 with a NUL and \xc3\xa4"s;
    const auto sealed = leo::installer::seal_secret(root(), secret);
    EXPECT_TRUE(stdfs::exists(key())) << "seal_secret creates the key";
    EXPECT_EQ(sealed.rfind("aes256gcm:v1:", 0), 0u) << sealed;
    EXPECT_FALSE(has(sealed, "s3cr3t")) << sealed;
    EXPECT_EQ(leo::installer::open_secret(root(), sealed), secret);
    // fresh nonce each time, same key
    const auto key_text = leo::fs::read_file(key());
    const auto again = leo::installer::seal_secret(root(), secret);
    EXPECT_NE(again, sealed);
    EXPECT_EQ(leo::installer::open_secret(root(), again), secret);
    EXPECT_EQ(leo::fs::read_file(key()), key_text);
    // the empty secret
    EXPECT_EQ(leo::installer::open_secret(root(), leo::installer::seal_secret(root(), "")), "");
    // a value without the prefix, or the prefix over garbage, is refused
    EXPECT_THROW((void)leo::installer::open_secret(root(), "hunter2"), leo::Error);
    EXPECT_THROW((void)leo::installer::open_secret(root(), "aes256gcm:v1:!!!!"), leo::Error);
    EXPECT_THROW((void)leo::installer::open_secret(root(), "aes256gcm:v1:"), leo::Error);
}

TEST_F(DatabaseConfigTest, SealedSecretBoundToItsPurpose) {
    // a value sealed with the same key but other associated data does not open
    const auto sealed = leo::installer::seal_secret(root(), "x");
    auto key_text = leo::fs::read_file(key());
    while (!key_text.empty() && key_text.back() == '\n') key_text.pop_back();
    const auto raw_key = leo::crypto::base64_decode(key_text);
    const auto foreign =
        "aes256gcm:v1:" + leo::crypto::base64_encode(leo::crypto::aes256gcm_encrypt(raw_key, "x", "another purpose"));
    EXPECT_THROW((void)leo::installer::open_secret(root(), foreign), leo::Error);
    const auto same =
        "aes256gcm:v1:" + leo::crypto::base64_encode(
                              leo::crypto::aes256gcm_encrypt(raw_key, "x", "leostream database.conf password v1"));
    EXPECT_EQ(leo::installer::open_secret(root(), same), "x");
    EXPECT_EQ(leo::installer::open_secret(root(), sealed), "x");
}

TEST(DatabaseConfigNoUser, SaveWithoutLeoUserThrowsInstallError) {
    leo::test::TempDir t;
    leo::test::make_sandbox_root(t.path());
    ASSERT_FALSE(leo::accounts::find_user(t.path(), "leo").has_value());
    const auto msg = error_of<leo::InstallError>([&] { save_database_config(t.path(), external_config()); });
    EXPECT_TRUE(has(msg, "leo")) << msg;
    EXPECT_FALSE(stdfs::exists(t.path() / "etc/leostream/database.conf"));
    EXPECT_FALSE(stdfs::exists(t.path() / "etc/leostream/database.key"));
    // the internal configuration needs the user as well (the file is owned by leo)
    EXPECT_THROW(save_database_config(t.path(), DatabaseConfig{}), leo::InstallError);
    // and so does making a key
    EXPECT_THROW((void)leo::installer::seal_secret(t.path(), "x"), leo::InstallError);
}

// database.conf is read with inih, whose line buffer is 200 bytes: a long sealed password
// is written over indented continuation lines and read back whole; a host, name or
// username longer than k_max_conf_value is refused before anything is written.
TEST_F(DatabaseConfigTest, LongValuesRoundTripOrAreRefused) {
    for (const size_t n : {101U, 102U, 1000U}) {
        auto c = external_config(std::string(n, 'p'));
        save_database_config(root(), c);
        EXPECT_EQ(load_database_config(root()).external.password, std::string(n, 'p'));
    }
    auto c = external_config();
    c.external.host = std::string(leo::installer::k_max_conf_value, 'h');
    save_database_config(root(), c);
    EXPECT_EQ(load_database_config(root()).external.host, c.external.host);
    const auto before = leo::fs::read_file(conf());
    c.external.host = std::string(leo::installer::k_max_conf_value + 1, 'h');
    EXPECT_THROW(save_database_config(root(), c), leo::UsageError);
    EXPECT_EQ(leo::fs::read_file(conf()), before) << "a refused save changed the file";
}

// inih goes on after the first error and returns that error's line: the message is the
// one of that line (or "syntax error" when the line never reached the handler).
TEST_F(DatabaseConfigTest, ErrorMessageBelongsToItsLine) {
    auto msg = usage_error_for("[database]\nformat = 1\nmode = internal\ncolour = blue\nport = 0\n");
    EXPECT_TRUE(has(msg, conf().string() + ":4: unknown setting colour")) << msg;
    msg = usage_error_for("[database]\nformat = 1\ngarbage line\nmode = internal\ncolour = blue\n");
    EXPECT_TRUE(has(msg, conf().string() + ":3: syntax error")) << msg;
    EXPECT_FALSE(has(msg, "colour")) << msg;
    msg = usage_error_for("[database]\nformat = 1\nmode = internal\nmode = external\n");
    EXPECT_TRUE(has(msg, conf().string() + ":4: mode is set twice")) << msg;
    msg = usage_error_for("[database]\nmode = internal\n");
    EXPECT_TRUE(has(msg, "has no format = 1 line")) << msg;
}

} // namespace
