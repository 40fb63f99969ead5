#include "leo/installer/status.hpp"
#include "leo/installer/hint.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/paths.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/rpm/transaction.hpp"

#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {
std::string_view state_name(migrations::DbState s) {
    switch (s) {
    case migrations::DbState::not_initialised: return "not initialised";
    case migrations::DbState::stopped: return "stopped";
    case migrations::DbState::running: return "running";
    }
    return "unknown";
}
} // namespace

std::optional<std::string> shipped_schema_version(const stdfs::path& root) {
    const fs::SystemRoot sr(root);
    const auto st = sr.stat(k_migrations_dir);
    if (!st || !S_ISDIR(st->st_mode)) return std::nullopt;
    const auto dir = sr.checked_host(k_migrations_dir);
    const auto all = migrations::load_migrations(dir);
    if (all.empty()) return std::nullopt;
    return all.back().version;
}

namespace {
/// As a user other than root, whether `inside` can be read; when not, say so in
/// `s.unreadable` ("ROOT/PATH: Permission denied") and return false. Root reads all.
bool readable(const fs::SystemRoot& sr, std::string_view inside, bool directory, Status& s) {
    if (::geteuid() == 0) return true;
    try {
        if (directory) {
            if (sr.exists(inside)) (void)sr.list(inside);
        } else {
            (void)sr.try_read(inside, 1 << 20);
        }
        return true;
    } catch (const Error& e) {
        s.unreadable.push_back(describe(e));
        return false;
    }
}
} // namespace

Status gather_status(const stdfs::path& root) {
    Status s;
    const fs::SystemRoot sr(root);
    s.installed = rpm::query_installed(root, k_broker_package);
    // What a user other than root cannot read is said, not guessed (a database that
    // cannot be seen is not "stopped", a configuration that cannot be read not "internal").
    const bool state_readable = readable(sr, fs::SystemRoot::k_state_dir, true, s);
    const bool conf_readable = readable(sr, k_database_conf, false, s);
    const bool data_readable = readable(sr, std::string(fs::SystemRoot::k_pgsql) + "/data", true, s);
    const migrations::InternalDatabase db(root);
    if (data_readable) s.database = db.status();
    else s.database.data_dir = sr.host(std::string(fs::SystemRoot::k_pgsql) + "/data").string();
    try {
        s.packaged_schema_version = shipped_schema_version(root);
    } catch (const Error& e) {
        s.database_error = describe(e);
    }
    try {
        if (auto holder = state_readable ? RunLock::holder(root) : std::nullopt) {
            s.in_progress = std::move(*holder);
        } else if (const auto run = state_readable ? Journal(root).last_run() : std::nullopt; run && !run->finished()) {
            s.unfinished_run = fmt::format("{} {} -> {} (run {})", run->command, run->from.empty() ? "(none)" : run->from,
                                           run->to, run->id);
        }
    } catch (const Error& e) {
        s.journal_error = describe(e);
    }
    std::string conninfo;
    if (!conf_readable) {
        s.database_in_use = "unknown (database.conf cannot be read)";
    } else {
        try {
            const auto config = load_database_config(root);
            if (config.mode == DatabaseMode::external) {
                s.external = true;
                s.database_in_use = config.external.display();
                conninfo = external_conninfo(config);
            } else if (s.database.state == migrations::DbState::running) {
                conninfo = db.conninfo();
            }
        } catch (const UsageError& e) {  // database.conf itself is unreadable
            s.database_in_use = "unknown (database.conf cannot be read)";
            s.database_error = describe(e);
        } catch (const Error& e) {
            s.database_error = describe(e);
        }
    }
    if (!conninfo.empty()) {
        try {
            auto conn = migrations::Connection::open(conninfo);
            auto state = migrations::read_schema_state(conn);
            s.schema_version = state.schema_version;
            s.schema_broker_version = state.broker_version;
        } catch (const Error& e) {
            s.database_error = describe(e);
        }
    }
    return s;
}

StatusCode status_code(const Status& s) {
    if (!s.in_progress.empty()) return StatusCode::in_progress;
    if (!s.unreadable.empty()) return StatusCode::unreadable;
    if (!s.unfinished_run.empty() || !s.journal_error.empty()) return StatusCode::unfinished;
    if (s.installed.empty()) return StatusCode::not_installed;
    if (!s.packaged_schema_version) return StatusCode::ok;  // a package without migrations
    if (!s.schema_version || *s.schema_version != *s.packaged_schema_version) return StatusCode::schema_mismatch;
    return StatusCode::ok;
}

nlohmann::json to_json(const Status& s) {
    nlohmann::json j;
    j["installed"] = nlohmann::json::array();
    for (const auto& p : s.installed)
        j["installed"].push_back({{"nevra", p.nevra()}, {"name", p.name}, {"evr", p.evr()}, {"arch", p.arch}});
    j["database_in_use"] = {{"mode", s.external ? "external" : "internal"}, {"endpoint", s.database_in_use}};
    const bool db_unknown = !s.unreadable.empty() && s.database.server_version.empty() &&
                            s.database.state == migrations::DbState::not_initialised && ::geteuid() != 0;
    // What could not be read is "unknown", never a guessed state.
    const bool state_unknown = !s.unreadable.empty() && ::geteuid() != 0;
    j["database"] = {{"state", db_unknown ? std::string("unknown") : std::string(state_name(s.database.state))},
                     {"data_dir", s.database.data_dir},
                     {"server_version", s.database.server_version}};
    if (s.database.pid) j["database"]["pid"] = *s.database.pid;
    j["schema_version"] = s.schema_version ? nlohmann::json(*s.schema_version) : nlohmann::json(nullptr);
    j["schema_broker_version"] =
        s.schema_broker_version ? nlohmann::json(*s.schema_broker_version) : nlohmann::json(nullptr);
    j["packaged_schema_version"] =
        s.packaged_schema_version ? nlohmann::json(*s.packaged_schema_version) : nlohmann::json(nullptr);
    if (!s.database_error.empty()) j["database_error"] = s.database_error;
    j["unfinished_run"] = !s.unfinished_run.empty() ? nlohmann::json(s.unfinished_run)
                          : state_unknown       ? nlohmann::json("unknown")
                                                : nlohmann::json(nullptr);
    j["journal_error"] = s.journal_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.journal_error);
    j["in_progress"] = !s.in_progress.empty() ? nlohmann::json(s.in_progress)
                       : state_unknown      ? nlohmann::json("unknown")
                                            : nlohmann::json(nullptr);
    j["unreadable"] = s.unreadable;
    // true or false only when both are known; null when either cannot be read.
    j["schema_matches_package"] = s.schema_version && s.packaged_schema_version
                                      ? nlohmann::json(*s.schema_version == *s.packaged_schema_version)
                                      : nlohmann::json(nullptr);
    j["exit_code"] = static_cast<int>(status_code(s));
    return j;
}

std::string to_text(const Status& s) {
    std::string out;
    if (s.installed.empty()) out += fmt::format("{:<18}{}\n", "broker:", "not installed");
    for (const auto& p : s.installed) out += fmt::format("{:<18}{}\n", "broker:", p.nevra());
    out += fmt::format("{:<18}{}\n", "database in use:", s.database_in_use);
    const bool db_unknown = !s.unreadable.empty() && s.database.server_version.empty() &&
                            s.database.state == migrations::DbState::not_initialised && ::geteuid() != 0;
    out += fmt::format("{:<18}{}{}\n", s.external ? "internal db:" : "database:",
                       db_unknown ? "unknown (cannot be read)" : std::string(state_name(s.database.state)),
                       s.database.pid ? fmt::format(" (pid {})", *s.database.pid) : "");
    if (!s.database.data_dir.empty()) out += fmt::format("{:<18}{}\n", "data directory:", s.database.data_dir);
    out += fmt::format("{:<18}{}\n", "schema version:",
                       s.schema_version ? *s.schema_version
                                        : !s.database_error.empty() ? "unknown (see the database error)"
                                        : s.external || s.database.state == migrations::DbState::running ? "none"
                                        : db_unknown ? "unknown (the database cannot be read)"
                                        : s.database.state == migrations::DbState::not_initialised
                                            ? "unknown (the database is not initialised)"
                                            : "unknown (the database is not running)");
    if (s.schema_broker_version) out += fmt::format("{:<18}{}\n", "written by:", "broker " + *s.schema_broker_version);
    if (s.packaged_schema_version) out += fmt::format("{:<18}{}\n", "package schema:", *s.packaged_schema_version);
    if (!s.database_error.empty()) out += fmt::format("{:<18}{}\n", "database error:", s.database_error);
    for (const auto& u : s.unreadable) out += fmt::format("{:<18}{}\n", "unreadable:", u);
    if (!s.unreadable.empty())
        out += fmt::format("{:<18}the state above is incomplete: run {} as root\n", "warning:",
                           command_hint("status"));
    if (!s.in_progress.empty()) out += fmt::format("{:<18}in progress ({})\n", "run:", s.in_progress);
    if (!s.unfinished_run.empty())
        out += fmt::format("{:<18}{} is unfinished: run {}\n", "warning:", s.unfinished_run, command_hint("recover"));
    if (!s.journal_error.empty())
        out += fmt::format("{:<18}the journal cannot be used, so whether a run is unfinished is unknown: {}\n",
                           "warning:", s.journal_error);
    if (s.schema_version && s.packaged_schema_version && *s.schema_version != *s.packaged_schema_version) {
        int order = 0;
        try {
            order = migrations::compare_versions(*s.schema_version, *s.packaged_schema_version);
        } catch (const Error&) {
        }
        if (s.external && order > 0 && s.unfinished_run.empty())
            // A broker of a cluster left behind: another broker migrated the shared schema.
            out += fmt::format("{:<18}this broker's package ({}, schema {}) is older than the shared database's "
                               "schema {}: another broker of the cluster has upgraded it; upgrade this broker too "
                               "({}: it replaces the package and does not migrate)\n",
                               "warning:", s.installed.empty() ? std::string("?") : s.installed.front().nevra(),
                               *s.packaged_schema_version, *s.schema_version, command_hint("upgrade"));
        else
            out += fmt::format("{:<18}the schema ({}) is not the package's ({}): run {} after an interrupted run, "
                               "or {} to see why\n",
                               "warning:", *s.schema_version, *s.packaged_schema_version, command_hint("recover"),
                               command_hint("migrate --validate"));
    }
    return out;
}

} // namespace leo::installer
