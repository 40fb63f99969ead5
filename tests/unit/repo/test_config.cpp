#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/repo/config.hpp"
#include "repo_support.hpp"
#include "test_support.hpp"

#include <algorithm>

#include <gtest/gtest.h>

#include <unistd.h>

namespace {
namespace stdfs = std::filesystem;
using leo::repo::load_repo_configs;
using leo::repo::RepoConfig;
using leo::test::Contains;
using Strings = std::vector<std::string>;

/// A sandbox root with /etc/yum.repos.d.
class RepoConfigTest : public ::testing::Test {
protected:
    leo::test::TempDir m_tmp;
    stdfs::path m_dir = m_tmp.path() / "etc/yum.repos.d";

    void SetUp() override { stdfs::create_directories(m_dir); }

    stdfs::path write(const std::string& name, const std::string& text) {
        const auto path = m_dir / name;
        leo::fs::write_file_atomic(path, text);
        return path;
    }

    /// The message of the RepoError load_repo_configs throws ("" when none).
    std::string error() {
        try {
            (void)load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
        } catch (const leo::RepoError& e) {
            return e.what();
        }
        return {};
    }
};

TEST_F(RepoConfigTest, ParsesATypicalRepoFile) {
    const auto file = write("leostream.repo", R"(# Leostream broker
[leostream]
name=Leostream Connection Broker $releasever - $basearch
baseurl=https://downloads.example.com/broker/$releasever/$basearch/
enabled=1
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-leostream
sslverify=0
sslcacert=/etc/pki/tls/certs/ca.pem
proxy=http://proxy.example.com:3128

[leostream-testing]
name = Testing
baseurl = http://downloads.example.com/testing/
enabled = 0
)");
    const auto configs = load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
    ASSERT_EQ(configs.size(), 2u);
    const RepoConfig& r = configs[0];
    EXPECT_EQ(r.id, "leostream");
    EXPECT_EQ(r.name, "Leostream Connection Broker 7 - x86_64");
    EXPECT_EQ(r.baseurls, (Strings{"https://downloads.example.com/broker/7/x86_64/"}));
    EXPECT_TRUE(r.enabled);
    EXPECT_TRUE(r.gpgcheck);
    EXPECT_FALSE(r.repo_gpgcheck);
    EXPECT_EQ(r.gpgkeys, (Strings{"file:///etc/pki/rpm-gpg/RPM-GPG-KEY-leostream"}));
    EXPECT_FALSE(r.sslverify);
    EXPECT_EQ(r.sslcacert, "/etc/pki/tls/certs/ca.pem");
    EXPECT_EQ(r.proxy, "http://proxy.example.com:3128");
    EXPECT_EQ(r.source, file.string());

    const RepoConfig& t = configs[1];
    EXPECT_EQ(t.id, "leostream-testing");
    EXPECT_EQ(t.name, "Testing");
    EXPECT_FALSE(t.enabled);
    EXPECT_TRUE(t.gpgcheck) << "gpgcheck defaults to on";
    EXPECT_TRUE(t.sslverify);
    EXPECT_TRUE(t.gpgkeys.empty());
}

TEST_F(RepoConfigTest, MissingDirectoryOrNoFilesIsEmpty) {
    leo::test::TempDir empty_root;
    EXPECT_TRUE(load_repo_configs(leo::fs::SystemRoot(empty_root.path())).empty());
    EXPECT_TRUE(load_repo_configs(leo::fs::SystemRoot(m_tmp.path())).empty());
    write("notes.txt", "[x]\nbaseurl=http://a/\n");  // only *.repo files count
    write("old.repo.rpmsave", "[y]\nbaseurl=http://a/\n");
    EXPECT_TRUE(load_repo_configs(leo::fs::SystemRoot(m_tmp.path())).empty());
}

TEST_F(RepoConfigTest, FilesInNameOrderSectionsInFileOrder) {
    write("b.repo", "[b2]\nbaseurl=http://b/2\n[b1]\nbaseurl=http://b/1\n");
    write("a.repo", "[a]\nbaseurl=http://a/\n");
    write("c.repo", "[c]\nbaseurl=file:///srv/c\n");
    std::vector<std::string> ids;
    for (const auto& r : load_repo_configs(leo::fs::SystemRoot(m_tmp.path()))) {
        ids.push_back(r.id);
    }
    EXPECT_EQ(ids, (Strings{"a", "b2", "b1", "c"}));
}

TEST_F(RepoConfigTest, Booleans) {
    const std::vector<std::pair<std::string, bool>> cases = {
        {"1", true},   {"0", false},    {"yes", true},  {"no", false}, {"true", true},
        {"false", false}, {"on", true}, {"off", false}, {"True", true}, {"NO", false}, {" On ", true}};
    for (const auto& [text, expected] : cases) {
        write("b.repo", "[b]\nbaseurl=http://b/\nenabled=1\ngpgcheck=" + text + "\nrepo_gpgcheck=" + text + "\n");
        const auto configs = load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
        ASSERT_EQ(configs.size(), 1u);
        EXPECT_EQ(configs[0].gpgcheck, expected) << text;
        EXPECT_EQ(configs[0].repo_gpgcheck, expected) << text;
    }
}

TEST_F(RepoConfigTest, BadBooleanNamesFileAndLine) {
    const auto file = write("b.repo", "[b]\nname=B\nbaseurl=http://b/\ngpgcheck=maybe\n");
    const std::string message = error();
    EXPECT_TRUE(Contains(message, file.string() + ":4:"));
    EXPECT_TRUE(Contains(message, "gpgcheck=maybe"));
    EXPECT_TRUE(Contains(message, "not a boolean"));
}

TEST_F(RepoConfigTest, ListsWithCommasWhitespaceAndContinuationLines) {
    write("l.repo", "[l]\n"
                    "baseurl=http://one.example.com/repo/\n"
                    "        http://two.example.com/repo/,http://three.example.com/repo/\n"
                    "\thttps://four.example.com/repo/\n"
                    "gpgkey=file:///etc/pki/a.key, file:///etc/pki/b.key\n"
                    "  https://keys.example.com/$basearch/c.key\n"
                    "gpgcheck=1\n");
    const auto configs = load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
    ASSERT_EQ(configs.size(), 1u);
    EXPECT_EQ(configs[0].baseurls, (Strings{"http://one.example.com/repo/", "http://two.example.com/repo/",
                            "http://three.example.com/repo/", "https://four.example.com/repo/"}));
    EXPECT_EQ(configs[0].gpgkeys, (Strings{"file:///etc/pki/a.key", "file:///etc/pki/b.key",
                                                "https://keys.example.com/x86_64/c.key"}));
    EXPECT_TRUE(configs[0].gpgcheck);
}

TEST_F(RepoConfigTest, LinesLongerThanInihBufferStillParse) {
    // inih reads at most 200 bytes a line: a long list is split into continuation lines.
    std::string urls;
    std::vector<std::string> expected;
    for (int i = 0; i < 12; ++i) {
        expected.push_back("https://mirror" + std::to_string(i) + ".example.com/leostream/broker/7/x86_64/");
        urls += expected.back() + (i % 2 == 0 ? " " : ",");
    }
    write("long.repo", "# " + std::string(500, '#') + "\n[long]\nbaseurl=" + urls + "\nenabled=0\n");
    const auto configs = load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
    ASSERT_EQ(configs.size(), 1u);
    EXPECT_EQ(configs[0].baseurls, expected);
    EXPECT_FALSE(configs[0].enabled) << "the line after the long one is read as itself";
}

TEST_F(RepoConfigTest, VariablesInBraces) {
    write("v.repo", "[v]\nbaseurl=http://h/${releasever}/${basearch}/$basearch\n");
    EXPECT_EQ(load_repo_configs(leo::fs::SystemRoot(m_tmp.path()))[0].baseurls, (Strings{"http://h/7/x86_64/x86_64"}));
}

TEST_F(RepoConfigTest, ProxyNoneAndNameDefaultsToId) {
    write("p.repo", "[p]\nbaseurl=http://h/\nproxy=_none_\n");
    const auto configs = load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
    EXPECT_EQ(configs[0].proxy, "");
    EXPECT_TRUE(configs[0].no_proxy);
    EXPECT_EQ(configs[0].name, "p");
}

TEST_F(RepoConfigTest, InlineAndFullLineComments) {
    write("c.repo", "; a comment\n# another\n[c]\nbaseurl=http://h/ ; the mirror\nenabled=0 ; off for now\n");
    const auto configs = load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
    ASSERT_EQ(configs.size(), 1u);
    EXPECT_EQ(configs[0].baseurls, (Strings{"http://h/"}));
    EXPECT_FALSE(configs[0].enabled);
}

TEST_F(RepoConfigTest, MainSectionIsIgnored) {
    write("m.repo", "[main]\ncachedir=/var/cache/yum\n[m]\nbaseurl=http://h/\n");
    const auto configs = load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
    ASSERT_EQ(configs.size(), 1u);
    EXPECT_EQ(configs[0].id, "m");
}

TEST_F(RepoConfigTest, SyntaxErrorNamesFileAndLine) {
    const auto file = write("s.repo", "[s]\nbaseurl=http://h/\nthis line has no equals sign\n");
    const std::string message = error();
    EXPECT_TRUE(Contains(message, file.string() + ":3:"));
    EXPECT_TRUE(Contains(message, "syntax error"));
    EXPECT_TRUE(Contains(message, "this line has no equals sign"));
}

TEST_F(RepoConfigTest, SyntaxErrorLineCountsPhysicalLinesAfterALongLine) {
    const auto file = write("s.repo", "[s]\nbaseurl=" + std::string(150, 'a') + " " + std::string(150, 'b') +
                                          "\n\nbroken\n");
    EXPECT_TRUE(Contains(error(), file.string() + ":4:"));
}

TEST_F(RepoConfigTest, UnterminatedSectionIsASyntaxError) {
    const auto file = write("u.repo", "[u\nbaseurl=http://h/\n");
    EXPECT_TRUE(Contains(error(), file.string() + ":1:"));
}

TEST_F(RepoConfigTest, OptionBeforeAnySection) {
    const auto file = write("o.repo", "baseurl=http://h/\n[o]\nbaseurl=http://h/\n");
    EXPECT_TRUE(Contains(error(), file.string() + ":1:"));
}

TEST_F(RepoConfigTest, SectionWithoutBaseurl) {
    const auto file = write("n.repo", "# header\n[n]\nname=No URL\n");
    const std::string message = error();
    EXPECT_TRUE(Contains(message, file.string() + ":2:"));
    EXPECT_TRUE(Contains(message, "[n] has no baseurl, mirrorlist or metalink"));
}

TEST_F(RepoConfigTest, EmptySectionWithoutKeysIsStillSeen) {
    const auto file = write("e.repo", "[ok]\nbaseurl=http://h/\n[empty]\n");
    EXPECT_TRUE(Contains(error(), file.string() + ":3: [empty] has no baseurl, mirrorlist or metalink"));
}

TEST_F(RepoConfigTest, MirrorlistAndMetalinkAreRead) {
    write("centos.repo", "[base]\nname=CentOS-$releasever - Base\n"
                         "mirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch\n"
                         "[epel]\nmetalink=https://mirrors.example.com/metalink?repo=epel-$releasever\n");
    const auto configs = load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
    ASSERT_EQ(configs.size(), 2u);
    EXPECT_EQ(configs[0].mirrorlist, "http://mirrorlist.centos.org/?release=7&arch=x86_64");
    EXPECT_TRUE(configs[0].baseurls.empty());
    EXPECT_EQ(configs[1].metalink, "https://mirrors.example.com/metalink?repo=epel-7");
}

TEST_F(RepoConfigTest, NumbersAndListsOfTheTransferAndSelectionOptions) {
    write("t.repo", "[t]\nbaseurl=http://h/\nexclude=a* b\nexcludepkgs=c\nincludepkgs=leostream-*\npriority=5\n"
                    "cost=500\nmetadata_expire=90m\ntimeout=2.5\nretries=3\nminrate=1k\nskip_if_unavailable=1\n"
                    "sslclientcert=/c.pem\nsslclientkey=/k.pem\n");
    const auto configs = load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
    ASSERT_EQ(configs.size(), 1u);
    const auto& c = configs[0];
    EXPECT_EQ(c.excludes, (Strings{"a*", "b", "c"}));
    EXPECT_EQ(c.includepkgs, (Strings{"leostream-*"}));
    EXPECT_EQ(c.priority, 5);
    EXPECT_EQ(c.cost, 500);
    EXPECT_EQ(c.metadata_expire, 5400);
    EXPECT_EQ(c.timeout, 3);
    EXPECT_EQ(c.retries, 3u);
    EXPECT_EQ(c.minrate, 1024u);
    ASSERT_TRUE(c.skip_if_unavailable.has_value());
    EXPECT_TRUE(*c.skip_if_unavailable);
    EXPECT_EQ(c.sslclientcert, "/c.pem");
    EXPECT_EQ(c.sslclientkey, "/k.pem");
    EXPECT_TRUE(c.warnings.empty());
}

TEST_F(RepoConfigTest, ABadNumberNamesTheOptionAndTheRule) {
    const auto file = write("p.repo", "[p]\nbaseurl=http://h/\npriority=0\n");
    std::string message = error();
    EXPECT_TRUE(Contains(message, file.string() + ":3: [p] priority=0: not a priority"));
    write("p.repo", "[p]\nbaseurl=http://h/\nmetadata_expire=soon\n");
    EXPECT_TRUE(Contains(error(), "metadata_expire=soon: not a time"));
}

TEST_F(RepoConfigTest, AnOptionWeDoNotActOnIsNamedInAWarning) {
    const auto file = write("w.repo", "[w]\nbaseurl=http://h/\nthrottle=50%\nfailovermethod=priority\n");
    const auto configs = load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
    ASSERT_EQ(configs.size(), 1u);
    ASSERT_EQ(configs[0].warnings.size(), 1u);
    EXPECT_EQ(configs[0].warnings[0], file.string() + ":3: [w] option 'throttle' is not supported; ignored");
}

TEST_F(RepoConfigTest, DisabledSectionWithoutBaseurlIsKept) {
    write("d.repo", "[d]\nmirrorlist=http://m/\nenabled=0\n");
    const auto configs = load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
    ASSERT_EQ(configs.size(), 1u);
    EXPECT_FALSE(configs[0].enabled);
    EXPECT_TRUE(configs[0].baseurls.empty());
}

TEST_F(RepoConfigTest, DuplicateIdAcrossFilesKeepsTheFirstAndNamesBoth) {
    // yum 3: "Repository 'dup' is listed more than once in the configuration"; the first wins.
    const auto a = write("a.repo", "[dup]\nbaseurl=http://a/\n");
    const auto b = write("b.repo", "\n\n[dup]\nbaseurl=http://b/\n");
    EXPECT_EQ(error(), "");
    const auto c = leo::repo::load_yum_config(leo::fs::SystemRoot(m_tmp.path()));
    ASSERT_EQ(c.repos.size(), 1u);
    EXPECT_EQ(c.repos[0].baseurls, (Strings{"http://a/"}));
    const std::string expected = b.string() + ":3: repository id [dup] is already defined at " + a.string() +
                                 ":1; this definition is ignored (yum keeps the first)";
    EXPECT_EQ(std::count(c.warnings.begin(), c.warnings.end(), expected), 1) << ::testing::PrintToString(c.warnings);
}

TEST_F(RepoConfigTest, DuplicateIdInOneFileKeepsTheFirst) {
    const auto a = write("a.repo", "[dup]\nbaseurl=http://a/\n[dup]\nbaseurl=http://b/\n");
    const auto c = leo::repo::load_yum_config(leo::fs::SystemRoot(m_tmp.path()));
    ASSERT_EQ(c.repos.size(), 1u);
    EXPECT_EQ(c.repos[0].baseurls, (Strings{"http://a/"}));
    const std::string expected = a.string() + ":3: repository id [dup] is already defined at " + a.string() +
                                 ":1; this definition is ignored (yum keeps the first)";
    EXPECT_EQ(std::count(c.warnings.begin(), c.warnings.end(), expected), 1) << ::testing::PrintToString(c.warnings);
}

TEST_F(RepoConfigTest, UnsupportedBaseurlScheme) {
    const auto a = write("f.repo", "[f]\nname=F\nbaseurl=ftp://h/repo/\n");
    const std::string message = error();
    EXPECT_TRUE(Contains(message, a.string() + ":3:"));
    EXPECT_TRUE(Contains(message, "ftp://h/repo/"));
}

TEST_F(RepoConfigTest, CredentialsAreReadAndNeverShown) {
    write("c.repo", "[c]\nbaseurl=https://u:secret1@h/repo/\nproxy=http://pu:secret2@proxy:3128\n"
                    "proxy_username=pu\nproxy_password=secret3\nusername=bob\npassword=secret4\n");
    const auto configs = load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
    ASSERT_EQ(configs.size(), 1u);
    EXPECT_EQ(configs[0].proxy_username, "pu");
    EXPECT_EQ(configs[0].proxy_password, "secret3");
    EXPECT_EQ(configs[0].username, "bob");
    EXPECT_EQ(configs[0].password, "secret4");
    // a refused baseurl is named with its password redacted
    write("d.repo", "[d]\nbaseurl=ftp://u:secret5@h/repo/\n");
    const std::string message = error();
    EXPECT_TRUE(Contains(message, "ftp://u:***@h/repo/"));
    EXPECT_FALSE(Contains(message, "secret5"));
    try {
        (void)leo::repo::repo_from_path("x,ftp://u:secret6@h/");
        ADD_FAILURE() << "accepted";
    } catch (const leo::UsageError& e) {
        EXPECT_FALSE(Contains(e.what(), "secret6"));
        EXPECT_TRUE(Contains(e.what(), "u:***@h"));
    }
}

TEST_F(RepoConfigTest, RepoFilesAreReadThroughSystemRoot) {
    // a .repo link planted in a directory another user can write is refused, not followed
    write("a.repo", "[a]\nbaseurl=http://h/\n");
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root (ownership of directories)";
    }
    ASSERT_EQ(::chown(m_dir.c_str(), 54321, 54321), 0);
    stdfs::create_directories(m_tmp.path() / "elsewhere");
    leo::fs::write_file_atomic(m_tmp.path() / "elsewhere/b.repo", "[b]\nbaseurl=http://evil/\n");
    stdfs::create_symlink("/elsewhere/b.repo", m_dir / "b.repo");
    EXPECT_THROW((void)load_repo_configs(leo::fs::SystemRoot(m_tmp.path())), leo::Error);
    // a file too large for a .repo is refused rather than read whole
    ASSERT_EQ(::chown(m_dir.c_str(), 0, 0), 0);
    stdfs::remove(m_dir / "b.repo");
    write("big.repo", "[big]\nbaseurl=http://h/\n# " + std::string(std::size_t{2} << 20, 'x') + "\n");
    EXPECT_THROW((void)load_repo_configs(leo::fs::SystemRoot(m_tmp.path())), leo::Error);
}

TEST_F(RepoConfigTest, ByteOrderMarkAndCrLf) {
    write("w.repo", "\xEF\xBB\xBF[w]\r\nbaseurl=http://h/\r\nenabled=0\r\n");
    const auto configs = load_repo_configs(leo::fs::SystemRoot(m_tmp.path()));
    ASSERT_EQ(configs.size(), 1u);
    EXPECT_EQ(configs[0].id, "w");
    EXPECT_EQ(configs[0].baseurls, (Strings{"http://h/"}));
    EXPECT_FALSE(configs[0].enabled);
}

TEST(RepoFromPath, IdAndUrl) {
    const RepoConfig r = leo::repo::repo_from_path("local,file:///srv/repo");
    EXPECT_EQ(r.id, "local");
    EXPECT_EQ(r.baseurls, (Strings{"file:///srv/repo"}));
    EXPECT_TRUE(r.enabled);
    EXPECT_TRUE(r.gpgcheck);
    EXPECT_EQ(r.source, "--repofrompath");
    EXPECT_EQ(leo::repo::repo_from_path("web,https://h.example.com/r/").baseurls.at(0), "https://h.example.com/r/");
    EXPECT_EQ(leo::repo::repo_from_path("w,http://h/").id, "w");
}

TEST(RepoFromPath, APlainDirectoryBecomesAFileUrl) {
    leo::test::TempDir tmp;
    stdfs::create_directories(tmp.path() / "repo");
    const RepoConfig r = leo::repo::repo_from_path("local," + (tmp.path() / "repo/../repo").string());
    EXPECT_EQ(r.baseurls, (Strings{"file://" + (tmp.path() / "repo").string()}));
    try {
        (void)leo::repo::repo_from_path("local," + (tmp.path() / "missing").string());
        ADD_FAILURE() << "a missing directory was accepted";
    } catch (const leo::UsageError& e) {
        EXPECT_TRUE(Contains(e.what(), (tmp.path() / "missing").string() + " is not a directory"));
    }
}

TEST(RepoFromPath, RejectsBadSpecs) {
    for (const std::string spec : {"", "noseparator", ",http://h/", "id,", "id,ftp://h/", "id,/nonexistent/repo"}) {
        EXPECT_THROW((void)leo::repo::repo_from_path(spec), leo::UsageError) << spec;
    }
    try {
        (void)leo::repo::repo_from_path("id,ftp://h/");
    } catch (const leo::UsageError& e) {
        EXPECT_TRUE(Contains(std::string(e.what()), "http://, https:// or file://"));
    }
}

} // namespace

namespace {

TEST(ParseRepoConfig, TextInMemoryNamesTheFileGiven) {
    const auto configs = leo::repo::parse_repo_config("[main]\ngpgcheck=1\n[a]\nbaseurl=http://h/$basearch/\n",
                                                      "/etc/yum.conf");
    ASSERT_EQ(configs.size(), 1u);
    EXPECT_EQ(configs[0].id, "a");
    EXPECT_EQ(configs[0].baseurls, (Strings{"http://h/x86_64/"}));
    EXPECT_EQ(configs[0].source, "/etc/yum.conf");
    try {
        (void)leo::repo::parse_repo_config("[a]\nbaseurl=http://h/\n[a]\nbaseurl=http://h/\n", "x.repo");
        FAIL() << "a duplicate id in one text is accepted";
    } catch (const leo::RepoError& e) {
        EXPECT_TRUE(Contains(e.what(), "x.repo:3: repository id [a] is already defined at x.repo:1"));
    }
}

} // namespace
