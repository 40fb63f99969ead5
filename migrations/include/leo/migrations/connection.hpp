#pragma once
/// The libpq wrapper: the only place (with the rest of migrations/) that calls libpq.
/// Every error carries the SQL text and PQerrorMessage.

#include "leo/common/error.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct pg_conn;
struct pg_result;

namespace leo::migrations {

/// A statement the server refused (or that failed on the way): what() is
/// "<server message> (SQL: <first 200 characters>)"; the parts are kept for callers that
/// put the error in their own words (the migration engine names the script instead).
class QueryError : public leo::DatabaseError {
public:
    QueryError(const std::string& what, std::string server_message, std::string sqlstate, std::optional<long> position)
        : leo::DatabaseError(what), m_server_message(std::move(server_message)), m_sqlstate(std::move(sqlstate)),
          m_position(position) {}
    /// "ERROR: relation \"jobs\" does not exist", with DETAIL/HINT appended when given.
    [[nodiscard]] const std::string& server_message() const noexcept { return m_server_message; }
    /// The five-character SQLSTATE ("42P01"), "" when the server sent none.
    [[nodiscard]] const std::string& sqlstate() const noexcept { return m_sqlstate; }
    /// 1-based character position of the error in the SQL text, when the server gave one.
    [[nodiscard]] std::optional<long> position() const noexcept { return m_position; }

private:
    std::string m_server_message;
    std::string m_sqlstate;
    std::optional<long> m_position;
};

/// Rows of a query result as text (NULL is nullopt).
struct Rows {
    std::vector<std::string> columns;
    std::vector<std::vector<std::optional<std::string>>> rows;
    [[nodiscard]] bool empty() const { return rows.empty(); }
    /// rows[r][c]; throws leo::DatabaseError when out of range or NULL.
    [[nodiscard]] const std::string& at(size_t r, size_t c) const;
};

/// lock_timeout of every session this product opens, in seconds (a statement waiting
/// longer for a lock fails with SQLSTATE 55P03 instead of queueing behind a dead session).
inline constexpr int k_session_lock_timeout_s = 60;
/// idle_in_transaction_session_timeout of every session, in seconds: the server ends a
/// session of ours that stopped in the middle of a transaction (a killed or frozen broker),
/// releasing its locks.
inline constexpr int k_session_idle_in_transaction_s = 60;

class Connection {
public:
    /// Connect with a libpq conninfo string ("host=/path/to/socketdir dbname=leo user=leo")
    /// or URI. Unless the conninfo (or PGAPPNAME) names one, the session's application_name
    /// is "leo-installer <host> pid <pid>" (what pg_stat_activity shows other brokers).
    /// Every session sets what keeps a dead client from freezing a shared database
    /// (DESIGN.md "Components and the cluster"): TCP keepalives on both ends (idle 30 s,
    /// interval 10 s, 3 probes), lock_timeout k_session_lock_timeout_s (9.3+) and
    /// idle_in_transaction_session_timeout k_session_idle_in_transaction_s (9.6+).
    /// Throws leo::DatabaseError with the server's message (password= values are never
    /// echoed).
    static Connection open(const std::string& conninfo);

    Connection(Connection&&) noexcept = default;
    Connection& operator=(Connection&&) noexcept = default;
    ~Connection();

    /// Run one or more statements with no result rows. Throws leo::DatabaseError naming
    /// the SQL (first 200 characters) and the server's message.
    void exec(const std::string& sql);
    /// Run one statement with text parameters ($1, $2, ...); returns the rows.
    Rows query(const std::string& sql, const std::vector<std::optional<std::string>>& params = {});
    /// server_version_num, e.g. 150004.
    [[nodiscard]] int server_version_num() const;
    /// The process id the server (or a pooler in front of it) announced at connect
    /// (PQbackendPID); compare with `SELECT pg_backend_pid()` to notice a pooler.
    [[nodiscard]] int backend_pid() const;
    /// Whether the session is inside a transaction block (BEGIN sent, no COMMIT or
    /// ROLLBACK yet; failed or not), by libpq's PQtransactionStatus after the last
    /// statement. False when idle, and when the connection is lost (status unknown).
    [[nodiscard]] bool in_transaction() const;
    /// `name` quoted as an SQL identifier by the server's rules (PQescapeIdentifier):
    /// any name, mixed case and quotes included. Throws leo::DatabaseError.
    [[nodiscard]] std::string quote_ident(const std::string& name) const;
    /// `value` quoted as an SQL string literal (PQescapeLiteral), for the statements that
    /// take no parameters (COMMENT ON, ALTER DATABASE ... SET). Throws leo::DatabaseError.
    [[nodiscard]] std::string quote_literal(const std::string& value) const;
    /// The conninfo this connection was opened with (to open another session to the same
    /// database); it may hold a password: never print it.
    [[nodiscard]] const std::string& conninfo() const noexcept { return m_conninfo; }

    /// One NOTIFY this session received (after `LISTEN channel`).
    struct Notification {
        std::string channel;
        std::string payload;  ///< "" when the NOTIFY carried none
        int sender_pid = 0;   ///< the notifying backend's pid
    };
    /// Wait up to `timeout` for a notification on a channel this session LISTENs to, and
    /// return the first one (one already received with an earlier statement first), or
    /// nullopt when none came in time. Only between statements (never inside an open
    /// query). Throws leo::DatabaseError when the connection is lost.
    [[nodiscard]] std::optional<Notification> wait_for_notification(std::chrono::milliseconds timeout);

private:
    struct ConnDeleter {
        void operator()(pg_conn* c) const noexcept;
    };
    Connection(pg_conn* c, std::string conninfo) : m_conn(c), m_conninfo(std::move(conninfo)) {}
    std::unique_ptr<pg_conn, ConnDeleter> m_conn;
    std::string m_conninfo;
};

/// `value` as a libpq conninfo value: single-quoted, with \\ and \' escaped (libpq's
/// "Connection Strings" rules), so that spaces and quotes in a password or a name survive.
[[nodiscard]] std::string conninfo_value(const std::string& value);

/// Clears this process's libpq credential defaults (PGPASSWORD, PGSERVICE, PGSERVICEFILE,
/// LEO_DB_PASSWORD; PGPASSFILE pointed at nothing). Called before connecting to a server
/// another user chooses (the endpoint in leo's database.conf) or controls (the internal
/// server's socket lives in leo's /home/leo/pgsql): root's own passwords are never offered.
void ignore_ambient_credentials();

/// A conninfo with its password taken out, for child processes (pg_dump, pg_restore):
/// the password then goes in their environment (PGPASSWORD), never on a command line
/// that `ps` shows.
struct SplitConninfo {
    std::string without_password;        ///< the same settings, password removed
    std::optional<std::string> password; ///< the password, when the conninfo had one
};
/// Split with PQconninfoParse. Throws leo::DatabaseError for a conninfo libpq cannot
/// parse (its message, which never contains the password).
[[nodiscard]] SplitConninfo split_password(const std::string& conninfo);

/// The same conninfo (keyword or URI form) with its database replaced by `dbname`, in
/// keyword form: a session on another database of the same server (the `postgres`
/// maintenance database for CREATE/ALTER/DROP DATABASE, a restore point's copy).
/// Throws leo::DatabaseError for a conninfo libpq cannot parse.
[[nodiscard]] std::string with_dbname(const std::string& conninfo, const std::string& dbname);

/// "leo-installer <host> pid <pid>" (at most 63 bytes, PostgreSQL's NAMEDATALEN limit)
/// with `prefix` in place of "leo-installer".
[[nodiscard]] std::string application_name(const std::string& prefix = "leo-installer");
/// This machine's host name (gethostname), "unknown-host" when it has none.
[[nodiscard]] std::string host_name();

} // namespace leo::migrations
