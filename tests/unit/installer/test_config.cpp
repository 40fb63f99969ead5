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


// [maintenance_window] only matters to an upgrade: its errors are kept (for the gate),
// never thrown at the commands that read installer.conf for something else.
TEST(InstallerConfig, MaintenanceWindowErrorsAreKeptNotThrown) {
    const auto window_error = [](const std::string& text) {
        return parse_config(text, k_file).maintenance_window_error;
    };
    const std::string f(k_file);
    auto c = parse_config("[services]\ntimeout = 5\n[maintenance_window]\nwindows = Sat 22:00\n[restore_points]\n"
                          "keep = 7\n",
                          k_file);
    EXPECT_EQ(c.services_timeout.count(), 5);
    EXPECT_EQ(c.keep_restore_points, 7) << "a section after [maintenance_window] is read";
    EXPECT_EQ(c.maintenance_window_error.rfind(f + ":4: [maintenance_window] windows = Sat 22:00: ", 0), 0u)
        << c.maintenance_window_error;
    EXPECT_TRUE(c.maintenance_windows.empty());
    EXPECT_EQ(window_error("[maintenance_window]\nwindows Sat\n"),
              f + ":2: syntax error in 'windows Sat' (expected [section] or name = value)");
    EXPECT_EQ(window_error("; comment\n\n[maintenance_window]\ncolour = blue\n"),
              f + ":4: unknown setting [maintenance_window] colour");
    // An error elsewhere is still thrown, also with one in the window.
    EXPECT_EQ(error_for("[maintenance_window]\nwindows Sat\n[services]\ncolour = blue\n"),
              f + ":4: unknown setting [services] colour");
    // A good window is read as before.
    c = parse_config("[maintenance_window]\ntime_zone = UTC\nwindows = Sat 22:00-Sun 04:00\n", k_file);
    EXPECT_EQ(c.maintenance_window_error, "");
    EXPECT_EQ(c.maintenance_time_zone, "UTC");
    EXPECT_EQ(c.maintenance_windows, "Sat 22:00-Sun 04:00");
}

/// A zoneinfo directory of two zones and the helper files tzdata also ships.
struct FakeZoneinfo {
    FakeZoneinfo() {
        std::filesystem::create_directories(tmp.path() / "Europe");
        leo::fs::write_file_atomic(tmp.path() / "Europe/Berlin", std::string("TZif2\0\0\0", 8));
        leo::fs::write_file_atomic(tmp.path() / "UTC", std::string("TZif2\0\0\0", 8));
        leo::fs::write_file_atomic(tmp.path() / "leapseconds", "# leap seconds\n");
        std::filesystem::create_directories(tmp.path() / "posix/Europe");
        leo::fs::write_file_atomic(tmp.path() / "posix/Europe/Berlin", std::string("TZif2\0\0\0", 8));
    }
    leo::test::TempDir tmp;
};

TEST(InstallerConfig, TimeZoneIsAnIanaNameOfTheZoneinfoDatabase) {
    FakeZoneinfo z;
    const auto problem = [&](const std::string& name) {
        return leo::installer::time_zone_problem(name, z.tmp.path()).value_or("");
    };
    EXPECT_EQ(problem("Europe/Berlin"), "");
    EXPECT_EQ(problem("UTC"), "");
    EXPECT_TRUE(problem("EST5EDT,M3.2.0,M11.1.0").rfind("a POSIX TZ rule, which is not accepted: expected an IANA", 0) == 0)
        << problem("EST5EDT,M3.2.0,M11.1.0");
    EXPECT_TRUE(problem("<+03>-3").rfind("a POSIX TZ rule", 0) == 0) << problem("<+03>-3");
    EXPECT_TRUE(problem("UTC+3").rfind("not a zone of the zoneinfo database (a POSIX TZ string such as UTC+3 is not "
                                       "accepted: use Etc/GMT-3 for UTC+3)",
                                       0) == 0)
        << problem("UTC+3");
    EXPECT_TRUE(problem("Mars/Olympus").rfind("not a zone of the zoneinfo database: expected", 0) == 0);
    EXPECT_TRUE(problem("leapseconds").find("is not a TZif file") != std::string::npos) << problem("leapseconds");
    for (const char* bad : {"", "../etc/passwd", "/etc/localtime", "Europe//Berlin", "Europe/", "posix/Europe/Berlin",
                            "Europe/Ber lin", "Europe/Berlin'", "localtime", "posixrules"})
        EXPECT_TRUE(problem(bad).rfind("expected an IANA time zone name of the zoneinfo database (", 0) == 0)
            << bad << ": " << problem(bad);
}

TEST(InstallerConfig, TimeZoneErrorNamesTheKeyAndTheLine) {
    if (!std::filesystem::exists(std::filesystem::path(leo::installer::k_zoneinfo_dir) / "Europe/Berlin"))
        GTEST_SKIP() << "no tzdata on this host";
    EXPECT_EQ(parse_config("[maintenance_window]\ntime_zone = Europe/Berlin\n", k_file).maintenance_window_error, "");
    EXPECT_EQ(parse_config("[maintenance_window]\ntime_zone = Etc/GMT-3\n", k_file).maintenance_window_error, "");
    const auto c = parse_config("[restore_points]\nkeep = 2\n\n[maintenance_window]\ntime_zone = UTC+3\n", k_file);
    EXPECT_EQ(c.maintenance_window_error.rfind(std::string(k_file) + ":5: [maintenance_window] time_zone = UTC+3: not a "
                                                                     "zone of the zoneinfo database",
                                               0),
              0u)
        << c.maintenance_window_error;
    EXPECT_EQ(c.maintenance_time_zone, "UTC") << "the default stays";
    EXPECT_EQ(c.keep_restore_points, 2);
}

} // namespace
