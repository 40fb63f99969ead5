#pragma once
/// Secrets out of text meant for people: messages, the log, --json output.

#include <string>
#include <string_view>
#include <vector>

namespace leo {

/// `text` with the secrets it may quote replaced by "***": the password of every URL's
/// user information (`scheme://user:PASS@` -> `scheme://user:***@`, also in libpq's
/// `postgresql://` URIs and `proxy=` values), and the value of every `password=`,
/// `proxy_password=` and `sslpassword=` keyword (bare, 'single-quoted' to its closing quote
/// or, unterminated, to the end of the text). Everything else is unchanged. Pure; linear.
[[nodiscard]] std::string redact_secrets(std::string_view text);

/// `url` with its password replaced: redact_secrets() for one URL.
[[nodiscard]] inline std::string redact_url(std::string_view url) { return redact_secrets(url); }

/// What redact_text() hides besides its fixed rules.
struct RedactionRules {
    /// More key names whose values are secrets (compared without case), e.g. the
    /// `[support_bundle] secret_keys` of installer.conf.
    std::vector<std::string> secret_keys;
    /// Secret values known in plain text (the external database's password): every
    /// occurrence anywhere is replaced. Values shorter than 4 bytes are ignored (they
    /// would hide ordinary text, and guessing them is no harder than guessing "***").
    std::vector<std::string> literals;
};

/// Is `key` the name of a secret? True when it equals one of `extra` (without case) or,
/// lowercased, contains password, passwd, passphrase, secret, token, private_key,
/// privatekey, api_key, apikey, credential or authorization (so proxy_password,
/// PGPASSWORD, sslpassword, client_secret, access_token). Pure.
[[nodiscard]] bool is_secret_key(std::string_view key, const std::vector<std::string>& extra = {});

/// A whole file's text (configuration, a log, a journal) with its secrets replaced, for a
/// support bundle that leaves the machine. In order:
/// - every PEM block (`-----BEGIN LABEL-----` to its `-----END`, or to the end of the text
///   when unterminated) but certificates and public keys: its body becomes "***";
/// - `KEY = VALUE`, `KEY: VALUE`, `"KEY": "VALUE"`, `export KEY=VALUE` and `?KEY=VALUE&`
///   anywhere in a line, where is_secret_key(KEY, rules.secret_keys): the value becomes
///   "***" (to the end of the line when KEY starts the line, as INI and env files have it;
///   to its closing quote when quoted; else to the next blank, comma, semicolon, `&`, `)`);
///   a command line's `--KEY VALUE` (a secret KEY) hides the next word;
///   the indented continuation lines after such an INI line (inih's multi-line values:
///   database.conf's long sealed password) become "***" too;
/// - redact_secrets(): URL user information passwords and libpq `password=` keywords;
/// - sealed values (`aes256gcm:v1:BASE64`, database.conf and the journal): "aes256gcm:v1:***";
/// - every occurrence of each of `rules.literals`.
/// Pure; linear in the text (times the number of literals).
[[nodiscard]] std::string redact_text(std::string_view text, const RedactionRules& rules = {});

/// `text` with every control character but tab (C0, DEL: carriage returns, escape
/// sequences, newlines) written as `\xNN`, so text another user wrote (a server log, a
/// file name) cannot rewrite what the administrator's terminal or the log shows. UTF-8
/// passes unchanged.
[[nodiscard]] std::string printable(std::string_view text);

} // namespace leo
