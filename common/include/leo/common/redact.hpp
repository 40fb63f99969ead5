#pragma once
/// Secrets out of text meant for people: messages, the log, --json output.

#include <string>
#include <string_view>

namespace leo {

/// `text` with the secrets it may quote replaced by "***": the password of every URL's
/// user information (`scheme://user:PASS@` -> `scheme://user:***@`, also in libpq's
/// `postgresql://` URIs and `proxy=` values), and the value of every `password=`,
/// `proxy_password=` and `sslpassword=` keyword (bare, 'single-quoted' to its closing quote
/// or, unterminated, to the end of the text). Everything else is unchanged. Pure; linear.
[[nodiscard]] std::string redact_secrets(std::string_view text);

/// `url` with its password replaced: redact_secrets() for one URL.
[[nodiscard]] inline std::string redact_url(std::string_view url) { return redact_secrets(url); }

/// `text` with every control character but tab (C0, DEL: carriage returns, escape
/// sequences, newlines) written as `\xNN`, so text another user wrote (a server log, a
/// file name) cannot rewrite what the administrator's terminal or the log shows. UTF-8
/// passes unchanged.
[[nodiscard]] std::string printable(std::string_view text);

} // namespace leo
