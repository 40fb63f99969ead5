#pragma once
/// The hints of installer/ (leo/common/hint.hpp: every library spells its hints with it).
#include "leo/common/hint.hpp"

namespace leo::installer {
using leo::command_hint;
using leo::root_option;
using leo::set_hint_root;
} // namespace leo::installer
