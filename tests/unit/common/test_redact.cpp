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
