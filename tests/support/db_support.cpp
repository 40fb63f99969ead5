#include "db_support.hpp"

#include "leo/common/fs.hpp"
#include "leo/migrations/db_snapshot.hpp"

#include <fstream>
#include <stdexcept>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace leo::test {
namespace stdfs = std::filesystem;

std::string table_checksums(const std::filesystem::path& root) {
    migrations::InternalDatabase db(root);
    auto conn = migrations::Connection::open(db.conninfo());
    std::string out;
    for (const auto& [table, sum] : migrations::table_checksums(conn)) out += table + "=" + sum + "\n";
    return out;
}

namespace {
const std::vector<std::pair<std::string, std::string>> k_odd_tables = {
    {"public", "AuditLog"}, {"public", "audit log"}, {"public", "a.b"},       {"public", "quo\"te"},
    {"audit", "events"},    {"a", "b"},              {"Ops.Team", "Mixed Case"}};
} // namespace

void create_odd_tables(migrations::Connection& c) {
    c.exec("CREATE TABLE \"AuditLog\" (id serial PRIMARY KEY, \"Who\" text NOT NULL, \"At\" timestamptz NOT NULL)");
    c.exec("INSERT INTO \"AuditLog\" (\"Who\", \"At\") VALUES ('admin', '2026-01-02 03:04:05+00'), "
           "('O''Brien \"the\" admin', '2026-02-03 04:05:06+00'), (E'two\\nlines', '2026-03-04 05:06:07+00')");
    c.exec("CREATE TABLE \"audit log\" (n integer, note text)");
    c.exec("INSERT INTO \"audit log\" SELECT g, 'note ' || g FROM generate_series(1, 20) g");
    c.exec("CREATE TABLE \"a.b\" (v text)");
    c.exec("INSERT INTO \"a.b\" VALUES ('in public, named a.b')");
    c.exec("CREATE TABLE \"quo\"\"te\" (v text)");
    c.exec("INSERT INTO \"quo\"\"te\" VALUES ('a \"quoted\" value'), (NULL)");
    c.exec("CREATE SCHEMA audit");
    c.exec("CREATE TABLE audit.events (id bigserial PRIMARY KEY, body text)");
    c.exec("INSERT INTO audit.events (body) SELECT 'event ' || g FROM generate_series(1, 7) g");
    c.exec("CREATE SCHEMA a");
    c.exec("CREATE TABLE a.b (v text)");
    c.exec("INSERT INTO a.b VALUES ('in schema a, named b'), ('second')");
    c.exec("CREATE SCHEMA \"Ops.Team\"");
    c.exec("CREATE TABLE \"Ops.Team\".\"Mixed Case\" (\"Key\" text PRIMARY KEY, \"Value\" integer)");
    c.exec("INSERT INTO \"Ops.Team\".\"Mixed Case\" VALUES ('one', 1), ('two', 2)");
}

std::string odd_table_contents(migrations::Connection& c) {
    std::string out;
    for (const auto& [schema, table] : k_odd_tables) {
        const auto rows = c.query("SELECT t::text FROM " + c.quote_ident(schema) + "." + c.quote_ident(table) +
                                  " t ORDER BY 1");
        out += schema + "." + table + ":\n";
        for (const auto& row : rows.rows) out += row.at(0).value_or("NULL") + "\n";
    }
    for (const char* seq : {"public.\"AuditLog_id_seq\"", "audit.events_id_seq"})
        out += std::string(seq) + " " + c.query(std::string("SELECT last_value::text FROM ") + seq).at(0, 0) + "\n";
    return out;
}

int free_loopback_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("cannot bind a loopback port");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

ExternalPostgres::ExternalPostgres(const std::string& extra_conf, const std::string& extra_hba) {
    m_root = m_tmp.path() / "x";
    make_sandbox_root(m_root);
    create_leo_user(m_root);
    m_db = std::make_unique<migrations::InternalDatabase>(m_root);
    m_db->init();
    m_port = free_loopback_port();
    {
        // Later settings win: TCP on loopback, on a port of its own.
        std::ofstream conf(m_db->data_dir() / "postgresql.conf", std::ios::app);
        conf << "listen_addresses = '127.0.0.1'\nport = " << m_port << "\npassword_encryption = 'scram-sha-256'\n";
        std::ofstream hba(m_db->data_dir() / "pg_hba.conf", std::ios::app);
        conf << extra_conf;
        // Earlier lines win in pg_hba.conf: the extra ones go first among the host lines.
        hba << extra_hba << "host all all 127.0.0.1/32 scram-sha-256\n";
    }
    m_db->start();
}

ExternalPostgres::~ExternalPostgres() {
    try {
        m_db->stop();
    } catch (...) {
    }
}

migrations::Connection ExternalPostgres::admin(const std::string& dbname) const {
    return migrations::Connection::open("host=" + m_db->socket_dir().string() + " port=" + std::to_string(m_port) +
                                        " user=leo dbname=" + dbname);
}

void ExternalPostgres::create_role(const std::string& name, const std::string& password, bool createdb) const {
    auto c = admin();
    std::string quoted;
    for (char ch : password) quoted += ch == '\'' ? std::string("''") : std::string(1, ch);
    c.exec("CREATE ROLE " + c.quote_ident(name) + " LOGIN PASSWORD '" + quoted + "'" + (createdb ? " CREATEDB" : ""));
}

void ExternalPostgres::create_database(const std::string& name, const std::string& owner) const {
    auto c = admin();
    c.exec("CREATE DATABASE " + c.quote_ident(name) + " OWNER " + c.quote_ident(owner));
}

bool ExternalPostgres::database_exists(const std::string& name) const {
    auto c = admin();
    return !c.query("SELECT 1 FROM pg_database WHERE datname = $1", {name}).empty();
}

std::string ExternalPostgres::conninfo(const std::string& dbname, const std::string& user,
                                       const std::string& password) const {
    return "host=127.0.0.1 port=" + std::to_string(m_port) + " dbname=" + migrations::conninfo_value(dbname) +
           " user=" + migrations::conninfo_value(user) + " password=" + migrations::conninfo_value(password);
}

} // namespace leo::test
