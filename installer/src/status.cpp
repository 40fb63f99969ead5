#include "leo/installer/status.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/journal.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/paths.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/rpm/transaction.hpp"

#include <fmt/format.h>

#include <sys/stat.h>
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

Status gather_status(const stdfs::path& root) {
    Status s;
    s.installed = rpm::query_installed(root, k_broker_package);
    const migrations::InternalDatabase db(root);
    s.database = db.status();
    try {
        s.packaged_schema_version = shipped_schema_version(root);
    } catch (const Error& e) {
        s.database_error = describe(e);
    }
    try {
        if (const auto run = Journal(root).last_run(); run && !run->finished())
            s.unfinished_run = fmt::format("{} {} -> {} (run {})", run->command, run->from.empty() ? "(none)" : run->from,
                                           run->to, run->id);
    } catch (const Error& e) {
        s.unfinished_run = "the journal cannot be read: " + describe(e);
    }
    std::string conninfo;
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

nlohmann::json to_json(const Status& s) {
    nlohmann::json j;
    j["installed"] = nlohmann::json::array();
    for (const auto& p : s.installed)
        j["installed"].push_back({{"nevra", p.nevra()}, {"name", p.name}, {"evr", p.evr()}, {"arch", p.arch}});
    j["database_in_use"] = {{"mode", s.external ? "external" : "internal"}, {"endpoint", s.database_in_use}};
    j["database"] = {{"state", state_name(s.database.state)},
                     {"data_dir", s.database.data_dir},
                     {"server_version", s.database.server_version}};
    if (s.database.pid) j["database"]["pid"] = *s.database.pid;
    j["schema_version"] = s.schema_version ? nlohmann::json(*s.schema_version) : nlohmann::json(nullptr);
    j["schema_broker_version"] =
        s.schema_broker_version ? nlohmann::json(*s.schema_broker_version) : nlohmann::json(nullptr);
    j["packaged_schema_version"] =
        s.packaged_schema_version ? nlohmann::json(*s.packaged_schema_version) : nlohmann::json(nullptr);
    if (!s.database_error.empty()) j["database_error"] = s.database_error;
    j["unfinished_run"] = s.unfinished_run.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.unfinished_run);
    j["schema_matches_package"] = !(s.schema_version && s.packaged_schema_version &&
                                    *s.schema_version != *s.packaged_schema_version);
    return j;
}

std::string to_text(const Status& s) {
    std::string out;
    if (s.installed.empty()) out += fmt::format("{:<18}{}\n", "broker:", "not installed");
    for (const auto& p : s.installed) out += fmt::format("{:<18}{}\n", "broker:", p.nevra());
    out += fmt::format("{:<18}{}\n", "database in use:", s.database_in_use);
    out += fmt::format("{:<18}{}{}\n", s.external ? "internal db:" : "database:", state_name(s.database.state),
                       s.database.pid ? fmt::format(" (pid {})", *s.database.pid) : "");
    if (!s.database.data_dir.empty()) out += fmt::format("{:<18}{}\n", "data directory:", s.database.data_dir);
    out += fmt::format("{:<18}{}\n", "schema version:",
                       s.schema_version ? *s.schema_version
                                        : !s.database_error.empty() ? "unknown (see the database error)"
                                        : (s.external || s.database.state == migrations::DbState::running ? "none"
                                                                                             : "unknown (database not running)"));
    if (s.schema_broker_version) out += fmt::format("{:<18}{}\n", "written by:", "broker " + *s.schema_broker_version);
    if (s.packaged_schema_version) out += fmt::format("{:<18}{}\n", "package schema:", *s.packaged_schema_version);
    if (!s.database_error.empty()) out += fmt::format("{:<18}{}\n", "database error:", s.database_error);
    if (!s.unfinished_run.empty())
        out += fmt::format("{:<18}{} is unfinished: run `leo-installer recover`\n", "warning:", s.unfinished_run);
    if (s.schema_version && s.packaged_schema_version && *s.schema_version != *s.packaged_schema_version)
        out += fmt::format("{:<18}the schema ({}) is not the package's ({}): run `leo-installer recover` after an "
                           "interrupted run, or `leo-installer migrate --validate` to see why\n",
                           "warning:", *s.schema_version, *s.packaged_schema_version);
    return out;
}

} // namespace leo::installer
