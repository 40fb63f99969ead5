// The console Administration Menu (leo-menu) in a real terminal: tmux runs it on a sandbox
// root with the broker 9.0.7 installed and its components under the supervisor; the tests
// type keys (send-keys) and read the screen (capture-pane). Every Power path with its
// confirmation answered both ways, the Components, the Database items by mode (a real
// external PostgreSQL for the external one), Back and Escape everywhere, the first-letter
// keys, a too small terminal and no terminal; the sudoers drop-in checked by visudo.
#include "db_support.hpp"
#include "menu_support.hpp"

#include <gmock/gmock.h>

namespace {
using namespace leo::test::maintenance;
using leo::test::TerminalSession;
using ::testing::HasSubstr;
using ::testing::Not;

using Menu = leo::test::MenuFixture;

TEST_F(Menu, MainMenuAndExitWithTheFirstLetter) {
    auto s = open();
    EXPECT_SCREEN(*s, "Administration Menu");
    const auto screen = s->screen();
    for (const char* item : {"Power", "Database", "Log", "Advanced", "Exit"}) EXPECT_THAT(screen, HasSubstr(item));
    EXPECT_THAT(screen, HasSubstr("Leostream Connection Broker (root " + root.string()));
    s->send({"E", "Enter"});
    EXPECT_EQ(s->exit_status(), 0) << s->screen();
}

TEST_F(Menu, EscapeLeavesEveryMenu) {
    auto s = open();
    EXPECT_SCREEN(*s, "Administration Menu");
    // Power > Components > Web server, then Escape back up to the main menu and out.
    s->send({"P", "Enter"});
    EXPECT_SCREEN(*s, "Components");
    s->send({"C", "Enter"});
    EXPECT_SCREEN(*s, "Work queue");
    s->send({"Enter"});  // Web server, the first
    EXPECT_SCREEN(*s, "Web server");
    // A letter moves to the next item starting with it (newt's listbox): W from Web server
    // is Work queue.
    s->send({"Escape"});
    EXPECT_SCREEN(*s, "Work queue");
    s->send({"W", "Enter"});
    EXPECT_SCREEN(*s, "┤ Work queue ├");
    // newt draws a sub-menu over its parents, whose titles stay visible: each Escape is
    // seen by the sub-menu's title going away.
    for (const char* left : {"┤ Work queue ├", "┤ Components ├", "┤ Power ├"}) {
        s->send({"Escape"});
        EXPECT_GONE(*s, left);
    }
    EXPECT_THAT(s->screen(), HasSubstr("Advanced"));
    s->send({"Escape"});
    EXPECT_EQ(s->exit_status(), 0) << s->screen();
}

TEST_F(Menu, BackItemInEveryMenu) {
    auto s = open();
    EXPECT_SCREEN(*s, "Administration Menu");
    // Each sub-menu of the main menu, left by its last item "<== Back" (End, Enter).
    for (const char* key : {"P", "D", "L", "A"}) {
        s->send({key, "Enter"});
        EXPECT_SCREEN(*s, "<== Back");
        s->send({"End", "Enter"});
        EXPECT_SCREEN(*s, "Exit");
        EXPECT_THAT(s->screen(), Not(HasSubstr("<== Back"))) << key;
    }
    // The sub-menus of Advanced.
    s->send({"A", "Enter"});
    EXPECT_SCREEN(*s, "Cipher suite");
    for (const auto& [key, item] : std::vector<std::pair<std::string, std::string>>{
             {"D", "Off"}, {"U", "Disable"}, {"R", "Disable"}}) {
        s->send({key, "Enter"});
        EXPECT_SCREEN(*s, item);
        s->send({"End", "Enter"});
        EXPECT_SCREEN(*s, "Cipher suite");
    }
    s->send({"Escape", "Escape"});
    EXPECT_EQ(s->exit_status(), 0) << s->screen();
}

TEST_F(Menu, PowerRestartAnsweredNoThenYes) {
    start_components();
    const pid_t httpd = pid_of("httpd");
    auto s = open();
    EXPECT_SCREEN(*s, "Administration Menu");
    s->send({"P", "Enter", "Enter"});  // Power, Restart
    EXPECT_SCREEN(*s, "Restart every component of the broker?");
    EXPECT_THAT(s->screen(), HasSubstr("Yes, restart the broker"));
    s->send({"Enter"});  // "<== Back" is the one selected: nothing happens
    EXPECT_SCREEN(*s, "Components");
    EXPECT_EQ(pid_of("httpd"), httpd);
    s->send({"Enter"});  // Restart again
    EXPECT_SCREEN(*s, "Restart every component of the broker?");
    s->send({"Up", "Enter"});
    EXPECT_SCREEN(*s, "Done.");
    const auto screen = s->screen();
    EXPECT_THAT(screen, HasSubstr("service restart --root"));
    EXPECT_THAT(screen, HasSubstr("started the web server"));
    EXPECT_NE(pid_of("httpd"), httpd);
    EXPECT_TRUE(components_run());
    s->send({"Enter"});  // leaves the output
    EXPECT_SCREEN(*s, "Components");
}

TEST_F(Menu, PowerStopAndStartAnsweredYesAndNo) {
    start_components();
    auto s = open();
    EXPECT_SCREEN(*s, "Administration Menu");
    s->send({"P", "Enter", "S", "Enter"});  // Power, Stop
    EXPECT_SCREEN(*s, "Stop every component of the broker?");
    s->send({"Escape"});  // Escape is No too
    EXPECT_SCREEN(*s, "Components");
    EXPECT_TRUE(components_run());
    s->send({"Enter"});
    EXPECT_SCREEN(*s, "Stop every component of the broker?");
    s->send({"Up", "Enter"});
    EXPECT_SCREEN(*s, "Done.");
    EXPECT_THAT(s->screen(), HasSubstr("stopped the web server"));
    EXPECT_FALSE(running(pid_of("httpd")));
    s->send({"Enter", "S", "Enter"});  // S again: the next item starting with S, Start
    EXPECT_SCREEN(*s, "Start every component of the broker?");
    s->send({"Enter"});  // No
    EXPECT_SCREEN(*s, "Components");
    EXPECT_FALSE(running(pid_of("httpd")));
    s->send({"Enter", "Up", "Enter"});
    EXPECT_SCREEN(*s, "Done.");
    EXPECT_TRUE(components_run());
}

TEST_F(Menu, RebootIsNotDoneInASandboxRoot) {
    auto s = open();
    EXPECT_SCREEN(*s, "Administration Menu");
    s->send({"P", "Enter", "Down", "Enter"});  // Power, Reboot
    EXPECT_SCREEN(*s, "Reboot this machine?");
    s->send({"Up", "Enter"});
    EXPECT_SCREEN(*s, "Not done");
    EXPECT_THAT(s->screen(), HasSubstr("sandbox root"));
}

TEST_F(Menu, ComponentsOneAtATime) {
    start_components();
    const pid_t queue = pid_of("queue");
    auto s = open();
    EXPECT_SCREEN(*s, "Administration Menu");
    s->send({"P", "Enter", "C", "Enter", "Enter"});  // Power, Components, Web server
    EXPECT_SCREEN(*s, "Restart");
    s->send({"S", "Enter"});  // Stop
    EXPECT_SCREEN(*s, "Done.");
    EXPECT_THAT(s->screen(), HasSubstr("service stop httpd"));
    EXPECT_FALSE(running(pid_of("httpd")));
    EXPECT_EQ(pid_of("queue"), queue);
    s->send({"Enter", "S", "S", "Enter"});  // Start
    EXPECT_SCREEN(*s, "service start httpd");
    EXPECT_SCREEN(*s, "Done.");
    EXPECT_TRUE(running(pid_of("httpd")));
    s->send({"Enter", "Escape", "Down", "Enter"});  // back to Components, the next: Database
    EXPECT_SCREEN(*s, "Start");
    s->send({"Enter"});  // Restart the internal database
    EXPECT_SCREEN(*s, "service restart db");
    EXPECT_SCREEN(*s, "Done.");
    s->send({"Enter", "Escape", "Down", "Enter", "Enter"});  // Work queue, Restart
    EXPECT_SCREEN(*s, "service restart queue");
    EXPECT_SCREEN(*s, "Done.");
    EXPECT_NE(pid_of("queue"), queue);
    EXPECT_TRUE(components_run());
}

TEST_F(Menu, DatabaseItemsWithTheInternalDatabase) {
    auto s = open();
    EXPECT_SCREEN(*s, "Administration Menu");
    s->send({"D", "Enter"});
    EXPECT_SCREEN(*s, "Purge the internal database");
    EXPECT_THAT(s->screen(), Not(HasSubstr("Switch to the internal database")));
    EXPECT_THAT(s->screen(), Not(HasSubstr("Edit the external database")));
    s->send({"Enter"});
    EXPECT_SCREEN(*s, "Purge the internal database?");
    s->send({"Enter"});  // No
    EXPECT_SCREEN(*s, "Purge the internal database");
    EXPECT_EQ(leo::test::status_json(root)["database_in_use"]["mode"], "internal");
}

TEST_F(Menu, AdvancedHidesTheCertificateItemWhenNoneIsInstalled) {
    auto s = open();
    EXPECT_SCREEN(*s, "Administration Menu");
    s->send({"A", "Enter"});
    EXPECT_SCREEN(*s, "Cipher suite: revert to the default");
    for (const char* item : {"Debug", "Upgrade", "Admin login: disable", "REST API"})
        EXPECT_THAT(s->screen(), HasSubstr(item));
    EXPECT_THAT(s->screen(), Not(HasSubstr("Uninstall the SSL certificate")));
}

TEST_F(Menu, DatabaseItemsWithAnExternalDatabase) {
    leo::test::ExternalPostgres ext;
    ext.create_role("broker", "Ext pass", true);
    leo::test::TempDir dir;
    std::ofstream(dir.path() / "pw") << "Ext pass\n";
    const auto sw = run_installer(args({"switch-database", "--to_external", "new", "--db_host", "127.0.0.1", "--port",
                                        std::to_string(ext.port()), "--db_name", "leo_ext", "--username", "broker",
                                        "--password_file", (dir.path() / "pw").string(), "--skip_confirmation"}));
    ASSERT_EQ(sw.exit_code, 0) << sw.out << sw.err;
    const std::string endpoint = "broker@127.0.0.1:" + std::to_string(ext.port()) + "/leo_ext";

    auto s = open();
    EXPECT_SCREEN(*s, "Administration Menu");
    s->send({"D", "Enter"});
    EXPECT_SCREEN(*s, "Switch to the internal database");
    EXPECT_THAT(s->screen(), HasSubstr("Edit the external database"));
    EXPECT_THAT(s->screen(), Not(HasSubstr("Purge")));

    // Edit: the form shows the connection in use; a wrong password is refused by the
    // server, shown, and nothing changes; the password is never on the screen.
    s->send({"E", "Enter"});
    EXPECT_SCREEN(*s, "Password:");
    EXPECT_THAT(s->screen(), HasSubstr(std::to_string(ext.port())));
    EXPECT_THAT(s->screen(), HasSubstr("leo_ext"));
    s->send({"Enter", "not-the-password", "Enter", "Enter", "Enter", "Enter", "Enter"});  // to Save, pressed
    EXPECT_SCREEN(*s, "It failed");
    EXPECT_THAT(s->screen(), Not(HasSubstr("not-the-password")));
    EXPECT_THAT(leo::test::status_json(root)["database_in_use"]["endpoint"].get<std::string>(), HasSubstr(endpoint));
    s->send({"Enter"});
    EXPECT_SCREEN(*s, "Switch to the internal database");

    // The same form, the right password: saved (the broker reconnects to it).
    s->send({"E", "Enter"});
    EXPECT_SCREEN(*s, "Password:");
    s->send({"Enter", "Ext pass", "Enter", "Enter", "Enter", "Enter", "Enter"});
    EXPECT_SCREEN(*s, "$ ");
    std::string screen;
    ASSERT_TRUE(s->wait_for("Done.", std::chrono::seconds(60), &screen)) << screen;
    EXPECT_THAT(screen, HasSubstr("the broker now uses postgres " + endpoint));
    EXPECT_THAT(screen, Not(HasSubstr("Ext pass")));
    s->send({"Enter"});

    // Switch to internal: No, then Yes; the menu then offers Purge again.
    EXPECT_SCREEN(*s, "Switch to the internal database");
    s->send({"S", "Enter"});
    EXPECT_SCREEN(*s, "Nothing is copied back");
    s->send({"Enter"});
    EXPECT_SCREEN(*s, "Edit the external database");
    EXPECT_EQ(leo::test::status_json(root)["database_in_use"]["mode"], "external");
    s->send({"S", "Enter", "Up", "Enter"});
    EXPECT_SCREEN(*s, "Done.");
    EXPECT_EQ(leo::test::status_json(root)["database_in_use"]["mode"], "internal");
    s->send({"Enter"});
    EXPECT_SCREEN(*s, "Purge the internal database");
    EXPECT_THAT(s->screen(), Not(HasSubstr("Edit the external database")));
}

TEST_F(Menu, TooSmallTerminalSaysSoAndExits) {
    auto s = open(50, 15);
    EXPECT_EQ(s->exit_status(), 1) << s->screen();
    std::string joined;
    for (char c : s->screen())
        if (c != '\n') joined += c;
    EXPECT_THAT(joined, HasSubstr("Menu needs at least 60x20 (columns x rows)"));
}

TEST_F(Menu, NoTerminalSaysSoAndExits) {
    const auto before = leo::test::snapshot_tree(root, {"var/log", "home/leo", "run", "var/lib/rpm"});
    const auto r = leo::subprocess::run({LEO_MENU_BIN, "--root", root.string()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("leo-menu: no terminal: the Administration Menu needs one"));
    EXPECT_EQ(leo::test::snapshot_tree(root, {"var/log", "home/leo", "run", "var/lib/rpm"}), before);
    // As a login shell, `su - leo -c CMD` runs nothing.
    const auto c = leo::subprocess::run({LEO_MENU_BIN, "-c", "id"});
    EXPECT_EQ(c.exit_code, 2);
    EXPECT_THAT(c.err, HasSubstr("it runs no commands (-c)"));
}

TEST_F(Menu, InstallMadeItTheLoginShellOfLeo) {
    EXPECT_THAT(slurp(root / "etc/passwd"), HasSubstr(":/home/leo:/usr/bin/leo-menu\n"));
    const auto shells = "\n" + slurp(root / "etc/shells");
    EXPECT_THAT(shells, HasSubstr("\n/usr/bin/leo-menu\n"));
}

TEST(MenuSudoers, VisudoAcceptsTheDropIn) {
    const auto r = leo::subprocess::run({LEO_MENU_BIN, "--print-sudoers"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    leo::test::TempDir dir;
    const auto file = dir.path() / "leo-menu";
    std::ofstream(file) << r.out;
    const auto check = leo::subprocess::run({"visudo", "-c", "-f", file.string()});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err << r.out;
    EXPECT_THAT(check.out + check.err, HasSubstr("parsed OK"));
    EXPECT_THAT(r.out, HasSubstr("/usr/bin/leo-installer service restart httpd, \\\n"));
    EXPECT_THAT(r.out, Not(HasSubstr("*")));
    // A broken drop-in is refused by the same check (the check is not vacuous).
    std::ofstream(file, std::ios::app) << "leo ALL=(root) NOPASSWD LEO_MENU\n";
    EXPECT_NE(leo::subprocess::run({"visudo", "-c", "-f", file.string()}).exit_code, 0);
}

} // namespace
