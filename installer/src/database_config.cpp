#include "leo/installer/database_config.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/clock.hpp"
#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"
#include "leo/common/log.hpp"
#include "leo/installer/paths.hpp"

#include "ini_errors.hpp"

#include <set>
#include <vector>

#include <fmt/format.h>

#include <cstdlib>
#include <ini.h>

#include <sys/stat.h>
#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

constexpr const char* k_sealed_prefix = "aes256gcm:v1:";
constexpr const char* k_aad = "leostream database.conf password v1";

accounts::User leo_user(const stdfs::path& root) {
    auto user = accounts::find_user(root, k_user);
    if (!user)
        throw InstallError(fmt::format("user {} does not exist in {}: install the broker first", k_user,
                                       (root / "etc/passwd").string()));
    return *user;
}

/// ROOT/etc/leostream (0750, root:leo's group), created when missing.
stdfs::path config_dir(const stdfs::path& root, const accounts::User& leo) {
    const fs::SystemRoot sr(root);
    // Made root:leo 0750 when missing (owner and mode set on its descriptor); an existing
    // one is left as the administrator set it.
    sr.make_dirs(fs::SystemRoot::k_etc_leostream, 0750, fs::Owner{0, leo.gid}, fs::ExistingDir::keep);
    return sr.host(fs::SystemRoot::k_etc_leostream);
}

std::string read_key(const stdfs::path& root) {
    const auto file = fs::SystemRoot(root).host(k_database_key);
    std::string text;
    try {
        text = fs::SystemRoot(root).read(k_database_key, 4096);
    } catch (const SystemError&) {
        std::throw_with_nested(SystemError(fmt::format(
            "the database password cannot be decrypted without its key file {}; store the password again with "
            "switch_database.pl --to_external existing ... (a new key is then made)",
            file.string())));
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    std::string key;
    try {
        key = crypto::base64_decode(text);
    } catch (const Error&) {
        key.clear();  // never echo key material
    }
    if (key.size() != crypto::k_aes256_key_size)
        throw SystemError(fmt::format(
            "{} is not a database key file (base64 of {} bytes): remove it, and store the password again with "
            "switch_database.pl --to_external existing ... (a new key is made)",
            file.string(), crypto::k_aes256_key_size));
    return key;
}

/// The key, made (32 random bytes, mode 0400, owner leo) when it does not exist yet.
std::string key_for_sealing(const stdfs::path& root) {
    const fs::SystemRoot sr(root);
    if (sr.exists(k_database_key)) return read_key(root);
    const auto leo = leo_user(root);
    (void)config_dir(root, leo);
    const std::string key = crypto::random_bytes(crypto::k_aes256_key_size);
    sr.write_atomic(k_database_key, crypto::base64_encode(key) + "\n", 0400, fs::Owner{leo.uid, leo.gid});
    log::info("created the database key file {}", sr.host(k_database_key).string());
    return key;
}

struct ParseState {
    DatabaseConfig config;
    std::string sealed_password;
    std::vector<detail::IniRefusal> refusals;
    std::set<std::string> seen;
    bool saw_format = false;
    bool saw_mode = false;
};

int handler(void* user, const char* section, const char* name, const char* value) {
    auto* st = static_cast<ParseState*>(user);
    const std::string s = section, n = name, v = value;
    auto& c = st->config;
    long number = 0;
    auto refuse = [&](std::string message) {
        st->refusals.push_back({n, std::move(message)});
        return 0;
    };
    if (s != "database") return refuse(fmt::format("unknown section [{}] (expected [database])", s));
    // A long sealed password is written over indented continuation lines, which inih
    // hands over as the same key again: those are appended. Any other key only once.
    if (n == "password" && st->seen.count(n) != 0) {
        st->sealed_password += v;
        return 1;
    }
    if (!st->seen.insert(n).second) return refuse(fmt::format("{} is set twice", n));
    if (n == "format") {
        if (!detail::parse_long(v, number) || number != k_database_conf_format) {
            return refuse(fmt::format("format = {} is not supported (this leo-installer reads format {})", v,
                                    k_database_conf_format));
        }
        st->saw_format = true;
    } else if (n == "mode") {
        if (v == "internal") c.mode = DatabaseMode::internal;
        else if (v == "external") c.mode = DatabaseMode::external;
        else {
            return refuse(fmt::format("mode = {}: expected internal or external", v));
        }
        st->saw_mode = true;
    } else if (n == "vendor") {
        const auto vendor = migrations::parse_vendor(v);
        if (!vendor) {
            return refuse(fmt::format("vendor = {}: expected postgres, mssqlserver or azuresql", v));
        }
        c.external.vendor = *vendor;
    } else if (n == "host") {
        c.external.host = v;
    } else if (n == "port") {
        if (!detail::parse_long(v, number) || number < 1 || number > 65535) {
            return refuse(fmt::format("port = {}: expected a TCP port from 1 to 65535", v));
        }
        c.external.port = static_cast<int>(number);
    } else if (n == "name") {
        c.external.dbname = v;
    } else if (n == "username") {
        c.external.username = v;
    } else if (n == "password") {
        if (v.rfind(k_sealed_prefix, 0) != 0) {
            return refuse(fmt::format("password is not an encrypted value ({}...): never write a password here; "
                                      "store it with switch_database.pl",
                                      k_sealed_prefix));
        }
        st->sealed_password = v;
    } else if (n == "site_id") {
        if (!detail::parse_long(v, number) || number < 1 || number > 2147483647) {
            return refuse(fmt::format("site_id = {}: expected a whole number from 1 to 2147483647", v));
        }
        c.site_id = static_cast<int>(number);
    } else if (n == "switched_at") {
        c.switched_at = v;
    } else {
        return refuse(fmt::format("unknown setting {}", n));
    }
    return 1;
}

} // namespace

void check_conf_value(const std::string& what, const std::string& v) {
    if (v.empty()) throw UsageError(fmt::format("{} is empty", what));
    if (v.size() > k_max_conf_value)
        throw UsageError(fmt::format("{} has {} characters; at most {} can be stored", what, v.size(), k_max_conf_value));
    for (char c : v)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            throw UsageError(fmt::format("{} contains a control character", what));
    if (v.front() == ' ' || v.back() == ' ')
        throw UsageError(fmt::format("{} '{}' starts or ends with a blank", what, v));
    if (v.find(" ;") != std::string::npos)
        throw UsageError(fmt::format("{} '{}' contains ' ;', which database.conf cannot hold", what, v));
}

const std::string& require_password(const DatabaseConfig& c) {
    if (!c.password_error.empty()) throw Error(c.password_error);
    return c.external.password;
}

void ignore_ambient_pg_credentials() { migrations::ignore_ambient_credentials(); }

std::string external_conninfo(const DatabaseConfig& c) {
    // database.conf is the leo account's file: the endpoint is leo's choice, so nothing of
    // root's own (PGPASSWORD, ~/.pgpass, a service file) may be offered to it.
    ignore_ambient_pg_credentials();
    auto driver = migrations::make_driver(c.external.vendor);
    driver->require_supported();
    (void)require_password(c);
    return driver->conninfo(c.external);
}

void require_internal_database(const stdfs::path& root, const std::string& what) {
    const auto db = load_database_config(root);
    if (db.mode != DatabaseMode::external) return;
    throw InstallError(fmt::format(
        "the broker uses the external database {}; {} with an external database is not supported yet by this "
        "leo-installer (restore points hold the internal database and /etc/leostream, so it would switch the broker "
        "back to the internal one): nothing was changed",
        db.external.display(), what));
}

std::string seal_secret(const stdfs::path& root, const std::string& secret) {
    const std::string key = key_for_sealing(root);
    return k_sealed_prefix + crypto::base64_encode(crypto::aes256gcm_encrypt(key, secret, k_aad));
}

std::string open_secret(const stdfs::path& root, const std::string& sealed) {
    if (sealed.rfind(k_sealed_prefix, 0) != 0)
        throw Error(fmt::format("an encrypted password must start with {}", k_sealed_prefix));
    const auto file = fs::SystemRoot(root).host(k_database_key);
    const std::string key = read_key(root);
    try {
        return crypto::aes256gcm_decrypt(key, crypto::base64_decode(sealed.substr(std::string(k_sealed_prefix).size())),
                                         k_aad);
    } catch (const Error&) {
        std::throw_with_nested(Error(fmt::format(
            "the database password cannot be decrypted with {} (another key file, or an edited value); store it again "
            "with switch_database.pl",
            file.string())));
    }
}

DatabaseConfig load_database_config(const stdfs::path& root) {
    const fs::SystemRoot sr(root);
    const auto text = sr.try_read(k_database_conf, std::size_t{1} << 20);
    if (!text) return {};
    return parse_database_config(*text, sr.host(k_database_conf).string(), root);
}

DatabaseConfig parse_database_config(const std::string& text, const std::string& file, const stdfs::path& root) {
    ParseState st;
    const int rc = detail::ini_parse_text(text, handler, &st);
    if (rc < 0) throw UsageError(fmt::format("{}: cannot be parsed (inih error {})", file, rc));
    if (rc > 0) throw detail::ini_error(file, text, rc, st.refusals);
    if (!st.saw_format) throw UsageError(fmt::format("{}: has no format = {} line", file, k_database_conf_format));
    if (!st.saw_mode) throw UsageError(fmt::format("{}: has no mode = internal|external", file));
    auto& c = st.config;
    if (c.mode == DatabaseMode::external) {
        for (const auto& [key, value] : {std::pair{"host", &c.external.host}, std::pair{"name", &c.external.dbname},
                                         std::pair{"username", &c.external.username}})
            if (value->empty())
                throw UsageError(fmt::format("{}: mode = external needs {} = ...", file, key));
        if (!st.sealed_password.empty()) {
            try {
                c.external.password = open_secret(root, st.sealed_password);
            } catch (const Error& e) {
                c.password_error = fmt::format("{}: the password cannot be decrypted: {}", file, describe(e));
                log::warning("{}", c.password_error);
            }
        }
    }
    return c;
}

void save_database_config(const stdfs::path& root, const DatabaseConfig& c) {
    const auto leo = leo_user(root);
    (void)config_dir(root, leo);
    std::string text = "# The broker's database connection, written by leo-installer (switch_database.pl).\n"
                       "# The password is encrypted (AES-256-GCM) with the key in " +
                       std::string(k_database_key) + "; do not edit it by hand.\n[database]\n";
    text += fmt::format("format = {}\n", k_database_conf_format);
    text += fmt::format("mode = {}\n", c.mode == DatabaseMode::external ? "external" : "internal");
    if (c.mode == DatabaseMode::external) {
        const auto& e = c.external;
        check_conf_value("host", e.host);
        check_conf_value("name", e.dbname);
        check_conf_value("username", e.username);
        text += fmt::format("vendor = {}\nhost = {}\nport = {}\nname = {}\nusername = {}\n",
                            migrations::vendor_id(e.vendor), e.host, e.port, e.dbname, e.username);
        if (!e.password.empty()) {
            // 64 characters a line: the first after the key, the rest indented (continuations);
            // base64 padding stays on the line before rather than standing alone.
            const std::string sealed = seal_secret(root, e.password);
            constexpr size_t k_chunk = 64;
            std::vector<std::string> lines;
            for (size_t i = 0; i < sealed.size(); i += k_chunk) {
                std::string part = sealed.substr(i, k_chunk);
                if (!lines.empty() && part.find_first_not_of('=') == std::string::npos) lines.back() += part;
                else lines.push_back(std::move(part));
            }
            text += "password = " + lines.front() + "\n";
            for (size_t i = 1; i < lines.size(); ++i) text += "    " + lines[i] + "\n";
        }
    }
    if (c.site_id) text += fmt::format("site_id = {}\n", *c.site_id);
    text += "switched_at = " + (c.switched_at.empty() ? clock::utc_now() : c.switched_at) + "\n";
    fs::SystemRoot(root).write_atomic(k_database_conf, text, 0600, fs::Owner{leo.uid, leo.gid});
}

std::string masked_text(const DatabaseConfig& c) {
    std::string out;
    auto line = [&](const char* k, const std::string& v) { out += fmt::format("  {:<13} {}\n", k, v); };
    if (c.mode == DatabaseMode::internal) {
        line("database", "internal (PostgreSQL under /home/leo/pgsql, database leo)");
    } else {
        const auto& e = c.external;
        line("database", "external");
        line("vendor", fmt::format("{} ({})", migrations::vendor_id(e.vendor), migrations::vendor_title(e.vendor)));
        line("host", e.host);
        line("port", std::to_string(e.port));
        line("name", e.dbname);
        line("username", e.username);
        line("password", !c.password_error.empty() ? "(stored, but cannot be decrypted: see below)"
                         : e.password.empty()       ? "(none)"
                                                    : "********");
    }
    line("site id", c.site_id ? std::to_string(*c.site_id) : "(not set)");
    if (!c.switched_at.empty()) line("switched at", c.switched_at);
    return out;
}

} // namespace leo::installer
