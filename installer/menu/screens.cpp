// The newt screens of leo-menu (screens.hpp).
#include "screens.hpp"

#include "text.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstdint>
#include <sstream>

#include <fmt/format.h>
#include <newt.h>

namespace leo::menu {

namespace {

/// One newt form, destroyed (with its components) at the end of the scope.
struct Form {
    newtComponent form = newtForm(nullptr, nullptr, 0);
    Form() = default;
    Form(const Form&) = delete;
    Form& operator=(const Form&) = delete;
    ~Form() { newtFormDestroy(form); }
};

/// The centred window, popped at the end of the scope.
struct Window {
    Window(int w, int h, const std::string& title) { newtCenteredWindow(w, h, title.c_str()); }
    Window(const Window&) = delete;
    Window& operator=(const Window&) = delete;
    ~Window() { newtPopWindow(); }
};

std::pair<int, int> screen_size() {
    int cols = 0;
    int rows = 0;
    newtGetScreenSize(&cols, &rows);
    return {cols, rows};
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        std::replace(line.begin(), line.end(), '\t', ' ');
        std::erase_if(line, [](char c) { return c == '\r'; });
        out.push_back(std::move(line));
    }
    return out;
}

/// `text` wrapped to `width` columns (newt's own reflow), as lines.
std::vector<std::string> wrapped(const std::string& text, int width) {
    if (text.empty()) return {};
    int w = 0;
    int h = 0;
    char* flowed = newtReflowText(const_cast<char*>(text.c_str()), width, 0, 0, &w, &h);
    auto out = lines_of(flowed);
    free(flowed);  // NOLINT(cppcoreguidelines-no-malloc): newt allocates it with malloc
    return out;
}

std::string join(const std::vector<std::string>& lines, std::size_t from, std::size_t count, int width) {
    std::string out;
    for (std::size_t i = from; i < lines.size() && i < from + count; ++i) {
        auto l = lines[i];
        if (static_cast<int>(l.size()) > width) l.resize(static_cast<std::size_t>(width));
        out += l + "\n";
    }
    return out;
}

} // namespace

Screen::Screen(const std::string& root_text) {
    newtInit();
    newtCls();
    newtDrawRootText(1, 0, root_text.c_str());
    newtPushHelpLine(" <Up>/<Down> move   <Enter> choose   <Esc> back   a letter: the item it starts");
}

Screen::~Screen() { newtFinished(); }

std::optional<std::size_t> Screen::choose(const std::string& title, const std::string& text,
                                          const std::vector<std::string>& items, std::size_t current) {
    const auto [cols, rows] = screen_size();
    std::size_t widest = title.size() + 4;
    for (const auto& i : items) widest = std::max(widest, i.size() + 4);
    const int width = std::min(cols - 6, std::max(44, static_cast<int>(widest)));
    const auto above = wrapped(text, width - 2);
    const int list_rows = std::min(static_cast<int>(items.size()), rows - 10 - static_cast<int>(above.size()));
    const int text_rows = static_cast<int>(above.size()) + (above.empty() ? 0 : 1);
    Window win(width, text_rows + std::max(list_rows, 1), title);
    Form f;
    if (!above.empty()) {
        auto* label = newtTextbox(1, 0, width - 2, static_cast<int>(above.size()), 0);
        newtTextboxSetText(label, join(above, 0, above.size(), width - 2).c_str());
        newtFormAddComponent(f.form, label);
    }
    auto* list = newtListbox(1, text_rows, std::max(list_rows, 1),
                             NEWT_FLAG_RETURNEXIT | (static_cast<int>(items.size()) > list_rows ? NEWT_FLAG_SCROLL : 0));
    newtListboxSetWidth(list, width - 2);
    for (std::size_t i = 0; i < items.size(); ++i)
        newtListboxAppendEntry(list, items[i].c_str(), reinterpret_cast<void*>(static_cast<std::uintptr_t>(i)));
    if (current < items.size()) newtListboxSetCurrent(list, static_cast<int>(current));
    newtFormAddComponent(f.form, list);
    newtFormAddHotKey(f.form, NEWT_KEY_ESCAPE);
    newtExitStruct es{};
    newtFormRun(f.form, &es);
    if (es.reason == newtExitStruct::NEWT_EXIT_HOTKEY) return std::nullopt;
    return static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(newtListboxGetCurrent(list)));
}

void Screen::page(const std::string& title, const std::string& text) {
    const auto [cols, rows] = screen_size();
    const int width = cols - 6;
    const int height = rows - 7;  // the window's frame, the root text, the help line
    std::size_t line_count = 0;
    auto rows_of_text = pager_rows(text, static_cast<std::size_t>(width - 2), &line_count);
    if (rows_of_text.empty()) {
        rows_of_text.push_back({"(nothing)", 0});
        line_count = 1;
    }
    const auto page_rows = static_cast<std::size_t>(height - 2);
    Window win(width, height, title);
    std::size_t top = 0;  // the first row shown
    for (;;) {
        Form f;
        auto* box = newtTextbox(1, 0, width - 2, static_cast<int>(page_rows), 0);
        const std::size_t end = std::min(rows_of_text.size(), top + page_rows);
        std::string shown;
        for (std::size_t r = top; r < end; ++r) shown += rows_of_text[r].text + "\n";
        newtTextboxSetText(box, shown.c_str());
        // In the text's lines (a continued line counts once), as less says them.
        auto* status = newtLabel(1, height - 1,
                                 fmt::format("lines {}-{} of {}   <Space> next page  <b> back  <Enter> return",
                                             rows_of_text[top].line + 1, rows_of_text[end - 1].line + 1, line_count)
                                     .substr(0, static_cast<std::size_t>(width - 2))
                                     .c_str());
        newtFormAddComponents(f.form, box, status, nullptr);
        for (const int key : std::array<int, 11>{' ', 'b', 'q', NEWT_KEY_PGDN, NEWT_KEY_PGUP, NEWT_KEY_UP,
                                                 NEWT_KEY_DOWN, NEWT_KEY_HOME, NEWT_KEY_END, NEWT_KEY_ENTER,
                                                 NEWT_KEY_ESCAPE})
            newtFormAddHotKey(f.form, key);
        newtExitStruct es{};
        newtFormRun(f.form, &es);
        if (es.reason != newtExitStruct::NEWT_EXIT_HOTKEY) return;
        const std::size_t max_top = rows_of_text.size() > page_rows ? rows_of_text.size() - page_rows : 0;
        switch (es.u.key) {
        case ' ':
        case NEWT_KEY_PGDN: top = std::min(max_top, top + page_rows); break;
        case 'b':
        case NEWT_KEY_PGUP: top = top > page_rows ? top - page_rows : 0; break;
        case NEWT_KEY_DOWN: top = std::min(max_top, top + 1); break;
        case NEWT_KEY_UP: top = top > 0 ? top - 1 : 0; break;
        case NEWT_KEY_HOME: top = 0; break;
        case NEWT_KEY_END: top = max_top; break;
        default: return;  // Enter, Escape, q
        }
    }
}

std::optional<std::pair<Connection, std::string>> Screen::edit(const std::string& text, const Connection& current) {
    const int width = 60;
    const auto above = wrapped(text, width - 2);
    const int top = static_cast<int>(above.size()) + 1;
    Window win(width, top + 7, "Edit the external database");
    Form f;
    auto* intro = newtTextbox(1, 0, width - 2, static_cast<int>(above.size()), 0);
    newtTextboxSetText(intro, join(above, 0, above.size(), width - 2).c_str());
    newtFormAddComponent(f.form, intro);
    const char* labels[] = {"User:", "Password:", "Database name:", "Server:", "Port:"};
    const std::string initial[] = {current.username, "", current.name, current.host, current.port};
    newtComponent entries[5] = {};
    for (int i = 0; i < 5; ++i) {
        newtFormAddComponent(f.form, newtLabel(1, top + i, labels[i]));
        // The password is not echoed at all (NEWT_FLAG_HIDDEN), as a terminal prompt does.
        entries[i] = newtEntry(17, top + i, initial[i].c_str(), width - 19, nullptr,
                               NEWT_FLAG_SCROLL | NEWT_FLAG_RETURNEXIT | (i == 1 ? NEWT_FLAG_HIDDEN : 0));
        newtFormAddComponent(f.form, entries[i]);
    }
    auto* save = newtCompactButton(17, top + 6, "Save");
    auto* back = newtCompactButton(30, top + 6, std::string(k_back).c_str());
    newtFormAddComponents(f.form, save, back, nullptr);
    newtFormAddHotKey(f.form, NEWT_KEY_ESCAPE);
    for (;;) {
        newtExitStruct es{};
        newtFormRun(f.form, &es);
        if (es.reason == newtExitStruct::NEWT_EXIT_HOTKEY || es.u.co == back) return std::nullopt;
        if (es.u.co == save) break;
        // Enter in an entry: the next field (Save after the last).
        for (int i = 0; i < 5; ++i)
            if (es.u.co == entries[i]) newtFormSetCurrent(f.form, i < 4 ? entries[i + 1] : save);
    }
    Connection c;
    c.username = newtEntryGetValue(entries[0]);
    std::string password = newtEntryGetValue(entries[1]);
    c.name = newtEntryGetValue(entries[2]);
    c.host = newtEntryGetValue(entries[3]);
    c.port = newtEntryGetValue(entries[4]);
    return std::make_pair(c, password);
}

void Screen::running(const std::string& command) {
    const auto [cols, rows] = screen_size();
    (void)rows;
    const int width = std::min(cols - 6, 70);
    const auto lines = wrapped("Running: " + command, width - 2);
    newtCenteredWindow(width, static_cast<int>(lines.size()), "Please wait");
    Form f;
    auto* box = newtTextbox(1, 0, width - 2, static_cast<int>(lines.size()), 0);
    newtTextboxSetText(box, join(lines, 0, lines.size(), width - 2).c_str());
    newtFormAddComponent(f.form, box);
    newtDrawForm(f.form);
    newtRefresh();
    newtPopWindow();  // drawn; the next screen replaces it
}

} // namespace leo::menu
