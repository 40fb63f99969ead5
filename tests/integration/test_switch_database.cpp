// switch_database.pl against a real external PostgreSQL server (TCP on 127.0.0.1,
// scram-sha-256 passwords): copy to a new database verified and back to internal, the
// allow_remote_upgrade rules for an existing database, every refusal changing nothing,
// the password never stored or logged in clear, and recover after a kill mid-switch.
#include "db_support.hpp"
#include "test_support.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/fs.hpp"
#include "leo/migrations/db_snapshot.hpp"
#include "leo/migrations/engine.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

namespace {
namespace stdfs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using leo::test::run_installer;

constexpr const char* k_password = "S3cret pass'w\\rd";

class SwitchDatabase : public ::testing::Test {
protected:
    void SetUp() override {
        ext = std::make_unique<leo::test::ExternalPostgres>();
        ext->create_role("broker", k_password, true);
        ext->create_role("limited", "limited-pw", false);
        const auto pkgs = leo::test::test_packages_dir();
        leo::test::make_sandbox_root(root);
        auto r = run_installer({"install", "--rpm", (pkgs / "repo/leostream-broker-9.0.7-1.x86_64.rpm").string(),
                                "--root", root.string(), "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        // Rows to copy, a sequence that has moved.
        auto c = internal();
        c.exec("INSERT INTO sites (site_id, name) VALUES (2, 'east'), (3, 'west')");
        c.exec("INSERT INTO work_queue (site_id, job_type, payload) SELECT 2, 'job', 'payload ' || g FROM "
               "generate_series(1, 50) g");
        stdfs::create_directories(root / "etc/leo-installer");
        std::ofstream(root / "etc/leo-installer/installer.conf")
            << "[services]\nstop_command = echo stop >> " << (root / "services.log").string()
            << "\nstart_command = echo start >> " << (root / "services.log").string() << "\n";
        std::ofstream(password_file) << k_password << "\n";
    }
    void TearDown() override { (void)run_installer({"db", "stop", "--root", root.string()}); }

    leo::migrations::Connection internal() {
        return leo::migrations::Connection::open(leo::migrations::InternalDatabase(root).conninfo());
    }
    /// The documented CLI, through the link the install made.
    leo::subprocess::Result switch_db(std::vector<std::string> args, leo::subprocess::Options o = {}) {
        std::vector<std::string> argv{(root / "usr/bin/switch_database.pl").string(), "--root", root.string()};
        argv.insert(argv.end(), args.begin(), args.end());
        return leo::subprocess::run(argv, o);
    }
    std::vector<std::string> to(const std::string& mode, const std::string& db, const std::string& user = "broker") {
        return {"--to_external", mode, "--db_vendor", "postgres", "--db_host", "127.0.0.1", "--port",
                std::to_string(ext->port()), "--db_name", db, "--username", user, "--password_file",
                password_file.string(), "--skip_confirmation"};
    }
    std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& more) {
        a.insert(a.end(), more.begin(), more.end());
        return a;
    }
    /// Run the switch with LEO_FAULT_INJECT=`point`: it must die of SIGKILL there.
    ::testing::AssertionResult killed_at(const std::string& point, const std::vector<std::string>& args) {
        leo::subprocess::Options o;
        o.env["LEO_FAULT_INJECT"] = point;
        const auto r = switch_db(args, o);
        if (r.signal == SIGKILL) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "not killed at " << point << " (exit " << r.exit_code << "): " << r.out
                                             << r.err;
    }
    std::string services_log() { return leo::fs::try_read_file(root / "services.log").value_or(""); }
    /// Every file under etc/ and var/ of the root, concatenated: where a password must not be.
    std::string everything_written() {
        std::string all;
        for (const char* dir : {"etc", "var"})
            for (const auto& e : stdfs::recursive_directory_iterator(root / dir))
                if (e.is_regular_file()) all += leo::fs::try_read_file(e.path()).value_or("");
        return all;
    }
    /// The state a refusal must not change: the tree (without the log, the server's own
    /// files, the run lock (each run writes its holder into it) and rpm's shared-memory file
    /// that reads touch), the broker's tables, the services.
    std::string state() {
        return leo::test::snapshot_tree(root, {"var/log", "home/leo/pgsql", "var/lib/rpm/rpmdb.sqlite-shm",
                                               "var/lib/leo-installer/lock"}) +
               "\ntables:\n" + leo::test::table_checksums(root) + "\nservices:\n" + services_log();
    }
    /// The broker's tables of `db`: the cluster's registry (schema leo_installer), which the
    /// broker writes when it joins, is not part of the copy.
    leo::migrations::TableChecksums ext_checksums(const std::string& db) {
        auto c = ext->admin(db);
        auto all = leo::migrations::table_checksums(c);
        for (auto it = all.begin(); it != all.end();)
            it = it->first.rfind("\"leo_installer\".", 0) == 0 ? all.erase(it) : std::next(it);
        return all;
    }
    /// Make `db` (owned by broker) hold the broker schema of the migrations up to `upto`.
    void broker_schema(const std::string& db, const std::string& upto) {
        ext->create_database(db, "broker");
        leo::test::TempDir dir;
        for (const auto& e : stdfs::directory_iterator(leo::test::source_dir() / "migrations/sql")) {
            const auto name = e.path().filename().string();
            const auto version = name.substr(1, name.find("__") - 1);
            if (leo::migrations::compare_versions(version, upto) <= 0) stdfs::copy_file(e.path(), dir.path() / name);
        }
        auto c = leo::migrations::Connection::open(ext->conninfo(db, "broker", k_password));
        leo::migrations::MigrateOptions o;
        o.kind = leo::migrations::DatabaseKind::external;
        o.allow_remote_upgrade = leo::migrations::AllowRemoteUpgrade::yes;
        (void)leo::migrations::migrate(c, leo::migrations::load_migrations(dir.path()), "9.9.9", o);
    }
    std::optional<std::string> ext_schema(const std::string& db) {
        auto c = ext->admin(db);
        return leo::migrations::read_schema_state(c).schema_version;
    }

    leo::test::TempDir tmp;
    stdfs::path root = tmp.path() / "r";
    stdfs::path password_file = tmp.path() / "pw";
    std::unique_ptr<leo::test::ExternalPostgres> ext;
};

TEST_F(SwitchDatabase, NewCopiesVerifiedThenBackToInternal) {
    ASSERT_TRUE(stdfs::is_symlink(root / "home/leo/bin/switch_database.pl")) << "install makes the documented link";
    auto src = internal();
    const auto source_sums = leo::migrations::table_checksums(src);
    const auto internal_before = leo::test::table_checksums(root);

    auto r = switch_db(with(to("new", "leo_cluster"), {"--site_id", "3"}));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("work_queue: 50 rows, checksum equal"));
    EXPECT_THAT(r.out, HasSubstr("the broker now uses postgres broker@127.0.0.1:" + std::to_string(ext->port()) +
                                 "/leo_cluster"));
    ASSERT_TRUE(ext->database_exists("leo_cluster"));
    EXPECT_EQ(ext_checksums("leo_cluster"), source_sums) << "the copy is the source, table by table";
    EXPECT_EQ(ext_schema("leo_cluster"), std::optional<std::string>("9.0.0.2"));
    EXPECT_EQ(services_log(), "stop\nstart\n");

    // database.conf: 0600, owner leo, the password encrypted; the key 0400, owner leo.
    const auto leo = leo::accounts::find_user(root, "leo");
    ASSERT_TRUE(leo);
    struct stat st {};
    ASSERT_EQ(::stat((root / "etc/leostream/database.conf").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(st.st_uid, leo->uid);
    ASSERT_EQ(::stat((root / "etc/leostream/database.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0400u);
    EXPECT_EQ(st.st_uid, leo->uid);
    const auto conf = leo::fs::read_file(root / "etc/leostream/database.conf");
    EXPECT_THAT(conf, HasSubstr("mode = external"));
    EXPECT_THAT(conf, HasSubstr("password = aes256gcm:v1:"));
    EXPECT_THAT(conf, HasSubstr("site_id = 3"));
    EXPECT_THAT(everything_written(), Not(HasSubstr("S3cret"))) << "the password is stored or logged in clear";

    auto show = switch_db({"--show_current"});
    EXPECT_EQ(show.exit_code, 0) << show.err;
    EXPECT_THAT(show.out, HasSubstr("external"));
    EXPECT_THAT(show.out, HasSubstr("********"));
    EXPECT_THAT(show.out, HasSubstr("9.0.0.2"));
    EXPECT_THAT(show.out + show.err, Not(HasSubstr("S3cret")));

    // status and migrate follow database.conf to the external database.
    auto status = run_installer({"status", "--root", root.string()});
    EXPECT_THAT(status.out, HasSubstr("database in use:  postgres broker@127.0.0.1"));
    auto validate = run_installer({"migrate", "--root", root.string(), "--validate"});
    EXPECT_EQ(validate.exit_code, 0) << validate.err;
    // upgrade plans against the external database now (a cluster's upgrade): with no
    // repository it says so, and nothing changes.
    auto up = run_installer({"upgrade", "--root", root.string(), "-y"});
    EXPECT_EQ(up.exit_code, 1);
    EXPECT_THAT(up.err, HasSubstr("no enabled repository"));
    // A restore point of a broker on the shared database holds a directory dump of it.
    auto snap = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
    EXPECT_EQ(snap.exit_code, 0) << snap.out << snap.err;
    EXPECT_THAT(snap.out, HasSubstr("directory dump of the shared database"));
    EXPECT_THAT(leo::fs::read_file(root / "etc/leostream/database.conf"), HasSubstr("mode = external"));

    // Back to internal: nothing is copied back.
    ext->admin("leo_cluster").exec("INSERT INTO sites (site_id, name) VALUES (9, 'only external')");
    auto back = switch_db({"--to_internal", "--skip_confirmation"});
    ASSERT_EQ(back.exit_code, 0) << back.out << back.err;
    EXPECT_THAT(back.out, HasSubstr("the broker now uses the internal database"));
    EXPECT_THAT(leo::fs::read_file(root / "etc/leostream/database.conf"), HasSubstr("mode = internal"));
    EXPECT_THAT(leo::fs::read_file(root / "etc/leostream/database.conf"), Not(HasSubstr("password =")));
    EXPECT_EQ(leo::test::table_checksums(root), internal_before);
    EXPECT_EQ(services_log(), "stop\nstart\nstop\nstart\n");
    auto again = switch_db({"--to_internal", "--skip_confirmation"});
    EXPECT_EQ(again.exit_code, 0);
    EXPECT_THAT(again.out, HasSubstr("already uses the internal database"));
}

TEST_F(SwitchDatabase, TablesWhoseNamesNeedQuotingAreCopiedVerifiedAndKept) {
    {
        auto c = internal();
        leo::test::create_odd_tables(c);
    }
    auto src = internal();
    const std::string before = leo::test::odd_table_contents(src);
    auto r = switch_db(to("new", "leo_odd"));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    // Verified table by table, other schemas and quoted names included.
    EXPECT_THAT(r.out, HasSubstr("\"public\".\"AuditLog\": 3 rows, checksum equal"));
    EXPECT_THAT(r.out, HasSubstr("\"public\".\"quo\"\"te\": 2 rows, checksum equal"));
    EXPECT_THAT(r.out, HasSubstr("\"audit\".\"events\": 7 rows, checksum equal"));
    EXPECT_THAT(r.out, HasSubstr("\"a\".\"b\": 2 rows, checksum equal"));
    EXPECT_THAT(r.out, HasSubstr("\"Ops.Team\".\"Mixed Case\": 2 rows, checksum equal"));
    auto copy = ext->admin("leo_odd");
    EXPECT_EQ(leo::test::odd_table_contents(copy), before) << "the copy differs from the source";
    const auto seqs = leo::migrations::sequence_values(copy);
    EXPECT_EQ(seqs.count("\"audit\".\"events_id_seq\""), 1u) << "sequences of other schemas are compared";

    auto back = switch_db({"--to_internal", "--skip_confirmation"});
    ASSERT_EQ(back.exit_code, 0) << back.out << back.err;
    auto again = internal();
    EXPECT_EQ(leo::test::odd_table_contents(again), before);
}

TEST_F(SwitchDatabase, NewUsesAnEmptyDatabaseOfThatNameWithThePasswordFromTheEnvironment) {
    ext->create_database("empty_one", "broker");
    auto args = to("new", "empty_one");
    args.erase(args.begin() + 12, args.begin() + 14);  // no --password_file
    leo::subprocess::Options o;
    o.env["LEO_DB_PASSWORD"] = k_password;
    auto r = switch_db(args, o);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto src = internal();
    EXPECT_EQ(ext_checksums("empty_one"), leo::migrations::table_checksums(src));
    // libpq's PGPASSWORD is a source too, and what is checked is stored.
    auto again = to("existing", "empty_one");
    again.erase(again.begin() + 12, again.begin() + 14);
    leo::subprocess::Options pg;
    pg.env["PGPASSWORD"] = k_password;
    r = switch_db(again, pg);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(leo::fs::read_file(root / "etc/leostream/database.conf"), HasSubstr("password = aes256gcm:v1:"));
    auto status = run_installer({"status", "--root", root.string()});
    EXPECT_THAT(status.out, HasSubstr("schema version:   9.0.0.2")) << status.out;
}

TEST_F(SwitchDatabase, RefusalsBeforeAnyChangeChangeNothing) {
    // A database that is not empty, for `new`.
    ext->create_database("busy", "broker");
    ext->admin("busy").exec("CREATE TABLE customer_data (id int); INSERT INTO customer_data VALUES (1)");
    const auto busy_before = ext_checksums("busy");
    const auto before = state();
    auto r = switch_db(to("new", "busy"));
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("is not empty"));
    EXPECT_THAT(r.err, HasSubstr("--to_external existing"));
    EXPECT_EQ(ext_checksums("busy"), busy_before);

    // A user without CREATEDB and no database of that name.
    std::ofstream(password_file) << "limited-pw\n";
    r = switch_db(to("new", "wanted", "limited"));
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_THAT(r.err, HasSubstr("may not create databases"));
    EXPECT_FALSE(ext->database_exists("wanted"));

    // A wrong password: the server's refusal, no database created, the password not echoed.
    std::ofstream(password_file) << "not-the-password\n";
    r = switch_db(to("new", "wanted"));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("password authentication failed"));
    EXPECT_THAT(r.err, HasSubstr("check --username and the password"));
    EXPECT_THAT(r.err, Not(HasSubstr("not-the-password")));
    EXPECT_FALSE(ext->database_exists("wanted"));

    // The administrator's own ~/.pgpass is not a way around: without a password given, the
    // check uses none (what the broker would have), and says how to give one.
    auto none = to("new", "wanted");
    none.erase(none.begin() + 12, none.begin() + 14);
    const auto home = tmp.path() / "home";
    stdfs::create_directories(home);
    std::ofstream(home / ".pgpass") << "127.0.0.1:*:*:broker:S3cret pass'w\\\\rd\n";
    stdfs::permissions(home / ".pgpass", stdfs::perms(0600));
    leo::subprocess::Options admin_env;
    admin_env.env["HOME"] = home.string();
    r = switch_db(none, admin_env);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("asks for a password and none was given"));
    EXPECT_FALSE(ext->database_exists("wanted"));
    // Nor is a libpq service file with a password in it.
    std::ofstream(home / ".pg_service.conf") << "[svc]\npassword=S3cret pass'w\\rd\n";
    admin_env.env["PGSERVICE"] = "svc";
    r = switch_db(none, admin_env);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("asks for a password and none was given"));
    EXPECT_FALSE(ext->database_exists("wanted"));

    // Nothing listens there.
    std::ofstream(password_file) << k_password << "\n";
    auto args = to("new", "wanted");
    args[7] = std::to_string(leo::test::free_loopback_port());
    r = switch_db(args);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("127.0.0.1"));

    // `existing`: missing, empty, not a broker database.
    r = switch_db(to("existing", "nowhere"));
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_THAT(r.err, HasSubstr("does not exist"));
    ext->create_database("blank", "broker");
    r = switch_db(to("existing", "blank"));
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_THAT(r.err, HasSubstr("is empty"));
    r = switch_db(to("existing", "busy"));
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_THAT(r.err, HasSubstr("is not a broker database"));

    // SQL Server / Azure SQL: a valid combination this build cannot do.
    auto ms = to("existing", "leo");
    ms[3] = "mssqlserver";
    r = switch_db(ms);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("Microsoft SQL Server (--db_vendor mssqlserver) is not supported in this build"));
    auto az = to("copy_to_existing", "leo");
    az[3] = "azuresql";
    r = switch_db(az);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("Azure SQL Database (--db_vendor azuresql) is not supported in this build"));

    // No terminal and no --skip_confirmation: refused before anything changes.
    auto ask = to("new", "asked");
    ask.pop_back();
    r = switch_db(ask);
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_THAT(r.err, HasSubstr("pass --skip_confirmation"));
    EXPECT_FALSE(ext->database_exists("asked"));

    EXPECT_EQ(state(), before) << "a refusal changed the root or ran the services";
}

TEST_F(SwitchDatabase, AssumenoShowsThePlanAndChangesNothingAndGlobalAnswersCount) {
    auto asking = to("new", "wanted");
    asking.pop_back();  // --skip_confirmation
    const auto before = state();
    auto r = switch_db(with(asking, {"--assumeno"}));
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("Proceed? [y/N]: no (--assumeno)"));
    EXPECT_THAT(r.err, HasSubstr("switch cancelled: nothing was changed"));
    EXPECT_FALSE(ext->database_exists("wanted"));
    EXPECT_EQ(state(), before);
    // The same answer given before the command (dnf's habit).
    std::vector<std::string> global{"--assumeno", "switch-database", "--root", root.string()};
    r = run_installer(with(global, asking));
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("switch cancelled: nothing was changed"));
    EXPECT_FALSE(ext->database_exists("wanted"));
    EXPECT_EQ(state(), before);
    // -y and --assumeno contradict each other.
    r = switch_db(with(asking, {"--assumeno", "-y"}));
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_EQ(state(), before);
    // -y before the command answers yes (it used to be dropped, and the switch then asked
    // for a terminal it did not have).
    global[0] = "-y";
    r = run_installer(with(global, asking));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(ext->database_exists("wanted"));
}

// --assumeno before the command and --skip_confirmation (or -y, --assumeyes) after it
// contradict each other as they do when both follow it: a usage error, nothing changed
// (the "no" given first must never turn into a switch made without asking).
TEST_F(SwitchDatabase, AssumenoBeforeTheCommandAndSkipConfirmationAfterItAreAUsageErrorAndChangeNothing) {
    const auto before = state();
    for (const char* yes : {"--skip_confirmation", "--skip-confirmation", "-y", "--assumeyes"}) {
        auto asking = to("new", "wanted");
        asking.back() = yes;  // in place of --skip_confirmation
        std::vector<std::string> global{"--assumeno", "switch-database", "--root", root.string()};
        auto r = run_installer(with(global, asking));
        EXPECT_EQ(r.exit_code, 2) << yes << ": " << r.out << r.err;
        EXPECT_THAT(r.err, HasSubstr("--assumeno")) << yes;
        EXPECT_THAT(r.out, Not(HasSubstr("==> "))) << yes << ": it began the switch";
        EXPECT_FALSE(ext->database_exists("wanted")) << yes;
        EXPECT_EQ(state(), before) << yes;
    }
    // The other way round (-y before, --assumeno after) was already refused: still is.
    auto asking = to("new", "wanted");
    asking.back() = "--assumeno";
    auto r = run_installer(with({"-y", "switch-database", "--root", root.string()}, asking));
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_FALSE(ext->database_exists("wanted"));
    EXPECT_EQ(state(), before);
}

// --assumeno with the password on the command line: the plan it shows, the log and every
// file it leaves name no password.
TEST_F(SwitchDatabase, AssumenoWithThePasswordInArgvShowsNoSecret) {
    auto asking = to("new", "wanted");
    asking.pop_back();  // --skip_confirmation
    const auto at = std::find(asking.begin(), asking.end(), std::string("--password_file"));
    ASSERT_NE(at, asking.end());
    *at = "--password";
    *(at + 1) = k_password;
    auto r = run_installer(with({"--assumeno", "switch-database", "--root", root.string()}, asking));
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("[y/N]: no (--assumeno)"));
    EXPECT_THAT(r.out + r.err, Not(HasSubstr(k_password)));
    EXPECT_THAT(everything_written(), Not(HasSubstr(k_password)));
    EXPECT_FALSE(ext->database_exists("wanted"));
}

TEST_F(SwitchDatabase, InvalidFlagsAreOneLineExitTwoAndChangeNothing) {
    const auto before = state();
    auto port = [&](const std::string& p) {
        auto a = to("new", "d");
        a[7] = p;
        return a;
    };
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
        {port("0"), "--port '0': expected a TCP port from 1 to 65535"},
        {port("70000"), "--port '70000': expected a TCP port from 1 to 65535"},
        {port("54x"), "--port '54x': expected a TCP port from 1 to 65535"},
        {{"--to_external", "copy_to_existing", "--db_vendor", "postgres", "--db_host", "h", "--db_name", "d",
          "--username", "u"},
         "copy_to_existing works with --db_vendor azuresql only"},
        {{"--to_external", "new", "--db_vendor", "oracle", "--db_host", "h", "--db_name", "d", "--username", "u"},
         "--db_vendor 'oracle': expected postgres, mssqlserver or azuresql"},
        {{"--to_external", "new", "--db_name", "d", "--username", "u"}, "--to_external new needs --db_host"},
        {{"--to_internal", "--db_host", "h"}, "--db_host applies only to --to_external"},
        {{"--show_current", "--to_internal"}, "give exactly one of --show_current, --to_internal, --to_external"},
        {{"--to_external", "sometimes"}, "--to_external 'sometimes': expected new, existing or copy_to_existing"},
        {{"--password", "x", "--password_file", "y", "--to_internal"}, "excludes"},
        {{"--to_internal", "--password_file", "/nonexistent"}, "--password_file applies only to --to_external"},
        {{"--to_external", "new", "--db_host", "127.0.0.1:5432", "--db_name", "d", "--username", "u"},
         "--db_host '127.0.0.1:5432' is not a host name or address (give the port with --port)"},
        {{"--to_external", "new", "--db_host", "h", "--db_name", "d", "--username", "u", "--password_file",
          "/nonexistent/pw"},
         "--password_file /nonexistent/pw: cannot read /nonexistent/pw"},
    };
    for (const auto& [args, message] : cases) {
        auto r = switch_db(args);
        EXPECT_EQ(r.exit_code, 2) << message << ": " << r.err;
        EXPECT_THAT(r.err, HasSubstr(message));
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
        EXPECT_EQ(r.out, "");
    }
    // The subcommand spelling takes the same flags.
    auto sub = run_installer({"switch-database", "--root", root.string(), "--to_external", "new", "--port", "0"});
    EXPECT_EQ(sub.exit_code, 2);
    EXPECT_EQ(state(), before);
}

TEST_F(SwitchDatabase, ExistingFollowsTheAllowRemoteUpgradeRules) {
    broker_schema("older", "9.0.0.1");
    const auto before = state();
    auto r = switch_db(to("existing", "older"));
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("9.0.0.1"));
    EXPECT_THAT(r.err, HasSubstr("9.0.0.2"));
    EXPECT_THAT(r.err, HasSubstr("--allow_remote_upgrade"));
    EXPECT_EQ(ext_schema("older"), std::optional<std::string>("9.0.0.1"));
    EXPECT_EQ(state(), before);

    r = switch_db(with(to("existing", "older"), {"--allow_remote_upgrade"}));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("applied V9.0.0.2__default_settings.sql"));
    EXPECT_EQ(ext_schema("older"), std::optional<std::string>("9.0.0.2"));
    EXPECT_THAT(leo::fs::read_file(root / "etc/leostream/database.conf"), HasSubstr("name = older"));

    // A database newer than this broker: always refused, even with the flag.
    broker_schema("newer", "9.1.0.2");
    const auto before_newer = state();
    r = switch_db(with(to("existing", "newer"), {"--allow_remote_upgrade"}));
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_THAT(r.err, HasSubstr("newer"));
    EXPECT_EQ(state(), before_newer);

    // The same schema: connects, nothing to migrate (a password change is stored again).
    broker_schema("same", "9.0.0.2");
    r = switch_db(to("existing", "same"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr("applied")));
}

TEST_F(SwitchDatabase, AFailedCopyIsUndone) {
    // An empty database broker may connect to but not create tables in (PostgreSQL 15:
    // no CREATE on schema public for non-owners): the restore fails after the switch began.
    ext->create_database("locked", "leo");
    auto r = switch_db(to("new", "locked"));
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("pg_restore"));
    EXPECT_THAT(r.err, HasSubstr("permission denied for schema public")) << "pg_restore's reason, not its last line";
    EXPECT_THAT(r.err, HasSubstr("the broker still uses the internal database"));
    EXPECT_FALSE(stdfs::exists(root / "etc/leostream/database.conf"));
    EXPECT_TRUE(ext_checksums("locked").empty()) << "the failed copy left objects behind";
    EXPECT_EQ(services_log(), "stop\nstart\n") << "the components are started again";
    // The journal records the run as ended: the next switch is not blocked.
    r = switch_db(to("new", "fresh"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(SwitchDatabase, KilledAfterTheCopyRecoverDropsTheNewDatabase) {
    ASSERT_TRUE(killed_at("switch.after_copy", to("new", "half")));
    ASSERT_TRUE(ext->database_exists("half"));
    auto blocked = switch_db(to("new", "other"));
    EXPECT_EQ(blocked.exit_code, 3) << "an unfinished run blocks the next one: " << blocked.err;
    EXPECT_THAT(blocked.err, HasSubstr("recover"));

    auto rec = run_installer({"recover", "--root", root.string(), "-y"});
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_THAT(rec.out, HasSubstr("undone"));
    EXPECT_FALSE(ext->database_exists("half"));
    EXPECT_FALSE(stdfs::exists(root / "etc/leostream/database.conf"));
    EXPECT_EQ(services_log(), "stop\nstart\n");
    auto second = run_installer({"recover", "--root", root.string(), "-y"});
    EXPECT_THAT(second.out, HasSubstr("nothing to recover"));
}

TEST_F(SwitchDatabase, SignalAfterTheCopyUndoesTheSwitchAndSaysSo) {
    for (int sig : {SIGINT, SIGTERM}) {
        leo::subprocess::Options at_step;
        at_step.env["LEO_FAULT_INJECT"] = "switch.after_copy";
        at_step.env["LEO_FAULT_SIGNAL"] = std::to_string(sig);
        const auto r = switch_db(to("new", "half"), at_step);
        EXPECT_EQ(r.signal, 0) << r.err;
        EXPECT_EQ(r.exit_code, 128 + sig) << r.out << r.err;
        EXPECT_THAT(r.err, HasSubstr("interrupted by"));
        EXPECT_THAT(r.err, HasSubstr("dropped the new database"));
        EXPECT_FALSE(ext->database_exists("half"));
        EXPECT_FALSE(stdfs::exists(root / "etc/leostream/database.conf"));
        auto rec = run_installer({"recover", "--dry-run", "--root", root.string()});
        EXPECT_THAT(rec.out, HasSubstr("nothing to recover"));
    }
    EXPECT_EQ(services_log(), "stop\nstart\nstop\nstart\n");
}

TEST_F(SwitchDatabase, SignalAfterTheEndLetsTheSwitchReportAndSaysItCompleted) {
    // The journal's end is not the end of the process: the report still has to be printed.
    leo::subprocess::Options at_end;
    at_end.env["LEO_FAULT_INJECT"] = "switch.after_end";
    at_end.env["LEO_FAULT_SIGNAL"] = std::to_string(SIGHUP);
    const auto r = switch_db(to("new", "finished"), at_end);
    EXPECT_EQ(r.signal, 0) << r.err;
    EXPECT_EQ(r.exit_code, 128 + SIGHUP) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("SIGHUP received"));
    EXPECT_THAT(r.err, HasSubstr("had completed what it was doing; nothing was undone"));
    EXPECT_TRUE(ext->database_exists("finished"));
    EXPECT_THAT(leo::fs::read_file(root / "etc/leostream/database.conf"), HasSubstr("name = finished"));
    auto rec = run_installer({"recover", "--dry-run", "--root", root.string()});
    EXPECT_THAT(rec.out, HasSubstr("nothing to recover"));
}

TEST_F(SwitchDatabase, KilledAfterTheRecordRecoverFinishesIt) {
    ASSERT_TRUE(killed_at("switch.after_record", to("new", "done")));
    EXPECT_EQ(services_log(), "stop\n");
    auto rec = run_installer({"recover", "--root", root.string(), "-y"});
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_THAT(rec.out, HasSubstr("finished"));
    EXPECT_TRUE(ext->database_exists("done"));
    EXPECT_THAT(leo::fs::read_file(root / "etc/leostream/database.conf"), HasSubstr("name = done"));
    EXPECT_EQ(services_log(), "stop\nstart\n");
}

TEST_F(SwitchDatabase, CrashAfterTheConfigurationWasWrittenButNotJournaledIsUndoneWhole) {
    ASSERT_TRUE(killed_at("switch.after_record", to("new", "torn")));
    // Power lost before the journal's "record done" reached the disk: drop that line.
    const auto journal = root / "var/lib/leo-installer/journal";
    auto text = leo::fs::read_file(journal);
    const auto last = text.rfind("\"step\":\"record\"");
    ASSERT_NE(last, std::string::npos);
    const auto line_start = text.rfind('\n', last) + 1;
    ASSERT_NE(text.find("\"state\":\"done\"", line_start), std::string::npos);
    text.erase(line_start);
    std::ofstream(journal, std::ios::trunc) << text;
    ASSERT_TRUE(stdfs::exists(root / "etc/leostream/database.conf"));

    auto rec = run_installer({"recover", "--root", root.string(), "-y"});
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_THAT(rec.out, HasSubstr("put database.conf back"));
    EXPECT_FALSE(stdfs::exists(root / "etc/leostream/database.conf")) << "database.conf names a dropped database";
    EXPECT_FALSE(ext->database_exists("torn"));
}

TEST_F(SwitchDatabase, KeyFileTroubles) {
    // A database holding only types is not empty.
    ext->create_database("typed", "broker");
    ext->admin("typed").exec("CREATE TYPE mood AS ENUM ('happy', 'sad'); CREATE DOMAIN posint AS int CHECK (VALUE > 0)");
    auto r = switch_db(to("new", "typed"));
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_THAT(r.err, HasSubstr("is not empty (2 objects)"));

    // A key file that is not a key: refused before the run begins, nothing left unfinished.
    stdfs::create_directories(root / "etc/leostream");
    std::ofstream(root / "etc/leostream/database.key") << "garbage\n";
    const auto before = state();
    r = switch_db(to("new", "keyed"));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("is not a database key file"));
    EXPECT_THAT(r.err, HasSubstr("remove it"));
    EXPECT_THAT(r.err, Not(HasSubstr("garbage")));
    EXPECT_FALSE(ext->database_exists("keyed"));
    EXPECT_EQ(state(), before);
    stdfs::remove(root / "etc/leostream/database.key");

    // The key lost after a switch: show, switch back, or store the password again.
    ASSERT_EQ(switch_db(to("new", "keyed")).exit_code, 0);
    stdfs::remove(root / "etc/leostream/database.key");
    auto show = switch_db({"--show_current"});
    EXPECT_EQ(show.exit_code, 0) << show.err;
    EXPECT_THAT(show.out, HasSubstr("cannot be decrypted"));
    auto status = run_installer({"status", "--root", root.string()});
    EXPECT_THAT(status.out, HasSubstr("database in use:  postgres broker@127.0.0.1"));
    r = switch_db(to("existing", "keyed"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    show = switch_db({"--show_current"});
    EXPECT_THAT(show.out, HasSubstr("********"));
    stdfs::remove(root / "etc/leostream/database.key");
    r = switch_db({"--to_internal", "--skip_confirmation"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(SwitchDatabase, AnotherRunHoldingTheLockIsRefusedBeforeAnyCheck) {
    const auto lock = root / "var/lib/leo-installer";  // the run lock: an flock on the state directory
    auto holder = leo::subprocess::Options{};
    // flock(1) holds the run lock for a moment, as a running upgrade would.
    std::thread t([&] { (void)leo::subprocess::run({"flock", "-x", lock.string(), "sleep", "4"}, holder); });
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    auto r = switch_db(to("new", "blocked"));
    t.join();
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_FALSE(ext->database_exists("blocked"));
}

TEST_F(SwitchDatabase, RecoverDropsOnlyWhatTheCopyMade) {
    // Killed after copying into an existing empty database; then someone else's table
    // appears there. recover drops the copy's objects and nothing else.
    ext->create_database("pre", "broker");
    ASSERT_TRUE(killed_at("switch.after_copy", to("new", "pre")));
    ASSERT_FALSE(ext_checksums("pre").empty());
    ext->admin("pre").exec("CREATE TABLE theirs (id int); INSERT INTO theirs VALUES (42)");
    auto rec = run_installer({"recover", "--root", root.string(), "-y"});
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_THAT(rec.out, HasSubstr("objects the copy made"));
    const auto left = ext_checksums("pre");
    ASSERT_EQ(left.size(), 1u) << "only the other table is left";
    EXPECT_EQ(left.begin()->first, "theirs");
    EXPECT_EQ(services_log(), "stop\nstart\n");
}

TEST_F(SwitchDatabase, RecoverWithoutTheKeyEndsTheRunAndSaysWhatIsLeft) {
    ASSERT_TRUE(killed_at("switch.after_copy", to("new", "orphan")));
    stdfs::remove(root / "etc/leostream/database.key");
    auto rec = run_installer({"recover", "--root", root.string(), "-y"});
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_THAT(rec.out, HasSubstr("drop that database yourself"));
    EXPECT_EQ(services_log(), "stop\nstart\n") << "the components run again";
    auto again = run_installer({"recover", "--root", root.string(), "-y"});
    EXPECT_THAT(again.out, HasSubstr("nothing to recover"));
    EXPECT_EQ(switch_db(to("new", "after")).exit_code, 0) << "the next switch is not blocked";
}

} // namespace
