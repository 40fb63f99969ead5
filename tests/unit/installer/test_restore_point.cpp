// manifest.json of a restore point: parse_manifest on text (list_restore_points reads each
// manifest and calls it).
#include "leo/common/error.hpp"
#include "leo/installer/restore_point.hpp"
#include "test_support.hpp"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
using leo::installer::parse_manifest;
using leo::installer::RestorePoint;

const std::filesystem::path k_dir = "/var/lib/leo-installer/snapshots/S1";

RestorePoint sample() {
    RestorePoint rp;
    rp.id = "S1";
    rp.created = "2026-11-29T18:00:02Z";
    rp.reason = "before upgrade";
    rp.nevra = "leostream-broker-9.0.7-1.x86_64";
    rp.package_sha256 = std::string(64, 'a');
    rp.config_sha256 = std::string(64, 'b');
    rp.config_entries = {"/etc/leostream"};
    rp.database_sha256 = std::string(64, 'c');
    rp.schema_version = "9.0.7.1";
    rp.table_checksums = {{"jobs", "12:0123"}};
    rp.vm_snapshot_id = "snap-42";
    rp.kind = leo::installer::RestorePointKind::before_upgrade;
    rp.copy = leo::installer::DatabaseCopy{"leo_rp_s1", 16384, 8 << 20, false};
    rp.verification = "verified";
    leo::migrations::DatabaseState st;
    st.owner = "leo";
    st.acl = std::vector<leo::migrations::DatabaseGrant>{{"PUBLIC", "CONNECT", false}, {"leo", "CREATE", true}};
    st.settings = {{"", "search_path", "\"$user\", public"}, {"broker", "work_mem", "8MB"}};
    st.comment = "the broker's data";
    rp.database_state = st;
    return rp;
}

/// The InstallError message parse_manifest throws for `text` ("" when it throws none).
std::string error_for(const std::string& text) {
    try {
        (void)parse_manifest(text, k_dir);
    } catch (const leo::InstallError& e) {
        return e.what();
    }
    return {};
}

TEST(Manifest, RoundTrip) {
    const RestorePoint rp = parse_manifest(leo::installer::to_json(sample()).dump(2), k_dir);
    EXPECT_EQ(leo::installer::to_json(rp), leo::installer::to_json(sample()));
    EXPECT_EQ(rp.dir, k_dir);
}

TEST(Manifest, Format1IsStillRead) {
    // What leo-installer wrote before restore points had copies: a dump, checksums.
    const std::string v1 = R"({"format_version": 1, "id": "S0", "created": "2026-11-01T10:00:00Z",
        "reason": "taken by snapshot create",
        "package": {"nevra": "leostream-broker-9.0.7-1.x86_64", "file": "package.rpm", "sha256": "aa"},
        "config": {"file": "config.tar.gz", "sha256": "bb", "entries": ["home/leo/etc"]},
        "database": {"file": "database.dump", "method": "pg_dump -Fc", "sha256": "cc",
                     "schema_version": "9.0.0.2", "tables": {"jobs": "1:ab"}},
        "vm_snapshot": null})";
    const auto rp = parse_manifest(v1, k_dir);
    EXPECT_EQ(rp.kind, leo::installer::RestorePointKind::manual);
    EXPECT_FALSE(rp.copy.has_value());
    EXPECT_EQ(rp.dump_state, "complete");
    EXPECT_EQ(rp.database_sha256, "cc");
    EXPECT_TRUE(rp.usable());
    EXPECT_EQ(rp.state(), "verified");
    EXPECT_FALSE(rp.database_state.has_value());
    EXPECT_EQ(rp.checksum_method, leo::migrations::ChecksumMethod::sorted_rows) << "compared the way they were taken";
}

TEST(Manifest, StatesTellWhatARollbackCanUse) {
    auto rp = sample();
    rp.dump_state = "pending";
    rp.verification = "pending";
    EXPECT_EQ(rp.state(), "pending");
    EXPECT_TRUE(rp.usable()) << "the copy is there";
    rp.copy->consumed = true;
    EXPECT_FALSE(rp.usable()) << "no copy, no dump";
    EXPECT_EQ(rp.state(), "consumed");
    rp.dump_state = "complete";
    EXPECT_TRUE(rp.usable()) << "the dump is there";
    rp.verification = "failed: the copy differs";
    EXPECT_EQ(rp.state(), "failed");
    rp.package_sha256.clear();
    EXPECT_FALSE(rp.usable()) << "no package";
}

TEST(Manifest, DamagedOrOtherVersionRefused) {
    EXPECT_EQ(error_for("{"), (k_dir / "manifest.json").string() +
                                  ": damaged manifest ([json.exception.parse_error.101] parse error at line 1, "
                                  "column 2: syntax error while parsing object key - unexpected end of input; "
                                  "expected string literal)");
    auto j = leo::installer::to_json(sample());
    j["format_version"] = 3;
    EXPECT_EQ(error_for(j.dump()), (k_dir / "manifest.json").string() +
                                       ": manifest format version 3 is not supported (this leo-installer reads "
                                       "versions 1 and 2)");
    j = leo::installer::to_json(sample());
    j["package"].erase("nevra");
    EXPECT_NE(error_for(j.dump()).find(": damaged manifest ("), std::string::npos) << error_for(j.dump());
}

// Found by fuzz_state_json (fuzz/corpus/state_json/crash-manifest-format-version-1e84, this
// text): get<int>() of a format_version of 1.9e84 is undefined behaviour (UBSan: outside the
// range of int), and an integer such as 4294967297 was cut to 1 and accepted.
TEST(Manifest, FormatVersionOutOfRangeRefused) {
    const std::string text = "{\"format_version\": 1888888888888888888888888888888888888888888888888888888888888888"
                             "888888888888888888888, \"ireated\": \"20a7777777777700000000000000000000000000000000000"
                             "00tables0000013322648497679120610aaaaaaaaaaaaaaaaaLLLLLLLLLLLLLLLLLLLLLLLLLLLaaaa777aa"
                             "a12aa\"}";
    ASSERT_EQ(text.size(), 260u);
    EXPECT_EQ(error_for(text), (k_dir / "manifest.json").string() +
                                   ": manifest format version 1.888888888888889e+84 is not supported (this "
                                   "leo-installer reads versions 1 and 2)");
    auto j = leo::installer::to_json(sample());
    j["format_version"] = 4294967297LL;
    EXPECT_EQ(error_for(j.dump()), (k_dir / "manifest.json").string() +
                                       ": manifest format version 4294967297 is not supported (this leo-installer "
                                       "reads versions 1 and 2)");
    j["format_version"] = 1.0;
    EXPECT_NE(error_for(j.dump()).find("manifest format version 1.0 is not supported"), std::string::npos);
}

TEST(Manifest, RestorePointsAreOrderedByTheirSequenceNotTheirIds) {
    // Two restore points of the same second: "S" (an upgrade's, taken second) and "S-1-left"
    // (a rollback's, taken first) would sort the wrong way by id.
    leo::test::TempDir tmp;
    const auto snaps = tmp.path() / "var/lib/leo-installer/snapshots";
    auto write = [&](const std::string& id, std::uint64_t seq) {
        auto rp = sample();
        rp.id = id;
        rp.sequence = seq;
        std::filesystem::create_directories(snaps / id);
        std::ofstream(snaps / id / "manifest.json") << leo::installer::to_json(rp).dump(2);
    };
    std::filesystem::permissions(tmp.path(), std::filesystem::perms(0755));
    write("20261201T032739Z", 2);
    write("20261201T032739Z-15249-left", 1);
    const auto all = leo::installer::list_restore_points(tmp.path());
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].id, "20261201T032739Z-15249-left");
    EXPECT_EQ(all[1].id, "20261201T032739Z");
    EXPECT_EQ(leo::installer::find_restore_point(tmp.path(), "").id, "20261201T032739Z") << "the newest";
    EXPECT_EQ(leo::installer::next_sequence(tmp.path()), 3u);
}

} // namespace
