// PostgreSQL's programs: finding the server binaries, the shell-character rule for paths, the Runner that runs them as leo.
#include "leo/migrations/internal_db.hpp"

#include "internal.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/error.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/common/system_root.hpp"
#include "leo/migrations/engine.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <unistd.h>

namespace leo::migrations {
namespace stdfs = std::filesystem;

namespace detail {

std::string trim(const std::string& s) {
    const auto end = s.find_last_not_of(" \t\r\n");
    if (end == std::string::npos)
        return {};
    const auto begin = s.find_first_not_of(" \t\r\n");
    return s.substr(begin, end - begin + 1);
}

std::optional<stdfs::path> find_nss_wrapper() {
    for (const char* dir : {"/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"}) {
        const stdfs::path p = stdfs::path(dir) / "libnss_wrapper.so";
        if (::access(p.c_str(), R_OK) == 0)
            return p;
    }
    return std::nullopt;
}

bool is_host_root(const stdfs::path& root) { return fs::SystemRoot(root).is_host(); }

} // namespace detail

namespace {

using detail::trim;

bool has_server_binaries(const stdfs::path& dir) {
    return ::access((dir / "initdb").c_str(), X_OK) == 0 && ::access((dir / "postgres").c_str(), X_OK) == 0;
}

/// The newest DIR/<prefix><version>/bin with server binaries ("/usr/lib/postgresql/15/bin").
std::optional<stdfs::path> newest_versioned_bindir(const stdfs::path& parent, const std::string& prefix) {
    std::optional<stdfs::path> best;
    std::string best_version;
    std::error_code ec;
    for (stdfs::directory_iterator it(parent, ec); !ec && it != stdfs::directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.starts_with(prefix))
            continue;
        const std::string version = name.substr(prefix.size());
        try {
            (void)compare_versions(version, version); // validates
        } catch (const MigrationError&) {
            continue;
        }
        const auto bin = it->path() / "bin";
        if (!has_server_binaries(bin))
            continue;
        if (!best || compare_versions(version, best_version) > 0) {
            best = bin;
            best_version = version;
        }
    }
    return best;
}

/// The character of `path` that a POSIX shell would interpret, if any.
std::optional<char> first_shell_special(std::string_view path) {
    static constexpr std::string_view k_special = "$`\"\\';&|<>()*?[]{}~!# \t\n";
    for (char c : path) {
        if (k_special.find(c) != std::string_view::npos || static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return c;
    }
    return std::nullopt;
}

std::string shown_char(char c) {
    switch (c) {
    case ' ': return "' ' (a space)";
    case '\t': return "'\\t' (a tab)";
    case '\n': return "'\\n' (a newline)";
    default: break;
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        return fmt::format("'\\x{:02x}' (a control character)", static_cast<unsigned char>(c));
    return fmt::format("'{}'", c);
}

/// `path` with control characters escaped, for a one-line message.
std::string shown_path(std::string_view path) {
    std::string out;
    for (char c : path) {
        if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        else
            out += c;
    }
    return out;
}

} // namespace

std::optional<char> shell_special_char(std::string_view path) { return first_shell_special(path); }

void check_path_for_postgres(const stdfs::path& path, const std::string& what, const std::string& fix) {
    const std::string text = path.string();
    const auto bad = first_shell_special(text);
    if (!bad)
        return;
    throw DatabaseError(fmt::format(
        "{} {} contains {}, which a shell would interpret: PostgreSQL's initdb starts the server through /bin/sh "
        "with this path in its command line; {} (letters, digits and / . _ - + , : @ = % only)",
        what, shown_path(text), shown_char(*bad), fix));
}

void check_root_for_postgres(const stdfs::path& root) {
    check_path_for_postgres(fs::SystemRoot(root).path(), "the root path",
                            "use a root path without shell characters, for example a symbolic link to it with a "
                            "plain name");
}

stdfs::path find_pg_bindir() {
    if (const char* env = std::getenv("LEO_PG_BINDIR"); env != nullptr && *env != '\0') {
        if (has_server_binaries(env))
            return env;
        throw DatabaseError(
            fmt::format("PostgreSQL server binaries (initdb, postgres) not found in LEO_PG_BINDIR={}; install the "
                        "postgresql server package (Debian: postgresql, RHEL: postgresql-server) or set LEO_PG_BINDIR",
                        env));
    }
    std::vector<std::string> looked;
    try {
        subprocess::Options options;
        options.timeout = std::chrono::seconds(30);
        auto r = subprocess::run({"pg_config", "--bindir"}, options);
        const auto dir = trim(r.out);
        if (r.ok() && !dir.empty()) {
            if (has_server_binaries(dir))
                return dir;
            looked.push_back(dir + " (pg_config --bindir)");
        } else {
            looked.push_back("pg_config --bindir (failed)");
        }
    } catch (const SystemError&) {
        looked.push_back("pg_config --bindir (no pg_config)");
    }
    if (auto d = newest_versioned_bindir("/usr/lib/postgresql", ""))
        return *d;
    looked.push_back("/usr/lib/postgresql/*/bin");
    if (auto d = newest_versioned_bindir("/usr", "pgsql-"))
        return *d;
    looked.push_back("/usr/pgsql-*/bin");
    std::string list;
    for (const auto& l : looked)
        list += (list.empty() ? "" : ", ") + l;
    throw DatabaseError(
        fmt::format("PostgreSQL server binaries (initdb, postgres) not found in {}; install the postgresql server "
                    "package (Debian: postgresql, RHEL: postgresql-server) or set LEO_PG_BINDIR",
                    list));
}

namespace detail {

accounts::User leo_user(const stdfs::path& root) {
    auto user = accounts::find_user(root, k_user);
    if (!user)
        throw DatabaseError(fmt::format("user {} does not exist in {}; the internal PostgreSQL runs as {}: "
                                        "install the broker first (`leo-installer install --rpm FILE --root {}` creates the user)",
                                        k_user, fs::SystemRoot(root).host("/etc/passwd").string(), k_user, root.string()));
    if (user->uid == 0)
        throw DatabaseError(fmt::format("user {} has uid 0; PostgreSQL refuses to run as root", k_user));
    return *user;
}

Runner make_runner(const stdfs::path& root) {
    Runner r;
    r.bindir = find_pg_bindir();
    // initdb runs "<bindir>/postgres" --boot through popen(): the same rule as the root.
    check_path_for_postgres(r.bindir, "the PostgreSQL server directory",
                            "install PostgreSQL in a plain directory or set LEO_PG_BINDIR to one");
    r.user = leo_user(root);
    r.options.uid = r.user.uid;
    r.options.gid = r.user.gid;
    r.options.timeout = k_subprocess_timeout;
    r.options.env["HOME"] = fs::SystemRoot(root).host(r.user.home.empty() ? "/home/leo" : r.user.home).string();
    r.options.env["PGPORT"] = std::to_string(k_port);
    r.options.env["LC_ALL"] = "C";
    r.options.env["LANG"] = "C";
    if (!is_host_root(root)) {
        auto nss = find_nss_wrapper();
        if (!nss)
            throw DatabaseError(
                fmt::format("libnss_wrapper.so not found in /usr/lib/x86_64-linux-gnu, /usr/lib64 or /usr/lib; a root "
                            "other than / needs it so PostgreSQL can resolve {}'s uid from {}: install libnss-wrapper",
                            k_user, fs::SystemRoot(root).host("/etc/passwd").string()));
        r.options.env["LD_PRELOAD"] = nss->string();
        r.options.env["NSS_WRAPPER_PASSWD"] = fs::SystemRoot(root).host("/etc/passwd").string();
        r.options.env["NSS_WRAPPER_GROUP"] = fs::SystemRoot(root).host("/etc/group").string();
    }
    // The children change to it after becoming leo (so a link there gives leo nothing new).
    if (fs::SystemRoot(root).lstat(k_pgsql_in))
        r.options.cwd = fs::SystemRoot(root).host(k_pgsql_in);
    return r;
}

std::string output_of(const subprocess::Result& r) {
    std::string line = subprocess::last_line(r.err);
    if (line.empty())
        line = subprocess::last_line(r.out);
    if (r.timed_out)
        line = "timed out" + (line.empty() ? std::string() : ": " + line);
    if (line.empty())
        line = r.signal != 0 ? fmt::format("killed by signal {}", r.signal) : "no output";
    return line;
}

} // namespace detail

subprocess::Options leo_program_options(const stdfs::path& root) {
    auto options = detail::make_runner(root).options;
    options.env.erase("PGPORT");
    options.cwd = fs::SystemRoot(root).host("/home/leo");
    return options;
}

} // namespace leo::migrations
