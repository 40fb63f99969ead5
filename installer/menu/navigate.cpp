// Walking the Administration Menu's tree (navigate.hpp).
#include "navigate.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace leo::menu {

namespace {

/// The pager's text after an action: how it ended, the command, its output, and how it
/// ended again (the first line is seen without paging through a long output).
std::string report(const Outcome& o) {
    std::string status = o.exit_code == 0 ? std::string("Done.")
                                           : fmt::format("It failed (exit code {}): nothing else was done.",
                                                         o.exit_code);
    return fmt::format("{}\n\n$ {}\n\n{}{}\n{}\n", status, o.command, o.output,
                       o.output.empty() || o.output.back() == '\n' ? "" : "\n", status);
}

void run_and_show(Screen& screen, const Runner& runner, const std::string& title, std::string_view id,
                  const std::string& input = {}) {
    screen.running(runner.command_line(id));
    screen.page(title, report(runner.run(id, input)));
}

void reboot(Screen& screen, const Runner& runner) {
    if (runner.invocation().as_root && runner.invocation().root != "/") {
        screen.page("Reboot", fmt::format("Not done: {} is a sandbox root, not this machine's system; a reboot "
                                          "there would reboot the host.\n",
                                          runner.invocation().root.string()));
        return;
    }
    run_and_show(screen, runner, "Reboot", "power.reboot");
}

void other_logs(Screen& screen, const Runner& runner) {
    // Read once: viewing a log changes no name, and the list comes back at once after each.
    auto names = runner.logs();
    names.emplace_back(k_back);
    std::size_t current = 0;
    for (;;) {
        const auto chosen = screen.choose("Other logs", "", names, current);
        if (!chosen || *chosen + 1 == names.size()) return;
        current = *chosen;
        const auto id = log_view_action(names[*chosen]);
        screen.page(fmt::format("Log: {}", names[*chosen]), runner.run(*id).output);
    }
}

void edit_external(const Item& item, Screen& screen, const Runner& runner) {
    const auto values = screen.edit(item.question, runner.connection());
    if (!values) return;
    run_and_show(screen, runner, item.label, item.action, connection_json(values->first, values->second));
}

void choose_item(const Item& item, Screen& screen, const Runner& runner) {
    switch (item.kind) {
    case Kind::submenu: navigate(item, screen, runner); break;
    case Kind::action: run_and_show(screen, runner, item.label, item.action); break;
    case Kind::pager: screen.page(item.label, runner.run(item.action).output); break;
    case Kind::other_logs: other_logs(screen, runner); break;
    case Kind::edit_external: edit_external(item, screen, runner); break;
    case Kind::confirm: {
        // The confirmation sub-menu: Back is selected first, so Enter alone changes nothing.
        const auto answer = screen.choose(item.label, item.question, {item.yes, std::string(k_back)}, 1);
        if (answer != 0) break;
        if (item.action == "power.reboot") reboot(screen, runner);
        else run_and_show(screen, runner, item.label, item.action);
        break;
    }
    case Kind::back: break;
    }
}

} // namespace

void navigate(const Item& menu, Screen& screen, const Runner& runner) {
    std::size_t current = 0;
    for (;;) {
        // The modes cost two commands: read only for a menu whose items depend on them.
        const bool depends = std::any_of(menu.children.begin(), menu.children.end(),
                                         [](const Item& c) { return c.shown != Shown::always; });
        const auto items = shown_children(menu, depends ? runner.modes() : Modes{});
        std::vector<std::string> labels;
        labels.reserve(items.size());
        for (const auto* i : items) labels.push_back(i->label);
        const auto chosen = screen.choose(menu.label, "", labels, std::min(current, items.size() - 1));
        if (!chosen || items[*chosen]->kind == Kind::back) return;
        current = *chosen;
        choose_item(*items[*chosen], screen, runner);
    }
}

} // namespace leo::menu
