#include "leo/migrations/connection.hpp"
#include "leo/common/redact.hpp"

#include <libpq-fe.h>

#include <fmt/format.h>

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace leo::migrations {
namespace {

struct ResultDeleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

struct ConninfoOptionsDeleter {
    void operator()(PQconninfoOption* o) const noexcept { PQconninfoFree(o); }
};

constexpr size_t k_sql_excerpt = 200;

std::string trim(const std::string& s) {
    const auto end = s.find_last_not_of(" \t\r\n");
    if (end == std::string::npos)
        return {};
    const auto begin = s.find_first_not_of(" \t\r\n");
    return s.substr(begin, end - begin + 1);
}

/// The first 200 characters of `sql`, whitespace runs folded to one space.
std::string sql_excerpt(const std::string& sql) {
    std::string out;
    bool space = false;
    for (char c : trim(sql)) {
        if (std::isspace(static_cast<unsigned char>(c)) != 0) {
            space = true;
            continue;
        }
        if (space && !out.empty())
            out += ' ';
        space = false;
        out += c;
        if (out.size() >= k_sql_excerpt) {
            out += "...";
            break;
        }
    }
    return out;
}

/// "host=/x dbname=leo user=leo" from a conninfo, without password or other secrets.
std::string describe_conninfo(const std::string& conninfo) {
    char* err = nullptr;
    std::unique_ptr<PQconninfoOption, ConninfoOptionsDeleter> opts(PQconninfoParse(conninfo.c_str(), &err));
    if (err != nullptr)
        PQfreemem(err);
    if (!opts)
        return "(unparsable connection string)";
    std::string out;
    for (auto* o = opts.get(); o->keyword != nullptr; ++o) {
        if (o->val == nullptr)
            continue;
        const std::string key = o->keyword;
        if (key != "host" && key != "hostaddr" && key != "port" && key != "dbname" && key != "user")
            continue;
        if (!out.empty())
            out += ' ';
        out += key + "=" + o->val;
    }
    return out.empty() ? "(defaults)" : out;
}

/// libpq's and the server's text on one line: its messages can span lines ("server closed
/// the connection unexpectedly\n\tThis probably means..."), and an error is one line.
std::string one_line(std::string_view text) {
    std::string out;
    for (char c : trim(std::string(text))) {
        if (c == '\n' || c == '\t' || c == '\r') c = ' ';
        if (c == ' ' && !out.empty() && out.back() == ' ') continue;
        out += c;
    }
    return out;
}

/// The server's message for a failed result: "ERROR: text", plus DETAIL and HINT, on one line.
std::string server_message(const PGresult* res, pg_conn* conn) {
    if (res == nullptr)
        return one_line(PQerrorMessage(conn));
    const char* severity = PQresultErrorField(res, PG_DIAG_SEVERITY);
    const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (primary == nullptr) {
        std::string msg = one_line(PQresultErrorMessage(res));
        if (msg.empty())
            msg = one_line(PQerrorMessage(conn));
        if (msg.empty())
            msg = std::string("unexpected result ") + PQresStatus(PQresultStatus(res));
        return msg;
    }
    std::string msg = std::string(severity != nullptr ? severity : "ERROR") + ": " + primary;
    if (const char* detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL))
        msg += fmt::format(" (DETAIL: {})", detail);
    if (const char* hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT))
        msg += fmt::format(" (HINT: {})", hint);
    return one_line(msg);
}

[[noreturn]] void throw_query_error(const std::string& sql, const PGresult* res, pg_conn* conn) {
    std::string message = server_message(res, conn);
    std::string sqlstate;
    std::optional<long> position;
    if (res != nullptr) {
        if (const char* s = PQresultErrorField(res, PG_DIAG_SQLSTATE))
            sqlstate = s;
        if (const char* p = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION)) {
            char* end = nullptr;
            long v = std::strtol(p, &end, 10);
            if (end != p)
                position = v;
        }
    }
    const std::string what = fmt::format("{} (SQL: {})", message, sql_excerpt(sql));
    throw QueryError(what, std::move(message), std::move(sqlstate), position);
}

void no_notices(void* /*arg*/, const char* /*message*/) {}

bool ok_status(ExecStatusType s) { return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY; }

} // namespace

const std::string& Rows::at(size_t r, size_t c) const {
    if (r >= rows.size() || c >= rows[r].size())
        throw DatabaseError(
            fmt::format("result has no row {} column {} ({} rows, {} columns)", r, c, rows.size(), columns.size()));
    const auto& v = rows[r][c];
    if (!v)
        throw DatabaseError(fmt::format("result row {} column {} ({}) is NULL", r, c,
                                        c < columns.size() ? columns[c] : std::string("?")));
    return *v;
}

void Connection::ConnDeleter::operator()(pg_conn* c) const noexcept { PQfinish(c); }

Connection::~Connection() = default;

std::string host_name() {
    std::array<char, 256> buf{};
    if (::gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0')
        return "unknown-host";
    return std::string(buf.data());
}

std::string application_name(const std::string& prefix) {
    const std::string tail = fmt::format(" pid {}", ::getpid());
    std::string name = prefix + " " + host_name();
    // application_name is truncated by the server at 63 bytes: keep the pid whole.
    constexpr size_t k_max = 63;
    if (name.size() + tail.size() > k_max)
        name.resize(k_max > tail.size() ? k_max - tail.size() : 0);
    return name + tail;
}

Connection Connection::open(const std::string& conninfo) {
    // expand_dbname: the "dbname" value is the whole conninfo (or URI); the fallback
    // application name applies only when neither the conninfo nor PGAPPNAME sets one.
    const std::string fallback = application_name();
    // TCP keepalives on our side (a server that vanished is noticed in about a minute);
    // placed before "dbname", so a conninfo that sets them wins.
    const std::array<const char*, 7> keywords{"keepalives", "keepalives_idle", "keepalives_interval",
                                              "keepalives_count", "dbname", "fallback_application_name", nullptr};
    const std::array<const char*, 7> values{"1", "30", "10", "3", conninfo.c_str(), fallback.c_str(), nullptr};
    pg_conn* raw = PQconnectdbParams(keywords.data(), values.data(), 1);
    if (raw == nullptr)
        throw DatabaseError(
            fmt::format("cannot connect to PostgreSQL ({}): out of memory", describe_conninfo(conninfo)));
    Connection conn(raw, conninfo);
    if (PQstatus(raw) != CONNECTION_OK) {
        // libpq's message can span lines ("...failed: Connection refused\n\tIs the server
        // running..."): one line for the terminal.
        const std::string why = one_line(PQerrorMessage(raw));
        // libpq quotes an unparsable conninfo whole, password included.
        throw DatabaseError(fmt::format("cannot connect to PostgreSQL ({}): {}", describe_conninfo(conninfo),
                                        redact_secrets(why)));
    }
    PQsetNoticeProcessor(raw, &no_notices, nullptr);
    conn.exec("SET client_min_messages = warning");
    // A session of ours that dies (a broker that lost its network, was killed, or stopped)
    // must not hold locks for hours: the server ends it when it sits idle in a transaction,
    // probes its TCP peer, and our statements give up waiting for a lock.
    const int version = conn.server_version_num();
    std::string settings = "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; "
                           "SET tcp_keepalives_count = 3";
    if (version >= 90300) settings += fmt::format("; SET lock_timeout = '{}s'", k_session_lock_timeout_s);
    if (version >= 90600)
        settings += fmt::format("; SET idle_in_transaction_session_timeout = '{}s'", k_session_idle_in_transaction_s);
    conn.exec(settings);
    return conn;
}

void Connection::exec(const std::string& sql) {
    ResultPtr res(PQexec(m_conn.get(), sql.c_str()));
    if (!res || !ok_status(PQresultStatus(res.get())))
        throw_query_error(sql, res.get(), m_conn.get());
}

Rows Connection::query(const std::string& sql, const std::vector<std::optional<std::string>>& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params)
        values.push_back(p ? p->c_str() : nullptr);
    ResultPtr res(PQexecParams(m_conn.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.empty() ? nullptr : values.data(), nullptr, nullptr, 0));
    if (!res || !ok_status(PQresultStatus(res.get())))
        throw_query_error(sql, res.get(), m_conn.get());
    Rows rows;
    const int ncols = PQnfields(res.get());
    const int nrows = PQntuples(res.get());
    for (int c = 0; c < ncols; ++c)
        rows.columns.emplace_back(PQfname(res.get(), c));
    rows.rows.reserve(static_cast<size_t>(nrows));
    for (int r = 0; r < nrows; ++r) {
        auto& row = rows.rows.emplace_back();
        row.reserve(static_cast<size_t>(ncols));
        for (int c = 0; c < ncols; ++c) {
            if (PQgetisnull(res.get(), r, c) != 0)
                row.emplace_back(std::nullopt);
            else
                row.emplace_back(
                    std::string(PQgetvalue(res.get(), r, c), static_cast<size_t>(PQgetlength(res.get(), r, c))));
        }
    }
    return rows;
}

std::optional<Connection::Notification> Connection::wait_for_notification(std::chrono::milliseconds timeout) {
    const auto take = [this]() -> std::optional<Notification> {
        PGnotify* n = PQnotifies(m_conn.get());
        if (n == nullptr) return std::nullopt;
        Notification out{n->relname != nullptr ? n->relname : "", n->extra != nullptr ? n->extra : "", n->be_pid};
        PQfreemem(n);
        return out;
    };
    if (auto queued = take()) return queued;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        const int fd = PQsocket(m_conn.get());
        if (fd < 0) throw DatabaseError("waiting for a notification: the connection to PostgreSQL is closed");
        pollfd p{fd, POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 60'000)));
        if (ready < 0 && errno != EINTR)
            throw DatabaseError(fmt::format("waiting for a notification: poll: {}", std::strerror(errno)));
        if (ready > 0 && PQconsumeInput(m_conn.get()) == 0)
            throw DatabaseError(
                fmt::format("waiting for a notification: {}", one_line(PQerrorMessage(m_conn.get()))));
        if (auto n = take()) return n;
    }
}

int Connection::server_version_num() const { return PQserverVersion(m_conn.get()); }

int Connection::backend_pid() const { return PQbackendPID(m_conn.get()); }

bool Connection::in_transaction() const {
    const auto status = PQtransactionStatus(m_conn.get());
    return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
}

std::string Connection::quote_ident(const std::string& name) const {
    char* q = PQescapeIdentifier(m_conn.get(), name.c_str(), name.size());
    if (q == nullptr)
        throw DatabaseError(fmt::format("cannot quote identifier '{}': {}", name, trim(PQerrorMessage(m_conn.get()))));
    std::string out(q);
    PQfreemem(q);
    return out;
}

std::string Connection::quote_literal(const std::string& value) const {
    char* q = PQescapeLiteral(m_conn.get(), value.c_str(), value.size());
    if (q == nullptr)
        throw DatabaseError(fmt::format("cannot quote a literal: {}", one_line(PQerrorMessage(m_conn.get()))));
    std::string out(q);
    PQfreemem(q);
    return out;
}

std::string conninfo_value(const std::string& value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\\' || c == '\'')
            out += '\\';
        out += c;
    }
    return out + "'";
}

SplitConninfo split_password(const std::string& conninfo) {
    char* err = nullptr;
    std::unique_ptr<PQconninfoOption, ConninfoOptionsDeleter> opts(PQconninfoParse(conninfo.c_str(), &err));
    if (!opts) {
        const std::string why = err != nullptr ? trim(err) : std::string("out of memory");
        if (err != nullptr)
            PQfreemem(err);
        throw DatabaseError("cannot parse the connection string: " + why);
    }
    SplitConninfo out;
    for (auto* o = opts.get(); o->keyword != nullptr; ++o) {
        if (o->val == nullptr)
            continue;
        const std::string key = o->keyword;
        if (key == "password") {
            out.password = o->val;
            continue;
        }
        if (!out.without_password.empty())
            out.without_password += ' ';
        out.without_password += key + "=" + conninfo_value(o->val);
    }
    return out;
}

std::string with_dbname(const std::string& conninfo, const std::string& dbname) {
    const auto split = split_password(conninfo);
    std::string out;
    char* err = nullptr;
    std::unique_ptr<PQconninfoOption, ConninfoOptionsDeleter> opts(PQconninfoParse(split.without_password.c_str(), &err));
    if (!opts) {
        if (err != nullptr) PQfreemem(err);
        throw DatabaseError("cannot parse the connection string");
    }
    for (auto* o = opts.get(); o->keyword != nullptr; ++o) {
        if (o->val == nullptr || std::string_view(o->keyword) == "dbname") continue;
        out += std::string(o->keyword) + "=" + conninfo_value(o->val) + " ";
    }
    out += "dbname=" + conninfo_value(dbname);
    if (split.password) out += " password=" + conninfo_value(*split.password);
    return out;
}

void ignore_ambient_credentials() {
    for (const char* var : {"PGPASSWORD", "PGSERVICE", "PGSERVICEFILE", "LEO_DB_PASSWORD"})
        ::unsetenv(var);
    ::setenv("PGPASSFILE", "/dev/null/leo-installer: only the password stored in database.conf", 1);
}

} // namespace leo::migrations
