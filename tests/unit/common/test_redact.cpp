#include "leo/common/log.hpp"
#include "leo/common/redact.hpp"
#include "test_support.hpp"

#include <algorithm>

#include <gtest/gtest.h>

namespace {
using leo::redact_secrets;

TEST(Redact, UrlPasswords) {
    EXPECT_EQ(redact_secrets("https://user:s3cret@mirror.example.com/centos/"), "https://user:***@mirror.example.com/centos/");
    EXPECT_EQ(redact_secrets("proxy=http://p:pw@10.0.0.1:3128 failed"), "proxy=http://p:***@10.0.0.1:3128 failed");
    EXPECT_EQ(redact_secrets("postgresql://u:SeCrEt@[::1"), "postgresql://u:***@[::1");
    EXPECT_EQ(redact_secrets("see \"postgresql://u:x@h/db\""), "see \"postgresql://u:***@h/db\"");
    // A password holding '@': the last '@' of the authority ends it.
    EXPECT_EQ(redact_secrets("http://u:p@ss@host/x"), "http://u:***@host/x");
}

TEST(Redact, KeywordValues) {
    EXPECT_EQ(redact_secrets("host=h password=abc dbname=x"), "host=h password=*** dbname=x");
    EXPECT_EQ(redact_secrets("password='a b\\' c' user=u"), "password=*** user=u");
    EXPECT_EQ(redact_secrets("host=h password='unterminated"), "host=h password=***");
    EXPECT_EQ(redact_secrets("proxy_password = hunter2"), "proxy_password = ***");
    EXPECT_EQ(redact_secrets("sslpassword=k"), "sslpassword=***");
}

TEST(Redact, EverythingElseUnchanged) {
    for (const char* s : {"http://host/path", "https://user@host/", "no secrets here", "password", "password=",
                          "mypassword=x is not a keyword of ours", "a://b", "://x:y@z", ""})
        EXPECT_EQ(redact_secrets(s), (std::string(s) == "://x:y@z" ? "://x:y@z" : s)) << s;
    EXPECT_EQ(redact_secrets("file:///etc/yum.repos.d/x.repo"), "file:///etc/yum.repos.d/x.repo");
}

} // namespace

namespace {

TEST(Redact, ApostrophesArePartOfAPassword) {
    // RFC 3986 sub-delims are allowed in user information.
    EXPECT_EQ(redact_secrets("cannot fetch http://admin:it's-Secret1@127.0.0.1:1/repo/"),
              "cannot fetch http://admin:***@127.0.0.1:1/repo/");
    EXPECT_EQ(redact_secrets("http://a:p!$&'()*+,;=x@h/"), "http://a:***@h/");
}

TEST(Printable, ControlCharactersAreEscapedUtf8Kept) {
    EXPECT_EQ(leo::printable("log\r2026 INFO ok\x1b]0;OWNED\x07\x1b[2K"),
              "log\\x0d2026 INFO ok\\x1b]0;OWNED\\x07\\x1b[2K");
    EXPECT_EQ(leo::printable("a\tb\nc\x7f"), "a\tb\\x0ac\\x7f");
    EXPECT_EQ(leo::printable("caf\xc3\xa9 \xe2\x9c\x93"), "caf\xc3\xa9 \xe2\x9c\x93");
}

TEST(Printable, TheLogNeverHoldsAControlCharacter) {
    leo::test::TempDir tmp;
    ASSERT_TRUE(leo::log::open_log(tmp.path()));
    leo::log::info("server said: {}", "x\r\x1b[2Kfake line\npassword=hunter2");
    leo::log::close_log();
    const auto text = leo::test::slurp(tmp.path() / "var/log/leo-installer/installer.log");
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
    EXPECT_EQ(text.find('\r'), std::string::npos) << text;
    EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << "one entry, one line";
}

} // namespace

namespace {
using leo::redact_text;

TEST(RedactText, IniAndEnvKeys) {
    EXPECT_EQ(redact_text("[main]\nproxy_password = hunter2 two\nproxy = http://p\n"),
              "[main]\nproxy_password = ***\nproxy = http://p\n");
    EXPECT_EQ(redact_text("export PGPASSWORD=pg-Secret\nPGUSER=u"), "export PGPASSWORD=***\nPGUSER=u");
    EXPECT_EQ(redact_text("client_secret: abc\napi_token=xyz"), "client_secret: ***\napi_token=***");
    EXPECT_EQ(redact_text("GET /x?token=abc123&y=1 failed"), "GET /x?token=***&y=1 failed");
    EXPECT_EQ(redact_text("username = broker\nport = 5432"), "username = broker\nport = 5432");
    EXPECT_EQ(redact_text("cmd = /bin/snap --api-token T0k --zone z"), "cmd = /bin/snap --api-token *** --zone z");
}

TEST(RedactText, ContinuationLinesOfASecret) {
    const std::string conf = "[database]\npassword = aes256gcm:v1:AAAA\n    BBBBCCCC\n    DDDD\nsite_id = 1\n";
    EXPECT_EQ(redact_text(conf), "[database]\npassword = ***\n    ***\n    ***\nsite_id = 1\n");
    // A JSON object's next member is not a continuation.
    EXPECT_EQ(redact_text("{\n  \"password\": \"x y\",\n  \"port\": 5\n}"), "{\n  \"password\": \"***\",\n  \"port\": 5\n}");
}

TEST(RedactText, PemBlocksButCertificates) {
    const std::string key = "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIEsecret\nline2\n-----END RSA PRIVATE KEY-----\nb\n";
    EXPECT_EQ(redact_text(key), "a\n-----BEGIN RSA PRIVATE KEY-----\n***\n-----END RSA PRIVATE KEY-----\nb\n");
    EXPECT_EQ(redact_text("-----BEGIN PRIVATE KEY-----\nMIIEunterminated"), "-----BEGIN PRIVATE KEY-----\n***\n");
    const std::string cert = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n";
    EXPECT_EQ(redact_text(cert), cert);
}

TEST(RedactText, SealedValuesUrlsLiteralsAndExtraKeys) {
    EXPECT_EQ(redact_text("sealed aes256gcm:v1:QUJD+/= end"), "sealed aes256gcm:v1:*** end");
    EXPECT_EQ(redact_text("baseurl=https://u:pw@h/r"), "baseurl=https://u:***@h/r");
    leo::RedactionRules rules;
    rules.literals = {"Plain-DB-pass", "ab"};
    rules.secret_keys = {"ldap_bind"};
    EXPECT_EQ(redact_text("said Plain-DB-pass twice Plain-DB-pass; ab", rules), "said *** twice ***; ab");
    EXPECT_EQ(redact_text("LDAP_BIND = cn=x\nother = y", rules), "LDAP_BIND = ***\nother = y");
    EXPECT_TRUE(leo::is_secret_key("proxy_password"));
    EXPECT_TRUE(leo::is_secret_key("PGPASSWORD"));
    EXPECT_FALSE(leo::is_secret_key("username"));
}
} // namespace
