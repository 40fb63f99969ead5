#pragma once
/// The broker's database connection: ROOT/etc/leostream/database.conf (DESIGN.md "Paths
/// under the root"), INI read with inih, written atomically, mode 0600, owner leo:
///
///   [database]
///   format = 1
///   mode = external                 ; or internal (the file absent means internal)
///   vendor = postgres               ; postgres | mssqlserver | azuresql
///   host = db.example.com
///   port = 5432
///   name = leo
///   username = broker
///   password = aes256gcm:v1:BASE64  ; never the password itself; a long value goes on
///       BASE64...                   ; indented continuation lines (inih reads lines of
///                                   ; at most 200 bytes)
///   site_id = 1                     ; optional
///   switched_at = 2026-11-29T18:00:00Z
///
/// The password is sealed with AES-256-GCM (OpenSSL) under a 256-bit key kept in
/// ROOT/etc/leostream/database.key (base64, mode 0400, owner leo: readable only by leo,
/// and root), made from OpenSSL's CSPRNG the first time a password is stored. The
/// sealed value is nonce || ciphertext || tag, bound to its purpose by the associated
/// data "leostream database.conf password v1".

#include "leo/migrations/vendor.hpp"

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

namespace leo::installer {

inline constexpr const char* k_database_conf = "/etc/leostream/database.conf";
inline constexpr const char* k_database_key = "/etc/leostream/database.key";
inline constexpr int k_database_conf_format = 1;

enum class DatabaseMode { internal, external };

struct DatabaseConfig {
    DatabaseMode mode = DatabaseMode::internal;
    migrations::Endpoint external;  ///< meaningful when mode is external (password in plain text, in memory)
    std::optional<int> site_id;     ///< this broker's site id in the cluster
    std::string switched_at;        ///< UTC time of the last switch ("" when never switched)
    /// Why the stored password could not be decrypted ("" when it could, or none is
    /// stored): the key file is missing, unreadable or another one, or the value was
    /// edited. The rest of the configuration is still usable (show it, switch away).
    std::string password_error;
};

/// The password of `config`'s external database, or leo::Error saying why it cannot be
/// decrypted and how to store it again (`password_error`).
[[nodiscard]] const std::string& require_password(const DatabaseConfig& config);

/// Clears this process's libpq credential defaults (PGPASSWORD, PGSERVICE, PGSERVICEFILE,
/// LEO_DB_PASSWORD; PGPASSFILE pointed at nothing): database.conf is leo's file, so an
/// endpoint it names must never be offered root's ~/.pgpass or environment password.
void ignore_ambient_pg_credentials();

/// A libpq conninfo for `config`'s external database: throws leo::DatabaseError when this
/// build does not support its vendor, leo::Error when its password cannot be decrypted.
/// Calls ignore_ambient_pg_credentials() first.
[[nodiscard]] std::string external_conninfo(const DatabaseConfig& config);

/// Longest value database.conf holds for host, name and username (with the key, a line
/// stays well inside inih's 200-byte line buffer).
inline constexpr std::size_t k_max_conf_value = 180;

/// Check that `value` can be stored as `key = value` and read back unchanged: not empty,
/// at most k_max_conf_value bytes, no control characters, no leading or trailing blank,
/// no blank followed by ';' (an inline comment to inih). Throws leo::UsageError naming
/// `what` (e.g. "--db_host").
void check_conf_value(const std::string& what, const std::string& value);

/// Read ROOT/etc/leostream/database.conf and decrypt the password. An absent file is the
/// internal database (the broker's default). Throws leo::UsageError naming file and line
/// for a syntax error, an unknown or repeated setting, a bad value, or a missing or
/// other format version. A password that cannot be decrypted does not throw: it is
/// reported in `password_error` (require_password() throws it when the password is needed).
[[nodiscard]] DatabaseConfig load_database_config(const std::filesystem::path& root);

/// Parse database.conf text (what load_database_config runs on the file's content; the
/// password is opened with the key file of `root`); `file` names it in errors. Throws
/// leo::UsageError as load_database_config does.
[[nodiscard]] DatabaseConfig parse_database_config(const std::string& text, const std::string& file,
                                                   const std::filesystem::path& root);

/// Write the configuration: password sealed with the key file (created when missing),
/// the file written atomically with mode 0600 and owner leo. Throws leo::UsageError for a
/// value check_conf_value() refuses, leo::SystemError, and leo::InstallError when ROOT
/// has no leo user.
void save_database_config(const std::filesystem::path& root, const DatabaseConfig& config);

/// Throw leo::InstallError when the broker uses an external database: `what` ("upgrade",
/// "rollback", "a restore point") works on the internal database only in this version (its
/// restore points hold the internal database and /etc/leostream, so a rollback would
/// quietly switch the broker back to internal). Nothing is changed.
void require_internal_database(const std::filesystem::path& root, const std::string& what);

/// Seal / open a secret with the key file (for the journal, which must hold no password
/// in plain text). seal_secret creates the key when missing; both throw leo::SystemError
/// for a key file that cannot be read or is not a key (naming it, never its content),
/// open_secret leo::Error when authentication fails. Sealed text is "aes256gcm:v1:" + base64.
[[nodiscard]] std::string seal_secret(const std::filesystem::path& root, const std::string& secret);
[[nodiscard]] std::string open_secret(const std::filesystem::path& root, const std::string& sealed);

/// The configuration as lines for a terminal, the password masked ("********", or
/// "(none)" when empty): what `switch_database.pl --show_current` prints.
[[nodiscard]] std::string masked_text(const DatabaseConfig& config);

} // namespace leo::installer
