// parse_switch_flags: every rule of switch_database.pl's command line (actions, modes, vendors, values).
#include "leo/common/error.hpp"
#include "leo/installer/switch_database.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {
using leo::installer::ExternalMode;
using leo::installer::parse_switch_flags;
using leo::installer::SwitchAction;
using leo::installer::SwitchFlags;
using leo::migrations::AllowRemoteUpgrade;
using leo::migrations::Vendor;

/// A complete, valid --to_external existing (postgres) command line.
SwitchFlags external(const std::string& mode = "existing", const std::string& vendor = "postgres") {
    SwitchFlags f;
    f.to_external = mode;
    f.db_vendor = vendor;
    f.db_host = "db.example.com";
    f.db_name = "leo";
    f.username = "broker";
    f.password_given = true;
    return f;
}

/// The message of the leo::UsageError parse_switch_flags(f) throws; a test failure otherwise.
std::string usage_error(const SwitchFlags& f) {
    try {
        (void)parse_switch_flags(f);
    } catch (const leo::UsageError& e) {
        EXPECT_EQ(e.code(), leo::ExitCode::usage);
        const std::string msg = e.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
        return msg;
    } catch (const std::exception& e) {
        ADD_FAILURE() << "expected leo::UsageError, got: " << e.what();
        return {};
    }
    ADD_FAILURE() << "expected leo::UsageError, nothing thrown";
    return {};
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(SwitchFlags, ExternalModeIds) {
    EXPECT_EQ(leo::installer::external_mode_id(ExternalMode::new_database), "new");
    EXPECT_EQ(leo::installer::external_mode_id(ExternalMode::existing), "existing");
    EXPECT_EQ(leo::installer::external_mode_id(ExternalMode::copy_to_existing), "copy_to_existing");
}

TEST(SwitchFlags, ZeroActionsRefused) {
    const auto msg = usage_error(SwitchFlags{});
    EXPECT_TRUE(has(msg, "--show_current")) << msg;
    EXPECT_TRUE(has(msg, "--to_internal")) << msg;
    EXPECT_TRUE(has(msg, "--to_external")) << msg;
    EXPECT_TRUE(has(msg, "got 0")) << msg;
}

TEST(SwitchFlags, TwoOrThreeActionsRefused) {
    SwitchFlags a;
    a.show_current = true;
    a.to_internal = true;
    auto msg = usage_error(a);
    EXPECT_TRUE(has(msg, "exactly one")) << msg;
    EXPECT_TRUE(has(msg, "got 2")) << msg;

    auto b = external();
    b.to_internal = true;
    msg = usage_error(b);
    EXPECT_TRUE(has(msg, "got 2")) << msg;

    auto c = external();
    c.show_current = true;
    c.to_internal = true;
    msg = usage_error(c);
    EXPECT_TRUE(has(msg, "got 3")) << msg;
}

TEST(SwitchFlags, ShowCurrentAndToInternal) {
    SwitchFlags s;
    s.show_current = true;
    EXPECT_EQ(parse_switch_flags(s).action, SwitchAction::show_current);
    SwitchFlags i;
    i.to_internal = true;
    i.skip_confirmation = true;
    const auto r = parse_switch_flags(i);
    EXPECT_EQ(r.action, SwitchAction::to_internal);
    EXPECT_TRUE(r.skip_confirmation);
    EXPECT_FALSE(r.site_id.has_value());
    EXPECT_EQ(r.allow_remote_upgrade, AllowRemoteUpgrade::no);
}

TEST(SwitchFlags, UnknownExternalModeRefused) {
    for (const char* mode : {"bogus", "", "New", "copy", "existing "}) {
        const auto msg = usage_error(external(mode));
        EXPECT_TRUE(has(msg, "--to_external")) << msg;
        EXPECT_TRUE(has(msg, "'" + std::string(mode) + "'")) << msg;
        EXPECT_TRUE(has(msg, "expected new, existing or copy_to_existing")) << msg;
    }
}

TEST(SwitchFlags, UnknownVendorRefused) {
    for (const char* vendor : {"oracle", "", "Postgres", "mysql"}) {
        const auto msg = usage_error(external("existing", vendor));
        EXPECT_TRUE(has(msg, "--db_vendor")) << msg;
        EXPECT_TRUE(has(msg, "'" + std::string(vendor) + "'")) << msg;
    }
}

TEST(SwitchFlags, DefaultVendorIsPostgres) {
    auto f = external();
    f.db_vendor.reset();
    const auto r = parse_switch_flags(f);
    EXPECT_EQ(r.target.vendor, Vendor::postgres);
    EXPECT_EQ(r.target.port, 5432);
}

TEST(SwitchFlags, NewWithAzureSqlRefused) {
    const auto msg = usage_error(external("new", "azuresql"));
    EXPECT_TRUE(has(msg, "--to_external new")) << msg;
    EXPECT_TRUE(has(msg, "azuresql")) << msg;
}

TEST(SwitchFlags, NewWithPostgresOrSqlServerAccepted) {
    for (const char* vendor : {"postgres", "mssqlserver"}) {
        const auto r = parse_switch_flags(external("new", vendor));
        EXPECT_EQ(r.action, SwitchAction::to_external);
        EXPECT_EQ(r.mode, ExternalMode::new_database);
        EXPECT_EQ(leo::migrations::vendor_id(r.target.vendor), vendor);
    }
}

TEST(SwitchFlags, CopyToExistingOnlyWithAzureSql) {
    for (const char* vendor : {"postgres", "mssqlserver"}) {
        const auto msg = usage_error(external("copy_to_existing", vendor));
        EXPECT_TRUE(has(msg, "copy_to_existing")) << msg;
        EXPECT_TRUE(has(msg, vendor)) << msg;
    }
    // the default vendor (postgres) too
    auto f = external("copy_to_existing");
    f.db_vendor.reset();
    EXPECT_TRUE(has(usage_error(f), "copy_to_existing"));

    const auto r = parse_switch_flags(external("copy_to_existing", "azuresql"));
    EXPECT_EQ(r.action, SwitchAction::to_external);
    EXPECT_EQ(r.mode, ExternalMode::copy_to_existing);
    EXPECT_EQ(r.target.vendor, Vendor::azuresql);
}

TEST(SwitchFlags, ExistingWithEveryVendorAccepted) {
    const std::vector<std::pair<const char*, Vendor>> vendors{
        {"postgres", Vendor::postgres}, {"mssqlserver", Vendor::mssqlserver}, {"azuresql", Vendor::azuresql}};
    for (const auto& [id, vendor] : vendors) {
        const auto r = parse_switch_flags(external("existing", id));
        EXPECT_EQ(r.action, SwitchAction::to_external) << id;
        EXPECT_EQ(r.mode, ExternalMode::existing) << id;
        EXPECT_EQ(r.target.vendor, vendor) << id;
        EXPECT_EQ(r.target.host, "db.example.com");
        EXPECT_EQ(r.target.dbname, "leo");
        EXPECT_EQ(r.target.username, "broker");
        EXPECT_TRUE(r.target.password.empty()) << "the CLI fills the password, not the parser";
    }
}

TEST(SwitchFlags, MissingConnectionFlagsNamed) {
    auto f = external();
    f.db_host.reset();
    auto msg = usage_error(f);
    EXPECT_TRUE(has(msg, "needs --db_host")) << msg;
    EXPECT_FALSE(has(msg, "--db_name")) << msg;

    f = external();
    f.db_name.reset();
    msg = usage_error(f);
    EXPECT_TRUE(has(msg, "needs --db_name")) << msg;

    f = external();
    f.username.reset();
    msg = usage_error(f);
    EXPECT_TRUE(has(msg, "needs --username")) << msg;

    f = external();
    f.db_host.reset();
    f.username.reset();
    msg = usage_error(f);
    EXPECT_TRUE(has(msg, "--db_host and --username")) << msg;

    f = external("new");
    f.db_host.reset();
    f.db_name.reset();
    f.username.reset();
    msg = usage_error(f);
    EXPECT_TRUE(has(msg, "--to_external new needs --db_host, --db_name and --username")) << msg;
}

TEST(SwitchFlags, PasswordNotRequired) {
    auto f = external();
    f.password_given = false;
    EXPECT_EQ(parse_switch_flags(f).action, SwitchAction::to_external);
}

TEST(SwitchFlags, PortOutOfRangeOrNotANumberRefused) {
    for (const char* port : {"0", "70000", "65536", "abc", "-1", "", "80x", " 80", "1.5", "99999999999999999999999"}) {
        auto f = external();
        f.port = port;
        const auto msg = usage_error(f);
        EXPECT_TRUE(has(msg, "--port '" + std::string(port) + "'")) << msg;
    }
}

TEST(SwitchFlags, PortBoundsAccepted) {
    for (const auto& [text, value] : std::vector<std::pair<const char*, int>>{{"1", 1}, {"65535", 65535}, {"6432", 6432}}) {
        auto f = external();
        f.port = text;
        EXPECT_EQ(parse_switch_flags(f).target.port, value) << text;
    }
}

TEST(SwitchFlags, DefaultPortPerVendor) {
    EXPECT_EQ(parse_switch_flags(external("existing", "postgres")).target.port, 5432);
    EXPECT_EQ(parse_switch_flags(external("existing", "mssqlserver")).target.port, 1433);
    EXPECT_EQ(parse_switch_flags(external("existing", "azuresql")).target.port, 1433);
    EXPECT_EQ(parse_switch_flags(external("new", "mssqlserver")).target.port, 1433);
    EXPECT_EQ(parse_switch_flags(external("copy_to_existing", "azuresql")).target.port, 1433);
    // an explicit port wins over the vendor's
    auto f = external("existing", "mssqlserver");
    f.port = "5432";
    EXPECT_EQ(parse_switch_flags(f).target.port, 5432);
}

TEST(SwitchFlags, SiteId) {
    for (const char* id : {"0", "x", "2147483648", "-7", "", "7a", "99999999999999999999"}) {
        auto f = external();
        f.site_id = id;
        const auto msg = usage_error(f);
        EXPECT_TRUE(has(msg, "--site_id '" + std::string(id) + "'")) << msg;
    }
    auto f = external();
    f.site_id = "7";
    EXPECT_EQ(parse_switch_flags(f).site_id, 7);
    f.site_id = "2147483647";
    EXPECT_EQ(parse_switch_flags(f).site_id, 2147483647);
    f.site_id.reset();
    EXPECT_FALSE(parse_switch_flags(f).site_id.has_value());
}

TEST(SwitchFlags, ConnectionFlagsOnlyWithToExternal) {
    struct Case {
        const char* flag;
        void (*set)(SwitchFlags&);
    };
    const std::vector<Case> cases{
        {"--db_vendor", [](SwitchFlags& f) { f.db_vendor = "postgres"; }},
        {"--db_name", [](SwitchFlags& f) { f.db_name = "leo"; }},
        {"--db_host", [](SwitchFlags& f) { f.db_host = "db.example.com"; }},
        {"--port", [](SwitchFlags& f) { f.port = "5432"; }},
        {"--username", [](SwitchFlags& f) { f.username = "broker"; }},
        {"--password", [](SwitchFlags& f) { f.password_given = true; }},
        {"--site_id", [](SwitchFlags& f) { f.site_id = "1"; }},
        {"--allow_remote_upgrade", [](SwitchFlags& f) { f.allow_remote_upgrade = true; }},
    };
    for (const auto& c : cases) {
        for (const bool show : {true, false}) {
            SwitchFlags f;
            (show ? f.show_current : f.to_internal) = true;
            c.set(f);
            const auto msg = usage_error(f);
            EXPECT_TRUE(has(msg, c.flag)) << msg;
            EXPECT_TRUE(has(msg, show ? "--show_current" : "--to_internal")) << msg;
            EXPECT_TRUE(has(msg, "applies only to --to_external")) << msg;
        }
    }
    // --skip_confirmation is not a connection flag
    SwitchFlags ok;
    ok.to_internal = true;
    ok.skip_confirmation = true;
    EXPECT_NO_THROW((void)parse_switch_flags(ok));
}

TEST(SwitchFlags, HostWithBlankRefused) {
    for (const char* host : {"db host", "db\thost", " db", "db "}) {
        auto f = external();
        f.db_host = host;
        const auto msg = usage_error(f);
        EXPECT_TRUE(has(msg, "--db_host")) << msg;
    }
    auto f = external();
    f.db_host = "db host";
    EXPECT_TRUE(has(usage_error(f), "contains a blank"));
}

TEST(SwitchFlags, HostIsOneHostNameOrAddress) {
    for (const char* host : {"db:5432", "127.0.0.1:5432", "a,b", "/var/run/postgresql", "[::1]", "h/x"}) {
        auto f = external();
        f.db_host = host;
        EXPECT_TRUE(has(usage_error(f), "is not a host name or address (give the port with --port)")) << host;
    }
    for (const char* host : {"::1", "::ffff:127.0.0.1", "fe80::1%eth0", "10.0.0.5", "db-1.example.com"}) {
        auto f = external();
        f.db_host = host;
        EXPECT_EQ(parse_switch_flags(f).target.host, host);
    }
}

TEST(SwitchFlags, ControlCharactersAreShownEscaped) {
    auto f = external();
    f.port = "5432\n";
    EXPECT_TRUE(has(usage_error(f), "--port '5432\\n'"));
    f = external();
    f.db_vendor = "post\x1bgres";
    EXPECT_TRUE(has(usage_error(f), "'post\\x1bgres'"));
}

TEST(SwitchFlags, EmptyValuesRefused) {
    const std::vector<std::pair<const char*, std::optional<std::string> SwitchFlags::*>> flags{
        {"--db_host", &SwitchFlags::db_host}, {"--db_name", &SwitchFlags::db_name}, {"--username", &SwitchFlags::username}};
    for (const auto& [flag, member] : flags) {
        auto f = external();
        f.*member = "";
        const auto msg = usage_error(f);
        EXPECT_TRUE(has(msg, std::string(flag) + " is empty")) << msg;
    }
}

TEST(SwitchFlags, ControlCharactersRefused) {
    const std::vector<std::pair<const char*, std::optional<std::string> SwitchFlags::*>> flags{
        {"--db_host", &SwitchFlags::db_host}, {"--db_name", &SwitchFlags::db_name}, {"--username", &SwitchFlags::username}};
    for (const auto& [flag, member] : flags) {
        for (const char* bad : {"le\no", "le\ro", "le\x01o", "le\x7fo", "leo\n"}) {
            auto f = external();
            f.*member = bad;
            const auto msg = usage_error(f);
            EXPECT_TRUE(has(msg, flag)) << msg;
            EXPECT_TRUE(has(msg, "control character")) << msg;
        }
    }
}

TEST(SwitchFlags, BlanksInNameAndUsername) {
    // inner blanks are allowed in the database name and user name ...
    auto f = external();
    f.db_name = "my broker db";
    f.username = "DOMAIN user";
    const auto r = parse_switch_flags(f);
    EXPECT_EQ(r.target.dbname, "my broker db");
    EXPECT_EQ(r.target.username, "DOMAIN user");
    // ... but not leading or trailing ones (the INI reader would strip them)
    f = external();
    f.db_name = " leo";
    EXPECT_TRUE(has(usage_error(f), "--db_name ' leo'"));
    f = external();
    f.username = "broker ";
    EXPECT_TRUE(has(usage_error(f), "--username 'broker '"));
}

TEST(SwitchFlags, BlankSemicolonRefused) {
    auto f = external();
    f.db_name = "leo ;x";
    auto msg = usage_error(f);
    EXPECT_TRUE(has(msg, "--db_name")) << msg;
    EXPECT_TRUE(has(msg, "' ;'")) << msg;

    f = external();
    f.username = "broker ;comment";
    msg = usage_error(f);
    EXPECT_TRUE(has(msg, "--username")) << msg;
    EXPECT_TRUE(has(msg, "' ;'")) << msg;

    // a semicolon without a blank before it is no INI comment
    f = external();
    f.username = "bro;ker";
    EXPECT_EQ(parse_switch_flags(f).target.username, "bro;ker");
}

TEST(SwitchFlags, PostgresDbNameLength) {
    auto f = external();
    f.db_name = std::string(63, 'a');
    EXPECT_EQ(parse_switch_flags(f).target.dbname, std::string(63, 'a'));
    f.db_name = std::string(64, 'a');
    const auto msg = usage_error(f);
    EXPECT_TRUE(has(msg, "--db_name")) << msg;
    EXPECT_TRUE(has(msg, "64 bytes")) << msg;
    // bytes, not characters: 32 two-byte characters are 64 bytes
    std::string umlauts;
    for (int i = 0; i < 32; ++i) umlauts += "\xc3\xa4";
    f.db_name = umlauts;
    EXPECT_TRUE(has(usage_error(f), "64 bytes"));
    // the limit is PostgreSQL's only
    auto m = external("existing", "mssqlserver");
    m.db_name = std::string(64, 'a');
    EXPECT_EQ(parse_switch_flags(m).target.dbname, std::string(64, 'a'));
}

TEST(SwitchFlags, AllowRemoteUpgradeAndSkipConfirmationCarried) {
    auto f = external();
    EXPECT_EQ(parse_switch_flags(f).allow_remote_upgrade, AllowRemoteUpgrade::no);
    EXPECT_FALSE(parse_switch_flags(f).skip_confirmation);
    f.allow_remote_upgrade = true;
    f.skip_confirmation = true;
    const auto r = parse_switch_flags(f);
    EXPECT_EQ(r.allow_remote_upgrade, AllowRemoteUpgrade::yes);
    EXPECT_TRUE(r.skip_confirmation);

    SwitchFlags s;
    s.show_current = true;
    s.skip_confirmation = true;
    EXPECT_TRUE(parse_switch_flags(s).skip_confirmation);
}

TEST(SwitchFlags, FullRequest) {
    auto f = external("new", "postgres");
    f.port = "6543";
    f.site_id = "3";
    const auto r = parse_switch_flags(f);
    EXPECT_EQ(r.root, std::filesystem::path("/"));
    EXPECT_EQ(r.action, SwitchAction::to_external);
    EXPECT_EQ(r.mode, ExternalMode::new_database);
    EXPECT_EQ(r.target.vendor, Vendor::postgres);
    EXPECT_EQ(r.target.host, "db.example.com");
    EXPECT_EQ(r.target.port, 6543);
    EXPECT_EQ(r.target.dbname, "leo");
    EXPECT_EQ(r.target.username, "broker");
    EXPECT_EQ(r.site_id, 3);
    EXPECT_EQ(r.target.display(), "postgres broker@db.example.com:6543/leo");
}

} // namespace
