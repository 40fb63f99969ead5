#pragma once
/// The newt screens of leo-menu: a menu (list of items), a pager, the connection form and
/// a "running" notice. Keys as in the other newt tools (whiptail, RHEL's text UIs): arrows
/// and Enter, Escape for back, the first letter of an item jumps to it.

#include "runner.hpp"

#include <optional>
#include <string>
#include <vector>

namespace leo::menu {

/// The smallest terminal the screens fit in.
inline constexpr int k_min_cols = 60;
inline constexpr int k_min_rows = 20;

/// Owns newt's full-screen mode: newtInit on construction, newtFinished on destruction.
class Screen {
public:
    explicit Screen(const std::string& root_text);
    ~Screen();
    Screen(const Screen&) = delete;
    Screen& operator=(const Screen&) = delete;

    /// A menu: `text` above the items (may be ""), the item `current` selected first.
    /// Returns the index chosen with Enter, or nullopt for Escape.
    [[nodiscard]] std::optional<std::size_t> choose(const std::string& title, const std::string& text,
                                                    const std::vector<std::string>& items, std::size_t current = 0);
    /// Text in a pager, a line wider than the window continued on the next rows (text.hpp
    /// pager_rows, as less folds it; the status line counts the text's lines): Space / Page Down the
    /// next page, b / Page Up the one before, the arrows a row, Enter, Escape or q return.
    void page(const std::string& title, const std::string& text);
    /// The external database's connection: user, password (not echoed), name, server,
    /// port. Returns the values and the password on Save; nullopt on Back or Escape.
    [[nodiscard]] std::optional<std::pair<Connection, std::string>> edit(const std::string& text,
                                                                         const Connection& current);
    /// "Running COMMAND ..." until the next screen replaces it.
    void running(const std::string& command);
};

} // namespace leo::menu
