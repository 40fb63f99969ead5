#pragma once
/// Text as leo-menu's pager shows it (pure, so the unit tests reach it).

#include <cstddef>
#include <string>
#include <vector>

namespace leo::menu {

/// `text` cut into the pager's lines: one per line of `text`, a longer one than `width`
/// bytes continued on the next lines (broken at its last blank that fits, which is
/// dropped; at `width` when no blank fits), never inside a UTF-8 sequence. Tabs become a
/// blank, carriage returns are dropped. A command's output keeps all its words on the
/// screen, as `less` shows a long line, instead of losing its end at the window's edge.
/// `width` is clamped to at least 8.
[[nodiscard]] std::vector<std::string> pager_lines(const std::string& text, std::size_t width);

/// One row of the pager: a piece of pager_lines() and the line of `text` (from 0) it
/// comes from, so the status line counts the text's lines as `less` does.
struct PagerRow {
    std::string text;
    std::size_t line = 0;
};

/// pager_lines() with each row's line of origin; `lines` gets the number of lines of
/// `text` when not null.
[[nodiscard]] std::vector<PagerRow> pager_rows(const std::string& text, std::size_t width,
                                               std::size_t* lines = nullptr);

} // namespace leo::menu
