// PackageEntry and the primary/repomd parsing details, on small hand-written repositories
// read through file:// URLs (the HTTP side is tested in tests/integration/test_repo.cpp).
#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/repo/metadata.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

namespace {
namespace stdfs = std::filesystem;
using leo::repo::Metadata;
using leo::repo::PackageEntry;
using leo::repo::RepoConfig;

TEST(PackageEntry, UrlAndNevra) {
    PackageEntry p;
    p.name = "leostream-broker";
    p.version = "9.1.2";
    p.release = "1";
    p.arch = "x86_64";
    p.location_href = "Packages/leostream-broker-9.1.2-1.x86_64.rpm";
    p.base_url = "http://h/repo";
    EXPECT_EQ(p.url(), "http://h/repo/Packages/leostream-broker-9.1.2-1.x86_64.rpm");
    p.base_url = "http://h/repo/";
    EXPECT_EQ(p.url(), "http://h/repo/Packages/leostream-broker-9.1.2-1.x86_64.rpm");
    p.location_base = "https://cdn.example.com/base/";
    EXPECT_EQ(p.url(), "https://cdn.example.com/base/Packages/leostream-broker-9.1.2-1.x86_64.rpm");
    EXPECT_EQ(p.nevra(), "leostream-broker-9.1.2-1.x86_64");
    p.epoch = 2;
    EXPECT_EQ(p.nevra(), "leostream-broker-2:9.1.2-1.x86_64");
}

/// A repository in a temporary directory with an uncompressed primary.xml of `packages_xml`.
class HandWrittenRepo : public ::testing::Test {
protected:
    leo::test::TempDir m_tmp;
    stdfs::path m_dir = m_tmp.path() / "repo";

    RepoConfig write(const std::string& packages_xml, const std::string& checksum_type = "sha256") {
        stdfs::create_directories(m_dir / "repodata");
        const std::string primary =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" "
            "xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n" +
            packages_xml + "</metadata>\n";
        leo::fs::write_file_atomic(m_dir / "repodata/primary.xml", primary);
        const std::string digest = leo::crypto::digest_hex(checksum_type == "sha" ? "sha1" : checksum_type, primary);
        leo::fs::write_file_atomic(m_dir / "repodata/repomd.xml",
                                   "<?xml version=\"1.0\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\">\n"
                                   "<revision>42</revision>\n<data type=\"primary\">\n<checksum type=\"" +
                                       checksum_type + "\">" + digest +
                                       "</checksum>\n<location href=\"repodata/primary.xml\"/>\n</data>\n</repomd>\n");
        RepoConfig repo;
        repo.id = "hand";
        repo.baseurls = {"file://" + m_dir.string()};
        repo.source = "hand.repo";
        return repo;
    }

    std::string error(const RepoConfig& repo) {
        try {
            (void)leo::repo::load_metadata(repo, leo::fs::SystemRoot(m_tmp.path()), "/cache");
        } catch (const leo::RepoError& e) {
            return e.what();
        }
        return {};
    }
};

const std::string k_package = R"(<package type="rpm">
  <name>leostream-broker</name>
  <arch>x86_64</arch>
  <version epoch="3" ver="9.2.0~rc1" rel="1.el7"/>
  <checksum type="sha" pkgid="YES">0123456789abcdef0123456789abcdef01234567</checksum>
  <summary>x</summary>
  <size package="12345" installed="1" archive="2"/>
  <location xml:base="https://cdn.example.com/pool/" href="l/leostream-broker.rpm"/>
  <format>
    <rpm:provides><rpm:entry name="leostream-broker"/></rpm:provides>
    <file>/usr/bin/x</file>
  </format>
</package>
)";

TEST_F(HandWrittenRepo, EpochXmlBaseAndShaChecksum) {
    const Metadata md = leo::repo::load_metadata(write(k_package, "sha"), leo::fs::SystemRoot(m_tmp.path()), "/cache");
    EXPECT_EQ(md.revision, "42");
    ASSERT_EQ(md.packages.size(), 1u);
    const PackageEntry& p = md.packages[0];
    EXPECT_EQ(p.epoch, 3u);
    EXPECT_EQ(p.version, "9.2.0~rc1");
    EXPECT_EQ(p.release, "1.el7");
    EXPECT_EQ(p.checksum_type, "sha");
    EXPECT_EQ(p.checksum, "0123456789abcdef0123456789abcdef01234567");
    EXPECT_EQ(p.size, 12345u);
    EXPECT_EQ(p.location_base, "https://cdn.example.com/pool/");
    EXPECT_EQ(p.url(), "https://cdn.example.com/pool/l/leostream-broker.rpm");
    EXPECT_EQ(p.nevra(), "leostream-broker-3:9.2.0~rc1-1.el7.x86_64");
    EXPECT_TRUE(stdfs::exists(m_tmp.path() / "cache/hand/repomd.xml"));
    EXPECT_FALSE(stdfs::exists(m_tmp.path() / "cache/hand/primary.xml")) << "primary is scanned, not kept";
}

TEST_F(HandWrittenRepo, SkipsNonRpmPackagesAndEmptyFormat) {
    std::string second = k_package;
    second.replace(second.find("<name>leostream-broker"), 22, "<name>other");
    second.replace(second.find("<format>"), second.find("</format>") + 9 - second.find("<format>"), "<format/>");
    const Metadata md = leo::repo::load_metadata(
        write("<package type=\"deb\"><name>skipme</name><format><file>/x</file></format></package>\n" + k_package +
              second), leo::fs::SystemRoot(m_tmp.path()), "/cache");
    ASSERT_EQ(md.packages.size(), 2u);
    EXPECT_EQ(md.packages[0].name, "leostream-broker");
    EXPECT_EQ(md.packages[1].name, "other");
    EXPECT_EQ(md.packages[1].size, 12345u);
}

TEST_F(HandWrittenRepo, EmptyPrimary) {
    EXPECT_TRUE(leo::repo::load_metadata(write(""), leo::fs::SystemRoot(m_tmp.path()), "/cache").packages.empty());
}

TEST_F(HandWrittenRepo, BadEpochAndSize) {
    std::string bad = k_package;
    bad.replace(bad.find("epoch=\"3\""), 9, "epoch=\"x\"");
    EXPECT_NE(error(write(bad)).find("package leostream-broker (#"), std::string::npos);
    EXPECT_NE(error(write(bad)).find("bad epoch \"x\""), std::string::npos);
    bad = k_package;
    bad.replace(bad.find("package=\"12345\""), 15, "package=\"-1\"");
    EXPECT_NE(error(write(bad)).find("bad <size package=\"-1\">"), std::string::npos);
}

TEST_F(HandWrittenRepo, UnknownPrimaryChecksumType) {
    RepoConfig repo = write(k_package);
    std::string repomd = leo::fs::read_file(m_dir / "repodata/repomd.xml");
    repomd.replace(repomd.find("type=\"sha256\""), 13, "type=\"md5\"");
    leo::fs::write_file_atomic(m_dir / "repodata/repomd.xml", repomd);
    EXPECT_NE(error(repo).find("unsupported checksum type \"md5\""), std::string::npos) << error(repo);
}

TEST_F(HandWrittenRepo, WrongRootElementInPrimary) {
    RepoConfig repo = write("");
    const std::string primary = "<filelists/>";
    leo::fs::write_file_atomic(m_dir / "repodata/primary.xml", primary);
    std::string repomd = leo::fs::read_file(m_dir / "repodata/repomd.xml");
    const std::string open = "<checksum type=\"sha256\">";
    const auto start = repomd.find(open) + open.size();
    repomd.replace(start, 64, leo::crypto::digest_hex("sha256", primary));
    leo::fs::write_file_atomic(m_dir / "repodata/repomd.xml", repomd);
    EXPECT_NE(error(repo).find("is not primary metadata: the root element is <filelists>"), std::string::npos)
        << error(repo);
}

TEST_F(HandWrittenRepo, LocationOutsideTheRepositoryIsRefusedNamingThePackage) {
    const std::string good = R"(href="l/leostream-broker.rpm")";
    for (const std::string href : {"../leostream-broker.rpm", "Packages/../../x.rpm", "/etc/passwd",
                                   "http://evil.example.com/x.rpm", "file:///etc/shadow", "%2e%2e/x.rpm"}) {
        std::string bad = k_package;
        bad.replace(bad.find(good), good.size(), "href=\"" + href + "\"");
        const std::string message = error(write(bad));
        EXPECT_NE(message.find("package leostream-broker (#"), std::string::npos) << message;
        EXPECT_NE(message.find("location href \"" + href + "\" is refused"), std::string::npos) << message;
    }
    // a package the filter leaves out is not judged
    std::string other = k_package;
    other.replace(other.find(good), good.size(), "href=\"../x.rpm\"");
    other.replace(other.find("<name>leostream-broker"), 22, "<name>other");
    const Metadata md = leo::repo::load_metadata(write(k_package + other), leo::fs::SystemRoot(m_tmp.path()),
                                                 "/cache", [](const std::string& n) { return n != "other"; });
    EXPECT_EQ(md.packages.size(), 1u);
}

TEST_F(HandWrittenRepo, PrimaryLocationMustStayInsideTheRepository) {
    RepoConfig repo = write(k_package);
    std::string repomd = leo::fs::read_file(m_dir / "repodata/repomd.xml");
    repomd.replace(repomd.find("repodata/primary.xml"), 20, "../../etc/primary.xml");
    leo::fs::write_file_atomic(m_dir / "repodata/repomd.xml", repomd);
    EXPECT_NE(error(repo).find("primary metadata location href \"../../etc/primary.xml\" is refused"),
              std::string::npos)
        << error(repo);
}

TEST_F(HandWrittenRepo, DecompressedSizeIsBoundedByOpenSize) {
    RepoConfig repo = write(k_package);
    std::string repomd = leo::fs::read_file(m_dir / "repodata/repomd.xml");
    repomd.replace(repomd.find("</data>"), 0, "<open-size>100</open-size>\n");
    leo::fs::write_file_atomic(m_dir / "repodata/repomd.xml", repomd);
    const std::string message = error(repo);
    EXPECT_NE(message.find("decompresses to more than the 100 bytes that repomd.xml's <open-size> declares"),
              std::string::npos)
        << message;
}

TEST_F(HandWrittenRepo, CacheFilesAre0644AndDirectories0755UnderUmaskZero) {
    const mode_t old = ::umask(0);
    leo::repo::LoadOptions options;
    options.filter_key = "all";
    const Metadata md = leo::repo::load_metadata(write(k_package), leo::fs::SystemRoot(m_tmp.path()),
                                                 "/var/cache/leo-installer/metadata", options);
    ::umask(old);
    const auto mode = [](const stdfs::path& p) {
        struct stat st {};
        EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
        return st.st_mode & 07777;
    };
    const auto cache = m_tmp.path() / "var/cache/leo-installer";
    EXPECT_EQ(mode(cache), 0755u);
    EXPECT_EQ(mode(cache / "metadata"), 0755u);
    EXPECT_EQ(mode(cache / "metadata/hand"), 0755u);
    EXPECT_EQ(mode(cache / "metadata/hand/repomd.xml"), 0644u);
    EXPECT_EQ(mode(cache / "metadata/hand/entries.json"), 0644u);
}

TEST(LoadMetadata, NoBaseurlOrBadId) {
    leo::test::TempDir tmp;
    RepoConfig repo;
    repo.id = "empty";
    repo.source = "/etc/yum.repos.d/e.repo";
    try {
        (void)leo::repo::load_metadata(repo, leo::fs::SystemRoot(tmp.path()), "/cache");
        FAIL();
    } catch (const leo::RepoError& e) {
        EXPECT_STREQ(e.what(), "repository empty: no baseurl, mirrorlist or metalink (set one in /etc/yum.repos.d/e.repo)");
    }
    repo.id = "../escape";
    repo.baseurls = {"file:///nonexistent"};
    EXPECT_THROW((void)leo::repo::load_metadata(repo, leo::fs::SystemRoot(tmp.path()), "/cache"), leo::RepoError);
}

TEST(ParseRepomd, TextInMemory) {
    const auto repomd = leo::repo::parse_repomd(
        "<?xml version=\"1.0\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\"><revision> 7 </revision>"
        "<data type=\"other\"><location href=\"o.xml\"/></data>"
        "<data type=\"primary\"><checksum type=\"sha256\">ab</checksum><size>12</size>"
        "<location xml:base=\"http://b/\" href=\"repodata/p.xml.gz\"/></data></repomd>",
        "repomd: ");
    EXPECT_EQ(repomd.revision, "7");
    ASSERT_TRUE(repomd.primary);
    EXPECT_EQ(repomd.primary->href, "repodata/p.xml.gz");
    EXPECT_EQ(repomd.primary->base, "http://b/");
    EXPECT_EQ(repomd.primary->checksum_type, "sha256");
    EXPECT_EQ(repomd.primary->checksum, "ab");
    EXPECT_EQ(repomd.primary->size, 12u);
    EXPECT_EQ(repomd.timestamp, 0u) << "no <timestamp>";
    EXPECT_FALSE(leo::repo::parse_repomd("<repomd/>", "repomd: ").primary);
    try {
        (void)leo::repo::parse_repomd("<metadata/>", "repomd: ");
        FAIL();
    } catch (const leo::RepoError& e) {
        EXPECT_STREQ(e.what(), "repomd: the root element is <metadata>, expected <repomd>");
    }
}

TEST(ParseRepomd, TimestampIsTheNewestOfItsData) {
    // yum's repoMDObject.timestamp: the newest <data><timestamp>; a fraction is dropped, an
    // unreadable one ignored; <revision> is not a timestamp.
    const auto repomd = leo::repo::parse_repomd(
        "<repomd xmlns=\"http://linux.duke.edu/metadata/repo\"><revision>1800000000</revision>"
        "<data type=\"other\"><timestamp>1700000005</timestamp></data>"
        "<data type=\"primary\"><timestamp> 1700000009.75 </timestamp><location href=\"p.xml.gz\"/></data>"
        "<data type=\"filelists\"><timestamp>soon</timestamp></data></repomd>",
        "repomd: ");
    EXPECT_EQ(repomd.timestamp, 1700000009);
    ASSERT_TRUE(repomd.primary);
    EXPECT_EQ(repomd.primary->href, "p.xml.gz");
}

TEST(ParseRepomd, TimestampIsReadAsYumReadsAFloat) {
    const auto of = [](const std::string& text) {
        return leo::repo::parse_repomd("<repomd><data type=\"other\"><timestamp>" + text + "</timestamp></data></repomd>",
                                       "repomd: ")
            .timestamp;
    };
    EXPECT_EQ(of("1.9e9"), 1900000000);        // not 1: the exponent counts
    EXPECT_EQ(of("+1800000000"), 1800000000);
    EXPECT_EQ(of("1e300"), 253402300799);      // clamped to 9999-12-31, never negative
    EXPECT_EQ(of("18446744073709551616"), 253402300799);
    EXPECT_EQ(of("-5"), 0);                    // not a time: as if absent
    EXPECT_EQ(of("nan"), 0);
    EXPECT_EQ(of("inf"), 0);
    EXPECT_EQ(of("12 34"), 0);
    EXPECT_EQ(of(""), 0);
}

TEST(ParsePrimary, MoreEntriesOfTheWantedPackagesThanAnyRepositoryListsAreRefused) {
    // A hostile server listing 120,000 brokers held check-update for minutes and wrote a cache
    // file too large to read back; the bound refuses it at once.
    auto primary_of = [](std::size_t n) {
        std::string xml = "<metadata xmlns=\"http://linux.duke.edu/metadata/common\" "
                          "xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">";
        for (std::size_t i = 0; i < n; ++i) xml += k_package;
        return xml + "</metadata>";
    };
    const leo::repo::PackageFilter broker = [](const std::string& name) { return name == "leostream-broker"; };
    const auto at_bound = primary_of(leo::repo::k_max_wanted_entries);
    EXPECT_EQ(leo::repo::parse_primary(at_bound, "", broker, "p: ").size(), leo::repo::k_max_wanted_entries);
    try {
        (void)leo::repo::parse_primary(primary_of(leo::repo::k_max_wanted_entries + 1), "", broker, "p: ");
        FAIL() << "no error";
    } catch (const leo::RepoError& e) {
        EXPECT_STREQ(e.what(), "p: more than 5000 entries of the packages looked for (leostream-broker is #5001): a "
                               "broken or hostile repository");
    }
}

TEST(ParsePrimary, TextInMemory) {
    const std::string primary = "<metadata xmlns=\"http://linux.duke.edu/metadata/common\" "
                                "xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">" +
                                k_package + "</metadata>";
    const auto packages = leo::repo::parse_primary(primary, "http://h/repo", nullptr, "primary: ");
    ASSERT_EQ(packages.size(), 1u);
    EXPECT_EQ(packages[0].nevra(), "leostream-broker-3:9.2.0~rc1-1.el7.x86_64");
    EXPECT_EQ(packages[0].base_url, "http://h/repo");
    EXPECT_TRUE(leo::repo::parse_primary(primary, "", [](const std::string&) { return false; }, "p: ").empty());
    try {
        (void)leo::repo::parse_primary("", "", nullptr, "primary: ");
        FAIL();
    } catch (const leo::RepoError& e) {
        EXPECT_STREQ(e.what(), "primary: is empty");
    }
    EXPECT_THROW((void)leo::repo::parse_primary(std::string_view("\x1f\x8b\x08", 3), "", nullptr, "p: "),
                 leo::RepoError);
}

} // namespace
