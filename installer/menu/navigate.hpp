#pragma once
/// Walking the menu tree (tree.hpp) on the screens (screens.hpp), running the actions
/// through the runner (runner.hpp).

#include "runner.hpp"
#include "screens.hpp"
#include "tree.hpp"

namespace leo::menu {

/// Show `menu` until Back, Escape or Exit. The modes are read again each time a menu is
/// shown, so an item appears or goes as soon as an action changed them.
void navigate(const Item& menu, Screen& screen, const Runner& runner);

} // namespace leo::menu
