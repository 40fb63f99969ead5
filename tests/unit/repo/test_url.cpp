// The pure rules of repository URLs: redaction of secrets, the protocols a transfer may use
// (redirects included), and which locations and file names are accepted.
#include "leo/repo/url.hpp"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {
using leo::repo::redact_url;
using leo::repo::transfer_protocols;
using leo::repo::unsafe_file_name;
using leo::repo::unsafe_href;

TEST(RedactUrl, PasswordsAreReplacedUsersKept) {
    EXPECT_EQ(redact_url("https://user:pass@host/repo/"), "https://user:***@host/repo/");
    EXPECT_EQ(redact_url("http://u:p@127.0.0.1:8080/x"), "http://u:***@127.0.0.1:8080/x");
    EXPECT_EQ(redact_url("http://proxy.example.com:3128"), "http://proxy.example.com:3128");
    EXPECT_EQ(redact_url("http://justuser@host/"), "http://justuser@host/");
    EXPECT_EQ(redact_url("file:///srv/repo"), "file:///srv/repo");
    // a password holding '@' or ':' (the last '@' ends the user information)
    EXPECT_EQ(redact_url("https://u:p@ss:w@host/"), "https://u:***@host/");
    // an '@' in the path is not user information
    EXPECT_EQ(redact_url("http://host/a@b:c"), "http://host/a@b:c");
    EXPECT_EQ(redact_url("http://host?q=a:b@c"), "http://host?q=a:b@c");
}

TEST(RedactUrl, EveryUrlInAText) {
    EXPECT_EQ(redact_url("repository r: cannot fetch https://a:secret@h/repodata/repomd.xml: via proxy "
                         "http://pu:psecret@proxy:3128 (try again)"),
              "repository r: cannot fetch https://a:***@h/repodata/repomd.xml: via proxy http://pu:***@proxy:3128 "
              "(try again)");
    EXPECT_EQ(redact_url("\"https://a:s@h/\" and 'http://b:t@i/'"), "\"https://a:***@h/\" and 'http://b:***@i/'");
    EXPECT_EQ(redact_url("no URL here"), "no URL here");
    EXPECT_EQ(redact_url(""), "");
    EXPECT_EQ(redact_url("ends with ://"), "ends with ://");
}

TEST(TransferProtocols, HttpsNeverRedirectsToHttp) {
    const auto https = transfer_protocols("https://h/repo/", false);
    ASSERT_TRUE(https.allowed);
    EXPECT_EQ(https.protocols, "https");
    EXPECT_EQ(https.redirect_protocols, "https");
    EXPECT_EQ(https.protocol_mask, CURLPROTO_HTTPS);
    EXPECT_EQ(https.redirect_mask, CURLPROTO_HTTPS);
    const auto upper = transfer_protocols("HTTPS://h/", false);
    EXPECT_EQ(upper.redirect_protocols, "https");
}

TEST(TransferProtocols, HttpRedirectsToHttpOrHttpsOnly) {
    const auto http = transfer_protocols("http://h/repo/", true);
    ASSERT_TRUE(http.allowed);
    EXPECT_EQ(http.protocols, "http,https");
    EXPECT_EQ(http.redirect_protocols, "http,https");
    EXPECT_EQ(http.redirect_mask, CURLPROTO_HTTP | CURLPROTO_HTTPS);
    EXPECT_EQ(http.redirect_mask & CURLPROTO_FILE, 0);
}

TEST(TransferProtocols, FileOnlyWhereTheAdministratorWroteIt) {
    const auto admin = transfer_protocols("file:///srv/repo", true);
    ASSERT_TRUE(admin.allowed);
    EXPECT_EQ(admin.protocols, "file");
    EXPECT_EQ(admin.redirect_protocols, "") << "file:// is never redirected";
    const auto remote = transfer_protocols("file:///etc/shadow", false);
    EXPECT_FALSE(remote.allowed);
    EXPECT_NE(remote.why.find("file://"), std::string::npos) << remote.why;
    for (const char* url : {"ftp://h/x", "gopher://h/", "ldap://h", "dict://h", "scp://h/x", "/etc/passwd", ""}) {
        EXPECT_FALSE(transfer_protocols(url, true).allowed) << url;
    }
}

TEST(UnsafeHref, RelativePathsInsideTheRepositoryOnly) {
    for (const char* ok : {"x.rpm", "Packages/l/leostream-broker-9.2.0-1.x86_64.rpm", "a/./b.rpm", "a..b.rpm",
                           "..x.rpm", "x..", "leostream-broker-9.2.0~rc1-1.x86_64.rpm", "a%2fb.rpm"}) {
        EXPECT_EQ(unsafe_href(ok), "") << ok;
    }
    EXPECT_NE(unsafe_href("../x.rpm").find(".."), std::string::npos);
    EXPECT_NE(unsafe_href("Packages/../../x.rpm").find(".."), std::string::npos);
    EXPECT_NE(unsafe_href("a/.."), "");
    EXPECT_NE(unsafe_href("%2e%2e/x.rpm"), "");
    EXPECT_NE(unsafe_href("%2E%2e%2Fx.rpm"), "");
    EXPECT_NE(unsafe_href("/etc/passwd").find("absolute"), std::string::npos);
    EXPECT_NE(unsafe_href("%2fetc/passwd"), "");
    EXPECT_NE(unsafe_href("http://evil.example.com/x.rpm").find("URL"), std::string::npos);
    EXPECT_NE(unsafe_href("file:///etc/passwd").find("URL"), std::string::npos);
    EXPECT_NE(unsafe_href("//evil.example.com/x.rpm"), "");
    EXPECT_NE(unsafe_href("a\\..\\x.rpm"), "");
    EXPECT_NE(unsafe_href("x\n.rpm"), "");
    EXPECT_NE(unsafe_href(""), "");
}

TEST(UnsafeFileName, NoSeparatorsDotsOrControls) {
    EXPECT_EQ(unsafe_file_name("leostream-broker-9.2.0-1.x86_64.rpm"), "");
    EXPECT_EQ(unsafe_file_name("abc-primary.xml.gz"), "");
    const std::vector<std::string> bad_names{"", ".", "..", "a/b", std::string("a\0b", 3), "a\tb", "a\x7f",
                                             std::string(201, 'x')};
    for (const auto& bad : bad_names) {
        EXPECT_NE(unsafe_file_name(bad), "") << bad;
    }
}

} // namespace
