// Restore points of a broker on an external database shared by a cluster: package and
// configuration, and (for the broker that migrates the shared schema) a directory-format dump.
#include "internal.hpp"

#include "leo/common/clock.hpp"
#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/common/log.hpp"
#include "leo/installer/cluster.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/migrations/db_copy.hpp"
#include "leo/migrations/db_snapshot.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/rpm/transaction.hpp"

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <set>
#include <thread>

namespace leo::installer {
namespace stdfs = std::filesystem;
using namespace rp_detail;

namespace rp_detail {

ExternalServer open_external_server(const std::string& conninfo, const std::string& dbname) {
    ExternalServer out;
    out.dbname = dbname;
    if (out.dbname.empty()) {
        auto conn = migrations::Connection::open(conninfo);
        out.dbname = conn.query("SELECT pg_catalog.current_database()").at(0, 0);
    }
    std::string errors;
    for (const char* maintenance : {"postgres", "template1"}) {
        try {
            out.admin.emplace(migrations::Connection::open(migrations::with_dbname(conninfo, maintenance)));
            out.admin_db = maintenance;
            return out;
        } catch (const DatabaseError& e) {
            errors += fmt::format("{}{}: {}", errors.empty() ? "" : "; ", maintenance, e.what());
        }
    }
    throw DatabaseError("cannot connect to a maintenance database of the external server (" + errors + ")");
}

std::string why_no_external_copy(const std::string& conninfo, std::optional<ExternalServer>& server) {
    try {
        auto conn = migrations::Connection::open(conninfo);
        const auto rows = conn.query(
            "SELECT r.rolname, (r.rolsuper OR r.rolcreatedb)::text, "
            "(r.rolsuper OR pg_catalog.pg_has_role(r.oid, d.datdba, 'USAGE'))::text, "
            "pg_catalog.pg_is_in_recovery()::text, pg_catalog.pg_get_userbyid(d.datdba) "
            "FROM pg_catalog.pg_roles r, pg_catalog.pg_database d "
            "WHERE r.rolname = current_user AND d.datname = pg_catalog.current_database()");
        if (rows.empty()) return "the role and the database could not be read from the catalogue";
        if (rows.at(0, 3) == "true") return "the server is a standby (in recovery)";
        if (rows.at(0, 1) != "true")
            return fmt::format("the role {} may not create databases (no CREATEDB)", rows.at(0, 0));
        if (rows.at(0, 2) != "true")
            return fmt::format("the role {} does not own the database (its owner is {}; a rollback renames it)",
                               rows.at(0, 0), rows.at(0, 4));
    } catch (const Error& e) {
        return describe(e);
    }
    try {
        server.emplace(open_external_server(conninfo));
    } catch (const Error& e) {
        return describe(e);
    }
    if (const auto clients = migrations::database_clients(*server->admin, server->dbname); !clients.empty())
        return fmt::format("other sessions use the shared database ({}): a copy needs every broker of the cluster "
                           "stopped",
                           migrations::describe_clients(clients));
    return "";
}

} // namespace rp_detail

RestorePoint create_external_restore_point(const stdfs::path& root, const std::string& reason,
                                           const InstallerConfig& config, RestorePointKind kind,
                                           const ExternalDatabasePart& db,
                                           const std::function<void(const std::string&)>& on_step,
                                           const std::function<void(const std::string&)>& on_warning) {
    const auto installed = rpm::query_installed(root, k_broker_package);
    if (installed.size() != 1)
        throw InstallError(fmt::format("cannot take a restore point: {} broker packages are installed in {} "
                                       "(expected exactly one)",
                                       installed.size(), root.string()));
    const fs::ScopedUmask private_files(077);
    RestorePoint rp;
    rp.kind = kind;
    rp.nevra = installed.front().nevra();
    rp.id = db.id.empty() ? clock::utc_now("%Y%m%dT%H%M%SZ") : db.id;
    rp.created = clock::utc_now("%Y-%m-%dT%H:%M:%SZ");
    rp.reason = reason;
    rp.sequence = next_sequence(root);
    rp.database_location = "external";
    rp.external_endpoint = db.endpoint;
    rp.dump_state = "none";
    rp.verification = "verified";
    const auto base = snapshots_dir(root, true);
    const fs::SystemRoot sr(root);
    for (int n = 2; sr.exists(snapshot_inside(rp.id)); ++n)
        rp.id = clock::utc_now("%Y%m%dT%H%M%SZ") + "-" + std::to_string(n);
    const auto partial_inside = snapshot_inside("." + rp.id + ".partial");
    sr.remove_all(partial_inside);
    sr.make_dirs(partial_inside, 0700, fs::Owner{0, 0});
    try {
        save_package_and_config(root, rp, base, partial_inside, config, on_warning);
        {
            auto conn = migrations::Connection::open(db.conninfo);
            rp.schema_version = migrations::read_schema_state(conn).schema_version;
        }
        // A template copy on the external server when this installer may own it for the
        // moment (every broker stopped, the role may create databases and owns this one);
        // a directory dump otherwise. The choice and its reason are printed.
        std::string why_dump = db.allow_copy ? "" : db.no_copy_reason;
        std::optional<ExternalServer> server;
        if (db.dump && db.allow_copy) why_dump = why_no_external_copy(db.conninfo, server);
        if (db.dump && why_dump.empty()) {
            rp.database_state = migrations::read_database_state(*server->admin, server->dbname);
            // With this broker's hash: brokers (or clusters) sharing one server never collide.
            rp.copy = DatabaseCopy{database_name_for(rp.id, kind) + "_" +
                                   crypto::digest_hex("sha256", member_id(root)).substr(0, 8)};
            if (on_step)
                on_step(fmt::format("database part: a template copy {} of the shared database {} on its server "
                                    "(no other session uses it, and its owner {} may create databases)",
                                    rp.copy->name, db.endpoint, rp.database_state->owner));
            if (db.before_copy) db.before_copy();  // our own sessions on it end (the lease's)
            const auto started = std::chrono::steady_clock::now();
            fault::point("restore_point.external_copy");
            migrations::DatabaseInfo info;
            bool copied = false;
            // Another session may connect between the check and the copy: another broker of
            // the cluster polling for the lease (a session of milliseconds), or a client.
            // The copy is tried again after a short pause, then a dump is taken instead; any
            // other failure is an error.
            constexpr std::array<int, 3> k_pause_ms{0, 250, 750};
            for (size_t attempt = 0; attempt < k_pause_ms.size() && !copied; ++attempt) {
                std::this_thread::sleep_for(std::chrono::milliseconds(k_pause_ms.at(attempt)));
                try {
                    info = migrations::copy_database(
                        *server->admin, server->dbname, rp.copy->name,
                        fmt::format("leo-installer restore point {} of {} ({}): frozen, do not use", rp.id,
                                    member_id(root), reason));
                    copied = true;
                } catch (const migrations::DatabaseInUseError& e) {
                    log::info("restore point {}: template copy not possible yet: {}", rp.id, e.what());
                    if (attempt + 1 < k_pause_ms.size()) continue;
                    if (db.after_copy) db.after_copy();
                    why_dump = "other sessions connected while the copy was being made: " +
                               (e.clients().empty() ? std::string("sessions that have ended since")
                                                    : migrations::describe_clients(e.clients()));
                    log::warning("restore point {}: no template copy ({}); a directory dump instead", rp.id,
                                 why_dump);
                    rp.copy.reset();
                    rp.database_state.reset();
                } catch (...) {
                    if (db.after_copy) db.after_copy();
                    throw;
                }
            }
            if (copied) {
                if (db.after_copy) db.after_copy();
                rp.copy->oid = info.oid;
                rp.copy->size_bytes = info.size_bytes;
                fault::point("restore_point.external_copied");
                rp.dump_state = "pending";
                rp.verification = "pending";
                log::info("restore point {}: template copy {} of {} ({}) in {:.2f} s", rp.id, rp.copy->name, db.endpoint,
                          mib(info.size_bytes),
                          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
                try {
                    write_manifest(root, rp, partial_inside);
                    sr.rename(partial_inside, snapshot_inside(rp.id));
                } catch (...) {
                    try {
                        migrations::drop_database(*server->admin, rp.copy->name);
                    } catch (const std::exception&) {
                    }
                    throw;
                }
                rp.dir = base / rp.id;
                return rp;
            }
        }
        if (db.dump) {
            if (on_step)
                on_step(fmt::format("database part: pg_dump --format=directory --jobs={} of the shared database {} "
                                    "(not a template copy: {})",
                                    db.jobs, db.endpoint, why_dump));
            const auto started = std::chrono::steady_clock::now();
            // Without the cluster's lease and registry: a restore puts the broker's data back,
            // never an older lease token.
            migrations::dump_database_directory(db.conninfo, sr.host(partial_inside) / "database.dir", db.jobs,
                                                {k_cluster_schema});
            rp.external_dump = true;
            rp.dump_state = "complete";
            log::info("restore point {}: directory dump of {} in {:.2f} s", rp.id, db.endpoint,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
            fault::point("restore_point.external_dump");
        }
        write_manifest(root, rp, partial_inside);
        sr.rename(partial_inside, snapshot_inside(rp.id));
    } catch (...) {
        try {
            sr.remove_all(partial_inside);
        } catch (const std::exception&) {
        }
        throw;
    }
    rp.dir = base / rp.id;
    log::info("restore point {} taken ({}): {}; external database {}{}", rp.id, rp.nevra, reason, db.endpoint,
              rp.external_dump ? " (directory dump)" : " (not saved: another broker's restore point holds it)");
    return rp;
}

namespace rp_detail {

std::string external_conninfo_for(const stdfs::path& root, const RestorePoint& rp) {
    const auto config = load_database_config(root);
    if (config.mode != DatabaseMode::external || config.external.display() != rp.external_endpoint)
        throw InstallError(fmt::format("restore point {} holds a copy on the external database server of {}, which "
                                       "this broker no longer uses",
                                       rp.id, rp.external_endpoint));
    return external_conninfo(config);
}

std::string finish_external_restore_point(const stdfs::path& root, RestorePoint& rp,
                                          const std::function<void(const std::string&)>& on_step) {
    if (!rp.has_copy()) return "";
    if (rp.dump_state == "complete" && rp.verification != "pending") return "";
    const fs::ScopedUmask private_files(077);
    return record_finishing(root, rp, [&] {
        const auto conninfo = external_conninfo_for(root, rp);
        auto server = open_external_server(conninfo);
        const auto found = migrations::find_database(*server.admin, rp.copy->oid);
        if (!found) throw InstallError(fmt::format("its copy {} is gone from the server", rp.copy->name));
        const Thaw thaw(*server.admin, found->name);
        const auto copy_conninfo = migrations::with_dbname(conninfo, found->name);
        if (rp.verification == "pending") {
            auto conn = migrations::Connection::open(copy_conninfo);
            rp.table_checksums = migrations::table_checksums(conn, rp.checksum_method);
        }
        if (rp.dump_state != "complete") {
            if (on_step)
                on_step(fmt::format("dumping the copy {} of restore point {} off the server (directory format)",
                                    found->name, rp.id));
            const auto started = std::chrono::steady_clock::now();
            const fs::SystemRoot sr(root);
            sr.remove_all(snapshot_inside(rp.dir.filename().string()) / "database.dir");
            migrations::dump_database_directory(copy_conninfo, rp.dir / "database.dir", 2, {k_cluster_schema});
            rp.external_dump = true;
            rp.dump_state = "complete";
            log::info("restore point {}: directory dump of its copy {} in {:.2f} s", rp.id, found->name,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        }
    });
}

std::vector<migrations::DatabaseInfo> external_leftover_copies(const stdfs::path& root) {
    std::vector<migrations::DatabaseInfo> out;
    try {
        const auto config = load_database_config(root);
        if (config.mode != DatabaseMode::external) return out;
        auto server = open_external_server(external_conninfo(config), config.external.dbname);
        std::set<std::uint32_t> oids;
        std::set<std::string> names;
        for (const auto& rp : list_restore_points(root)) {
            if (!rp.copy || rp.database_location != "external") continue;
            if (rp.copy->oid != 0) oids.insert(rp.copy->oid);
            names.insert(rp.copy->name);
        }
        // The comment create_external_restore_point gives its copies.
        const std::string maker = fmt::format(" of {} (", member_id(root));
        for (const auto& d : migrations::databases_with_prefix(*server.admin, k_copy_prefix)) {
            if (oids.count(d.oid) != 0 || names.count(d.name) != 0 || d.name == server.dbname) continue;
            const auto mine = server.admin->query(
                "SELECT 1 FROM pg_catalog.pg_database WHERE oid = $1::oid AND "
                "pg_catalog.shobj_description(oid, 'pg_database') LIKE 'leo-installer restore point %' AND "
                "pg_catalog.strpos(pg_catalog.shobj_description(oid, 'pg_database'), $2) > 0",
                {std::to_string(d.oid), maker});
            if (!mine.empty()) out.push_back(d);
        }
    } catch (const std::exception& e) {
        log::warning("the external server could not be searched for restore-point copies left by a crash: {}",
                     describe(e));
    }
    return out;
}

} // namespace rp_detail

RestoreOutcome restore_external(const stdfs::path& root, const RestorePoint& rp_in,
                                const std::function<void(const std::string&)>& on_step, const std::string& run,
                                std::chrono::seconds rpmdb_wait, const ExternalRestore& ext) {
    const ExternalRestore* database = ext.restore_database ? &ext : nullptr;
    RestorePoint rp = rp_in;
    auto step = [&](const std::string& s) {
        log::info("restore {}: {}", rp.id, s);
        if (on_step) on_step(s);
    };
    RestoreOutcome out;
    step("verifying restore point " + rp.id);
    check_files(root, rp, false);
    // How the shared database goes back, decided before anything changes: the copy by
    // renames (nobody else on the database), else the directory dump, else a refusal.
    enum class Method { none, rename, dump } method = Method::none;
    std::optional<ExternalServer> server;
    std::optional<migrations::DatabaseInfo> copy;
    if (database != nullptr && (rp.copy || rp.external_dump)) {
        std::string why_not_copy = "it holds no copy";
        if (rp.copy && rp.copy->oid != 0) {
            server.emplace(open_external_server(database->conninfo, database->dbname));
            copy = migrations::find_database(*server->admin, rp.copy->oid);
            if (!copy) {
                why_not_copy = fmt::format("its copy {} is gone from the server", rp.copy->name);
            } else if (copy->name == server->dbname) {
                method = Method::rename;  // this very rollback renamed it already (run again after a crash)
            } else if (rp.copy->consumed) {
                why_not_copy = "its copy was used by an earlier rollback";
            } else if (const auto clients = migrations::database_clients(*server->admin, server->dbname);
                       !clients.empty()) {
                why_not_copy = fmt::format("other sessions use the shared database: {}",
                                           migrations::describe_clients(clients));
            } else {
                method = Method::rename;
            }
        }
        if (method == Method::none && copy && !rp.external_dump && copy->name != server->dbname &&
            !rp.copy->consumed) {
            // Sessions on the shared database, the copy not dumped yet: its dump now (the
            // copy is frozen: nobody else writes to it), then a restore that needs no rename.
            step(fmt::format("the copy cannot be renamed into place ({}): taking its directory dump first",
                             why_not_copy));
            server.reset();
            if (const auto problem = finish_external_restore_point(root, rp, on_step); !problem.empty())
                throw RefusedError(fmt::format("cannot put the shared database {} back to restore point {}: {}, and "
                                               "its copy could not be dumped: {}; nothing was changed",
                                               rp.external_endpoint, rp.id, why_not_copy, problem));
        }
        if (method == Method::none) {
            if (!rp.external_dump)
                throw RefusedError(fmt::format(
                    "cannot put the shared database {} back to restore point {}: {}, and its dump is {}; stop every "
                    "broker of the cluster and run again; nothing was changed",
                    rp.external_endpoint, rp.id, why_not_copy, rp.dump_state));
            migrations::check_dump_readable_directory(rp.dir / "database.dir");
            method = Method::dump;
            step(fmt::format("the shared database goes back from the restore point's directory dump ({})",
                             why_not_copy));
        }
    }

    step("keeping the current state as a restore point (the rollback can be rolled back)");
    ExternalDatabasePart left_db;
    left_db.conninfo = ext.conninfo;
    left_db.endpoint = rp.external_endpoint;
    left_db.dump = method == Method::dump;  // a rename keeps the live database itself
    left_db.no_copy_reason = "the state a rollback leaves";
    left_db.id = left_id_for(run);  // found again when this rollback runs a second time (recover)
    std::optional<RestorePoint> left;
    if (!ext.conninfo.empty()) {
        const fs::SystemRoot sr(root);
        if (sr.exists(snapshot_inside(left_db.id)))
            left = parse_manifest(sr.read(snapshot_inside(left_db.id) / "manifest.json"),
                                  snapshots_dir(root) / left_db.id);
        else
            left = create_external_restore_point(root, "state left by rollback " + run, {},
                                                 RestorePointKind::before_rollback, left_db, on_step, nullptr);
        out.left_restore_point = left->id;
    }
    fault::point("restore.left");
    {
        // librpm wants no other thread during its transaction (the lease's renewal waits).
        const auto paused = ext.pause_renewal ? ext.pause_renewal() : nullptr;
        out.saved_config = restore_package_and_config(root, rp, step, rpmdb_wait);
    }
    fault::point("restore.database");
    const auto started = std::chrono::steady_clock::now();
    if (method == Method::rename) {
        const std::string left_name = database_name_for(left->id, RestorePointKind::before_rollback);
        step(fmt::format("switching the shared database {} to the copy {} (renames; the database being left is kept "
                         "as {}): what every broker of the cluster wrote since {} leaves it, and is kept in restore "
                         "point {}",
                         rp.external_endpoint, rp.copy->name, left_name, rp.created, left->id));
        // The registry stays the cluster's present: read here, written into the copy after.
        std::optional<std::vector<ClusterMember>> members;
        if (copy->name != server->dbname) {
            try {
                auto conn = migrations::Connection::open(database->conninfo);
                members = cluster_members(conn);
            } catch (const std::exception& e) {
                log::warning("the cluster's registry could not be read before the renames: {}", describe(e));
            }
        }
        if (database->before_rename) database->before_rename();
        auto& admin = *server->admin;
        if (copy->name != server->dbname) {
            migrations::set_allow_connections(admin, copy->name, false);
            if (const auto live = migrations::find_database(admin, server->dbname)) {
                left->database_state = migrations::read_database_state(admin, server->dbname);
                migrations::rename_database(admin, server->dbname, left_name);
                migrations::set_allow_connections(admin, left_name, false);
                left->copy = DatabaseCopy{left_name, live->oid, live->size_bytes};
                left->dump_state = "pending";
                left->verification = "pending";
                write_manifest(root, *left, snapshot_inside(left->id));
            }
            fault::point("restore.switch");
            migrations::rename_database(admin, copy->name, server->dbname);
        }
        if (rp.database_state) {
            migrations::apply_database_state(admin, server->dbname, *rp.database_state);
        } else {
            migrations::set_allow_connections(admin, server->dbname, true);
        }
        if (database->after_rename) database->after_rename();
        if (members) {
            try {
                auto conn = migrations::Connection::open(database->conninfo);
                replace_cluster_members(conn, *members);
            } catch (const std::exception& e) {
                log::warning("the cluster's registry could not be written back after the renames: {}", describe(e));
            }
        }
        rp.copy->consumed = true;
        write_manifest(root, rp, snapshot_inside(rp.dir.filename().string()));
        out.used_dump = false;
    } else if (method == Method::dump) {
        step(fmt::format("restoring the shared database {} from the restore point's dump (one transaction): what "
                         "every broker of the cluster wrote since {} leaves it, and is kept in restore point {}",
                         rp.external_endpoint, rp.created, out.left_restore_point));
        migrations::restore_database_directory(rp.dir / "database.dir", database->conninfo);
        out.used_dump = true;
    } else {
        step(fmt::format("the shared database {} is left as it is ({})", rp.external_endpoint,
                         database == nullptr ? "this rollback does not put it back"
                                             : "this restore point holds no copy of it"));
    }
    out.shared_database = method != Method::none;
    if (method != Method::none)
        log::info("restore {}: shared database restored ({}) in {:.2f} s", rp.id,
                  method == Method::rename ? "renames" : "the directory dump",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return out;
}

} // namespace leo::installer
