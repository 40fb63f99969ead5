#include "leo/migrations/db_snapshot.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/common/system_root.hpp"
#include "leo/migrations/internal_db.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include <sys/stat.h>

namespace leo::migrations {
namespace stdfs = std::filesystem;

namespace {
/// The dump files are host paths without a root (a restore point's directory under
/// ROOT/var/lib/leo-installer, root-only): they are removed, renamed and checked through
/// a SystemRoot of "/", which never follows a link in a directory another user can write
/// and never follows the last component.
const fs::SystemRoot& host_files() {
    static const fs::SystemRoot host("/");
    return host;
}

stdfs::path absolute_host_path(const stdfs::path& p) { return stdfs::absolute(p).lexically_normal(); }

/// Remove `file` (not following a link), ignoring errors: cleanup of a failed dump.
void remove_quietly(const stdfs::path& file) {
    try {
        (void)host_files().remove(absolute_host_path(file));
    } catch (const Error&) {
    }
}

/// Run a PostgreSQL client tool; `conninfo` (when given) goes in as --dbname without its
/// password, which travels in the child's environment (PGPASSWORD), not on its command line.
subprocess::Result run_pg_tool(const std::string& tool, std::vector<std::string> args,
                               const std::optional<std::string>& conninfo = std::nullopt) {
    const auto bin = find_pg_bindir() / tool;
    args.insert(args.begin(), bin.string());
    subprocess::Options o;
    if (conninfo) {
        auto split = split_password(*conninfo);
        args.push_back("--dbname=" + split.without_password);
        if (split.password) o.env["PGPASSWORD"] = *split.password;
    }
    o.env["LC_ALL"] = "C";
    o.env["PGCONNECT_TIMEOUT"] = "30";
    o.timeout = std::chrono::hours(2);
    auto r = subprocess::run(args, o);
    log::info("ran {} (exit {})", subprocess::command_line(args), r.exit_code);
    return r;
}

/// Why a PostgreSQL client tool failed: its first "error:" line (pg_restore goes on to
/// print the failing statement, so the last line may be just ");"), else its last line.
std::string pg_tool_error(const subprocess::Result& r) {
    const std::string& text = r.err.empty() ? r.out : r.err;
    size_t start = 0;
    while (start < text.size()) {
        const size_t end = std::min(text.find('\n', start), text.size());
        const std::string line = text.substr(start, end - start);
        if (line.find("error:") != std::string::npos) return subprocess::last_line(line);
        start = end + 1;
    }
    return subprocess::last_line(text);
}

/// Whether `name` reads the same unquoted: lowercase letters, digits, _ and $, not starting
/// with a digit or $ (the only table names manifests of format 1 could hold).
bool plain_name(const std::string& name) {
    if (name.empty() || name.size() > 63 || (name[0] >= '0' && name[0] <= '9') || name[0] == '$') return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '$';
    });
}

/// A relation outside the system schemas: its key in TableChecksums / SequenceValues, and
/// its schema-qualified name quoted for SQL by libpq (PQescapeIdentifier).
struct Relation {
    std::string key;
    std::string sql_name;
};

/// The relations of kind `relkind` ('r' tables, 'S' sequences) of every schema but the
/// system ones (pg_catalog, information_schema, pg_toast*, pg_temp_*).
std::vector<Relation> user_relations(Connection& conn, const char* relkind) {
    const auto rows = conn.query("SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace "
                                 "n ON n.oid = c.relnamespace WHERE n.nspname <> 'information_schema' AND n.nspname "
                                 "NOT LIKE 'pg\\_%' AND c.relkind = $1 ORDER BY 1, 2",
                                 {std::string(relkind)});
    std::vector<Relation> out;
    for (size_t i = 0; i < rows.rows.size(); ++i) {
        const std::string& schema = rows.at(i, 0);
        const std::string& name = rows.at(i, 1);
        const std::string sql_name = conn.quote_ident(schema) + "." + conn.quote_ident(name);
        out.push_back({schema == "public" && plain_name(name) ? name : sql_name, sql_name});
    }
    return out;
}
} // namespace

TableChecksums table_checksums(Connection& conn, ChecksumMethod method) {
    TableChecksums out;
    for (const auto& t : user_relations(conn, "r")) {
        const std::string sql =
            method == ChecksumMethod::sorted_rows
                ? fmt::format("SELECT count(*) || ':' || coalesce(md5(string_agg(r::text, E'\\n' ORDER BY r::text)), "
                              "'') FROM {} r",
                              t.sql_name)
                : fmt::format("SELECT count(*) || ':' || coalesce(sum(('x' || substr(md5(r::text), 1, 16))::bit(64)"
                              "::bigint::numeric), 0) FROM {} r",
                              t.sql_name);
        auto r = conn.query(sql);
        out[t.key] = r.at(0, 0);
    }
    return out;
}

void dump_database(const std::string& conninfo, const stdfs::path& file, const std::string& snapshot) {
    const stdfs::path part = absolute_host_path(file.string() + ".part");
    // A left-over part (or a link put in its place) is removed, never followed: pg_dump
    // then creates the file anew.
    (void)host_files().remove(part);
    std::vector<std::string> args{"--format=custom", "--file=" + part.string()};
    if (!snapshot.empty()) args.push_back("--snapshot=" + snapshot);
    auto r = run_pg_tool("pg_dump", args, conninfo);
    if (!r.ok()) {
        remove_quietly(part);
        throw DatabaseError(fmt::format("pg_dump to {} failed: {}", file.string(),
                                        pg_tool_error(r)));
    }
    // pg_dump creates the file under the caller's umask: the data is root's alone (0600).
    host_files().set_owner_mode(part, std::nullopt, 0600);
    auto list = run_pg_tool("pg_restore", {"--list", part.string()});
    if (!list.ok()) {
        remove_quietly(part);
        throw DatabaseError(fmt::format("the database dump {} is not readable: {}", part.string(),
                                        pg_tool_error(list)));
    }
    host_files().rename(part, absolute_host_path(file));
}

void restore_dump(const stdfs::path& file, const std::string& target_conninfo) {
    auto r = run_pg_tool("pg_restore", {"--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges",
                                        file.string()},
                         target_conninfo);
    if (!r.ok())
        throw DatabaseError(fmt::format("pg_restore of {} failed: {}", file.string(),
                                        pg_tool_error(r)));
}

void dump_database_directory(const std::string& conninfo, const stdfs::path& dir, int jobs,
                             const std::vector<std::string>& exclude_schemas) {
    const stdfs::path part = absolute_host_path(dir.string() + ".part");
    (void)host_files().remove_all(part);
    std::vector<std::string> args{"--format=directory", fmt::format("--jobs={}", std::max(1, jobs)),
                                  "--file=" + part.string()};
    for (const auto& schema : exclude_schemas) args.push_back("--exclude-schema=" + schema);
    auto r = run_pg_tool("pg_dump", args, conninfo);
    if (!r.ok()) {
        (void)host_files().remove_all(part);
        throw DatabaseError(fmt::format("pg_dump --format=directory to {} failed: {}", dir.string(), pg_tool_error(r)));
    }
    host_files().set_owner_mode(part, std::nullopt, 0700);
    auto list = run_pg_tool("pg_restore", {"--list", part.string()});
    if (!list.ok()) {
        (void)host_files().remove_all(part);
        throw DatabaseError(fmt::format("the database dump {} is not readable: {}", part.string(), pg_tool_error(list)));
    }
    host_files().rename(part, absolute_host_path(dir));
}

void check_dump_readable_directory(const stdfs::path& dir) {
    const auto st = host_files().lstat(absolute_host_path(dir));
    if (!st || !S_ISDIR(st->st_mode)) throw DatabaseError(fmt::format("database dump {} is missing", dir.string()));
    auto r = run_pg_tool("pg_restore", {"--list", dir.string()});
    if (!r.ok())
        throw DatabaseError(fmt::format("the database dump {} is not readable: {}", dir.string(), pg_tool_error(r)));
}

void restore_database_directory(const stdfs::path& dir, const std::string& conninfo) {
    auto r = run_pg_tool("pg_restore", {"--clean", "--if-exists", "--exit-on-error", "--single-transaction",
                                        "--no-owner", "--no-privileges", dir.string()},
                         conninfo);
    if (!r.ok())
        throw DatabaseError(fmt::format("pg_restore --clean of {} failed (its single transaction left the database "
                                        "as it was): {}",
                                        dir.string(), pg_tool_error(r)));
}

SequenceValues sequence_values(Connection& conn) {
    SequenceValues out;
    for (const auto& seq : user_relations(conn, "S")) {
        auto r = conn.query(fmt::format("SELECT last_value || ':' || is_called FROM {}", seq.sql_name));
        out[seq.key] = r.at(0, 0);
    }
    return out;
}

void check_dump_readable(const stdfs::path& file) {
    const auto st = host_files().lstat(absolute_host_path(file));
    if (!st || !S_ISREG(st->st_mode))
        throw DatabaseError(fmt::format("database dump {} is missing", file.string()));
    auto r = run_pg_tool("pg_restore", {"--list", file.string()});
    if (!r.ok())
        throw DatabaseError(fmt::format("the database dump {} is not readable: {}", file.string(),
                                        pg_tool_error(r)));
}

void restore_into_staging(const std::string& admin_conninfo, const std::string& staging_conninfo,
                          const std::string& staging, const std::string& owner, const stdfs::path& file,
                          const std::string& comment) {
    auto admin = Connection::open(admin_conninfo);
    const std::string db = admin.quote_ident(staging);
    admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> "
                "pg_backend_pid()",
                {staging});
    admin.exec("DROP DATABASE IF EXISTS " + db);
    admin.exec(fmt::format("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0", db,
                           admin.quote_ident(owner)));
    if (!comment.empty()) admin.exec(fmt::format("COMMENT ON DATABASE {} IS {}", db, admin.quote_literal(comment)));
    auto r = run_pg_tool("pg_restore", {"--exit-on-error", "--single-transaction", "--no-owner", "--role=" + owner,
                                        file.string()},
                         staging_conninfo);
    if (!r.ok()) {
        admin.exec("DROP DATABASE IF EXISTS " + db);
        throw DatabaseError(fmt::format("pg_restore of {} failed: {}", file.string(),
                                        pg_tool_error(r)));
    }
}

void replace_database(const std::string& admin_conninfo, const std::string& dbname, const std::string& staging) {
    auto admin = Connection::open(admin_conninfo);
    const std::string old_name = dbname + "_replaced";
    admin.exec("DROP DATABASE IF EXISTS " + admin.quote_ident(old_name));
    admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> "
                "pg_backend_pid()",
                {dbname});
    admin.exec(fmt::format("ALTER DATABASE {} RENAME TO {}", admin.quote_ident(dbname), admin.quote_ident(old_name)));
    admin.exec(fmt::format("ALTER DATABASE {} RENAME TO {}", admin.quote_ident(staging), admin.quote_ident(dbname)));
    admin.exec("DROP DATABASE " + admin.quote_ident(old_name));
}

} // namespace leo::migrations
