// The pure rules of mirrors: yum's mirrorlist format, metalink 3.0 as MirrorManager serves
// it (Fedora, EPEL), the check of repomd.xml against a metalink, and the retry policy.
#include "leo/repo/mirrors.hpp"

#include "repo_support.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {
using leo::repo::FileUrls;
using leo::repo::Metalink;
using leo::repo::metalink_mismatch;
using leo::repo::parse_metalink;
using leo::repo::parse_mirrorlist;
using leo::test::repo_error;

const std::vector<std::pair<std::string, std::string>> k_vars = {{"basearch", "x86_64"}, {"releasever", "7"}};

TEST(Mirrorlist, LinesCommentsBlanksAndVariables) {
    const auto list = parse_mirrorlist("# CentOS mirrors\n"
                                       "\n"
                                       "  http://mirror.one/centos/7/os/x86_64/  \r\n"
                                       "https://mirror.two/centos/$releasever/os/$basearch/\n"
                                       "http://mirror.three/centos/${releasever}/os/$ARCH/\n"
                                       "   # indented comment\n"
                                       "http://mirror.one/centos/7/os/x86_64/\n", // a duplicate
                                       FileUrls::refused, k_vars);
    EXPECT_EQ(list.urls, (std::vector<std::string>{"http://mirror.one/centos/7/os/x86_64/",
                                                   "https://mirror.two/centos/7/os/x86_64/",
                                                   "http://mirror.three/centos/7/os/x86_64/"}));
    EXPECT_TRUE(list.refused.empty());
}

TEST(Mirrorlist, FileEntriesOnlyFromALocalList) {
    const std::string text = "file:///etc/shadow-repo/\nhttp://ok/\nftp://old/\nrsync://r/\nnot a url\n";
    const auto remote = parse_mirrorlist(text, FileUrls::refused, k_vars);
    EXPECT_EQ(remote.urls, (std::vector<std::string>{"http://ok/"}));
    ASSERT_EQ(remote.refused.size(), 2u); // ftp and rsync are skipped quietly
    EXPECT_EQ(remote.refused[0], "file:///etc/shadow-repo/: a file:// mirror from a remote list is refused: a server "
                                 "may not make root read local files");
    EXPECT_EQ(remote.refused[1], "not a url: not a URL");
    const auto local = parse_mirrorlist(text, FileUrls::allowed, k_vars);
    EXPECT_EQ(local.urls, (std::vector<std::string>{"file:///etc/shadow-repo/", "http://ok/"}));
}

TEST(Mirrorlist, PasswordsAreRedactedInRefusals) {
    const auto list = parse_mirrorlist("gopher://u:secret@h/\n", FileUrls::refused, k_vars);
    ASSERT_EQ(list.refused.size(), 1u);
    EXPECT_EQ(list.refused[0].find("secret"), std::string::npos) << list.refused[0];
}

const std::string k_repomd = "<repomd>a repomd.xml</repomd>\n";

/// The <hash> lines of `repomd`'s verification, one per type MirrorManager lists.
std::string hash_lines(const std::string& repomd) {
    std::string out;
    for (const char* type : {"md5", "sha1", "sha256", "sha512"}) {
        out += std::string("    <hash type=\"") + type + "\">" + leo::crypto::digest_hex(type, repomd) + "</hash>\n";
    }
    return out;
}

std::string metalink_for(const std::string& repomd, const std::string& urls, const std::string& alternates = {}) {
    return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
           "<metalink version=\"3.0\" xmlns=\"http://www.metalinker.org/\" type=\"dynamic\" "
           "xmlns:mm0=\"http://fedorahosted.org/mirrormanager\">\n"
           " <files>\n"
           "  <file name=\"other.xml\"><size>1</size><verification><hash type=\"sha256\">00</hash></verification>"
           "<resources><url protocol=\"http\">http://wrong/repodata/repomd.xml</url></resources></file>\n"
           "  <file name=\"repomd.xml\">\n"
           "   <mm0:timestamp>1700000000</mm0:timestamp>\n"
           "   <size>" +
           std::to_string(repomd.size()) +
           "</size>\n"
           "   <verification>\n" +
           hash_lines(repomd) + "   </verification>\n" +
           alternates + "   <resources maxconnections=\"1\">\n" + urls +
           "   </resources>\n"
           "  </file>\n"
           " </files>\n"
           "</metalink>\n";
}

TEST(Metalink, MirrorsByPreferenceAndHashes) {
    const std::string xml = metalink_for(
        k_repomd,
        "<url protocol=\"http\" type=\"http\" location=\"US\" "
        "preference=\"90\">http://b/epel/7/x86_64/repodata/repomd.xml</url>\n"
        "<url protocol=\"https\" type=\"https\" location=\"DE\" "
        "preference=\"100\">https://a/epel/7/x86_64/repodata/repomd.xml</url>\n"
        "<url protocol=\"rsync\" type=\"rsync\" preference=\"100\">rsync://r/epel/7/x86_64/repodata/repomd.xml</url>\n"
        "<url protocol=\"http\" preference=\"95\">http://c/epel/7/x86_64/repodata/</url>\n"
        "<url protocol=\"file\" preference=\"99\">file:///etc/repodata/repomd.xml</url>\n");
    const Metalink m = parse_metalink(xml, FileUrls::refused, "ctx: ");
    EXPECT_EQ(m.mirrors.urls, (std::vector<std::string>{"https://a/epel/7/x86_64/", "http://b/epel/7/x86_64/"}));
    ASSERT_EQ(m.mirrors.refused.size(), 2u);
    EXPECT_NE(m.mirrors.refused[0].find("file:///etc/repodata/repomd.xml: a file:// mirror from a remote list is "
                                        "refused"),
              std::string::npos);
    EXPECT_NE(m.mirrors.refused[1].find("http://c/epel/7/x86_64/repodata/: it does not end in repodata/repomd.xml"),
              std::string::npos);
    ASSERT_EQ(m.repomd.size(), 1u);
    EXPECT_EQ(m.repomd[0].size, k_repomd.size());
    EXPECT_EQ(m.repomd[0].hashes.size(), 3u) << "md5 is not used";
    EXPECT_EQ(metalink_mismatch(m, k_repomd), "");
}

TEST(Metalink, WrongHashOrSizeIsAMismatch) {
    const Metalink m =
        parse_metalink(metalink_for(k_repomd, "<url>http://a/repodata/repomd.xml</url>"), FileUrls::refused, "ctx: ");
    std::string other = k_repomd;
    other[1] = 'R'; // same size, other bytes
    const std::string why = metalink_mismatch(m, other);
    EXPECT_NE(why.find("its sha512 is " + leo::crypto::digest_hex("sha512", other) + ", the metalink says " +
                       leo::crypto::digest_hex("sha512", k_repomd)),
              std::string::npos)
        << why;
    EXPECT_NE(metalink_mismatch(m, k_repomd + " ")
                  .find("it is " + std::to_string(k_repomd.size() + 1) + " bytes, the metalink says " +
                        std::to_string(k_repomd.size())),
              std::string::npos);
}

TEST(Metalink, AnAlternateVersionIsAccepted) {
    const std::string older = "<repomd>yesterday's</repomd>\n";
    const std::string alternates = "<mm0:alternates><mm0:alternate><mm0:timestamp>1</mm0:timestamp><size>" +
                                   std::to_string(older.size()) + "</size><verification><hash type=\"sha256\">" +
                                   leo::crypto::digest_hex("sha256", older) +
                                   "</hash></verification></mm0:alternate></mm0:alternates>\n";
    const Metalink m = parse_metalink(metalink_for(k_repomd, "<url>http://a/repodata/repomd.xml</url>", alternates),
                                      FileUrls::refused, "ctx: ");
    ASSERT_EQ(m.repomd.size(), 2u);
    EXPECT_EQ(metalink_mismatch(m, older), "");
    EXPECT_EQ(metalink_mismatch(m, k_repomd), "");
    EXPECT_NE(metalink_mismatch(m, "<repomd>other</repomd>").find("nor does it match the 1 older versions"),
              std::string::npos);
}

TEST(Metalink, BadDocumentsAreRefusedByName) {
    EXPECT_EQ(repo_error([] { (void)parse_metalink("", FileUrls::refused, "ctx: "); }), "ctx: the metalink is empty");
    EXPECT_NE(repo_error([] { (void)parse_metalink("<metalink><files>", FileUrls::refused, "ctx: "); }).find("ctx: "),
              std::string::npos);
    EXPECT_EQ(repo_error([] { (void)parse_metalink("<html/>", FileUrls::refused, "ctx: "); }),
              "ctx: the root element is <html>, expected <metalink>");
    EXPECT_EQ(repo_error([] { (void)parse_metalink("<metalink><files/></metalink>", FileUrls::refused, "ctx: "); }),
              "ctx: the metalink has no <file name=\"repomd.xml\">");
    EXPECT_NE(repo_error([] {
                  (void)parse_metalink("<metalink><files><file name=\"repomd.xml\"><verification><hash type=\"md5\">"
                                       "00</hash></verification></file></files></metalink>",
                                       FileUrls::refused, "ctx: ");
              }).find("lists no hash of repomd.xml that can be verified"),
              std::string::npos);
}

TEST(RetryPolicy, YumRetriesWithinAWindow) {
    const auto d = leo::repo::retry_policy(10, 30);
    EXPECT_EQ(d.attempts, 10u);
    EXPECT_EQ(d.window, std::chrono::milliseconds(3000));
    const auto forever = leo::repo::retry_policy(0, 1);
    EXPECT_EQ(forever.attempts, 10u) << "0 (yum: forever) is capped";
    EXPECT_EQ(forever.window, std::chrono::milliseconds(1000)) << "a stall of `timeout` is not retried";
    EXPECT_EQ(leo::repo::retry_backoff(2), std::chrono::milliseconds(250));
    EXPECT_EQ(leo::repo::retry_backoff(3), std::chrono::milliseconds(500));
    EXPECT_EQ(leo::repo::retry_backoff(9), std::chrono::milliseconds(1000));
}

} // namespace
