// Runs the menu's actions and reads the modes (runner.hpp).
#include "runner.hpp"

#include "leo/common/error.hpp"
#include "leo/common/subprocess.hpp"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::menu {

std::string Runner::command_line(std::string_view id) const {
    return subprocess::command_line(argv_for(action(id), m_how));
}

Outcome Runner::run(std::string_view id, const std::string& input) const {
    const auto& a = action(id);
    const auto argv = argv_for(a, m_how);
    Outcome o;
    o.command = subprocess::command_line(argv);
    subprocess::Options opts;
    if (a.reads_stdin) opts.input = input;
    // Long enough for a switch that copies a database; the user sees "Running ..." meanwhile.
    opts.timeout = std::chrono::hours(2);
    try {
        const auto r = subprocess::run(argv, opts);
        o.exit_code = r.exit_code;
        o.output = r.out;
        o.out = r.out;
        if (!r.err.empty()) o.output += (o.output.empty() || o.output.back() == '\n' ? "" : "\n") + r.err;
        if (r.signal != 0) o.output += fmt::format("\n(ended by signal {})\n", r.signal);
    } catch (const Error& e) {
        o.exit_code = -1;
        o.output = describe(e);
    }
    return o;
}

namespace {

nlohmann::json parse_or_null(const std::string& text) {
    // The JSON document is the last thing printed; a warning line may come before it.
    const auto start = text.find_first_of("{[");
    if (start == std::string::npos) return nullptr;
    return nlohmann::json::parse(text.begin() + static_cast<std::ptrdiff_t>(start), text.end(), nullptr, false);
}

} // namespace

Modes parse_modes(const std::string& status_json, const std::string& setting_json) {
    Modes m;
    const auto status = parse_or_null(status_json);
    if (status.is_object() && status.contains("database_in_use") && status["database_in_use"].is_object()) {
        const auto& use = status["database_in_use"];
        m.external_database = use.value("mode", std::string()) == "external";
    }
    const auto setting = parse_or_null(setting_json);
    if (setting.is_object()) {
        if (setting.contains("ssl_certificate") && setting["ssl_certificate"].is_object())
            m.ssl_certificate = setting["ssl_certificate"].value("installed", false);
        else if (setting.contains("ssl_certificate_installed") && setting["ssl_certificate_installed"].is_boolean())
            m.ssl_certificate = setting["ssl_certificate_installed"].get<bool>();
    }
    return m;
}

Connection parse_connection(const std::string& status_json) {
    Connection c;
    const auto status = parse_or_null(status_json);
    if (!status.is_object() || !status.contains("database_in_use") || !status["database_in_use"].is_object()) return c;
    const auto& use = status["database_in_use"];
    if (use.value("mode", std::string()) != "external") return c;
    std::string e = use.value("endpoint", std::string());
    if (const auto sp = e.find(' '); sp != std::string::npos) e = e.substr(sp + 1);  // the vendor
    const auto at = e.rfind('@');
    const auto slash = e.find('/', at == std::string::npos ? 0 : at);
    if (at == std::string::npos || slash == std::string::npos) return c;
    const auto colon = e.rfind(':', slash);
    c.username = e.substr(0, at);
    if (colon != std::string::npos && colon > at) {
        c.host = e.substr(at + 1, colon - at - 1);
        c.port = e.substr(colon + 1, slash - colon - 1);
    } else {
        c.host = e.substr(at + 1, slash - at - 1);
    }
    c.name = e.substr(slash + 1);
    return c;
}

std::string connection_json(const Connection& c, const std::string& password) {
    return nlohmann::json{{"db_host", c.host}, {"db_name", c.name}, {"port", c.port}, {"username", c.username},
                          {"password", password}}
        .dump();
}

std::vector<std::string> parse_log_names(const std::string& list_json) {
    std::vector<std::string> out;
    auto j = parse_or_null(list_json);
    if (j.is_object() && j.contains("logs")) j = j["logs"];
    if (!j.is_array()) return out;
    for (const auto& e : j) {
        if (e.is_string()) out.push_back(e.get<std::string>());
        else if (e.is_object() && e.contains("name") && e["name"].is_string()) out.push_back(e["name"].get<std::string>());
    }
    return out;
}

Modes Runner::modes() const { return parse_modes(run("status").out, run("setting.show").out); }

Connection Runner::connection() const { return parse_connection(run("status").out); }

std::vector<std::string> Runner::logs() const {
    const auto listed = parse_log_names(run("log.list").out);
    std::vector<std::string> out;
    for (const auto& n : listed)
        if (log_view_action(n)) out.push_back(n);
    if (out.empty())
        for (auto n : log_names()) out.emplace_back(n);
    return out;
}

} // namespace leo::menu
