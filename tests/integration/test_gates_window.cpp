// The upgrade's gates end to end: each refuses with exit 3 and nothing changed; the
// maintenance window (and --now --reason); a broken [maintenance_window] refuses only the
// upgrade; a dry run outside the window prints the plan, then the refusal.
#include "maintenance_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
using namespace leo::test::maintenance;

class Gates : public Maintenance {
  protected:
    /// Run `argv`: exit 3, `message` (and "nothing was changed") on stderr, and nothing
    /// changed: files, tables, the installed package, restore points, the running
    /// components. Returns stderr.
    // Left out: the log, the database's own files, and what the running components
    // write (the worker's heartbeat every second, their logs).
    // And what every run touches without changing anything: the repository metadata
    // cache, the run lock's file, the shared-memory index of rpm's SQLite database.
    inline static const std::vector<std::string> k_unchanged_ignore{"var/log",
                                                                    "var/cache",
                                                                    "home/leo/pgsql",
                                                                    "home/leo/run",
                                                                    "home/leo/logs",
                                                                    "var/lib/leo-installer/lock",
                                                                    "var/lib/rpm/rpmdb.sqlite-shm"};
    std::string expect_refused(const std::vector<std::string>& argv, const std::string& message,
                               const std::string& installed_nevra = k_old) {
        const auto& ignore = k_unchanged_ignore;
        const std::string files = leo::test::snapshot_tree(root, ignore);
        const std::string tables = leo::test::table_checksums(root);
        const pid_t httpd = pid_of("httpd");
        const pid_t queue = pid_of("queue");
        auto r = run_installer(argv);
        EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
        EXPECT_TRUE(contains(r.err, "the upgrade's gates refused it: ")) << r.err;
        EXPECT_TRUE(contains(r.err, message)) << "expected: " << message << "\nstderr: " << r.err;
        EXPECT_TRUE(contains(r.err, "; nothing was changed")) << r.err;
        EXPECT_EQ(leo::test::snapshot_tree(root, ignore), files) << "the root changed";
        EXPECT_EQ(leo::test::table_checksums(root), tables) << "the database changed";
        EXPECT_EQ(installed(), installed_nevra + "\n");
        if (installed_nevra == k_old) {  // (after an upgrade, its restore point is there)
            EXPECT_FALSE(stdfs::exists(root / "var/lib/leo-installer/snapshots") &&
                         !stdfs::is_empty(root / "var/lib/leo-installer/snapshots"))
                << "a restore point was left behind";
            const auto list = run_installer(args({"snapshot", "list", "--json"}));
            EXPECT_EQ(nlohmann::json::parse(list.out, nullptr, false), nlohmann::json::array()) << list.out << list.err;
        }
        // The components were not stopped for a refused upgrade.
        EXPECT_EQ(pid_of("httpd"), httpd);
        EXPECT_EQ(pid_of("queue"), queue);
        EXPECT_TRUE(running(httpd) && running(queue));
        EXPECT_EQ(health().version(), installed_nevra == k_old ? "9.0.7" : "9.2.0") << health();
        EXPECT_FALSE(stdfs::exists(marker()));
        return r.err;
    }
    static void expect_only(const std::string& err, const std::string& gate) {
        for (const char* g :
             {"upgrades_enabled: ", "support_licence: ", "maintenance_window: ", "replication: ", "upgrade_path: "})
            if (gate != g) {
                EXPECT_FALSE(contains(err, g)) << g << " refused too: " << err;
            }
    }
};


std::string window_twelve_hours_from_now() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    const int minute_of_week = ((tm.tm_wday + 6) % 7) * 1440 + tm.tm_hour * 60 + tm.tm_min;
    const int start = (minute_of_week + 12 * 60) % (7 * 1440);
    const int end = (start + 60) % 1440;
    static const char* const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s %02d:%02d-%02d:%02d", days[start / 1440], (start % 1440) / 60, start % 60,
                  end / 60, end % 60);
    return buf;
}


TEST_F(Gates, EachGateRefusesAndNothingChanges) {
    start_components();
    const auto upgrade = args({"upgrade", "-y"});

    // upgrades disabled by the administration setting
    exec("UPDATE settings SET value = 'false' WHERE name = 'upgrades_enabled'");
    auto err = expect_refused(upgrade, "upgrades_enabled: broker upgrades are disabled by the administration "
                                       "setting \"disable broker upgrade\" (settings.upgrades_enabled = 'false')");
    expect_only(err, "upgrades_enabled: ");
    exec("UPDATE settings SET value = 'true' WHERE name = 'upgrades_enabled'");

    // an expired support licence: the refusal gives the date
    exec("INSERT INTO support_licence (licence_key, customer, expires_on) VALUES ('K-1', 'Acme', '2021-03-31')");
    err = expect_refused(upgrade, "support_licence: the support licence expired on 2021-03-31 (today is ");
    EXPECT_TRUE(contains(err, "renew it before upgrading")) << err;
    expect_only(err, "support_licence: ");
    exec("UPDATE support_licence SET expires_on = current_date + 365");

    // replication: a publication and a physical replication slot
    exec("CREATE PUBLICATION leo_pub FOR ALL TABLES");
    exec("SELECT pg_create_physical_replication_slot('standby_1')");
    err = expect_refused(upgrade, "replication: the broker database is replicated (replication slot standby_1 "
                                  "(physical), publication leo_pub); the update procedure forbids upgrading while "
                                  "it is: stop the replication first");
    expect_only(err, "replication: ");
    exec("DROP PUBLICATION leo_pub");
    exec("SELECT pg_drop_replication_slot('standby_1')");

    // the upgrade path: a package that must be installed over 9.2.0 or later
    const auto path_rpm = build_package("9.3.0", {{"UPGRADE_REQUIRES", "9.2.0"}}, "path");
    auto q = leo::subprocess::run({"rpm", "-qp", "--provides", path_rpm.string()});
    ASSERT_TRUE(contains(q.out, "leostream-broker(upgrade-requires) = 9.2.0")) << q.out << q.err;
    err = expect_refused(args({"upgrade", "--rpm", path_rpm.string(), "--nogpgcheck", "-y"}),
                         "upgrade_path: leostream-broker-9.3.0-1.x86_64 can only be installed over version 9.2.0 or "
                         "later, and 9.0.7 is installed: upgrade to 9.2.0 first (`leo-installer upgrade --version "
                         "9.2.0 --root " + root.string() + "`), then to 9.3.0");
    expect_only(err, "upgrade_path: ");

    // Two at once: both are listed.
    exec("UPDATE settings SET value = 'false' WHERE name = 'upgrades_enabled'");
    exec("CREATE PUBLICATION leo_pub FOR ALL TABLES");
    err = expect_refused(upgrade, "upgrades_enabled: broker upgrades are disabled");
    EXPECT_TRUE(contains(err, "; replication: the broker database is replicated (publication leo_pub)")) << err;
    exec("DROP PUBLICATION leo_pub");
    exec("UPDATE settings SET value = 'true' WHERE name = 'upgrades_enabled'");

    // With the components and the database stopped, a refusal leaves the database stopped.
    ASSERT_EQ(run_installer(args({"service", "stop"})).exit_code, 0);
    ASSERT_FALSE(stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"));
    {
        leo::migrations::InternalDatabase db(root);
        db.start();
        leo::migrations::Connection::open(db.conninfo())
            .exec("UPDATE settings SET value = 'false' WHERE name = 'upgrades_enabled'");
        db.stop();
    }
    auto stopped_db = run_installer(upgrade);
    EXPECT_EQ(stopped_db.exit_code, 3) << stopped_db.out << stopped_db.err;
    EXPECT_TRUE(contains(stopped_db.err, "upgrades_enabled: broker upgrades are disabled")) << stopped_db.err;
    EXPECT_FALSE(stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"))
        << "the refused upgrade left the database running: " << stopped_db.out;
    start_components();
    exec("UPDATE settings SET value = 'true' WHERE name = 'upgrades_enabled'");

    // With every gate open again the dry run passes them all (and changes nothing).
    auto dry = run_installer(args({"upgrade", "--dry-run", "-y"}));
    EXPECT_EQ(dry.exit_code, 0) << dry.out << dry.err;
    EXPECT_TRUE(
        std::regex_search(dry.out, std::regex("gate support_licence +passed +the support licence is valid until ")))
        << dry.out;
    EXPECT_TRUE(
        std::regex_search(dry.out, std::regex("gate replication +passed +the broker database is not replicated")))
        << dry.out;
    EXPECT_TRUE(contains(dry.out, "dry run: " + k_old + " -> " + k_new + " is possible; nothing was changed"))
        << dry.out;
    EXPECT_EQ(installed(), k_old + "\n");
}

TEST_F(Gates, OutsideTheMaintenanceWindowUnlessNowWithAReason) {
    start_components();
    const std::string windows = window_twelve_hours_from_now();
    write_installer_conf("[maintenance_window]\ntime_zone = UTC\nwindows = " + windows + "\n");
    const auto err = expect_refused(args({"upgrade", "-y"}), "maintenance_window: ");
    EXPECT_TRUE(std::regex_search(err, std::regex("maintenance_window: [A-Z][a-z][a-z] [0-9]{4}-[0-9]{2}-[0-9]{2} "
                                                  "[0-9]{2}:[0-9]{2} UTC is outside the maintenance window \\(" +
                                                  windows +
                                                  "\\); it opens in 1[12] h [0-9]{2} min: run it then, or "
                                                  "now with --now --reason TEXT \\(logged\\)")))
        << err;
    expect_only(err, "maintenance_window: ");

    // --now needs --reason (and the reverse): a usage error, nothing run.
    auto no_reason = run_installer(args({"upgrade", "-y", "--now"}));
    EXPECT_EQ(no_reason.exit_code, 2) << no_reason.out << no_reason.err;
    EXPECT_TRUE(contains(no_reason.err, "--reason")) << no_reason.err;
    auto empty_reason = run_installer(args({"upgrade", "-y", "--now", "--reason", ""}));
    EXPECT_NE(empty_reason.exit_code, 0);
    EXPECT_TRUE(contains(empty_reason.err, "--reason: empty")) << empty_reason.err;
    EXPECT_EQ(installed(), k_old + "\n");

    // --now --reason: overridden, logged with its reason, and the upgrade runs.
    auto now = run_installer(args({"upgrade", "-y", "--json", "--now", "--reason", "emergency fix"}));
    ASSERT_EQ(now.exit_code, 0) << now.out << now.err;
    const auto j = nlohmann::json::parse(now.out);
    EXPECT_EQ(j["outcome"], "upgraded");
    bool seen = false;
    for (const auto& g : j["gates"]) {
        if (g["id"] != "maintenance_window") {
            EXPECT_EQ(g["state"], "passed") << g;
            continue;
        }
        seen = true;
        EXPECT_EQ(g["state"], "overridden") << g;
        EXPECT_TRUE(contains(g["detail"].get<std::string>(), "is outside the maintenance window (" + windows +
                                                                 "), overridden with --now: emergency fix"))
            << g;
    }
    EXPECT_TRUE(seen) << j.dump(2);
    EXPECT_TRUE(contains(now.err, "overridden")) << now.err;
    const std::string log = slurp(root / "var/log/leo-installer/installer.log");
    EXPECT_TRUE(contains(log, "maintenance window overridden with --now --reason \"emergency fix\"")) << log;
    EXPECT_EQ(installed(), k_new + "\n");
    EXPECT_EQ(health().version(), "9.2.0") << health();
}

TEST_F(Gates, ABrokenMaintenanceWindowRefusesOnlyTheUpgrade) {
    start_components();
    const std::string file = (root / "etc/leo-installer/installer.conf").string();
    for (const std::string& conf :
         {std::string("[maintenance_window]\ntime_zone = UTC+3\nwindows = Sat 22:00-Sun 04:00\n"),
          std::string("[maintenance_window]\ntime_zone = EST5EDT,M3.2.0,M11.1.0\n"),
          std::string("[restore_points]\nkeep = 4\n[maintenance_window]\nwindows Sat\n")}) {
        write_installer_conf(conf);
        auto status = run_installer(args({"service", "status"}));
        EXPECT_EQ(status.exit_code, 0) << conf << status.out << status.err;
        EXPECT_TRUE(contains(status.out, "httpd  running")) << status.out;
        EXPECT_TRUE(contains(status.err, "warning: " + file + ":")) << status.err;
        EXPECT_TRUE(contains(status.err, "an upgrade refuses until it is fixed")) << status.err;
    }
    EXPECT_EQ(run_installer(args({"service", "restart", "queue"})).exit_code, 0) << "service acts with it too";

    // The upgrade's gate refuses, naming the key and the line; nothing changes.
    write_installer_conf("[maintenance_window]\ntime_zone = UTC+3\nwindows = Sat 22:00-Sun 04:00\n");
    const std::string why = file + ":2: [maintenance_window] time_zone = UTC+3: not a zone of the zoneinfo database";
    auto err = expect_refused(args({"upgrade", "-y"}), "maintenance_window: the maintenance window cannot be read: " + why);
    expect_only(err, "maintenance_window: ");
    auto dry = run_installer(args({"upgrade", "--dry-run", "-y"}));
    EXPECT_EQ(dry.exit_code, 3) << dry.out << dry.err;
    EXPECT_TRUE(contains(dry.out, "plan: " + k_old + " -> " + k_new)) << dry.out;
    EXPECT_TRUE(contains(dry.out, "  maintenance_window: the maintenance window cannot be read: " + why)) << dry.out;

    // An upgrade with a readable window, then rollback with the window broken again: it
    // does not use the window, and goes on (warning).
    write_installer_conf("");
    auto up = run_installer(args({"upgrade", "-y"}));
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    write_installer_conf("[maintenance_window]\nwindows = Sat 22:00-Sun 04:00\ntime_zone = ../../etc/passwd\n");
    auto rb = run_installer(args({"rollback", "-y"}));
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_TRUE(contains(rb.err, file + ":3: [maintenance_window] time_zone = ../../etc/passwd: expected an IANA "
                                        "time zone name"))
        << rb.err;
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(health().version(), "9.0.7") << health();
}

TEST_F(Gates, ADryRunOutsideTheWindowPrintsThePlanThenTheRefusal) {
    start_components();
    const std::string windows = window_twelve_hours_from_now();
    write_installer_conf("[maintenance_window]\ntime_zone = UTC\nwindows = " + windows + "\n");
    const std::string files = leo::test::snapshot_tree(root, k_unchanged_ignore);
    auto dry = run_installer(args({"upgrade", "--dry-run", "-y"}));
    EXPECT_EQ(dry.exit_code, 3) << dry.out << dry.err;
    EXPECT_TRUE(contains(dry.out, "plan: " + k_old + " -> " + k_new)) << dry.out;
    EXPECT_TRUE(contains(dry.out, "  components to stop and start again: httpd, queue (supervisor)")) << dry.out;
    EXPECT_TRUE(contains(dry.out, "  migrations")) << dry.out;
    EXPECT_TRUE(contains(dry.out, "  restore point: ")) << dry.out;
    EXPECT_TRUE(contains(dry.out, "dry run: a real run of " + k_old + " -> " + k_new + " would be refused:\n"
                                  "  maintenance_window: "))
        << dry.out;
    EXPECT_TRUE(contains(dry.out, "is outside the maintenance window (" + windows + ")")) << dry.out;
    EXPECT_TRUE(contains(dry.out, "\nnothing was changed\n")) << dry.out;
    EXPECT_FALSE(contains(dry.out, "is possible")) << dry.out;
    auto js = run_installer(args({"upgrade", "--dry-run", "-y", "--json"}));
    EXPECT_EQ(js.exit_code, 3) << js.out << js.err;
    const auto j = nlohmann::json::parse(js.out);
    EXPECT_EQ(j["outcome"], "dry-run");
    ASSERT_EQ(j["would_refuse"].size(), 1u) << j.dump(2);
    EXPECT_TRUE(contains(j["would_refuse"][0].get<std::string>(), "maintenance_window: ")) << j.dump(2);
    EXPECT_EQ(leo::test::snapshot_tree(root, k_unchanged_ignore), files) << "the root changed";
    EXPECT_EQ(installed(), k_old + "\n");
    auto help = run_installer({"upgrade", "--help"});
    EXPECT_TRUE(contains(help.out, "exit 3 when one would")) << help.out;

    // The preflight is a gate too: its inhibitor is listed after the plan; a real run
    // refuses on it as before.
    const auto os = root / "etc/os-release";
    const std::string os_before = slurp(os);
    ASSERT_FALSE(os_before.empty());
    std::ofstream(os, std::ios::trunc) << "ID=debian\nVERSION_ID=12\n";
    const std::string files_debian = leo::test::snapshot_tree(root, k_unchanged_ignore);
    auto pre = run_installer(args({"upgrade", "--dry-run", "-y"}));
    EXPECT_EQ(pre.exit_code, 3) << pre.out << pre.err;
    EXPECT_TRUE(contains(pre.out, "plan: " + k_old + " -> " + k_new)) << pre.out;
    EXPECT_TRUE(contains(pre.out, "\n  preflight: os (")) << pre.out;
    EXPECT_TRUE(contains(pre.out, "\n  maintenance_window: ")) << pre.out;
    auto real = run_installer(args({"upgrade", "-y"}));
    EXPECT_EQ(real.exit_code, 3) << real.out << real.err;
    EXPECT_TRUE(contains(real.err, "preflight refused the upgrade: os (")) << real.err;
    EXPECT_EQ(leo::test::snapshot_tree(root, k_unchanged_ignore), files_debian) << "the root changed";
    EXPECT_EQ(installed(), k_old + "\n");
    std::ofstream(os, std::ios::trunc) << os_before;
}

} // namespace
