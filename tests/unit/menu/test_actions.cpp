// The menu's action table: argument vectors as root and through sudo, and the sudoers
// drop-in made from it (exactly the table's vectors, escaped, no wildcards).
#include "actions.hpp"

#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {
using namespace leo::menu;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(MenuActions, IdsAreUniqueAndKnown) {
    std::set<std::string_view> ids;
    for (const auto& a : actions()) EXPECT_TRUE(ids.insert(a.id).second) << a.id;
    EXPECT_EQ(action("power.restart").args, (std::vector<std::string_view>{"service", "restart"}));
    EXPECT_THROW((void)action("no.such"), std::out_of_range);
}

TEST(MenuActions, AsRootRunsTheInstallerWithTheRoot) {
    Invocation how;
    how.installer = "/build/leo-installer";
    how.root = "/tmp/sandbox";
    EXPECT_THAT(argv_for(action("component.queue.stop"), how),
                ElementsAre("/build/leo-installer", "service", "stop", "queue", "--root", "/tmp/sandbox"));
    // --facts only where the action takes it.
    how.facts = "/tmp/facts.json";
    EXPECT_THAT(argv_for(action("setting.rest-api.enable"), how),
                ElementsAre("/build/leo-installer", "setting", "rest-api", "enable", "-y", "--root", "/tmp/sandbox",
                            "--facts", "/tmp/facts.json"));
    EXPECT_THAT(argv_for(action("setting.rest-api.disable"), how),
                ElementsAre("/build/leo-installer", "setting", "rest-api", "disable", "-y", "--root", "/tmp/sandbox"));
    EXPECT_THAT(argv_for(action("power.reboot"), how), ElementsAre("/usr/bin/systemctl", "reboot"));
}

TEST(MenuActions, AsAnotherUserGoesThroughSudoWithoutRoot) {
    Invocation how;
    how.as_root = false;
    how.facts = "/tmp/facts.json";  // never passed through sudo
    EXPECT_THAT(argv_for(action("setting.rest-api.enable"), how),
                ElementsAre("sudo", "-n", "/usr/bin/leo-installer", "setting", "rest-api", "enable", "-y"));
    EXPECT_THAT(argv_for(action("db.edit_external"), how),
                ElementsAre("sudo", "-n", "/usr/bin/leo-installer", "switch-database", "--to_external", "existing",
                            "--connection_file", "-", "--skip_confirmation"));
    EXPECT_THAT(argv_for(action("power.reboot"), how), ElementsAre("sudo", "-n", "/usr/bin/systemctl", "reboot"));
}

TEST(MenuActions, SudoersListsExactlyTheTable) {
    const auto s = sudoers("leo");
    EXPECT_THAT(s, Not(HasSubstr("*")));
    EXPECT_THAT(s, Not(HasSubstr("ALL=(ALL)")));
    EXPECT_THAT(s, HasSubstr("leo ALL=(root) NOPASSWD: LEO_MENU\n"));
    for (const auto& a : actions()) {
        std::string line = a.systemctl ? "/usr/bin/systemctl" : "/usr/bin/leo-installer";
        for (auto arg : a.args) line += " " + std::string(arg);
        EXPECT_THAT(s, HasSubstr("    " + line + (a.id == actions().back().id ? "\n" : ", \\\n"))) << a.id;
    }
    // One line per action, nothing else allowed.
    std::size_t commands = 0;
    for (std::size_t p = s.find("    /usr/bin/"); p != std::string::npos; p = s.find("    /usr/bin/", p + 1)) ++commands;
    EXPECT_EQ(commands, actions().size());
    EXPECT_THAT(sudoers("admin"), HasSubstr("admin ALL=(root) NOPASSWD: LEO_MENU\n"));
}

TEST(MenuActions, ValuesTypedInTheMenuNeverInAnArgumentVector) {
    for (const auto& a : actions())
        for (auto arg : a.args) {
            EXPECT_THAT(std::string(arg), Not(HasSubstr("--password "))) << a.id;
            EXPECT_NE(arg, "--password") << a.id;
        }
    EXPECT_TRUE(action("db.edit_external").reads_stdin);
}

TEST(MenuActions, LogViewsOnlyForKnownNames) {
    EXPECT_EQ(log_view_action("broker"), "log.view.broker");
    EXPECT_EQ(log_view_action("installer"), "log.view.installer");
    EXPECT_EQ(log_view_action("../etc/shadow"), std::nullopt);
    for (auto n : log_names()) EXPECT_NO_THROW((void)action(*log_view_action(n)));
}

} // namespace
