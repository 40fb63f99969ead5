// `setting` and `db purge` through the real binary on a sandbox root with the broker
// installed (real PostgreSQL, real rpm): every subcommand both ways, the questions (-y,
// --assumeno, a terminal answered y and n, no terminal), bad words refused with the
// database unchanged, the REST API's 8 GB refusal with --facts, the SSL certificate, the
// purge with its restore point, its refusal on an external database, and its recovery
// after a crash.
#include "broker_runs.hpp"
#include "maintenance_support.hpp"

#include "leo/installer/database_config.hpp"
#include "leo/installer/settings.hpp"

#include <fstream>
#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;
using leo::test::runs::contains;
using leo::test::runs::k_old;

/// What snapshot_tree leaves out (as in test_habits.cpp): the log, the running database's
/// own files, the run lock's holder file, the rpmdb's shared-memory index.
const std::vector<std::string> k_volatile{"var/log", "home/leo/pgsql", "var/lib/leo-installer/lock",
                                          "var/lib/rpm/rpmdb.sqlite-shm", "home/leo/logs", "home/leo/run", "run"};

class Settings : public leo::test::runs::Broker {
protected:
    void TearDown() override {
        (void)run_installer(args({"service", "stop"}));
        Broker::TearDown();
    }
    leo::migrations::Connection connect() {
        leo::migrations::InternalDatabase db(root);
        if (db.status().state != leo::migrations::DbState::running) db.start();
        return leo::migrations::Connection::open(db.conninfo());
    }
    /// The settings table, "name=value" lines in name order.
    std::string rows() {
        auto conn = connect();
        const auto r = conn.query("SELECT name, value FROM settings ORDER BY name");
        std::string out;
        for (size_t i = 0; i < r.rows.size(); ++i) out += r.at(i, 0) + "=" + r.at(i, 1) + "\n";
        return out;
    }
    std::optional<std::string> row(const std::string& name) {
        auto conn = connect();
        const auto r = conn.query("SELECT value FROM settings WHERE name = $1", {name});
        if (r.empty()) return std::nullopt;
        return r.at(0, 0);
    }
    nlohmann::json show() {
        auto r = run_installer(args({"setting", "show", "--json"}));
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        return nlohmann::json::parse(r.out);
    }
    /// A saved `facts --json` of this host with MemTotal set to `kib` and the installed
    /// memory unknown (so MemTotal alone decides).
    stdfs::path facts_with_memory(std::uint64_t kib) { return leo::test::facts_with_memory(root, tmp.path(), kib); }
    void plant_certificate() {
        const auto dir = root / "home/leo/etc/ssl";
        stdfs::create_directories(dir);
        std::ofstream(dir / "broker.crt") << "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        std::ofstream(dir / "broker.key") << "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
    }
};

TEST_F(Settings, ShowListsEveryRowWithItsDefault) {
    const auto j = show();
    EXPECT_EQ(j["database"], "the internal database");
    EXPECT_EQ(j["external"], false);
    // V9.0.0.2 stores upgrades_enabled and rest_api_enabled; the others read as defaults.
    EXPECT_EQ(j["settings"]["upgrades_enabled"]["value"], "true");
    EXPECT_EQ(j["settings"]["upgrades_enabled"]["stored"], true);
    EXPECT_EQ(j["settings"]["upgrades_enabled"]["enabled"], true);
    EXPECT_EQ(j["settings"]["rest_api_enabled"]["enabled"], false);
    EXPECT_EQ(j["settings"]["debug"]["value"], "false");
    EXPECT_EQ(j["settings"]["debug"]["stored"], false);
    EXPECT_EQ(j["settings"]["admin_login_enabled"]["enabled"], true);
    EXPECT_EQ(j["settings"]["cipher_suite"]["value"], leo::installer::k_default_cipher_suite);
    EXPECT_EQ(j["ssl_certificate"]["installed"], false);
    auto text = run_installer(args({"setting", "show"}));
    ASSERT_EQ(text.exit_code, 0) << text.err;
    EXPECT_TRUE(contains(text.out, "debug                off (default: no row)")) << text.out;
    EXPECT_TRUE(contains(text.out, "upgrades_enabled     enabled\n")) << text.out;
    EXPECT_TRUE(contains(text.out, "ssl_certificate      not installed")) << text.out;
}

TEST_F(Settings, EachBooleanBothWays) {
    struct Case {
        const char* word;
        const char* on;
        const char* off;
        const char* row;
    };
    for (const Case c : {Case{"debug", "on", "off", "debug"}, Case{"upgrades", "enable", "disable", "upgrades_enabled"},
                         Case{"admin-login", "enable", "disable", "admin_login_enabled"},
                         Case{"rest-api", "enable", "disable", "rest_api_enabled"}}) {
        SCOPED_TRACE(c.word);
        std::vector<std::string> on{"setting", c.word, c.on, "-y"};
        if (std::string(c.word) == "rest-api") {
            on.push_back("--facts");
            on.push_back(facts_with_memory(16ULL * 1024 * 1024).string());
        }
        auto r = run_installer(args(on));
        // debug and admin-login: the first write inserts the row (upgrades: already true).
        ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
        EXPECT_EQ(row(c.row), "true");
        auto off = run_installer(args({"setting", c.word, c.off, "-y"}));
        ASSERT_EQ(off.exit_code, 0) << off.out << off.err;
        EXPECT_EQ(row(c.row), "false");
        EXPECT_EQ(show()["settings"][c.row]["enabled"], false);
        // Again: nothing to change, nothing asked (no -y, no terminal).
        auto again = run_installer(args({"setting", c.word, c.off}));
        EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
        EXPECT_TRUE(contains(again.out, "is already")) << again.out;
    }
    auto debug_on = run_installer(args({"setting", "debug", "on", "-y"}));
    EXPECT_TRUE(contains(debug_on.out, "debug mode: on (settings.debug = 'true')")) << debug_on.out;
    // The upgrade gate reads the row `upgrades disable` writes.
    ASSERT_EQ(row("upgrades_enabled"), "false");
    auto up = run_installer(args({"upgrade", "-y"}));
    EXPECT_EQ(up.exit_code, 3) << up.out << up.err;
    EXPECT_TRUE(contains(up.err, "broker upgrades are disabled")) << up.err;
}

TEST_F(Settings, AsksWithoutYesAndChangesNothingWhenNotAllowed) {
    const auto before = rows();
    auto no_tty = run_installer(args({"setting", "debug", "on"}));
    EXPECT_EQ(no_tty.exit_code, 3) << no_tty.out << no_tty.err;
    EXPECT_TRUE(contains(no_tty.err, "no terminal to ask for confirmation on; pass -y")) << no_tty.err;
    auto no = run_installer(args({"setting", "upgrades", "disable", "--assumeno"}));
    EXPECT_EQ(no.exit_code, 3) << no.out << no.err;
    EXPECT_TRUE(contains(no.out, "Change broker upgrades from enabled to disabled? [y/N]: no (--assumeno)")) << no.out;
    EXPECT_TRUE(contains(no.err, "setting cancelled: nothing was changed")) << no.err;
    {
        auto t = leo::test::runs::start_on_terminal(args({"setting", "admin-login", "disable"}));
        ASSERT_TRUE(t.read_until("[y/N]: ")) << t.seen;
        EXPECT_TRUE(contains(t.seen, "Change the default admin login from enabled to disabled?")) << t.seen;
        ASSERT_EQ(::write(t.master, "n\n", 2), 2);
        EXPECT_EQ(t.wait_exit(), 3) << t.seen;
    }
    EXPECT_EQ(rows(), before);
    {
        auto t = leo::test::runs::start_on_terminal(args({"setting", "admin-login", "disable"}));
        ASSERT_TRUE(t.read_until("[y/N]: ")) << t.seen;
        ASSERT_EQ(::write(t.master, "y\n", 2), 2);
        EXPECT_EQ(t.wait_exit(), 0) << t.seen;
    }
    EXPECT_EQ(row("admin_login_enabled"), "false");
}

TEST_F(Settings, BadWordsAreRefusedAndChangeNothing) {
    const auto before = rows();
    const auto tree = leo::test::snapshot_tree(root, k_volatile);
    struct Case {
        std::vector<std::string> argv;
        const char* message;
    };
    const std::vector<Case> cases{
        {{"setting", "colour", "on", "-y"},
         "unknown setting 'colour': expected one of show, debug, upgrades, admin-login, rest-api, ssl-certificate, "
         "cipher-suite; nothing was changed"},
        {{"setting", "debug", "maybe", "-y"}, "`setting debug` takes on or off, not 'maybe'; nothing was changed"},
        {{"setting", "debug", "-y"}, "`setting debug` takes on or off, not nothing; nothing was changed"},
        {{"setting", "upgrades", "on", "-y"}, "`setting upgrades` takes enable or disable, not 'on'"},
        {{"setting", "cipher-suite", "RC4-MD5", "-y"}, "`setting cipher-suite` takes default, not 'RC4-MD5'"},
        {{"setting", "ssl-certificate", "install", "-y"}, "`setting ssl-certificate` takes uninstall, not 'install'"},
        {{"setting", "show", "all"}, "`setting show` takes no other word (got 'all')"},
        {{"setting", "debug", "on", "-y", "--facts", "/nonexistent"},
         "--facts FILE is read by `setting rest-api enable` only"},
    };
    for (const auto& c : cases) {
        auto r = run_installer(args(c.argv));
        EXPECT_EQ(r.exit_code, 2) << c.argv[1] << ": " << r.out << r.err;
        EXPECT_TRUE(contains(r.err, c.message)) << r.err;
    }
    EXPECT_EQ(rows(), before);
    EXPECT_EQ(leo::test::snapshot_tree(root, k_volatile), tree);
}

TEST_F(Settings, RestApiNeedsEightGigabytes) {
    const auto before = rows();
    auto small = run_installer(args({"setting", "rest-api", "enable", "-y", "--facts",
                                     facts_with_memory(4ULL * 1024 * 1024).string()}));
    EXPECT_EQ(small.exit_code, 3) << small.out << small.err;
    EXPECT_TRUE(contains(small.err, "the REST API cannot be enabled on this host: memory: 4.0 GiB MemTotal")) << small.err;
    EXPECT_TRUE(contains(small.err, "the REST API needs >= 8 GB RAM")) << small.err;
    EXPECT_TRUE(contains(small.err, "nothing was changed")) << small.err;
    EXPECT_EQ(rows(), before);
    // A --facts file that is not facts: a usage error naming it, nothing changed.
    const auto bad = tmp.path() / "bad.json";
    std::ofstream(bad) << "{\"not\": \"facts\"}";
    auto unreadable = run_installer(args({"setting", "rest-api", "enable", "-y", "--facts", bad.string()}));
    EXPECT_EQ(unreadable.exit_code, 2) << unreadable.err;
    EXPECT_TRUE(contains(unreadable.err, "--facts " + bad.string())) << unreadable.err;
    EXPECT_EQ(rows(), before);
    auto big = run_installer(args({"setting", "rest-api", "enable", "-y", "--facts",
                                   facts_with_memory(8ULL * 1024 * 1024).string()}));
    EXPECT_EQ(big.exit_code, 0) << big.out << big.err;
    EXPECT_EQ(row("rest_api_enabled"), "true");
    // Disabling needs no memory (the menu passes its --facts to both).
    auto off = run_installer(args({"setting", "rest-api", "disable", "-y", "--facts",
                                   facts_with_memory(1024 * 1024).string()}));
    EXPECT_EQ(off.exit_code, 0) << off.out << off.err;
    EXPECT_EQ(row("rest_api_enabled"), "false");
}

TEST_F(Settings, SslCertificateUninstall) {
    const auto tree = leo::test::snapshot_tree(root, k_volatile);
    auto none = run_installer(args({"setting", "ssl-certificate", "uninstall", "-y"}));
    EXPECT_EQ(none.exit_code, 3) << none.out << none.err;
    EXPECT_TRUE(contains(none.err, "no SSL certificate is installed (" +
                                       (root / "home/leo/etc/ssl/broker.crt").string() + " does not exist)"))
        << none.err;
    EXPECT_EQ(leo::test::snapshot_tree(root, k_volatile), tree);

    plant_certificate();
    EXPECT_EQ(show()["ssl_certificate"]["installed"], true);
    auto no = run_installer(args({"setting", "ssl-certificate", "uninstall", "--assumeno"}));
    EXPECT_EQ(no.exit_code, 3) << no.out << no.err;
    EXPECT_TRUE(stdfs::exists(root / "home/leo/etc/ssl/broker.crt"));
    EXPECT_TRUE(stdfs::exists(root / "home/leo/etc/ssl/broker.key"));

    // The web server runs: it is restarted.
    auto start = run_installer(args({"service", "start", "httpd"}));
    ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
    auto r = run_installer(args({"setting", "ssl-certificate", "uninstall", "-y"}));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "removed " + (root / "home/leo/etc/ssl/broker.crt").string())) << r.out;
    EXPECT_TRUE(contains(r.out, "removed " + (root / "home/leo/etc/ssl/broker.key").string())) << r.out;
    EXPECT_TRUE(contains(r.out, "stopped the web server")) << r.out;
    EXPECT_TRUE(contains(r.out, "started the web server")) << r.out;
    EXPECT_FALSE(stdfs::exists(root / "home/leo/etc/ssl/broker.crt"));
    EXPECT_FALSE(stdfs::exists(root / "home/leo/etc/ssl/broker.key"));
    auto st = run_installer(args({"service", "status", "httpd"}));
    EXPECT_EQ(st.exit_code, 0) << "the web server runs again: " << st.out;
    EXPECT_EQ(show()["ssl_certificate"]["installed"], false);
}

TEST_F(Settings, CipherSuiteBackToDefault) {
    {
        auto conn = connect();
        conn.exec("INSERT INTO settings (name, value) VALUES ('cipher_suite', 'RC4-MD5')");
    }
    auto r = run_installer(args({"setting", "cipher-suite", "default", "-y"}));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(row("cipher_suite"), leo::installer::k_default_cipher_suite);
    EXPECT_TRUE(contains(r.out, "is not running: it uses the change when it starts")) << r.out;
    auto again = run_installer(args({"setting", "cipher-suite", "default"}));
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_TRUE(contains(again.out, "the cipher suite is already")) << again.out;
}

TEST_F(Settings, MissingTableIsRefused) {
    {
        auto conn = connect();
        conn.exec("DROP TABLE settings");
    }
    for (const std::vector<std::string>& argv :
         {std::vector<std::string>{"setting", "debug", "on", "-y"}, std::vector<std::string>{"setting", "show"}}) {
        auto r = run_installer(args(argv));
        EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
        EXPECT_TRUE(contains(r.err, "the broker database has no settings table")) << r.err;
        EXPECT_TRUE(contains(r.err, "leo-installer migrate")) << r.err;
    }
    auto conn = connect();
    EXPECT_TRUE(conn.query("SELECT 1 FROM pg_class WHERE relname = 'settings'").empty()) << "not created behind our back";
}

using Purge = Settings;

TEST_F(Purge, EmptiesToAFreshSchemaAfterARestorePoint) {
    {
        auto conn = connect();
        conn.exec("INSERT INTO work_queue (site_id, job_type) VALUES (1, 'provision'), (1, 'rebuild')");
        conn.exec("UPDATE settings SET value = 'false' WHERE name = 'upgrades_enabled'");
        conn.exec("INSERT INTO settings (name, value) VALUES ('debug', 'true')");
        conn.exec("CREATE TABLE admin_notes (note text)");
    }
    const auto fresh_history = [&] {
        auto conn = connect();
        const auto h = conn.query("SELECT string_agg(version, ',' ORDER BY installed_rank) FROM leo_schema_history");
        return h.at(0, 0);
    }();
    // Refusals first: no terminal, --assumeno; nothing changed.
    const auto checksums = leo::test::table_checksums(root);
    auto no_tty = run_installer(args({"db", "purge"}));
    EXPECT_EQ(no_tty.exit_code, 3) << no_tty.out << no_tty.err;
    EXPECT_TRUE(contains(no_tty.err, "no terminal to ask for confirmation on")) << no_tty.err;
    auto no = run_installer(args({"db", "purge", "--assumeno"}));
    EXPECT_EQ(no.exit_code, 3) << no.out << no.err;
    EXPECT_TRUE(contains(no.out, "Purge the internal database of " + root.string())) << no.out;
    EXPECT_TRUE(contains(no.err, "db purge cancelled: nothing was changed")) << no.err;
    EXPECT_EQ(leo::test::table_checksums(root), checksums);
    auto wrong = run_installer(args({"db", "start", "-y"}));
    EXPECT_EQ(wrong.exit_code, 2) << wrong.err;
    EXPECT_TRUE(contains(wrong.err, "-y/--assumeyes and --assumeno are for `db purge`")) << wrong.err;

    auto r = run_installer(args({"db", "purge", "-y"}));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "taking a restore point")) << r.out;
    EXPECT_TRUE(contains(r.out, "purged the internal database: schema ")) << r.out;
    {
        auto conn = connect();
        EXPECT_EQ(conn.query("SELECT count(*) FROM work_queue").at(0, 0), "0");
        EXPECT_TRUE(conn.query("SELECT 1 FROM pg_class WHERE relname = 'admin_notes'").empty());
        EXPECT_EQ(conn.query("SELECT string_agg(version, ',' ORDER BY installed_rank) FROM leo_schema_history").at(0, 0),
                  fresh_history);
        EXPECT_EQ(conn.query("SELECT name FROM sites").at(0, 0), "default");
    }
    EXPECT_EQ(row("upgrades_enabled"), "true");
    EXPECT_EQ(row("debug"), std::nullopt);
    auto hist = run_installer(args({"history", "info", "last"}));
    EXPECT_TRUE(contains(hist.out, "db-purge")) << hist.out;
    EXPECT_TRUE(contains(hist.out, "Result        : ok")) << hist.out;

    // The restore point holds what the purge removed: a rollback brings it back.
    auto list = run_installer(args({"snapshot", "list", "--json"}));
    ASSERT_EQ(list.exit_code, 0) << list.err;
    const auto points = nlohmann::json::parse(list.out);
    std::string id;
    for (const auto& p : points)
        if (p["reason"] == "before db purge") id = p["id"];
    ASSERT_FALSE(id.empty()) << list.out;
    auto rb = run_installer(args({"rollback", id, "-y"}));
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_EQ(connect().query("SELECT count(*) FROM work_queue").at(0, 0), "2");
    EXPECT_EQ(row("debug"), "true");
}

TEST_F(Purge, RefusedOnAnExternalDatabase) {
    leo::installer::DatabaseConfig cfg;
    cfg.mode = leo::installer::DatabaseMode::external;
    cfg.external.host = "db.example.com";
    cfg.external.dbname = "leo";
    cfg.external.username = "broker";
    cfg.external.password = "s3cret-purge";
    leo::installer::save_database_config(root, cfg);
    const auto tree = leo::test::snapshot_tree(root, k_volatile);
    const auto checksums = leo::test::table_checksums(root);
    auto r = run_installer(args({"db", "purge", "-y"}));
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "db purge empties the internal database only, and this broker uses the external "
                                "database postgres broker@db.example.com:5432/leo"))
        << r.err;
    EXPECT_TRUE(contains(r.err, "leo-installer switch-database --to_internal")) << r.err;
    EXPECT_FALSE(contains(r.err + r.out, "s3cret-purge"));
    EXPECT_EQ(leo::test::snapshot_tree(root, k_volatile), tree);
    EXPECT_EQ(leo::test::table_checksums(root), checksums);
}

TEST_F(Purge, RecoverAfterACrashReturnsToTheRestorePoint) {
    {
        auto conn = connect();
        conn.exec("INSERT INTO work_queue (site_id, job_type) VALUES (1, 'provision')");
    }
    const auto checksums = leo::test::table_checksums(root);
    leo::subprocess::Options faulty;
    faulty.env["LEO_FAULT_INJECT"] = "db_purge.after_drop";
    auto crashed = run_installer(args({"db", "purge", "-y"}), faulty);
    ASSERT_EQ(crashed.signal, 9) << "the fault point was not reached: " << crashed.out << crashed.err;
    auto refused = run_installer(args({"setting", "debug", "on", "-y"}));
    EXPECT_EQ(refused.exit_code, 3) << refused.out << refused.err;
    EXPECT_TRUE(contains(refused.err, "recover")) << refused.err;
    auto plan = run_installer(args({"recover", "--dry-run"}));
    EXPECT_TRUE(contains(plan.out, "the db purge stopped")) << plan.out << plan.err;
    auto rec = run_installer(args({"recover", "-y"}));
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_EQ(leo::test::table_checksums(root), checksums);
    EXPECT_EQ(leo::test::rpm_query(root, "leostream-broker").out, k_old + "\n");
}

/// The running example broker (leostream-broker.spec) reports in GET /health the settings
/// it acts on: the rows it reads on each request, and the certificate and cipher suite its
/// web server took when it started.
class RunningBroker : public leo::test::maintenance::Maintenance {
protected:
    void TearDown() override {
        (void)run_installer(args({"service", "stop"}));
        Maintenance::TearDown();
    }
    /// The /health answer once `done` holds for it (60 s); the last answer otherwise.
    nlohmann::json health_when(const std::function<bool(const nlohmann::json&)>& done) {
        leo::test::maintenance::HealthAnswer h;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        for (;;) {
            h = leo::test::maintenance::get_health(port);
            const auto j = h.json();
            if (h.status == 200 && j.is_object() && done(j)) return j;
            if (std::chrono::steady_clock::now() >= deadline) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        ADD_FAILURE() << "the broker's /health never showed the change: " << h;
        return h.json();
    }
    void ok(const std::vector<std::string>& a) {
        const auto r = run_installer(args(a));
        ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    }
};

TEST_F(RunningBroker, SeesEachSettingTheCommandsChange) {
    const auto ssl = root / "home/leo/etc/ssl";
    stdfs::create_directories(ssl);
    std::ofstream(ssl / "broker.crt") << "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    std::ofstream(ssl / "broker.key") << "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
    {
        leo::migrations::InternalDatabase db(root);
        if (db.status().state != leo::migrations::DbState::running) db.start();
        auto conn = leo::migrations::Connection::open(db.conninfo());
        conn.exec("DELETE FROM settings WHERE name = 'cipher_suite'");
        conn.exec("INSERT INTO settings (name, value) VALUES ('cipher_suite', 'RC4-MD5')");
    }
    ok({"service", "start", "httpd"});
    auto h = health_when([](const nlohmann::json& j) { return j.contains("tls"); });
    EXPECT_EQ(h["tls"]["certificate"], "installed") << h.dump();
    EXPECT_EQ(h["tls"]["cipher_suite"], "RC4-MD5") << h.dump();
    const auto pid = h["pid"];

    // Read on each request: no restart.
    ok({"setting", "debug", "on", "-y"});
    h = health_when([](const nlohmann::json& j) { return j["settings"].value("debug", "") == "true"; });
    ok({"setting", "admin-login", "disable", "-y"});
    h = health_when([](const nlohmann::json& j) { return j["settings"].value("admin_login_enabled", "") == "false"; });
    EXPECT_EQ(h["pid"], pid) << "debug and the admin login need no restart";

    // Taken at start: the commands restart the web server.
    ok({"setting", "cipher-suite", "default", "-y"});
    h = health_when([](const nlohmann::json& j) {
        return j["tls"]["cipher_suite"] == leo::installer::k_default_cipher_suite;
    });
    EXPECT_NE(h["pid"], pid) << h.dump();
    ok({"setting", "ssl-certificate", "uninstall", "-y"});
    h = health_when([](const nlohmann::json& j) { return j["tls"]["certificate"] == "default"; });
    ok({"setting", "debug", "off", "-y"});
    health_when([](const nlohmann::json& j) { return j["settings"].value("debug", "") == "false"; });
}

} // namespace
