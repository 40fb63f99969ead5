#include "leo/installer/settings.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/system_root.hpp"
#include "leo/migrations/connection.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace leo::installer {

namespace {

using migrations::Connection;
using migrations::QueryError;

/// SQLSTATE of "undefined table".
constexpr const char* k_undefined_table = "42P01";

RefusedError no_settings_table() {
    return RefusedError(fmt::format("the broker database has no settings table: its schema has not been created "
                                    "(the baseline migration makes it); run {} first; nothing was changed",
                                    command_hint("migrate")));
}

} // namespace

const std::vector<SettingInfo>& setting_catalog() {
    static const std::vector<SettingInfo> k_catalog{
        {"debug", "debug", SettingKind::boolean, "false", "debug mode", "Administration Menu > Advanced > Debug"},
        {"upgrades_enabled", "upgrades", SettingKind::boolean, "true", "broker upgrades",
         "Administration Menu > Advanced > Upgrade disable/enable"},
        {"admin_login_enabled", "admin-login", SettingKind::boolean, "true", "the default admin login",
         "Administration Menu > Advanced > Disable default admin login"},
        {"rest_api_enabled", "rest-api", SettingKind::boolean, "false", "the REST API",
         "Administration Menu > Advanced > REST API enable/disable"},
        {"cipher_suite", "cipher-suite", SettingKind::text, k_default_cipher_suite, "the cipher suite",
         "Administration Menu > Advanced > Revert to default cipher suite"},
    };
    return k_catalog;
}

const SettingInfo* find_setting(std::string_view name) {
    for (const auto& s : setting_catalog())
        if (s.name == name || s.word == name) return &s;
    return nullptr;
}

std::optional<bool> parse_setting_bool(std::string_view text) {
    const auto b = text.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return std::nullopt;
    std::string v(text.substr(b, text.find_last_not_of(" \t\r\n") - b + 1));
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const char* yes : {"true", "t", "yes", "y", "on", "1"})
        if (v == yes) return true;
    for (const char* no : {"false", "f", "no", "n", "off", "0"})
        if (v == no) return false;
    return std::nullopt;
}

std::vector<SettingValue> read_settings(Connection& conn) {
    migrations::Rows rows;
    try {
        rows = conn.query("SELECT name, value FROM settings");
    } catch (const QueryError& e) {
        if (e.sqlstate() == k_undefined_table) throw no_settings_table();
        throw;
    }
    std::vector<SettingValue> out;
    for (const auto& info : setting_catalog()) {
        SettingValue v;
        v.info = &info;
        v.value = std::string(info.default_value);
        for (size_t r = 0; r < rows.rows.size(); ++r)
            if (rows.at(r, 0) == info.name) {
                v.value = rows.at(r, 1);
                v.stored = true;
            }
        if (info.kind == SettingKind::boolean) v.enabled = parse_setting_bool(v.value);
        out.push_back(std::move(v));
    }
    return out;
}

std::optional<std::string> write_setting(Connection& conn, const SettingInfo& info, const std::string& value) {
    if (info.kind == SettingKind::boolean && value != "true" && value != "false")
        throw UsageError(fmt::format("the setting {} takes 'true' or 'false', not '{}'; nothing was changed",
                                     info.name, printable(value)));
    const std::string name(info.name);
    std::optional<std::string> before;
    conn.exec("BEGIN");
    try {
        // The row is locked for the transaction: a second writer waits, then updates.
        const auto rows = conn.query("SELECT value FROM settings WHERE name = $1 FOR UPDATE", {name});
        if (!rows.empty()) before = rows.at(0, 0);
        if (before) conn.query("UPDATE settings SET value = $2 WHERE name = $1", {name, value});
        else conn.query("INSERT INTO settings (name, value) VALUES ($1, $2)", {name, value});
        conn.exec("COMMIT");
    } catch (const QueryError& e) {
        try {
            conn.exec("ROLLBACK");
        } catch (const std::exception&) {
        }
        if (e.sqlstate() == k_undefined_table) throw no_settings_table();
        throw;
    } catch (...) {
        try {
            conn.exec("ROLLBACK");
        } catch (const std::exception&) {
        }
        throw;
    }
    log::info("setting {}: '{}' -> '{}'", name, printable(before.value_or("(no row)")), printable(value));
    return before;
}

std::vector<std::string> ssl_certificate_files(const std::filesystem::path& root) {
    const fs::SystemRoot sr(root);
    std::vector<std::string> out;
    for (const char* f : {k_ssl_certificate, k_ssl_key, k_ssl_chain})
        if (sr.exists(f)) out.emplace_back(f);
    return out;
}

std::vector<std::string> remove_ssl_certificate(const std::filesystem::path& root) {
    const fs::SystemRoot sr(root);
    if (!sr.exists(k_ssl_certificate))
        throw RefusedError(fmt::format("no SSL certificate is installed ({} does not exist): the web server uses its "
                                       "default certificate; nothing was changed",
                                       sr.host(k_ssl_certificate).string()));
    std::vector<std::string> removed;
    // The certificate last: while it exists, a failure here can be run again.
    for (const char* f : {k_ssl_key, k_ssl_chain, k_ssl_certificate})
        if (sr.remove(f)) removed.emplace_back(f);
    std::string list;
    for (const auto& f : removed) list += (list.empty() ? "" : ", ") + f;
    log::info("SSL certificate uninstalled: removed {}", list);
    return removed;
}

} // namespace leo::installer
