// leo-installer switch-database (and switch_database.pl): show or change the broker's database.
#include "command.hpp"

#include "leo/common/signals.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/installer/switch_database.hpp"
#include "leo/migrations/vendor.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <system_error>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <termios.h>
#include <unistd.h>

namespace leo::cli {
namespace stdfs = std::filesystem;

namespace {

/// The first line of `file` (a password file): at most 64 KiB are read, so /dev/zero or a
/// huge file cannot exhaust memory. Throws leo::UsageError naming the file and the reason.
std::string first_line_of(const std::string& file) {
    constexpr std::size_t k_max = 64 * 1024;
    std::error_code ec;
    if (stdfs::is_directory(file, ec))
        throw UsageError(fmt::format("--password_file {}: is a directory, not a file", file));
    std::FILE* f = std::fopen(file.c_str(), "rbe");
    if (f == nullptr)
        throw UsageError(fmt::format("--password_file {}: cannot read {}: {}", file, file, std::strerror(errno)));
    std::string buf(k_max, '\0');
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), f);
    std::fclose(f);
    buf.resize(n);
    const auto eol = buf.find('\n');
    if (buf.substr(0, eol).find('\0') != std::string::npos)
        throw UsageError(fmt::format("--password_file {}: its first line contains a NUL byte", file));
    if (eol == std::string::npos && n == k_max)
        throw UsageError(fmt::format("--password_file {}: no end of line in its first {} KiB", file, k_max / 1024));
    return buf.substr(0, eol);
}

/// Read a password from the terminal without echo. Returns nullopt when stdin is no terminal.
std::optional<std::string> prompt_password(const std::string& prompt) {
    if (::isatty(STDIN_FILENO) == 0) return std::nullopt;
    std::string answer;
    bool ok = false;
    {
        // Echo comes back whatever ends the prompt: Enter, end of file, an exception, or a
        // signal (the guard is known to the signal handler).
        const signals::TerminalGuard terminal(STDIN_FILENO);
        struct termios quiet {};
        if (terminal.active() && ::tcgetattr(STDIN_FILENO, &quiet) == 0) {
            quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
            ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
        std::cerr << prompt << std::flush;
        ok = static_cast<bool>(std::getline(std::cin, answer));
    }
    std::cerr << "\n";
    if (!ok) return std::nullopt;
    return answer;
}

/// switch_database.pl, flag for flag (installer/include/leo/installer/switch_database.hpp),
/// plus --root and -y like every command, each flag also spelled with hyphens
/// (--db-host), and password sources that stay out of the process list: --password_file
/// FILE (first line; "-" reads standard input), LEO_DB_PASSWORD (or libpq's PGPASSWORD),
/// or a prompt on the terminal.
class SwitchDatabaseCommand final : public Command {
public:
    /// --show_current is read-only for every user; every change needs root.
    [[nodiscard]] bool needs_root() const override { return !m_flags.show_current; }
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        sub.add_flag("--show_current,--show-current", m_flags.show_current, "Show the database the broker uses (password masked)");
        sub.add_flag("--to_internal,--to-internal", m_flags.to_internal, "Switch back to the internal database (nothing is copied)");
        m_opts.to_external = sub.add_option("--to_external,--to-external", m_to_external,
                                            "Switch to an external database: new (create it and copy into it), "
                                            "existing (connect to a broker database), copy_to_existing (azuresql)")
                                 ->option_text("MODE");
        m_opts.db_vendor =
            sub.add_option("--db_vendor,--db-vendor", m_db_vendor, "postgres (default), mssqlserver or azuresql")->option_text("VENDOR");
        m_opts.db_name = sub.add_option("--db_name,--db-name", m_db_name, "Database name")->option_text("NAME");
        m_opts.db_host = sub.add_option("--db_host,--db-host", m_db_host, "Database server host name or address")->option_text("HOST");
        m_opts.port = sub.add_option("--port", m_port, "TCP port, 1-65535 (default: 5432, or 1433 for SQL Server)")
                          ->option_text("PORT");
        m_opts.username = sub.add_option("--username", m_username, "Database user")->option_text("USER");
        m_opts.password = sub.add_option("--password", m_password,
                                         "Database password (visible in the process list: prefer --password_file, "
                                         "LEO_DB_PASSWORD or the prompt)")
                              ->option_text("PASSWORD");
        m_opts.password_file =
            sub.add_option("--password_file,--password-file", m_password_file, "Read the password from the first line of FILE (- : stdin)")
                ->option_text("FILE")
                ->excludes(m_opts.password);
        // The Administration Menu's edit (leo-menu): every connection value on standard input,
        // so the sudoers drop-in allows one fixed argument vector and no value is in argv.
        m_opts.connection_file =
            sub.add_option("--connection_file,--connection-file", m_connection_file,
                           "Read db_host, db_name, port, username and password from a JSON object in FILE (- : stdin)")
                ->option_text("FILE")
                ->excludes(m_opts.db_name)
                ->excludes(m_opts.db_host)
                ->excludes(m_opts.port)
                ->excludes(m_opts.username)
                ->excludes(m_opts.password)
                ->excludes(m_opts.password_file);
        m_opts.site_id = sub.add_option("--site_id,--site-id", m_site_id, "This broker's site id in the cluster")->option_text("ID");
        auto* yes = sub.add_flag("--skip_confirmation,--skip-confirmation,-y,--assumeyes", m_flags.skip_confirmation,
                                 "Do not ask before switching");
        sub.add_flag("--assumeno", m_assumeno, "Answer no: show the plan it would ask about, change nothing")
            ->excludes(yes);
        sub.add_flag("--allow_remote_upgrade,--allow-remote-upgrade", m_flags.allow_remote_upgrade,
                     "Allow upgrading the schema of an older external database");
    }
    int run() override {
        // --assumeno before the command and --skip_confirmation (-y) after it (the reverse is
        // refused by apply_globals, both after it by CLI11): a "no" must never become a
        // switch made without asking.
        if (m_assumeno && (m_flags.skip_confirmation || m_assumeyes))
            throw UsageError("--skip_confirmation (-y, --assumeyes) and --assumeno contradict each other: give one");
        auto given = [](CLI::Option* o, const std::string& v) {
            return o->count() > 0 ? std::optional<std::string>(v) : std::nullopt;
        };
        m_flags.to_external = given(m_opts.to_external, m_to_external);
        m_flags.db_vendor = given(m_opts.db_vendor, m_db_vendor);
        m_flags.db_name = given(m_opts.db_name, m_db_name);
        m_flags.db_host = given(m_opts.db_host, m_db_host);
        m_flags.port = given(m_opts.port, m_port);
        m_flags.username = given(m_opts.username, m_username);
        m_flags.site_id = given(m_opts.site_id, m_site_id);
        m_flags.password_given = m_opts.password->count() > 0 || m_opts.password_file->count() > 0;
        m_flags.password_flag = m_opts.password_file->count() > 0 ? "--password_file" : "--password";
        if (m_opts.connection_file->count() > 0) read_connection_file();
        // -y or --assumeno given before the command (apply_globals) count as given after it.
        m_flags.skip_confirmation = m_flags.skip_confirmation || m_assumeyes;
        auto req = installer::parse_switch_flags(m_flags);
        req.root = root();
        if (req.action == installer::SwitchAction::to_external) req.target.password = password(req.target);
        // What is checked is what is stored: libpq must not fall back to a password of the
        // administrator's environment (PGPASSWORD, ~/.pgpass) that the broker will not have.
        // (LEO_DB_PASSWORD: nor does it reach the [services] hooks)
        installer::ignore_ambient_pg_credentials();
        if (req.action == installer::SwitchAction::show_current) {
            installer::CurrentDatabase cur;
            try {
                cur = installer::show_current(req.root);
            } catch (const SystemError&) {
                if (::geteuid() == 0) throw;
                // Said, not guessed: database.conf (root's and leo's only) cannot be read.
                std::throw_with_nested(NeedsRootError(
                    "the broker's database configuration cannot be read as this user: run it as root"));
            }
            std::cout << installer::to_text(cur);
            if (!cur.reachable && ::geteuid() != 0) {
                // Said, not guessed: another user cannot see the database's state.
                std::cerr << k_prog << ": warning: not everything could be read as this user; run it as root\n";
                return static_cast<int>(ExitCode::needs_root);
            }
            return 0;
        }
        open_log(req.root);
        installer::SwitchCallbacks cb;
        cb.on_step = [](const std::string& s) { std::cout << "==> " << s << "\n" << std::flush; };
        cb.on_warning = [](const std::string& s) { std::cerr << k_prog << ": warning: " << s << "\n"; };
        cb.confirm = [this](const std::string& q) {
            if (m_assumeno) return confirm(false, q, true);
            if (::isatty(STDIN_FILENO) == 0)
                throw RefusedError("no terminal to ask for confirmation on; pass --skip_confirmation to proceed");
            return confirm(false, q);
        };
        const auto out = installer::switch_database(req, cb);
        for (const auto& m : out.migrations_applied) std::cout << "    applied " << m << "\n";
        std::cout << out.message << "\n";
        return 0;
    }

private:
    /// --connection_file: a JSON object whose string members db_host, db_name, port,
    /// username and password fill the flags of those names (port may be a number). Throws
    /// leo::UsageError naming the file for anything else (not JSON, not an object, an
    /// unknown member, a value that is not a string).
    void read_connection_file() {
        const std::string& file = m_connection_file;
        std::string text;
        if (file == "-") {
            text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
        } else {
            std::error_code ec;
            if (stdfs::is_directory(file, ec))
                throw UsageError(fmt::format("--connection_file {}: is a directory, not a file", file));
            std::ifstream in(file, std::ios::binary);
            if (!in) throw UsageError(fmt::format("--connection_file {}: cannot read it", file));
            text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        }
        const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (!j.is_object())
            throw UsageError(fmt::format("--connection_file {}: expected a JSON object such as "
                                         "{{\"db_host\": \"db1\", \"db_name\": \"leo\", \"username\": \"broker\", "
                                         "\"password\": \"...\"}}",
                                         file));
        for (const auto& [key, value] : j.items()) {
            std::string v;
            if (value.is_string()) v = value.get<std::string>();
            else if (key == "port" && value.is_number_integer()) v = std::to_string(value.get<long long>());
            else throw UsageError(fmt::format("--connection_file {}: \"{}\" must be a string", file, key));
            if (key == "db_host") m_flags.db_host = v;
            else if (key == "db_name") m_flags.db_name = v;
            else if (key == "port") m_flags.port = v;
            else if (key == "username") m_flags.username = v;
            else if (key == "password") {
                m_connection_password = v;
                m_flags.password_given = true;
                m_flags.password_flag = "--connection_file";
            } else
                throw UsageError(fmt::format("--connection_file {}: unknown member \"{}\" (expected db_host, db_name, "
                                             "port, username, password)",
                                             file, key));
        }
    }

    std::string password(const migrations::Endpoint& target) const {
        if (m_connection_password) return *m_connection_password;
        if (m_opts.password->count() > 0) {
            std::cerr << k_prog
                      << ": warning: --password is visible to other users in the process list; prefer "
                         "--password_file, LEO_DB_PASSWORD or the prompt\n";
            return m_password;
        }
        if (m_opts.password_file->count() > 0) {
            std::string text;
            if (m_password_file == "-") {
                std::getline(std::cin, text);
            } else {
                text = first_line_of(m_password_file);
            }
            if (!text.empty() && text.back() == '\r') text.pop_back();
            if (text.empty())
                throw UsageError(fmt::format("--password_file {}: the first line is empty", m_password_file));
            return text;
        }
        for (const char* var : {"LEO_DB_PASSWORD", "PGPASSWORD"})
            if (const char* env = std::getenv(var); env != nullptr) return env;
        if (auto typed = prompt_password(fmt::format("Password for {} (empty: none): ", target.display())))
            return *typed;
        return {};
    }

    installer::SwitchFlags m_flags;
    struct {
        CLI::Option* to_external = nullptr;
        CLI::Option* db_vendor = nullptr;
        CLI::Option* db_name = nullptr;
        CLI::Option* db_host = nullptr;
        CLI::Option* port = nullptr;
        CLI::Option* username = nullptr;
        CLI::Option* password = nullptr;
        CLI::Option* password_file = nullptr;
        CLI::Option* site_id = nullptr;
        CLI::Option* connection_file = nullptr;
    } m_opts;
    std::string m_connection_file;
    std::optional<std::string> m_connection_password;
    std::string m_to_external, m_db_vendor, m_db_name, m_db_host, m_port, m_username, m_password, m_password_file,
        m_site_id;
};

} // namespace

std::unique_ptr<Command> make_switch_database_command() { return std::make_unique<SwitchDatabaseCommand>(); }

} // namespace leo::cli
