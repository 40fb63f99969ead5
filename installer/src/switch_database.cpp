#include "leo/installer/switch_database.hpp"
#include "leo/installer/hint.hpp"
#include "leo/installer/cluster.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"
#include "leo/common/log.hpp"
#include "leo/common/signals.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/services.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/migrations/vendor.hpp"
#include "leo/rpm/transaction.hpp"

#include "ini_errors.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>

namespace leo::installer {
namespace stdfs = std::filesystem;
namespace mig = leo::migrations;

std::string_view external_mode_id(ExternalMode m) {
    switch (m) {
    case ExternalMode::new_database: return "new";
    case ExternalMode::existing: return "existing";
    case ExternalMode::copy_to_existing: return "copy_to_existing";
    }
    return "?";
}

// ---------------------------------------------------------------------------------------
// Flags

namespace {

/// `v` for a one-line message: control characters as \n, \t or \xNN.
std::string shown(const std::string& v) {
    std::string out;
    for (unsigned char c : v) {
        if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
    return out;
}

/// Values go into database.conf: what it can hold (check_conf_value), and for the host no
/// blank at all.
void check_value(const char* flag, const std::string& v, bool allow_blanks) {
    check_conf_value(flag, v);
    if (!allow_blanks && v.find(' ') != std::string::npos)
        throw UsageError(fmt::format("{} '{}' contains a blank", flag, v));
}

} // namespace

SwitchRequest parse_switch_flags(const SwitchFlags& f) {
    const int actions = (f.show_current ? 1 : 0) + (f.to_internal ? 1 : 0) + (f.to_external ? 1 : 0);
    if (actions != 1)
        throw UsageError(fmt::format("give exactly one of --show_current, --to_internal, --to_external "
                                     "new|existing|copy_to_existing (got {})",
                                     actions));
    SwitchRequest r;
    r.skip_confirmation = f.skip_confirmation;
    if (!f.to_external) {
        r.action = f.show_current ? SwitchAction::show_current : SwitchAction::to_internal;
        const char* action = f.show_current ? "--show_current" : "--to_internal";
        const std::vector<std::pair<const char*, bool>> external_only{
            {"--db_vendor", f.db_vendor.has_value()}, {"--db_name", f.db_name.has_value()},
            {"--db_host", f.db_host.has_value()},     {"--port", f.port.has_value()},
            {"--username", f.username.has_value()},   {f.password_flag.c_str(), f.password_given},
            {"--site_id", f.site_id.has_value()},     {"--allow_remote_upgrade", f.allow_remote_upgrade}};
        for (const auto& [flag, given] : external_only)
            if (given)
                throw UsageError(fmt::format("{} applies only to --to_external, not to {}", flag, action));
        return r;
    }
    r.action = SwitchAction::to_external;
    const std::string& mode = *f.to_external;
    if (mode == "new") r.mode = ExternalMode::new_database;
    else if (mode == "existing") r.mode = ExternalMode::existing;
    else if (mode == "copy_to_existing") r.mode = ExternalMode::copy_to_existing;
    else
        throw UsageError(fmt::format("--to_external '{}': expected new, existing or copy_to_existing", shown(mode)));

    r.target.vendor = mig::Vendor::postgres;
    if (f.db_vendor) {
        const auto v = mig::parse_vendor(*f.db_vendor);
        if (!v)
            throw UsageError(
                fmt::format("--db_vendor '{}': expected postgres, mssqlserver or azuresql", shown(*f.db_vendor)));
        r.target.vendor = *v;
    }
    const auto vendor = r.target.vendor;
    if (r.mode == ExternalMode::new_database && vendor == mig::Vendor::azuresql)
        throw UsageError("--to_external new works with --db_vendor postgres or mssqlserver; for azuresql create the "
                         "empty database in Azure and use --to_external copy_to_existing");
    if (r.mode == ExternalMode::copy_to_existing && vendor != mig::Vendor::azuresql)
        throw UsageError(fmt::format("--to_external copy_to_existing works with --db_vendor azuresql only; with {} use "
                                     "--to_external new (it also uses an existing empty database of that name)",
                                     mig::vendor_id(vendor)));

    std::vector<std::string> missing;
    if (!f.db_host) missing.emplace_back("--db_host");
    if (!f.db_name) missing.emplace_back("--db_name");
    if (!f.username) missing.emplace_back("--username");
    if (!missing.empty()) {
        std::string list;
        for (size_t i = 0; i < missing.size(); ++i)
            list += (i == 0 ? "" : i + 1 == missing.size() ? " and " : ", ") + missing[i];
        throw UsageError(fmt::format("--to_external {} needs {}", mode, list));
    }
    check_value("--db_host", *f.db_host, false);
    if (f.db_host->find_first_of(":/[],") != std::string::npos) {
        in6_addr v6{};
        const std::string address = f.db_host->substr(0, f.db_host->find('%'));  // fe80::1%eth0: a scoped address
        if (::inet_pton(AF_INET6, address.c_str(), &v6) != 1)
            throw UsageError(fmt::format("--db_host '{}' is not a host name or address (give the port with --port)",
                                         *f.db_host));
    }
    check_value("--db_name", *f.db_name, true);
    check_value("--username", *f.username, true);
    if (vendor == mig::Vendor::postgres && f.db_name->size() > 63)
        throw UsageError(fmt::format("--db_name '{}' has {} bytes; PostgreSQL names have at most 63", *f.db_name,
                                     f.db_name->size()));
    r.target.host = *f.db_host;
    r.target.dbname = *f.db_name;
    r.target.username = *f.username;
    r.target.port = mig::default_port(vendor);
    if (f.port) {
        long port = 0;
        if (!detail::parse_long(*f.port, port) || port < 1 || port > 65535)
            throw UsageError(fmt::format("--port '{}': expected a TCP port from 1 to 65535", shown(*f.port)));
        r.target.port = static_cast<int>(port);
    }
    if (f.site_id) {
        long id = 0;
        if (!detail::parse_long(*f.site_id, id) || id < 1 || id > 2147483647)
            throw UsageError(
                fmt::format("--site_id '{}': expected a whole number from 1 to 2147483647", shown(*f.site_id)));
        r.site_id = static_cast<int>(id);
    }
    r.allow_remote_upgrade = f.allow_remote_upgrade ? mig::AllowRemoteUpgrade::yes : mig::AllowRemoteUpgrade::no;
    return r;
}

// ---------------------------------------------------------------------------------------
// The switch

namespace {

/// This broker's code: its version and the migrations it ships.
struct BrokerCode {
    std::string version;
    std::vector<mig::Migration> files;
};

BrokerCode broker_code(const stdfs::path& root) {
    const auto installed = rpm::query_installed(root, k_broker_package);
    if (installed.size() != 1)
        throw InstallError(fmt::format("switching databases needs exactly one installed {} in {} (found {})",
                                       k_broker_package, root.string(), installed.size()));
    return {installed.front().version, mig::load_migrations(fs::SystemRoot(root).checked_host(k_migrations_dir))};
}

std::string describe_current(const DatabaseConfig& c) {
    return c.mode == DatabaseMode::internal ? std::string("the internal database") : c.external.display();
}

/// The current database's conninfo, checking that it is there to copy from.
std::string current_conninfo(const stdfs::path& root, const DatabaseConfig& c) {
    if (c.mode == DatabaseMode::external) return external_conninfo(c);
    mig::InternalDatabase db(root);
    if (db.status().state != mig::DbState::running)
        throw RefusedError(fmt::format("the internal database is not running, so there is nothing to copy from: "
                                       "start it with {} and run this again",
                                       command_hint("db start")));
    return db.conninfo();
}

/// The copy is exact: same tables, same row counts and checksums, same sequence values.
std::vector<std::string> verify_copy(mig::Connection& source, mig::VendorDriver& driver, const mig::Endpoint& target) {
    const auto want = mig::table_checksums(source);
    const auto got = driver.table_checksums(target);
    std::vector<std::string> lines;
    std::vector<std::string> problems;
    for (const auto& [table, sum] : want) {
        const auto it = got.find(table);
        const std::string rows = sum.substr(0, sum.find(':'));
        if (it == got.end()) problems.push_back(fmt::format("table {} is missing from the copy", table));
        else if (it->second != sum)
            problems.push_back(fmt::format("table {}: source {} rows, copy {} rows, checksums differ", table, rows,
                                           it->second.substr(0, it->second.find(':'))));
        else lines.push_back(fmt::format("{}: {} {}, checksum equal", table, rows, rows == "1" ? "row" : "rows"));
    }
    for (const auto& [table, sum] : got)
        if (want.count(table) == 0) problems.push_back(fmt::format("the copy has a table {} the source has not", table));
    const auto seq_want = mig::sequence_values(source);
    const auto seq_got = driver.sequence_values(target);
    for (const auto& [seq, value] : seq_want) {
        const auto it = seq_got.find(seq);
        if (it == seq_got.end() || it->second != value)
            problems.push_back(fmt::format("sequence {}: source {}, copy {}", seq, value,
                                           it == seq_got.end() ? std::string("missing") : it->second));
    }
    if (!problems.empty()) {
        std::string all;
        for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
        throw InstallError("the copy is not equal to the source: " + all);
    }
    return lines;
}

nlohmann::json endpoint_json(const stdfs::path& root, const mig::Endpoint& e) {
    return {{"vendor", std::string(mig::vendor_id(e.vendor))},
            {"host", e.host},
            {"port", e.port},
            {"name", e.dbname},
            {"username", e.username},
            {"password", e.password.empty() ? std::string() : seal_secret(root, e.password)}};
}

/// The endpoint of endpoint_json(), without its password (see open_secret).
mig::Endpoint endpoint_from_json(const nlohmann::json& j) {
    mig::Endpoint e;
    e.vendor = mig::parse_vendor(j.value("vendor", "postgres")).value_or(mig::Vendor::postgres);
    e.host = j.value("host", "");
    e.port = j.value("port", 5432);
    e.dbname = j.value("name", "");
    e.username = j.value("username", "");
    return e;
}

bool started(const RunRecord& run, const std::string& step) {
    return std::find(run.started.begin(), run.started.end(), step) != run.started.end();
}

/// Put database.conf back as it was before the switch (`previous` nullopt: it did not
/// exist). Returns true when it had to change something.
bool restore_previous_conf(const stdfs::path& root, const std::optional<std::string>& previous) {
    const fs::SystemRoot sr(root);
    const auto file = sr.host(k_database_conf);
    const auto now = sr.try_read(k_database_conf, std::size_t{1} << 20);
    if (now == previous) return false;
    if (!previous) {
        sr.remove(k_database_conf);
    } else {
        const auto leo = accounts::find_user(root, k_user);
        if (!leo) throw InstallError(fmt::format("user {} does not exist in {}", k_user, root.string()));
        sr.write_atomic(k_database_conf, *previous, 0600, fs::Owner{leo->uid, leo->gid});
    }
    log::info("put {} back as it was before the switch", file.string());
    return true;
}

/// Dump directories of a copy that was killed (copy_from_postgres removes its own).
void remove_stale_copies(const stdfs::path& root) {
    const fs::SystemRoot sr(root);
    for (const auto& name : sr.list(k_state_dir))
        if (name.rfind("switch-copy.", 0) == 0) {
            const auto inside = stdfs::path(k_state_dir) / name;
            sr.remove_all(inside);
            log::info("removed {}, left by an interrupted copy", sr.host(inside).string());
        }
}

class Switcher {
public:
    Switcher(const SwitchRequest& req, const SwitchCallbacks& cb) : m_req(req), m_cb(cb), m_root(checked_root(req.root)) {}

    SwitchOutcome run() {
        // The run lock first: the checks, the question and the switch see one state (a
        // second switch waiting at its question would otherwise act on a stale one).
        m_lock.emplace(RunLock::acquire(m_root, "switch-database"));
        Journal(m_root).refuse_if_unfinished();
        (void)load_config(m_root);  // installer.conf's [services], read before anything changes
        m_current = load_database_config(m_root);
        m_previous_conf = fs::SystemRoot(m_root).try_read(k_database_conf, std::size_t{1} << 20);
        m_code = broker_code(m_root);
        remove_stale_copies(m_root);
        return m_req.action == SwitchAction::to_internal ? to_internal() : to_external();
    }

private:
    void say(const std::string& s) {
        log::info("switch-database: {}", s);
        if (m_cb.on_step) m_cb.on_step(s);
    }
    void warn(const std::string& s) {
        log::warning("switch-database: {}", s);
        if (m_cb.on_warning) m_cb.on_warning(s);
    }
    void confirm(const std::string& plan) {
        if (m_req.skip_confirmation || !m_cb.confirm) return;
        if (!m_cb.confirm(plan)) throw RefusedError("switch cancelled: nothing was changed");
    }

    SwitchOutcome to_external() {
        const auto& target = m_req.target;
        auto driver = mig::make_driver(target.vendor);
        driver->require_supported();

        // Everything that can refuse, before anything changes.
        std::string source_conninfo;
        std::optional<mig::Connection> source;
        if (m_req.mode != ExternalMode::existing) {
            source_conninfo = current_conninfo(m_root, m_current);
            source.emplace(mig::Connection::open(source_conninfo));
            const auto state = mig::read_schema_state(*source);
            const auto kind = m_current.mode == DatabaseMode::external ? mig::DatabaseKind::external
                                                                       : mig::DatabaseKind::internal;
            const auto d = mig::decide_upgrade(state, m_code.files, m_code.version, kind, mig::AllowRemoteUpgrade::yes);
            if (d.refused()) throw RefusedError(d.message);
            if (d.action != mig::UpgradeDecision::Action::none)
                throw RefusedError(fmt::format("the current database ({}) has schema {} but broker {} runs schema {}: "
                                               "bring it up to date first ({}), then switch",
                                               describe_current(m_current), state.schema_version.value_or("none"),
                                               m_code.version,
                                               m_code.files.empty() ? "none" : m_code.files.back().version,
                                               command_hint("migrate")));
            const auto v = mig::validate(state, m_code.files, m_code.version);
            if (!v.ok()) throw RefusedError("the current database does not match this broker's migrations: " + v.message());
        }
        const std::string where = target.display();
        mig::TargetInfo info;
        try {
            info = driver->inspect(target);
        } catch (const DatabaseError& e) {
            const std::string what = e.what();
            if (what.find("no password supplied") != std::string::npos)
                std::throw_with_nested(DatabaseError(fmt::format(
                    "{} asks for a password and none was given: give it with --password_file FILE, "
                    "LEO_DB_PASSWORD (or PGPASSWORD) or at the prompt (on a terminal)",
                    where)));
            if (what.find("password authentication failed") != std::string::npos)
                std::throw_with_nested(DatabaseError(fmt::format(
                    "{} refused user {} with the password given: check --username and the password", where,
                    target.username)));
            throw;
        }
        mig::UpgradeDecision decision;
        std::string plan;
        if (m_req.mode == ExternalMode::new_database) {
            if (info.exists && info.objects > 0)
                throw RefusedError(fmt::format(
                    "database {} is not empty ({} object{}{}): --to_external new copies into a new or empty database "
                    "only; to connect to it use --to_external existing, or choose another --db_name",
                    where, info.objects, info.objects == 1 ? "" : "s",
                    info.schema && info.schema->schema_version ? ", broker schema " + *info.schema->schema_version
                                                               : std::string()));
            if (!info.exists && info.can_create_database == false)
                throw RefusedError(fmt::format(
                    "database {} does not exist and user {} may not create databases: ask the database "
                    "administrator to create an empty database {} owned by {}, then run this again",
                    where, target.username, target.dbname, target.username));
            plan = fmt::format("{} database {}, copy {} into it (verified table by table), and switch the broker to it",
                               info.exists ? "Use the existing empty" : "Create", where, describe_current(m_current));
        } else {
            if (!info.exists)
                throw RefusedError(fmt::format("database {} does not exist: to create it and copy this broker's "
                                               "database into it use --to_external new",
                                               where));
            if (!info.schema) {
                if (info.objects == 0)
                    throw RefusedError(fmt::format(
                        "database {} is empty: it holds no broker database to connect to; to copy this broker's "
                        "database into it use --to_external new (postgres, mssqlserver) or copy_to_existing "
                        "(azuresql)",
                        where));
                throw RefusedError(fmt::format("database {} is not a broker database: it has {} object{} but no "
                                               "leo_schema_history table",
                                               where, info.objects, info.objects == 1 ? "" : "s"));
            }
            decision = mig::decide_upgrade(*info.schema, m_code.files, m_code.version, mig::DatabaseKind::external,
                                           m_req.allow_remote_upgrade, "--allow_remote_upgrade");
            if (decision.refused()) throw RefusedError(decision.message);
            const auto v = mig::validate(*info.schema, m_code.files, m_code.version);
            if (!v.ok()) throw RefusedError(fmt::format("database {}: {}", where, v.message()));
            plan = fmt::format("Switch the broker to the existing broker database {} (schema {}){}", where,
                               info.schema->schema_version.value_or("none"),
                               decision.action == mig::UpgradeDecision::Action::upgrade
                                   ? fmt::format(", upgrade its schema to {} for every broker that shares it",
                                                 m_code.files.back().version)
                                   : std::string());
        }
        confirm(fmt::format("The broker uses {}. {}. {}. Proceed?", describe_current(m_current), plan,
                            services_plan(m_root)));

        // Sealed before the run begins: a key file that cannot seal stops here, changing nothing.
        const nlohmann::json plan_data{{"mode", std::string(external_mode_id(m_req.mode))},
                                       {"target", endpoint_json(m_root, target)},
                                       {"existed", info.exists},
                                       {"objects", info.objects},
                                       {"previous_conf", previous_conf_json()}};
        Journal journal(m_root);
        const std::string run = journal.begin("switch-database", describe_current(m_current), where);
        journal.step_done(run, "plan", plan_data);
        SwitchOutcome out;
        bool created = false;
        std::vector<std::string> copy_created;  ///< DROP statements for what the copy made
        bool stopped = false;
        try {
            stopped = true;
            stop_components(journal, run);
            signals::check();  // a signal at a step boundary undoes the switch below
            if (m_req.mode != ExternalMode::existing) {
                if (!info.exists) {
                    say(fmt::format("creating database {}", where));
                    journal.step_start(run, "create_database");
                    driver->create_database(target);
                    created = true;  // only now is there a database of ours to drop
                    journal.step_done(run, "create_database");
                    signals::check();
                }
                say(fmt::format("copying {} into {}", describe_current(m_current), where));
                // What the copy creates is what is there after it and was not before: an
                // undo drops that and nothing else (another broker may be using the rest).
                const auto before = driver->objects(target);
                journal.step_start(run, "copy");
                // The dump goes in the root-only state directory (0700), reached through no unsafe link.
                fs::SystemRoot(m_root).make_dirs(k_state_dir, 0700, fs::Owner{0, 0});
                driver->copy_from_postgres(source_conninfo, target, fs::SystemRoot(m_root).checked_host(k_state_dir));
                for (const auto& [id, drop] : driver->objects(target))
                    if (before.count(id) == 0) copy_created.push_back(drop);
                journal.step_done(run, "copy", {{"created", copy_created}});
                fault::point("switch.after_copy");
                signals::check();
                say("verifying the copy (row counts and checksums of every table)");
                journal.step_start(run, "verify");
                out.verified = verify_copy(*source, *driver, target);
                for (const auto& line : out.verified) say("  " + line);
                journal.step_done(run, "verify", {{"tables", out.verified.size()}});
                signals::check();
            } else if (decision.action == mig::UpgradeDecision::Action::upgrade) {
                say(fmt::format("upgrading the schema of {}", where));
                out.migrations_applied = migrate_step(journal, run, driver->conninfo(target),
                                                      mig::DatabaseKind::external, m_req.site_id);
            }
            DatabaseConfig next;
            next.mode = DatabaseMode::external;
            next.external = target;
            next.site_id = m_req.site_id ? m_req.site_id : m_current.site_id;
            record(journal, run, next, where);
            fault::point("switch.after_record");
        } catch (const std::exception& e) {
            signals::say("undoing the switch; please wait");
            std::vector<std::string> undone;
            if (restore_previous_conf(m_root, m_previous_conf)) undone.emplace_back("put database.conf back");
            try {
                if (created) {
                    driver->drop_database(target);
                    undone.push_back("dropped the new database " + where);
                } else if (!copy_created.empty()) {
                    driver->drop_objects(target, copy_created);
                    undone.push_back(fmt::format("dropped the {} objects the copy made in {}", copy_created.size(), where));
                }
            } catch (const std::exception& undo_error) {
                // The run stays unfinished so that `recover` undoes it when the server is back.
                log::error("switch-database undo: {}", describe(undo_error));
                const std::string started_again = stopped ? "; " + start_again() : std::string();
                std::throw_with_nested(InstallError(fmt::format(
                    "switch to {} failed: {}; could NOT undo the copy ({}){}; the broker still uses {}: run "
                    "{} when {} answers again",
                    where, describe(e), describe(undo_error), started_again, describe_current(m_current),
                    command_hint("recover"), where)));
            }
            if (stopped) undone.push_back(start_again());
            journal.end(run, "rolled-back");
            std::string list;
            for (const auto& u : undone) list += "; " + u;
            std::throw_with_nested(InstallError(fmt::format("switch to {} failed{}; the broker still uses {}", where,
                                                            list, describe_current(m_current))));
        }
        finish(journal, run);
        out.changed = true;
        out.message = fmt::format("the broker now uses {}", where);
        return out;
    }

    SwitchOutcome to_internal() {
        SwitchOutcome out;
        if (m_current.mode == DatabaseMode::internal) {
            out.message = "the broker already uses the internal database: nothing to do";
            return out;
        }
        mig::InternalDatabase db(m_root);
        const auto status = db.status();
        const std::string state = status.state == mig::DbState::running   ? "running"
                                  : status.state == mig::DbState::stopped ? "stopped: it will be started"
                                                                          : "not initialised: it will be created";
        confirm(fmt::format("The broker uses {}. Switch back to the internal database (PostgreSQL under "
                            "/home/leo/pgsql, {}). Nothing is copied: the broker will see the data the internal "
                            "database holds{}, not what is in {}. {}. Proceed?",
                            m_current.external.display(), state,
                            m_current.switched_at.empty() ? std::string()
                                                          : " (from before the switch at " + m_current.switched_at + ")",
                            m_current.external.display(), services_plan(m_root)));
        Journal journal(m_root);
        const std::string run = journal.begin("switch-database", m_current.external.display(), "internal");
        journal.step_done(run, "plan", {{"mode", "internal"}, {"previous_conf", previous_conf_json()}});
        bool stopped = false;
        try {
            stopped = true;
            stop_components(journal, run);
            journal.step_start(run, "database");
            if (db.init()) say("initialised the internal database");
            if (db.start([this](const std::string& notice) { say(notice); })) say("started the internal database");
            journal.step_done(run, "database");
            out.migrations_applied = migrate_step(journal, run, db.conninfo(), mig::DatabaseKind::internal, std::nullopt);
            DatabaseConfig next;
            next.site_id = m_current.site_id;
            record(journal, run, next, "the internal database");
        } catch (const std::exception& e) {
            if (restore_previous_conf(m_root, m_previous_conf)) log::info("switch-database: put database.conf back");
            const std::string also = stopped ? "; " + start_again() : std::string();
            journal.end(run, "rolled-back");
            std::throw_with_nested(InstallError(fmt::format("switch to the internal database failed{}; the broker "
                                                            "still uses {}",
                                                            also, m_current.external.display())));
        }
        finish(journal, run);
        out.changed = true;
        out.message = "the broker now uses the internal database";
        return out;
    }

    /// Migrate the database the switch goes to (the engine's own lock and rules; an
    /// external one only after allow_remote_upgrade allowed it); the scripts applied.
    std::vector<std::string> migrate_step(Journal& journal, const std::string& run, const std::string& conninfo,
                                          mig::DatabaseKind kind, std::optional<int> site_id) {
        journal.step_start(run, "migrate");
        auto conn = mig::Connection::open(conninfo);
        mig::MigrateOptions o;
        o.kind = kind;
        o.allow_remote_upgrade = mig::AllowRemoteUpgrade::yes;
        o.site_id = site_id ? site_id : m_current.site_id;
        const auto res = mig::migrate(conn, m_code.files, m_code.version, o);
        journal.step_done(run, "migrate", {{"applied", res.applied}});
        return res.applied;
    }
    /// The switch takes effect: database.conf is replaced (atomically).
    void record(Journal& journal, const std::string& run, const DatabaseConfig& next, const std::string& where) {
        fault::point("switch.before_record");
        journal.step_start(run, "record");
        save_database_config(m_root, next);
        journal.step_done(run, "record");
        signals::say("the switch is recorded; finishing it (it will not be undone); please wait");
        say(fmt::format("recorded {} in {}", where, k_database_conf));
    }

    void stop_components(Journal& journal, const std::string& run) {
        journal.step_start(run, "stop");
        if (auto s = stop_broker(m_root); !s.ran) warn(s.message);
        else say(s.message);
        journal.step_done(run, "stop");
    }
    /// After a failure: start the components that stop_components() stopped; says how it went.
    std::string start_again() {
        try {
            const auto s = start_broker(m_root);
            return s.ran ? "started the broker components again" : s.message;
        } catch (const std::exception& start_error) {
            return "starting the broker components failed too: " + describe(start_error);
        }
    }

    /// The switch is recorded: start the components. A failure to start does not undo the
    /// switch; it is reported with what to do.
    void finish(Journal& journal, const std::string& run) {
        journal.step_start(run, "start");
        try {
            if (auto s = start_broker(m_root); !s.ran) warn(s.message);
            else say(s.message);
        } catch (const std::exception&) {
            journal.end(run, "ok");
            std::throw_with_nested(InstallError("the switch is recorded, but the broker components did not start: "
                                                "start them yourself"));
        }
        journal.step_done(run, "start");
        journal.end(run, "ok");
        fault::point("switch.after_end");
        // Joining a cluster's shared database: this broker registers in it (the cluster then
        // counts it as a member, and never moves its site's jobs away).
        if (const auto problem = register_this_broker(m_root, "joined"); !problem.empty()) warn(problem);
    }

    [[nodiscard]] nlohmann::json previous_conf_json() const {
        return m_previous_conf ? nlohmann::json(*m_previous_conf) : nlohmann::json(nullptr);
    }

    const SwitchRequest& m_req;
    const SwitchCallbacks& m_cb;
    stdfs::path m_root;
    std::optional<RunLock> m_lock;
    DatabaseConfig m_current;
    std::optional<std::string> m_previous_conf;  ///< database.conf as it was (nullopt: absent)
    BrokerCode m_code;
};

} // namespace

SwitchOutcome switch_database(const SwitchRequest& request, const SwitchCallbacks& callbacks) {
    if (request.action == SwitchAction::show_current)
        throw UsageError("switch_database: --show_current changes nothing; call show_current()");
    return Switcher(request, callbacks).run();
}

CurrentDatabase show_current(const stdfs::path& root_in) {
    const auto root = checked_root(root_in);
    CurrentDatabase cur;
    cur.config = load_database_config(root);
    try {
        std::string conninfo;
        if (cur.config.mode == DatabaseMode::internal) {
            mig::InternalDatabase db(root);
            if (db.status().state != mig::DbState::running) {
                cur.error = "the internal database is not running";
                return cur;
            }
            conninfo = db.conninfo();
        } else {
            conninfo = external_conninfo(cur.config);
        }
        auto conn = mig::Connection::open(conninfo);
        const auto state = mig::read_schema_state(conn);
        cur.reachable = true;
        cur.schema_version = state.schema_version;
        cur.schema_broker_version = state.broker_version;
    } catch (const std::exception& e) {
        cur.error = describe(e);
    }
    return cur;
}

std::string to_text(const CurrentDatabase& cur) {
    std::string out = "Current broker database:\n" + masked_text(cur.config);
    if (cur.reachable)
        out += fmt::format("  {:<13} {}{}\n", "schema", cur.schema_version.value_or("none (empty database)"),
                           cur.schema_broker_version ? " (written by broker " + *cur.schema_broker_version + ")"
                                                     : std::string());
    else out += fmt::format("  {:<13} unknown: {}\n", "schema", cur.error);
    return out;
}

RecoverOutcome recover_switch(const stdfs::path& root, const RunRecord& run, Journal& journal,
                              const std::function<void(const std::string&)>& say) {
    RecoverOutcome out;
    out.run = run.id;
    if (run.is_done("record")) {
        if (!run.is_done("start")) {
            const auto s = start_broker(root);
            say(s.message);
        }
        journal.end(run.id, "recovered-forward");
        out.kind = RecoverOutcome::Kind::completed;
        out.message = fmt::format("the switch from {} to {} had been recorded: finished it, the broker uses {}",
                                  run.from, run.to, run.to);
        return out;
    }
    if (!run.is_done("plan")) {
        journal.end(run.id, "abandoned");
        out.kind = RecoverOutcome::Kind::undone;
        out.message = fmt::format("the switch from {} to {} stopped before it changed anything", run.from, run.to);
        return out;
    }
    const auto& plan = run.done.at("plan");
    std::string undone;
    remove_stale_copies(root);
    // The configuration may have been written just before the crash, the journal not yet.
    if (plan.contains("previous_conf")) {
        const auto& p = plan.at("previous_conf");
        const auto previous = p.is_string() ? std::optional<std::string>(p.get<std::string>()) : std::nullopt;
        if (restore_previous_conf(root, previous)) undone += "; put database.conf back";
    }
    // The components first: they run on the configuration as it was, whatever follows.
    if (started(run, "stop")) {
        const auto s = start_broker(root);
        say(s.message);
    }
    std::string left;
    if (plan.value("mode", "") != "internal" && (started(run, "create_database") || started(run, "copy"))) {
        std::optional<mig::Endpoint> target = endpoint_from_json(plan.at("target"));
        const auto where = target->display();
        try {
            if (const std::string sealed = plan.at("target").value("password", ""); !sealed.empty())
                target->password = open_secret(root, sealed);
        } catch (const Error& e) {
            target.reset();
            // Without the password nothing can be undone there: say what is left, end the run.
            left = fmt::format("; could not undo the copy in {} ({}): {}", where, describe(e),
                               run.is_done("create_database") ? "drop that database yourself"
                                                              : "check it and drop what the copy made");
        }
        if (target) {
            auto driver = mig::make_driver(target->vendor);
            if (run.is_done("create_database")) {
                say(fmt::format("dropping {}, created by the interrupted switch", where));
                driver->drop_database(*target);  // unreachable: throws, the run stays unfinished
                undone += "; dropped " + where;
            } else if (run.is_done("copy")) {
                const auto& copy = run.done.at("copy");
                const auto created =
                    copy.contains("created") ? copy.at("created").get<std::vector<std::string>>() : std::vector<std::string>{};
                say(fmt::format("dropping the {} objects the interrupted copy made in {}", created.size(), where));
                driver->drop_objects(*target, created);
                undone += fmt::format("; dropped the {} objects the copy made in {}", created.size(), where);
            } else if (started(run, "copy")) {
                // pg_restore ran as one transaction and died with the installer: nothing of
                // it was committed unless it ended in the instant before the kill.
                left = fmt::format("; the copy into {} was interrupted (one transaction, so normally nothing of it "
                                   "remains): check that it holds nothing you did not expect",
                                   where);
            }
        }
    }
    journal.end(run.id, "recovered-back");
    out.kind = RecoverOutcome::Kind::undone;
    out.message = fmt::format("the switch from {} to {} was interrupted before it was recorded: undone{}; the broker "
                              "still uses {}{}",
                              run.from, run.to, undone, run.from, left);
    return out;
}

} // namespace leo::installer
