// Taking and verifying a backup: the database part (backup.hpp).
#include "leo/installer/backup.hpp"

#include "restore_point/internal.hpp"

#include "leo/common/clock.hpp"
#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/common/log.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/broker_database.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/paths.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/db_copy.hpp"
#include "leo/migrations/db_snapshot.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/rpm/transaction.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <optional>

#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

constexpr const char* k_scratch_prefix = "leo_backup_verify_";

/// Where the broker database is now, as database.conf says: a session's conninfo for the
/// broker database, and what the manifest records of it (never a password).
std::vector<std::string> history_lines(const migrations::SchemaState& state) {
    std::vector<std::string> out;
    for (const auto& m : state.applied) out.push_back(m.version + " " + m.checksum);
    return out;
}

/// The server a scratch database goes on: a session on its maintenance database, and how to
/// reach a database `name` there as the user that will own it.
struct ScratchServer {
    std::optional<migrations::Connection> admin;
    std::string admin_conninfo;
    std::string owner;
    std::function<std::string(const std::string&)> conninfo_of;
};

ScratchServer scratch_server(const stdfs::path& root, const std::function<void(const std::string&)>& notice) {
    ScratchServer s;
    const auto config = load_database_config(root);
    if (config.mode == DatabaseMode::external) {
        const auto conninfo = external_conninfo(config);
        auto server = rp_detail::open_external_server(conninfo, config.external.dbname);
        s.admin = std::move(server.admin);
        s.admin_conninfo = migrations::with_dbname(conninfo, server.admin_db);
        s.owner = config.external.username;
        s.conninfo_of = [conninfo](const std::string& name) { return migrations::with_dbname(conninfo, name); };
        return s;
    }
    auto db = rp_detail::running_database(root, notice);
    s.admin.emplace(rp_detail::admin_connection(db));
    s.admin_conninfo = db.conninfo("postgres");
    s.owner = k_user;
    s.conninfo_of = [db](const std::string& name) { return db.conninfo(name); };
    return s;
}

/// Drops the scratch database when it ends, whatever happened (a failure is logged and
/// named to the caller: the next verify drops it then).
class ScratchGuard {
public:
    ScratchGuard(migrations::Connection& admin, std::string name) : m_admin(admin), m_name(std::move(name)) {}
    ~ScratchGuard() {
        try {
            drop();
        } catch (const std::exception& e) {
            log::warning("the scratch database {} could not be dropped: {}", m_name, e.what());
        }
    }
    ScratchGuard(const ScratchGuard&) = delete;
    ScratchGuard& operator=(const ScratchGuard&) = delete;
    void drop() {
        if (m_dropped) return;
        migrations::drop_database(m_admin, m_name);
        m_dropped = true;
    }

private:
    migrations::Connection& m_admin;
    std::string m_name;
    bool m_dropped = false;
};

std::string scratch_name(const std::string& id) {
    std::string name = k_scratch_prefix;
    for (char c : id) name += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
    return name + "_" + std::to_string(::getpid());
}

} // namespace

Backup create_backup(const stdfs::path& root, const InstallerConfig& config,
                     const std::function<void(const std::string&)>& on_step) {
    auto say = [&](const std::string& s) {
        if (on_step) on_step(s);
    };
    const fs::SystemRoot sr(root);
    const auto base = backups_inside(config);
    if (base.string().starts_with(std::string(fs::SystemRoot::k_state_dir) + "/"))
        sr.make_dirs(fs::SystemRoot::k_state_dir, 0700, fs::Owner{0, 0});
    sr.make_dirs(base, 0700, fs::Owner{0, 0});
    (void)remove_partial_backups(root, config);

    Backup b;
    const auto stamp = clock::utc_now("%Y%m%dT%H%M%SZ");
    b.id = stamp;
    b.created = clock::utc_now("%Y-%m-%dT%H:%M:%SZ");
    for (int n = 2; sr.exists(base / b.id); ++n) b.id = fmt::format("{}-{}", stamp, n);
    const auto partial = base / ("." + b.id + ".partial");
    sr.make_dirs(partial, 0700, fs::Owner{0, 0});
    try {
        const auto host_partial = sr.checked_host(partial);
        const auto installed = rpm::query_installed(root, k_broker_package);
        if (!installed.empty()) b.broker_nevra = installed.front().nevra();
        const auto source = broker_database_target(root, on_step);
        b.database_location = source.external ? "external" : "internal";
        b.database = source.name;
        say(fmt::format("reading the {} database {} in one snapshot", b.database_location, source.name));
        auto conn = migrations::Connection::open(source.conninfo);
        if (conn.server_version_num() < 90200)
            throw DatabaseError(fmt::format("the database server runs PostgreSQL {}; a backup needs 9.2 or later "
                                            "(pg_dump --snapshot)",
                                            conn.server_version_num()));
        conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        // This session waits idle while pg_dump works in its snapshot.
        if (conn.server_version_num() >= 90600) conn.exec("SET LOCAL idle_in_transaction_session_timeout = 0");
        const auto snapshot = conn.query("SELECT pg_export_snapshot()").at(0, 0);
        b.server_version = conn.query("SHOW server_version").at(0, 0);
        const auto state = migrations::read_schema_state(conn);
        b.schema_version = state.schema_version;
        b.schema_broker_version = state.broker_version;
        b.schema_history = history_lines(state);
        b.table_checksums = migrations::table_checksums(conn);
        say(fmt::format("pg_dump of {} tables into {}", b.table_checksums.size(), sr.host(base).string()));
        migrations::dump_database(source.conninfo, host_partial / "database.dump", snapshot);
        conn.exec("COMMIT");
        fault::point("backup.after_dump");
        const auto st = sr.lstat(partial / "database.dump");
        if (!st) throw InstallError("pg_dump left no database.dump");
        b.size_bytes = static_cast<std::uint64_t>(st->st_size);
        b.sha256 = crypto::file_digest_hex("sha256", host_partial / "database.dump");
        sr.write_atomic(partial / "manifest.json", to_json(b).dump(2) + "\n", 0600, fs::Owner{0, 0});
        sr.rename(partial, base / b.id);
    } catch (...) {
        try {
            (void)sr.remove_all(partial);
        } catch (const std::exception& e) {
            log::warning("the partial backup {} could not be removed: {}", sr.host(partial).string(), e.what());
        }
        throw;
    }
    b.dir = sr.host(base / b.id);
    log::info("backup {} taken: {} bytes, sha256 {}, schema {}", b.id, b.size_bytes, b.sha256,
              b.schema_version.value_or("none"));
    return b;
}

BackupVerification verify_backup(const stdfs::path& root, const InstallerConfig& config, const Backup& backup,
                                 const std::function<void(const std::string&)>& on_step) {
    auto say = [&](const std::string& s) {
        if (on_step) on_step(s);
    };
    BackupVerification v;
    const fs::SystemRoot sr(root);
    const auto inside = backups_inside(config) / backup.id / "database.dump";
    say(fmt::format("checking the SHA-256 of backup {}", backup.id));
    const auto st = sr.lstat(inside);
    if (!st || !S_ISREG(st->st_mode)) {
        v.problems.push_back(fmt::format("its dump {} is missing", sr.host(inside).string()));
        return v;
    }
    const auto file = sr.checked_host(inside);
    const auto digest = crypto::file_digest_hex("sha256", file);
    if (digest != backup.sha256 || static_cast<std::uint64_t>(st->st_size) != backup.size_bytes) {
        v.problems.push_back(fmt::format("its dump {} is damaged: SHA-256 {} ({} bytes), but the manifest recorded {} "
                                         "({} bytes)",
                                         file.string(), digest, st->st_size, backup.sha256, backup.size_bytes));
        return v;
    }

    auto server = scratch_server(root, on_step);
    auto& admin = *server.admin;
    // Under the run lock, a scratch database left by a killed verify belongs to nobody.
    for (const auto& left : migrations::databases_with_prefix(admin, k_scratch_prefix)) {
        log::info("dropping the scratch database {} a killed verify left", left.name);
        migrations::drop_database(admin, left.name);
    }
    v.scratch_database = scratch_name(backup.id);
    say(fmt::format("restoring it into the scratch database {}", v.scratch_database));
    ScratchGuard guard(admin, v.scratch_database);
    try {
        migrations::restore_into_staging(server.admin_conninfo, server.conninfo_of(v.scratch_database),
                                         v.scratch_database, server.owner, file,
                                         fmt::format("leo-installer backup verify {}: scratch, dropped after", backup.id));
        fault::point("backup.verify_restored");
        say("comparing its tables and schema history with the manifest");
        auto conn = migrations::Connection::open(server.conninfo_of(v.scratch_database));
        const auto got = migrations::table_checksums(conn);
        v.tables_compared = got.size();
        if (const auto diff = rp_detail::checksum_differences(backup.table_checksums, got); !diff.empty())
            v.problems.push_back("it restores to contents that differ from the manifest in: " + diff);
        const auto state = migrations::read_schema_state(conn);
        if (history_lines(state) != backup.schema_history || state.schema_version != backup.schema_version)
            v.problems.push_back(fmt::format("its schema history restores as {} ({} migrations), but the manifest "
                                             "recorded {} ({} migrations)",
                                             state.schema_version.value_or("none"), state.applied.size(),
                                             backup.schema_version.value_or("none"), backup.schema_history.size()));
    } catch (const DatabaseError& e) {
        v.problems.push_back("it does not restore: " + std::string(e.what()));
    }
    guard.drop();
    v.ok = v.problems.empty();
    log::info("backup {} verified: {}", backup.id, v.ok ? "restores" : v.problems.front());
    return v;
}

} // namespace leo::installer
