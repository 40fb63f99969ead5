// The byte scan over primary (scan.cpp) through parse_primary_counted: only the wanted
// packages are parsed; bad entries of others are skipped and counted; a bad wanted entry
// is an error naming it; comments, CDATA, entities, a DOCTYPE and truncated input.
#include "leo/common/error.hpp"
#include "leo/repo/metadata.hpp"

#include <gtest/gtest.h>

#include <archive.h>
#include <archive_entry.h>

#include <string>

namespace {

using leo::repo::parse_primary_counted;
using leo::repo::PrimaryResult;

const std::string k_head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                           "<metadata xmlns=\"http://linux.duke.edu/metadata/common\" "
                           "xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"3\">\n";

std::string package(const std::string& name, const std::string& version_attrs = "epoch=\"0\" ver=\"1.0\" rel=\"1\"",
                    const std::string& extra = "") {
    return "<package type=\"rpm\">\n  <name>" + name + "</name>\n  <arch>x86_64</arch>\n  <version " + version_attrs +
           "/>\n  <checksum type=\"sha256\" pkgid=\"YES\">" + std::string(64, 'a') +
           "</checksum>\n  <summary>s</summary>\n" + extra +
           "  <size package=\"100\" installed=\"1\" archive=\"2\"/>\n  <location href=\"Packages/" + name +
           ".rpm\"/>\n  <format>\n    <rpm:provides><rpm:entry name=\"" + name +
           "\"/></rpm:provides>\n    <file>/usr/bin/" + name + "</file>\n  </format>\n</package>\n";
}

bool broker(const std::string& name) { return name == "leostream-broker"; }

PrimaryResult scan(const std::string& xml) { return parse_primary_counted(xml, "http://h/r", broker, "primary: "); }

std::string error_of(const std::string& xml, const leo::repo::PackageFilter& filter = broker) {
    try {
        (void)parse_primary_counted(xml, "http://h/r", filter, "primary: ");
    } catch (const leo::RepoError& e) {
        return e.what();
    }
    return "(no error)";
}

/// `data` gzip-compressed with libarchive (a raw gzip stream, as createrepo writes primary.xml.gz).
std::string gzip(const std::string& data) {
    struct archive* a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_raw(a);
    std::string out(data.size() + 4096, '\0');
    std::size_t used = 0;
    archive_write_open_memory(a, out.data(), out.size(), &used);
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_write_header(a, e);
    archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
    archive_write_free(a);
    out.resize(used);
    return out;
}

TEST(PrimaryScan, KeepsOnlyTheWantedPackages) {
    const auto r = scan(k_head + package("bash") + package("leostream-broker") + package("zsh") + "</metadata>\n");
    ASSERT_EQ(r.packages.size(), 1u);
    EXPECT_EQ(r.packages[0].nevra(), "leostream-broker-1.0-1.x86_64");
    EXPECT_EQ(r.packages[0].url(), "http://h/r/Packages/leostream-broker.rpm");
    EXPECT_EQ(r.skipped, 0u);
}

TEST(PrimaryScan, BadEntriesOfOtherPackagesAreSkippedAndCounted) {
    // Entries the scan hands to libxml2 (a name with an entity) and entries it never parses.
    const std::string xml = k_head + package("bad&amp;epoch", "epoch=\"x\" ver=\"1\" rel=\"1\"") +
                            package("nover", "epoch=\"0\" rel=\"1\"") + package("leostream-broker") +
                            "<package type=\"rpm\"><arch>x86_64</arch></package>\n" + "</metadata>\n";
    const auto r = scan(xml);
    ASSERT_EQ(r.packages.size(), 1u);
    EXPECT_EQ(r.packages[0].name, "leostream-broker");
    EXPECT_EQ(r.skipped, 2u) << "the entity-named bad entry and the nameless one";
    EXPECT_NE(r.first_skipped.find("bad&epoch (#1): bad epoch \"x\""), std::string::npos) << r.first_skipped;
    // Without a filter every entry is wanted, so each bad one is an error.
    EXPECT_NE(error_of(xml, nullptr).find("package bad&epoch (#1): bad epoch \"x\""), std::string::npos);
}

TEST(PrimaryScan, ABadBrokerEntryIsAnErrorNamingIt) {
    EXPECT_EQ(error_of(k_head + package("bash") + package("leostream-broker", "epoch=\"-1\" ver=\"9\" rel=\"1\"") +
                       "</metadata>\n"),
              "primary: package leostream-broker (#2): bad epoch \"-1\"");
    EXPECT_EQ(error_of(k_head + package("leostream-broker", "epoch=\"0\" rel=\"1\"") + "</metadata>\n"),
              "primary: package leostream-broker (#1): no <version ver=...>");
    const std::string unsafe = package("leostream-broker");
    std::string moved = unsafe;
    moved.replace(moved.find("Packages/leostream-broker.rpm"), 29, "../../etc/shadow");
    EXPECT_NE(error_of(k_head + moved + "</metadata>\n").find("package leostream-broker (#1): "), std::string::npos);
}

TEST(PrimaryScan, CommentsCdataAndProcessingInstructionsAreSkipped) {
    // A "</package>" or a "<name>" inside a comment or CDATA must not move a boundary.
    const std::string tricky = "  <description><![CDATA[ </package><package type=\"rpm\"><name>leostream-broker</name> ]]>"
                               "</description>\n  <!-- </package> <name>leostream-broker</name> -->\n  <?pi </package>?>\n";
    const auto r = scan(k_head + "<!-- <package type=\"rpm\"><name>leostream-broker</name></package> -->\n" +
                        package("bash", "epoch=\"0\" ver=\"1.0\" rel=\"1\"", tricky) + package("leostream-broker") +
                        "</metadata>\n");
    ASSERT_EQ(r.packages.size(), 1u);
    EXPECT_EQ(r.packages[0].name, "leostream-broker");
    // A name in CDATA or with a character reference is decided by libxml2, not by the scan.
    const auto named = [](const std::string& name_xml) {
        std::string p = package("leostream-broker");
        p.replace(p.find("<name>leostream-broker</name>"), 29, "<name>" + name_xml + "</name>");
        return p;
    };
    const auto cdata = scan(k_head + named("<![CDATA[leostream-broker]]>") + named("leostream&#45;broker") +
                            named("leostream<!-- a comment -->-broker") + "</metadata>\n");
    EXPECT_EQ(cdata.packages.size(), 3u);
}

TEST(PrimaryScan, ADoctypeFallsBackToTheFullParse) {
    // The scan would never parse the bad entry of "x"; libxml2 over the whole document does,
    // and counts it: that is how this test tells the fallback ran.
    const std::string xml = "<?xml version=\"1.0\"?>\n<!DOCTYPE metadata [ <!ENTITY b \"bash\"> ]>\n" +
                            k_head.substr(k_head.find("<metadata")) + package("leostream-broker") + package("bash") +
                            package("x", "epoch=\"y\" ver=\"1\" rel=\"1\"") + "</metadata>\n";
    const auto r = scan(xml);
    ASSERT_EQ(r.packages.size(), 1u);
    EXPECT_EQ(r.packages[0].name, "leostream-broker");
    EXPECT_EQ(r.skipped, 1u);
    EXPECT_EQ(r.first_skipped, "package x (#3): bad epoch \"y\"");
}

TEST(PrimaryScan, TruncatedOrWrongInputIsAnError) {
    const std::string whole = k_head + package("bash") + package("leostream-broker") + "</metadata>\n";
    EXPECT_EQ(error_of(whole.substr(0, whole.find("<name>leostream-broker") + 10)),
              "primary: is truncated or not valid XML: it ends inside package #2");
    EXPECT_EQ(error_of(whole.substr(0, whole.size() - 13)),
              "primary: is truncated or not valid XML: it ends inside <metadata>");
    EXPECT_EQ(error_of(k_head.substr(0, 30)), "primary: is truncated or not valid XML: it has no root element");
    EXPECT_EQ(error_of("<html><body/></html>"), "primary: is not primary metadata: the root element is <html>");
    EXPECT_EQ(error_of("  \n"), "primary: is empty");
    // A gzip stream cut short: the decompressor says so.
    const std::string gz = gzip(whole);
    EXPECT_EQ(scan(gz).packages.size(), 1u);
    EXPECT_NE(error_of(gz.substr(0, gz.size() / 2)).find("primary: is truncated"), std::string::npos);
}

TEST(PrimaryScan, EveryChunkBoundaryGivesTheSameAnswer) {
    // The scan is fed in blocks of whatever size libarchive returns; a big document
    // exercises boundaries inside tags, names, comments and CDATA.
    std::string xml = k_head;
    for (int i = 0; i < 3000; ++i) {
        xml += package("pkg" + std::to_string(i), "epoch=\"0\" ver=\"1.0\" rel=\"1\"",
                       i % 7 == 0 ? "  <!-- c </package> -->\n  <description><![CDATA[</package>]]></description>\n" : "");
        if (i == 1500) xml += package("leostream-broker");
    }
    xml += "</metadata>\n";
    const auto r = scan(gzip(xml));
    ASSERT_EQ(r.packages.size(), 1u);
    EXPECT_EQ(r.packages[0].name, "leostream-broker");
    EXPECT_EQ(r.skipped, 0u);
}

} // namespace
