#include "leo/common/redact.hpp"

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
