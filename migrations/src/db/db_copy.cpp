// Template copies, renames and database-level state (leo/migrations/db_copy.hpp).
#include "leo/migrations/db_copy.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"

#include <fmt/format.h>

#include <set>

namespace leo::migrations {

namespace {

/// Settings whose value the catalog keeps as a list of (possibly double-quoted) elements:
/// `SET name TO 'a, b'` would make one element of them, so each element is a literal of
/// its own (PostgreSQL's GUC_LIST_QUOTE variables; pg_dumpall does the same).
bool is_list_setting(const std::string& name) {
    static const std::set<std::string> lists = {"search_path", "temp_tablespaces", "session_preload_libraries",
                                                "shared_preload_libraries", "local_preload_libraries",
                                                "unix_socket_directories"};
    return lists.count(name) != 0;
}

/// "\"$user\", public" -> {"$user", "public"}: elements separated by commas, spaces
/// around them dropped, double quotes (with "" for a quote) taken off.
std::vector<std::string> split_list(const std::string& value) {
    std::vector<std::string> out;
    std::string cur;
    bool quoted = false;
    for (size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (quoted) {
            if (c == '"' && i + 1 < value.size() && value[i + 1] == '"') {
                cur += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                cur += c;
            }
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            out.push_back(cur);
            cur.clear();
        } else if (c != ' ') {
            cur += c;
        }
    }
    if (!value.empty()) out.push_back(cur);
    return out;
}

/// A setting's name as SQL: "app.mode" is two identifiers.
std::string setting_name(Connection& admin, const std::string& name) {
    std::string out;
    size_t start = 0;
    while (true) {
        const size_t dot = name.find('.', start);
        out += admin.quote_ident(name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
        if (dot == std::string::npos) return out;
        out += '.';
        start = dot + 1;
    }
}

/// `SET name TO value` of a setting, name and value quoted.
std::string set_clause(Connection& admin, const DatabaseSetting& s) {
    std::string value;
    if (is_list_setting(s.name)) {
        for (const auto& e : split_list(s.value)) value += (value.empty() ? "" : ", ") + admin.quote_literal(e);
        if (value.empty()) value = "''";
    } else {
        value = admin.quote_literal(s.value);
    }
    return fmt::format("SET {} TO {}", setting_name(admin, s.name), value);
}

std::string alter_target(Connection& admin, const std::string& dbname, const std::string& role) {
    return role.empty() ? fmt::format("ALTER DATABASE {}", admin.quote_ident(dbname))
                        : fmt::format("ALTER ROLE {} IN DATABASE {}", admin.quote_ident(role),
                                      admin.quote_ident(dbname));
}

std::string grantee_sql(Connection& admin, const std::string& grantee) {
    return grantee == "PUBLIC" ? std::string("PUBLIC") : admin.quote_ident(grantee);
}

/// The current grants of `dbname` (aclexplode of its datacl, or nullopt for the default).
std::optional<std::vector<DatabaseGrant>> read_acl(Connection& admin, const std::string& dbname) {
    auto is_null = admin.query("SELECT datacl IS NULL FROM pg_catalog.pg_database WHERE datname = $1", {dbname});
    if (is_null.empty()) throw DatabaseError(fmt::format("there is no database {}", dbname));
    if (is_null.at(0, 0) == "t") return std::nullopt;
    auto rows = admin.query(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END, "
        "a.privilege_type, a.is_grantable FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a "
        "WHERE d.datname = $1 ORDER BY 1, 2",
        {dbname});
    std::vector<DatabaseGrant> out;
    for (size_t i = 0; i < rows.rows.size(); ++i)
        out.push_back({rows.at(i, 0), rows.at(i, 1), rows.at(i, 2) == "t"});
    return out;
}

} // namespace

std::string Client::describe() const {
    return fmt::format("pid {} (user {}, application \"{}\", from {}, since {})", pid, user, application_name, address,
                       since);
}

std::string describe_clients(const std::vector<Client>& clients) {
    std::string out;
    for (const auto& c : clients) out += (out.empty() ? "" : ", ") + c.describe();
    return out;
}

std::vector<Client> database_clients(Connection& admin, const std::string& dbname) {
    auto rows = admin.query(
        "SELECT pid, coalesce(usename, ''), coalesce(application_name, ''), "
        "coalesce(host(client_addr), 'local socket'), "
        "coalesce(to_char(backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '') "
        "FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid() ORDER BY pid",
        {dbname});
    // This process's own sessions (its application_name) are closing, not clients: a
    // backend outlives its client's disconnect by a moment, and CREATE DATABASE and
    // ALTER DATABASE RENAME wait up to 5 s for such backends to exit.
    const std::string ours = application_name();
    std::vector<Client> out;
    for (size_t i = 0; i < rows.rows.size(); ++i)
        if (rows.at(i, 2) != ours)
            out.push_back({std::stoi(rows.at(i, 0)), rows.at(i, 1), rows.at(i, 2), rows.at(i, 3), rows.at(i, 4)});
    return out;
}

DatabaseState read_database_state(Connection& admin, const std::string& dbname) {
    auto rows = admin.query("SELECT pg_catalog.pg_get_userbyid(d.datdba), d.datconnlimit, d.datallowconn, "
                            "pg_catalog.shobj_description(d.oid, 'pg_database') FROM pg_catalog.pg_database d "
                            "WHERE d.datname = $1",
                            {dbname});
    if (rows.empty()) throw DatabaseError(fmt::format("there is no database {}", dbname));
    DatabaseState st;
    st.owner = rows.at(0, 0);
    st.connection_limit = std::stoi(rows.at(0, 1));
    st.allow_connections = rows.at(0, 2) == "t";
    st.comment = rows.rows[0][3];
    st.acl = read_acl(admin, dbname);
    auto settings = admin.query(
        "SELECT coalesce(pg_catalog.pg_get_userbyid(NULLIF(s.setrole, 0)), ''), c.cfg FROM "
        "pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase, "
        "unnest(s.setconfig) AS c(cfg) WHERE d.datname = $1 ORDER BY 1, 2",
        {dbname});
    for (size_t i = 0; i < settings.rows.size(); ++i) {
        const std::string& cfg = settings.at(i, 1);
        const auto eq = cfg.find('=');
        if (eq == std::string::npos) continue;
        st.settings.push_back({settings.at(i, 0), cfg.substr(0, eq), cfg.substr(eq + 1)});
    }
    return st;
}

void apply_database_state(Connection& admin, const std::string& dbname, const DatabaseState& state) {
    const std::string db = admin.quote_ident(dbname);
    admin.exec(fmt::format("ALTER DATABASE {} OWNER TO {}", db, admin.quote_ident(state.owner)));
    // ACL: revoke what is granted now (the default grants too), then grant what was.
    const auto now = read_acl(admin, dbname);
    const std::vector<DatabaseGrant> defaults = {{"PUBLIC", "CONNECT", false}, {"PUBLIC", "TEMPORARY", false}};
    for (const auto& g : now ? *now : defaults)
        admin.exec(fmt::format("REVOKE {} ON DATABASE {} FROM {} CASCADE", g.privilege, db,
                               grantee_sql(admin, g.grantee)));
    for (const auto& g : state.acl ? *state.acl : defaults)
        admin.exec(fmt::format("GRANT {} ON DATABASE {} TO {}{}", g.privilege, db, grantee_sql(admin, g.grantee),
                               g.grantable ? " WITH GRANT OPTION" : ""));
    // Settings: reset every role's, then set the recorded ones.
    for (const auto& current : read_database_state(admin, dbname).settings)
        admin.exec(fmt::format("{} RESET {}", alter_target(admin, dbname, current.role),
                               setting_name(admin, current.name)));
    for (const auto& s : state.settings)
        admin.exec(fmt::format("{} {}", alter_target(admin, dbname, s.role), set_clause(admin, s)));
    admin.exec(fmt::format("COMMENT ON DATABASE {} IS {}", db,
                           state.comment ? admin.quote_literal(*state.comment) : std::string("NULL")));
    admin.exec(fmt::format("ALTER DATABASE {} WITH CONNECTION LIMIT {} ALLOW_CONNECTIONS {}", db,
                           state.connection_limit, state.allow_connections ? "true" : "false"));
}

namespace {
std::optional<DatabaseInfo> info_from(Connection& admin, const Rows& rows) {
    (void)admin;
    if (rows.empty()) return std::nullopt;
    return DatabaseInfo{rows.at(0, 0), static_cast<std::uint32_t>(std::stoul(rows.at(0, 1))),
                        static_cast<std::uint64_t>(std::stoull(rows.at(0, 2)))};
}
} // namespace

std::optional<DatabaseInfo> find_database(Connection& admin, const std::string& dbname) {
    return info_from(admin, admin.query("SELECT datname, oid, pg_catalog.pg_database_size(oid) FROM "
                                        "pg_catalog.pg_database WHERE datname = $1",
                                        {dbname}));
}

std::optional<DatabaseInfo> find_database(Connection& admin, std::uint32_t oid) {
    return info_from(admin, admin.query("SELECT datname, oid, pg_catalog.pg_database_size(oid) FROM "
                                        "pg_catalog.pg_database WHERE oid = $1::oid",
                                        {std::to_string(oid)}));
}

std::vector<DatabaseInfo> databases_with_prefix(Connection& admin, const std::string& prefix) {
    auto rows = admin.query("SELECT datname, oid, pg_catalog.pg_database_size(oid) FROM pg_catalog.pg_database "
                            "WHERE left(datname, length($1)) = $1 ORDER BY datname",
                            {prefix});
    std::vector<DatabaseInfo> out;
    for (size_t i = 0; i < rows.rows.size(); ++i)
        out.push_back({rows.at(i, 0), static_cast<std::uint32_t>(std::stoul(rows.at(i, 1))),
                       static_cast<std::uint64_t>(std::stoull(rows.at(i, 2)))});
    return out;
}

DatabaseInfo copy_database(Connection& admin, const std::string& source, const std::string& copy,
                           const std::string& comment) {
    const auto in_use = [&](std::vector<Client> clients) {
        const std::string who = clients.empty() ? std::string("a session that has ended since")
                                                : describe_clients(clients);
        return DatabaseInUseError(fmt::format("cannot copy the database {}: other sessions are connected to it: {}; "
                                              "stop the broker's components (or those clients) and run again; "
                                              "nothing was changed",
                                              source, who),
                                  std::move(clients));
    };
    if (auto clients = database_clients(admin, source); !clients.empty()) throw in_use(std::move(clients));
    // A database of that name is never ours to replace (nor, after a failure, to drop).
    if (find_database(admin, copy))
        throw RefusedError(fmt::format("cannot copy the database {} into {}: a database of that name exists (not "
                                       "made by this run; it is left as it is); nothing was changed",
                                       source, copy));
    const std::string strategy = admin.server_version_num() >= 150000 ? " STRATEGY FILE_COPY" : "";
    try {
        admin.exec(fmt::format("CREATE DATABASE {} TEMPLATE {}{}", admin.quote_ident(copy),
                               admin.quote_ident(source), strategy));
    } catch (const DatabaseError& e) {
        // 55006 object_in_use: a session connected after the check above.
        if (const auto* q = dynamic_cast<const QueryError*>(&e); q != nullptr && q->sqlstate() == "55006")
            throw in_use(database_clients(admin, source));
        // A failed CREATE DATABASE removes what it wrote itself (disk full included); a
        // database of that name made meanwhile by someone else is not ours to drop.
        std::throw_with_nested(DatabaseError(fmt::format(
            "the copy of the database {} into {} failed; {} is untouched", source, copy, source)));
    }
    admin.exec(fmt::format("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false IS_TEMPLATE false",
                           admin.quote_ident(copy)));
    admin.exec(fmt::format("COMMENT ON DATABASE {} IS {}", admin.quote_ident(copy), admin.quote_literal(comment)));
    auto info = find_database(admin, copy);
    if (!info) throw DatabaseError(fmt::format("the copy {} of the database {} vanished", copy, source));
    log::info("copied the database {} into {} (oid {}, {} bytes)", source, copy, info->oid, info->size_bytes);
    return *info;
}

void set_allow_connections(Connection& admin, const std::string& dbname, bool allow) {
    admin.exec(fmt::format("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}", admin.quote_ident(dbname),
                           allow ? "true" : "false"));
}

void rename_database(Connection& admin, const std::string& from, const std::string& to) {
    admin.exec(fmt::format("ALTER DATABASE {} RENAME TO {}", admin.quote_ident(from), admin.quote_ident(to)));
    log::info("renamed the database {} to {}", from, to);
}

void drop_database(Connection& admin, const std::string& dbname) {
    admin.exec("DROP DATABASE IF EXISTS " + admin.quote_ident(dbname));
}

} // namespace leo::migrations
