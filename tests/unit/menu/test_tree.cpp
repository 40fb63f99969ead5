// The Administration Menu's tree: the items of the issue, Back in every sub-menu, the
// database and SSL items by mode, every action known to the action table.
#include "actions.hpp"
#include "tree.hpp"

#include <functional>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {
using namespace leo::menu;
using ::testing::ElementsAre;

std::vector<std::string> labels(const Item& menu, const Modes& modes = {}) {
    std::vector<std::string> out;
    for (const auto* i : shown_children(menu, modes)) out.push_back(i->label);
    return out;
}

const Item& child(const Item& menu, const std::string& label) {
    for (const auto& c : menu.children)
        if (c.label == label) return c;
    throw std::out_of_range(label);
}

TEST(MenuTree, MainMenu) {
    EXPECT_THAT(labels(main_menu()), ElementsAre("Power", "Database", "Log", "Advanced", "Exit"));
    // First letters distinct: one key press reaches each.
    std::set<char> first;
    for (const auto& l : labels(main_menu())) EXPECT_TRUE(first.insert(l[0]).second) << l;
}

TEST(MenuTree, Power) {
    const auto& power = child(main_menu(), "Power");
    EXPECT_THAT(labels(power), ElementsAre("Restart", "Reboot", "Stop", "Start", "Components", "<== Back"));
    for (const char* c : {"Restart", "Reboot", "Stop", "Start"}) EXPECT_EQ(child(power, c).kind, Kind::confirm) << c;
    const auto& components = child(power, "Components");
    EXPECT_THAT(labels(components), ElementsAre("Web server", "Database", "Work queue", "<== Back"));
    for (const auto& c : components.children)
        if (c.kind != Kind::back) {
            EXPECT_THAT(labels(c), ElementsAre("Restart", "Stop", "Start", "<== Back"));
        }
    EXPECT_EQ(child(child(components, "Work queue"), "Stop").action, "component.queue.stop");
}

TEST(MenuTree, DatabaseItemsByMode) {
    const auto& db = child(main_menu(), "Database");
    EXPECT_THAT(labels(db, Modes{false, false}), ElementsAre("Purge the internal database", "<== Back"));
    EXPECT_THAT(labels(db, Modes{true, false}),
                ElementsAre("Switch to the internal database", "Edit the external database", "<== Back"));
    EXPECT_THAT(child(db, "Switch to the internal database").question, ::testing::HasSubstr("Nothing is copied back"));
}

TEST(MenuTree, LogAndAdvanced) {
    EXPECT_THAT(labels(child(main_menu(), "Log")), ElementsAre("View the broker log", "Clear the broker log",
                                                               "Other logs", "Logs: the support bundle", "<== Back"));
    const auto& adv = child(main_menu(), "Advanced");
    const std::vector<std::string> without = {"Debug", "Upgrade", "Admin login: disable", "REST API",
                                              "Cipher suite: revert to the default", "<== Back"};
    EXPECT_EQ(labels(adv, Modes{false, false}), without);
    auto with = without;
    with.insert(with.begin() + 4, "Uninstall the SSL certificate");
    EXPECT_EQ(labels(adv, Modes{false, true}), with);
    // As documented: no confirmation before uninstalling the certificate.
    EXPECT_EQ(child(adv, "Uninstall the SSL certificate").kind, Kind::action);
}

TEST(MenuTree, EverySubmenuEndsWithBackAndEveryActionIsInTheTable) {
    std::function<void(const Item&)> walk = [&](const Item& menu) {
        ASSERT_FALSE(menu.children.empty()) << menu.label;
        EXPECT_EQ(menu.children.back().kind, Kind::back) << menu.label;
        if (&menu != &main_menu()) {
            EXPECT_EQ(menu.children.back().label, k_back) << menu.label;
        }
        for (const auto& c : menu.children) {
            if (c.kind == Kind::submenu) {
                walk(c);
            } else if (!c.action.empty()) {
                EXPECT_NO_THROW((void)action(c.action)) << c.label;
            }
            if (c.kind == Kind::confirm) {
                EXPECT_FALSE(c.yes.empty() || c.question.empty()) << c.label;
            }
        }
    };
    walk(main_menu());
}

} // namespace
