// Backups' pure parts: the [backup] settings of installer.conf, the manifest, retention,
// and finding a backup by id (backup.hpp). Taking, verifying and pruning real backups is
// tests/integration/test_backup.cpp.
#include "leo/common/error.hpp"
#include "leo/installer/backup.hpp"
#include "leo/installer/config.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
using leo::installer::Backup;
using leo::installer::BackupListing;
using leo::installer::parse_config;

const char* const k_file = "/etc/leo-installer/installer.conf";

std::string error_for(const std::string& text) {
    try {
        (void)parse_config(text, k_file);
    } catch (const leo::UsageError& e) {
        return e.what();
    }
    return {};
}

TEST(BackupConfig, DefaultsAndSettings) {
    const auto d = parse_config("", k_file);
    EXPECT_EQ(d.backup_keep, 7);
    EXPECT_EQ(leo::installer::backups_inside(d), "/var/lib/leo-installer/backups");
    const auto c = parse_config("[backup]\nkeep = 2\ndirectory = /srv/leo//backups/\n", k_file);
    EXPECT_EQ(c.backup_keep, 2);
    EXPECT_EQ(leo::installer::backups_inside(c), "/srv/leo/backups");
}

TEST(BackupConfig, BadValuesNameFileLineAndWhatIsExpected) {
    EXPECT_EQ(error_for("[backup]\nkeep = 0\n"),
              std::string(k_file) + ":2: [backup] keep = 0: expected a whole number from 1 to 2147483647");
    EXPECT_EQ(error_for("[backup]\nkeep = seven\n"),
              std::string(k_file) + ":2: [backup] keep = seven: expected a whole number from 1 to 2147483647");
    EXPECT_EQ(error_for("[backup]\nkeep = -3\n"),
              std::string(k_file) + ":2: [backup] keep = -3: expected a whole number from 1 to 2147483647");
    for (const char* dir : {"backups", "/var/../etc", "/"})
        EXPECT_EQ(error_for(std::string("[backup]\ndirectory = ") + dir + "\n"),
                  std::string(k_file) + ":2: [backup] directory = " + dir +
                      ": expected an absolute directory (inside the root) without '..', other than /")
            << dir;
    EXPECT_EQ(error_for("[backup]\ncolour = blue\n"), std::string(k_file) + ":2: unknown setting [backup] colour");
}

Backup sample(const std::string& id) {
    Backup b;
    b.id = id;
    b.created = "2026-12-01T02:00:00Z";
    b.broker_nevra = "leostream-broker-9.0.7-1.x86_64";
    b.schema_version = "9.0.7";
    b.schema_broker_version = "9.0.7";
    b.schema_history = {"9.0.1 abc", "9.0.7 def"};
    b.database = "leo";
    b.server_version = "15.5";
    b.size_bytes = 1234;
    b.sha256 = std::string(64, 'a');
    b.table_checksums = {{"work_queue", "3:123"}, {"\"audit\".\"events\"", "0:0"}};
    return b;
}

TEST(BackupManifest, RoundTripsAndRefusesWhatItCannotRead) {
    const auto b = sample("20261201T020000Z");
    const auto text = leo::installer::to_json(b).dump(2);
    const auto back = leo::installer::parse_backup_manifest(text, "/x/20261201T020000Z");
    EXPECT_EQ(leo::installer::to_json(back), leo::installer::to_json(b));
    EXPECT_EQ(back.dir, "/x/20261201T020000Z");

    auto expect_refused = [](const std::string& t, const std::string& part) {
        try {
            (void)leo::installer::parse_backup_manifest(t, "/x/20261201T020000Z");
            ADD_FAILURE() << "accepted: " << t;
        } catch (const leo::InstallError& e) {
            EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
        }
    };
    expect_refused("{not json", "is not JSON");
    auto j = leo::installer::to_json(b);
    j["format"] = 2;
    expect_refused(j.dump(), "has format 2; this leo-installer reads format 1");
    j = leo::installer::to_json(b);
    j.erase("tables");
    expect_refused(j.dump(), "a field is missing or mistyped");
    expect_refused(leo::installer::to_json(sample("20261130T020000Z")).dump(), "names backup 20261130T020000Z");
}

TEST(BackupRetention, KeepsTheNewestAndFindsByIdOrNewest) {
    BackupListing l;
    l.dir = "/var/lib/leo-installer/backups";
    for (const char* id : {"20261128T020000Z", "20261129T020000Z", "20261129T020000Z-2", "20261130T020000Z"})
        l.backups.push_back(sample(id));
    const auto doomed = leo::installer::backups_to_prune(l, 2);
    ASSERT_EQ(doomed.size(), 2u);
    EXPECT_EQ(doomed[0].id, "20261128T020000Z");
    EXPECT_EQ(doomed[1].id, "20261129T020000Z");
    EXPECT_TRUE(leo::installer::backups_to_prune(l, 4).empty());
    EXPECT_TRUE(leo::installer::backups_to_prune(l, 7).empty());
    EXPECT_THROW((void)leo::installer::backups_to_prune(l, 0), leo::UsageError);

    EXPECT_EQ(leo::installer::find_backup(l, "").id, "20261130T020000Z");
    EXPECT_EQ(leo::installer::find_backup(l, "20261129T020000Z-2").id, "20261129T020000Z-2");
    try {
        (void)leo::installer::find_backup(l, "nope");
        ADD_FAILURE();
    } catch (const leo::UsageError& e) {
        EXPECT_STREQ(e.what(), "there is no backup 'nope' in /var/lib/leo-installer/backups; `leo-installer backup "
                               "list` shows them");
    }
    EXPECT_THROW((void)leo::installer::find_backup(BackupListing{}, ""), leo::UsageError);
}
} // namespace
