#include "leo/migrations/vendor.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/system_root.hpp"

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstdlib>

namespace leo::migrations {
namespace stdfs = std::filesystem;

std::string_view vendor_id(Vendor v) {
    switch (v) {
    case Vendor::postgres: return "postgres";
    case Vendor::mssqlserver: return "mssqlserver";
    case Vendor::azuresql: return "azuresql";
    }
    return "?";
}

std::string_view vendor_title(Vendor v) {
    switch (v) {
    case Vendor::postgres: return "PostgreSQL";
    case Vendor::mssqlserver: return "Microsoft SQL Server";
    case Vendor::azuresql: return "Azure SQL Database";
    }
    return "?";
}

std::optional<Vendor> parse_vendor(std::string_view id) {
    for (Vendor v : {Vendor::postgres, Vendor::mssqlserver, Vendor::azuresql})
        if (vendor_id(v) == id) return v;
    return std::nullopt;
}

int default_port(Vendor v) { return v == Vendor::postgres ? 5432 : 1433; }

std::string Endpoint::display() const {
    return fmt::format("{} {}@{}:{}/{}", vendor_id(vendor), username, host, port, dbname);
}

bool Endpoint::same_database(const Endpoint& o) const {
    return vendor == o.vendor && host == o.host && port == o.port && dbname == o.dbname;
}

bool vendor_supported(Vendor vendor) { return vendor == Vendor::postgres; }

namespace {

/// Objects outside the system schemas that no extension owns: relations, then functions.
/// (pg_depend deptype 'e' marks extension members; relkind 'p' exists from 10 on and is
/// simply absent before.)
constexpr const char* k_user_relations_sql =
    "SELECT n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
    "AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') "
    "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass "
    "AND d.objid = c.oid AND d.deptype = 'e') ORDER BY 1, 2";
constexpr const char* k_user_functions_sql =
    "SELECT n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid) FROM pg_catalog.pg_proc p "
    "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
    "AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
    "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass "
    "AND d.objid = p.oid AND d.deptype = 'e') ORDER BY 1, 2";
/// Enum, domain and stand-alone composite types (a table's row type goes with the table).
constexpr const char* k_user_types_sql =
    "SELECT n.nspname, t.typname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
    "AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND "
    "(SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')) "
    "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_type'::regclass "
    "AND d.objid = t.oid AND d.deptype = 'e') ORDER BY 1, 2";

/// Schemas other than public and the system ones, not made by an extension.
constexpr const char* k_user_schemas_sql =
    "SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.nspname NOT IN ('public', 'pg_catalog', "
    "'information_schema') AND n.nspname NOT LIKE 'pg\\_%' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d "
    "WHERE d.classid = 'pg_catalog.pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e') ORDER BY 1";

class PostgresDriver final : public VendorDriver {
public:
    [[nodiscard]] Vendor vendor() const override { return Vendor::postgres; }
    void require_supported() const override {}

    [[nodiscard]] std::string conninfo(const Endpoint& t) const override { return conninfo_for(t, t.dbname); }

    [[nodiscard]] TargetInfo inspect(const Endpoint& t) override {
        TargetInfo info;
        std::string maintenance_error;
        bool asked_server = false;
        for (const char* db : {"postgres", "template1"}) {
            try {
                auto conn = Connection::open(conninfo_for(t, db));
                info.exists = !conn.query("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", {t.dbname})
                                   .empty();
                auto role = conn.query("SELECT rolcreatedb OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = "
                                       "current_user");
                if (!role.empty()) info.can_create_database = role.at(0, 0) == "t";
                asked_server = true;
                break;
            } catch (const DatabaseError& e) {
                if (maintenance_error.empty()) maintenance_error = e.what();
            }
        }
        if (!asked_server) {
            // No maintenance database reachable: the target itself answers "exists".
            try {
                (void)Connection::open(conninfo(t));
                info.exists = true;
            } catch (const DatabaseError&) {
                log::info("maintenance database of {}: {}", t.display(), maintenance_error);
                throw;  // names the server, the database and the user, and why
            }
        }
        if (!info.exists) return info;
        try {
            auto conn = Connection::open(conninfo(t));
            info.objects = static_cast<long>(list_objects(conn).size()) +
                           std::stol(conn.query("SELECT count(*) FROM pg_catalog.pg_largeobject_metadata").at(0, 0));
            auto state = read_schema_state(conn);
            if (state.has_history) info.schema = std::move(state);
        } catch (const DatabaseError&) {
            std::throw_with_nested(DatabaseError(fmt::format("cannot read database {}", t.display())));
        }
        return info;
    }

    void create_database(const Endpoint& t) override {
        auto conn = maintenance(t);
        conn.exec(fmt::format("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0", conn.quote_ident(t.dbname)));
        log::info("created database {}", t.display());
    }

    void drop_database(const Endpoint& t) override {
        auto conn = maintenance(t);
        conn.query("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = $1 "
                   "AND pid <> pg_catalog.pg_backend_pid()",
                   {t.dbname});
        conn.exec("DROP DATABASE IF EXISTS " + conn.quote_ident(t.dbname));
        log::info("dropped database {}", t.display());
    }

    [[nodiscard]] std::map<std::string, std::string> objects(const Endpoint& t) override {
        auto conn = Connection::open(conninfo(t));
        return list_objects(conn);
    }

    void drop_objects(const Endpoint& t, const std::vector<std::string>& drop_statements) override {
        if (drop_statements.empty()) return;
        auto conn = Connection::open(conninfo(t));
        conn.exec("BEGIN");
        for (const auto& sql : drop_statements) conn.exec(sql);
        conn.exec("COMMIT");
        log::info("dropped {} objects of the failed copy from {}", drop_statements.size(), t.display());
    }

    void copy_from_postgres(const std::string& source_conninfo, const Endpoint& t, const stdfs::path& workdir) override {
        // The dump holds the broker's data: a private (0700) directory, removed afterwards.
        // (the work directory is a host path, ROOT/var/lib/leo-installer, root-only)
        const fs::PrivateTempDir dir(workdir, "switch-copy.");
        const auto file = dir.path() / "copy.dump";
        dump_database(source_conninfo, file);
        restore_dump(file, conninfo(t));
    }

    [[nodiscard]] TableChecksums table_checksums(const Endpoint& t) override {
        auto conn = Connection::open(conninfo(t));
        return migrations::table_checksums(conn);
    }
    [[nodiscard]] SequenceValues sequence_values(const Endpoint& t) override {
        auto conn = Connection::open(conninfo(t));
        return migrations::sequence_values(conn);
    }

private:
    /// objects(): tables first (CASCADE takes their views, owned sequences and
    /// constraints), then other relations, functions, types, schemas.
    static std::map<std::string, std::string> list_objects(Connection& conn) {
        std::map<std::string, std::string> out;
        auto qualified = [&](const std::string& schema, const std::string& name) {
            return conn.quote_ident(schema) + "." + conn.quote_ident(name);
        };
        auto rels = conn.query(k_user_relations_sql);
        for (size_t i = 0; i < rels.rows.size(); ++i) {
            const std::string kind = rels.at(i, 2);
            const char* what = kind == "v"   ? "VIEW"
                               : kind == "m" ? "MATERIALIZED VIEW"
                               : kind == "S" ? "SEQUENCE"
                               : kind == "f" ? "FOREIGN TABLE"
                                             : "TABLE";
            const bool table = kind == "r" || kind == "p" || kind == "f";
            const std::string name = qualified(rels.at(i, 0), rels.at(i, 1));
            out[fmt::format("{} {}", table ? 1 : 2, name)] = fmt::format("DROP {} IF EXISTS {} CASCADE", what, name);
        }
        auto funcs = conn.query(k_user_functions_sql);
        for (size_t i = 0; i < funcs.rows.size(); ++i) {
            const std::string name = fmt::format("{}({})", qualified(funcs.at(i, 0), funcs.at(i, 1)), funcs.at(i, 2));
            out["3 " + name] = fmt::format("DROP FUNCTION IF EXISTS {} CASCADE", name);
        }
        auto types = conn.query(k_user_types_sql);
        for (size_t i = 0; i < types.rows.size(); ++i) {
            const std::string name = qualified(types.at(i, 0), types.at(i, 1));
            out["4 " + name] = fmt::format("DROP TYPE IF EXISTS {} CASCADE", name);
        }
        auto schemas = conn.query(k_user_schemas_sql);
        for (size_t i = 0; i < schemas.rows.size(); ++i) {
            const std::string name = conn.quote_ident(schemas.at(i, 0));
            out["5 " + name] = fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", name);
        }
        return out;
    }

    static std::string conninfo_for(const Endpoint& t, const std::string& dbname) {
        std::string c = fmt::format("host={} port={} dbname={} user={} connect_timeout=15", conninfo_value(t.host),
                                    t.port, conninfo_value(dbname), conninfo_value(t.username));
        if (!t.password.empty()) c += " password=" + conninfo_value(t.password);
        return c;
    }
    /// A session on the server's maintenance database (postgres, else template1).
    static Connection maintenance(const Endpoint& t) {
        try {
            return Connection::open(conninfo_for(t, "postgres"));
        } catch (const DatabaseError&) {
            return Connection::open(conninfo_for(t, "template1"));
        }
    }
};

/// SQL Server and Azure SQL: no driver in this build (see the file comment of vendor.hpp).
class UnsupportedDriver final : public VendorDriver {
public:
    explicit UnsupportedDriver(Vendor v) : m_vendor(v) {}
    [[nodiscard]] Vendor vendor() const override { return m_vendor; }
    void require_supported() const override {
        throw DatabaseError(fmt::format(
            "{} (--db_vendor {}) is not supported in this build of leo-installer: it has no {} client library; "
            "only --db_vendor postgres can be used",
            vendor_title(m_vendor), vendor_id(m_vendor), vendor_title(m_vendor)));
    }
    [[nodiscard]] TargetInfo inspect(const Endpoint&) override { unsupported(); }
    void create_database(const Endpoint&) override { unsupported(); }
    void drop_database(const Endpoint&) override { unsupported(); }
    [[nodiscard]] std::map<std::string, std::string> objects(const Endpoint&) override { unsupported(); }
    void drop_objects(const Endpoint&, const std::vector<std::string>&) override { unsupported(); }
    void copy_from_postgres(const std::string&, const Endpoint&, const stdfs::path&) override { unsupported(); }
    [[nodiscard]] TableChecksums table_checksums(const Endpoint&) override { unsupported(); }
    [[nodiscard]] SequenceValues sequence_values(const Endpoint&) override { unsupported(); }
    [[nodiscard]] std::string conninfo(const Endpoint&) const override { unsupported(); }

private:
    [[noreturn]] void unsupported() const {
        require_supported();
        throw DatabaseError("unsupported vendor");
    }
    Vendor m_vendor;
};

} // namespace

std::unique_ptr<VendorDriver> make_driver(Vendor vendor) {
    if (vendor == Vendor::postgres) return std::make_unique<PostgresDriver>();
    return std::make_unique<UnsupportedDriver>(vendor);
}

} // namespace leo::migrations
