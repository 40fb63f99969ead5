// installer.conf: parse_config on text (load_config reads the file and calls it).
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/installer/config.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

namespace {
using leo::installer::parse_config;

const char* const k_file = "/etc/leo-installer/installer.conf";

/// The UsageError message parse_config throws for `text` ("" when it throws none).
std::string error_for(const std::string& text) {
    try {
        (void)parse_config(text, k_file);
    } catch (const leo::UsageError& e) {
        return e.what();
    }
    return {};
}

TEST(InstallerConfig, EverySetting) {
    const auto c = parse_config("[restore_points]\nkeep = 5\n[vm_snapshot]\ncreate_command = /bin/snap --vm b1\n"
                                "restore_command = /bin/revert\ntimeout = 60\noptional = yes\n[services]\n"
                                "stop_command = systemctl stop x\nstart_command = systemctl start x\ntimeout = 30\n",
                                k_file);
    EXPECT_EQ(c.keep_restore_points, 5);
    EXPECT_EQ(c.vm_snapshot_create_command, "/bin/snap --vm b1");
    EXPECT_EQ(c.vm_snapshot_restore_command, "/bin/revert");
    EXPECT_EQ(c.vm_snapshot_timeout.count(), 60);
    EXPECT_TRUE(c.vm_snapshot_optional);
    EXPECT_EQ(c.services_stop_command, "systemctl stop x");
    EXPECT_EQ(c.services_start_command, "systemctl start x");
    EXPECT_EQ(c.services_timeout.count(), 30);
}

TEST(InstallerConfig, DefaultsForEmptyText) {
    const auto c = parse_config("", k_file);
    EXPECT_EQ(c.keep_restore_points, 3);
    EXPECT_EQ(c.vm_snapshot_timeout.count(), 600);
    EXPECT_EQ(c.services_timeout.count(), 300);
}

TEST(InstallerConfig, ErrorsNameFileAndLine) {
    EXPECT_EQ(error_for("[restore_points]\nkeep = 0\n"),
              std::string(k_file) + ":2: [restore_points] keep = 0: expected a whole number from 1 to 2147483647");
    EXPECT_EQ(error_for("[services]\ncolour = blue\n"), std::string(k_file) + ":2: unknown setting [services] colour");
    EXPECT_EQ(error_for("[services]\nno equals sign\n"),
              std::string(k_file) + ":2: syntax error in 'no equals sign' (expected [section] or name = value)");
}

TEST(InstallerConfig, LoadConfigReadsTheRootsFile) {
    leo::test::TempDir tmp;
    EXPECT_EQ(leo::installer::load_config(tmp.path()).keep_restore_points, 3); // no file: defaults
    std::filesystem::create_directories(tmp.path() / "etc/leo-installer");
    leo::fs::write_file_atomic(tmp.path() / "etc/leo-installer/installer.conf", "[restore_points]\nkeep = 2\n");
    EXPECT_EQ(leo::installer::load_config(tmp.path()).keep_restore_points, 2);
    leo::fs::write_file_atomic(tmp.path() / "etc/leo-installer/installer.conf", "[restore_points]\nkeep = x\n");
    try {
        (void)leo::installer::load_config(tmp.path());
        FAIL() << "no error";
    } catch (const leo::UsageError& e) {
        EXPECT_EQ(std::string(e.what()),
                  (tmp.path() / "etc/leo-installer/installer.conf").string() +
                      ":2: [restore_points] keep = x: expected a whole number from 1 to 2147483647");
    }
}

// Found with fuzz/fuzz_installer_conf.cpp (fuzz/corpus/installer_conf/crash-*): a count that
// does not fit an int was cut to 0 (4294967296) or a negative number, and a timeout of
// 2^63-1 seconds overflowed the milliseconds the hooks run with.
TEST(InstallerConfig, HugeNumbersRefused) {
    EXPECT_EQ(error_for("[restore_points]\nkeep = 4294967296\n"),
              std::string(k_file) +
                  ":2: [restore_points] keep = 4294967296: expected a whole number from 1 to 2147483647");
    EXPECT_EQ(error_for("[services]\ntimeout = 9223372036854775807\n"),
              std::string(k_file) +
                  ":2: [services] timeout = 9223372036854775807: expected seconds from 1 to 2147483647");
    EXPECT_EQ(error_for("[vm_snapshot]\ntimeout = 2147483648\n"),
              std::string(k_file) + ":2: [vm_snapshot] timeout = 2147483648: expected seconds from 1 to 2147483647");
    const auto c = parse_config("[restore_points]\nkeep = 2147483647\n[services]\ntimeout = 2147483647\n", k_file);
    EXPECT_EQ(c.keep_restore_points, 2147483647);
    EXPECT_EQ(c.services_timeout.count(), 2147483647);
}

} // namespace
