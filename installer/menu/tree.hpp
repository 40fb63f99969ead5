#pragma once
/// The Administration Menu's tree as data (issue 16, after the vendor's manual): Power,
/// Database, Log, Advanced, Exit. Screens (screens.hpp) draw it; what an item does is an
/// action id of actions.hpp, or one of the few screens that are not a plain action.

#include <string>
#include <string_view>
#include <vector>

namespace leo::menu {

/// What the menu knows about the broker, read at each menu (modes.hpp): which items it shows.
struct Modes {
    bool external_database = false;  ///< status --json: database_in_use.mode == "external"
    bool ssl_certificate = false;    ///< setting show --json: an SSL certificate is installed
};

/// When an item is shown.
enum class Shown { always, internal_database, external_database, ssl_certificate };

/// What choosing an item does.
enum class Kind {
    submenu,        ///< opens `children`
    action,         ///< runs `action` and shows its output
    confirm,        ///< a confirmation sub-menu ("Yes, ..." / "<== Back"); yes runs `action`
    back,           ///< "<== Back": the menu above (Exit in the main menu)
    pager,          ///< runs `action` and shows its output in the pager (a log)
    other_logs,     ///< the list of logs (`log list --json`), each opening the pager
    edit_external,  ///< the form of the external database's connection, saved by `action`
};

struct Item {
    std::string label;
    Kind kind = Kind::action;
    std::string action;    ///< an id of actions.hpp ("" for submenu, back, other_logs)
    std::string question;  ///< confirm: the sub-menu's text; edit_external: the form's
    std::string yes;       ///< confirm: the label of the item that runs the action
    Shown shown = Shown::always;
    std::vector<Item> children;  ///< submenu: its items, "<== Back" last
};

/// The label of every Back item (and the one Escape chooses).
inline constexpr std::string_view k_back = "<== Back";

/// The main menu: title "Administration Menu", items Power, Database, Log, Advanced, Exit.
[[nodiscard]] const Item& main_menu();

/// Whether `item` is shown under `modes`.
[[nodiscard]] bool is_shown(const Item& item, const Modes& modes);

/// The items of `menu` shown under `modes`, in order.
[[nodiscard]] std::vector<const Item*> shown_children(const Item& menu, const Modes& modes);

} // namespace leo::menu
