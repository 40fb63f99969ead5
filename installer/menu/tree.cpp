// The Administration Menu's tree (tree.hpp).
#include "tree.hpp"

namespace leo::menu {

namespace {

Item make(std::string label, Kind kind, std::string action = {}) {
    Item i;
    i.label = std::move(label);
    i.kind = kind;
    i.action = std::move(action);
    return i;
}

Item back() { return make(std::string(k_back), Kind::back); }

Item submenu(std::string label, std::vector<Item> children, Shown shown = Shown::always) {
    children.push_back(back());
    Item i = make(std::move(label), Kind::submenu);
    i.children = std::move(children);
    i.shown = shown;
    return i;
}

Item run(std::string label, std::string action, Shown shown = Shown::always) {
    Item i = make(std::move(label), Kind::action, std::move(action));
    i.shown = shown;
    return i;
}

Item confirm(std::string label, std::string question, std::string yes, std::string action,
             Shown shown = Shown::always) {
    Item i = make(std::move(label), Kind::confirm, std::move(action));
    i.question = std::move(question);
    i.yes = std::move(yes);
    i.shown = shown;
    return i;
}

Item component(std::string label, const std::string& id) {
    return submenu(std::move(label), {run("Restart", "component." + id + ".restart"),
                                      run("Stop", "component." + id + ".stop"),
                                      run("Start", "component." + id + ".start")});
}

Item build() {
    Item power = submenu(
        "Power",
        {confirm("Restart", "Restart every component of the broker?", "Yes, restart the broker", "power.restart"),
         confirm("Reboot", "Reboot this machine?", "Yes, reboot the machine", "power.reboot"),
         confirm("Stop", "Stop every component of the broker?", "Yes, stop the broker", "power.stop"),
         confirm("Start", "Start every component of the broker?", "Yes, start the broker", "power.start"),
         submenu("Components", {component("Web server", "httpd"), component("Database", "db"),
                                component("Work queue", "queue")})});
    Item edit = make("Edit the external database", Kind::edit_external, "db.edit_external");
    edit.question = "The external database's connection. Saving checks it, switches the broker to it and "
                    "restarts the components.";
    edit.shown = Shown::external_database;
    Item database = submenu(
        "Database",
        {confirm("Purge the internal database",
                 "Purge the internal database? A restore point is made first; every row of the broker is "
                 "deleted.",
                 "Yes, purge the internal database", "db.purge", Shown::internal_database),
         confirm("Switch to the internal database",
                 "Switch the broker to the internal database? Nothing is copied back from the external "
                 "database: the broker uses the internal database as it was.",
                 "Yes, switch to the internal database", "db.to_internal", Shown::external_database),
         edit});
    Item view = make("View the broker log", Kind::pager, "log.view.broker");
    Item others = make("Other logs", Kind::other_logs);
    Item log = submenu("Log", {view,
                               confirm("Clear the broker log", "Clear the broker log?", "Yes, clear the broker log",
                                       "log.clear.broker"),
                               others, run("Logs: the support bundle", "support-bundle")});
    Item advanced = submenu(
        "Advanced",
        {submenu("Debug", {run("On", "setting.debug.on"), run("Off", "setting.debug.off")}),
         submenu("Upgrade", {run("Disable", "setting.upgrades.disable"), run("Enable", "setting.upgrades.enable")}),
         confirm("Admin login: disable", "Disable the default admin login of the web interface?",
                 "Yes, disable the admin login", "setting.admin-login.disable"),
         submenu("REST API", {run("Enable", "setting.rest-api.enable"), run("Disable", "setting.rest-api.disable")}),
         run("Uninstall the SSL certificate", "setting.ssl-certificate.uninstall", Shown::ssl_certificate),
         run("Cipher suite: revert to the default", "setting.cipher-suite.default")});
    Item main = make("Administration Menu", Kind::submenu);
    main.children = {power, database, log, advanced, make("Exit", Kind::back)};
    return main;
}

} // namespace

const Item& main_menu() {
    static const Item k_main = build();
    return k_main;
}

bool is_shown(const Item& item, const Modes& modes) {
    switch (item.shown) {
    case Shown::always: return true;
    case Shown::internal_database: return !modes.external_database;
    case Shown::external_database: return modes.external_database;
    case Shown::ssl_certificate: return modes.ssl_certificate;
    }
    return true;
}

std::vector<const Item*> shown_children(const Item& menu, const Modes& modes) {
    std::vector<const Item*> out;
    for (const auto& c : menu.children)
        if (is_shown(c, modes)) out.push_back(&c);
    return out;
}

} // namespace leo::menu
