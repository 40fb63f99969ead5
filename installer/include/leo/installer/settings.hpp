#pragma once
/// The broker's administration settings: what the vendor manual's console Administration
/// Menu > Advanced toggles, kept where the broker keeps them, the `settings` table (name
/// varchar(128) PRIMARY KEY, value text NOT NULL) of the broker database
/// (migrations/sql/V9.0.0.1__baseline.sql; V9.0.0.2 inserts the defaults of
/// upgrades_enabled and rest_api_enabled). On an external database the table is shared
/// by every broker of the cluster, so a change applies to all of them.
///
/// The rows (booleans are stored as 'true' / 'false'; PostgreSQL's other spellings, t/f,
/// yes/no, on/off, 1/0, any case, are read too, as the upgrade gate reads them):
///
/// | row                 | default  | Administration Menu > Advanced          | `leo-installer setting` |
/// |---------------------|----------|-----------------------------------------|-------------------------|
/// | debug               | false    | Debug on / Debug off                    | debug on\|off           |
/// | upgrades_enabled    | true     | Upgrade disable / enable (the row the   | upgrades enable\|disable|
/// |                     |          | upgrade gate reads: gates.hpp)          |                         |
/// | admin_login_enabled | true     | Disable the default `admin` login       | admin-login disable\|enable |
/// | rest_api_enabled    | false    | REST API enable / disable (enabling     | rest-api enable\|disable |
/// |                     |          | needs 8 GB: preflight profile rest-api) |                         |
/// | cipher_suite        | k_default_cipher_suite | Revert to the default cipher suite | cipher-suite default |
///
/// A row that is absent reads as its default (a schema older than the row, or a row
/// deleted by hand); writing it inserts it. A settings table that is absent is refused
/// (leo::RefusedError): the schema's baseline migration creates it, so a database
/// without it has not been migrated, and creating the table here would make that
/// migration fail later; `leo-installer migrate` is the fix the message names.
///
/// The web server's SSL certificate (Administration Menu > Advanced > Uninstall the SSL
/// certificate): the broker package ships none; an administrator's certificate is
/// installed as k_ssl_certificate with its key k_ssl_key (and an optional chain,
/// k_ssl_chain), owned by leo. When none is installed the web server uses its own
/// self-signed one, which is what uninstalling returns to.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace leo::migrations {
class Connection;
}

namespace leo::installer {

/// The cipher suite the broker's web server uses by default (an OpenSSL cipher list: no
/// anonymous, null, export, DES, 3DES, RC4, MD5 or PSK suites). The vendor manual names
/// no string; this is the package's default, and what `setting cipher-suite default`
/// writes.
inline constexpr const char* k_default_cipher_suite = "HIGH:!aNULL:!eNULL:!EXPORT:!DES:!3DES:!RC4:!MD5:!PSK";

/// The installed SSL certificate of the web server, its private key and chain (inside the root).
inline constexpr const char* k_ssl_dir = "/home/leo/etc/ssl";
inline constexpr const char* k_ssl_certificate = "/home/leo/etc/ssl/broker.crt";
inline constexpr const char* k_ssl_key = "/home/leo/etc/ssl/broker.key";
inline constexpr const char* k_ssl_chain = "/home/leo/etc/ssl/broker-chain.crt";

enum class SettingKind { boolean, text };

/// One row of the table above.
struct SettingInfo {
    std::string_view name;           ///< the row's name: "debug"
    std::string_view word;           ///< the `setting` subcommand: "debug", "admin-login"
    SettingKind kind = SettingKind::boolean;
    std::string_view default_value;  ///< "false", "true", or k_default_cipher_suite
    std::string_view title;          ///< "debug mode", for messages
    std::string_view menu;           ///< where the manual puts it: "Administration Menu > Advanced > Debug"
};

/// Every setting, in the order of the table above.
[[nodiscard]] const std::vector<SettingInfo>& setting_catalog();

/// The setting whose row name or `setting` word is `name`; nullopt when none.
[[nodiscard]] const SettingInfo* find_setting(std::string_view name);

/// A boolean as PostgreSQL spells one (true/false, t/f, yes/no, y/n, on/off, 1/0; any
/// case, blanks and line ends around ignored); nullopt for anything else. The upgrade
/// gate (gates.hpp) reads settings.upgrades_enabled with it too.
[[nodiscard]] std::optional<bool> parse_setting_bool(std::string_view text);

/// One setting as the database holds it.
struct SettingValue {
    const SettingInfo* info = nullptr;
    std::string value;            ///< the row's value, or the default when there is no row
    bool stored = false;          ///< a row exists
    /// For a boolean: its value; nullopt when the row holds something that is not a boolean.
    std::optional<bool> enabled;
};

/// Every setting of setting_catalog() from the broker database `conn`. Throws
/// leo::RefusedError when the settings table does not exist (naming `migrate`),
/// leo::DatabaseError when it cannot be read.
[[nodiscard]] std::vector<SettingValue> read_settings(migrations::Connection& conn);

/// Store `value` as `info`'s row in one transaction (UPDATE, or INSERT when there is no
/// row: no ON CONFLICT, which PostgreSQL 9.1 lacks). Returns what the row held before
/// (nullopt: no row). Throws leo::UsageError for a boolean setting given a value that is
/// not 'true' or 'false', leo::RefusedError when the table does not exist, and
/// leo::DatabaseError; nothing is changed then.
std::optional<std::string> write_setting(migrations::Connection& conn, const SettingInfo& info,
                                         const std::string& value);

/// The SSL certificate files present under `root` (k_ssl_certificate, k_ssl_key,
/// k_ssl_chain, inside-root paths); empty when none is. A certificate is "installed" when
/// k_ssl_certificate exists. Throws leo::SystemError for an unsafe link on the way.
[[nodiscard]] std::vector<std::string> ssl_certificate_files(const std::filesystem::path& root);

/// Remove the installed certificate, its key and chain through leo::fs::SystemRoot.
/// Returns the files removed. Throws leo::RefusedError when no certificate is installed
/// (nothing changed), leo::SystemError when a file cannot be removed.
std::vector<std::string> remove_ssl_certificate(const std::filesystem::path& root);

} // namespace leo::installer
