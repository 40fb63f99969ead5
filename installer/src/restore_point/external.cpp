// Restore points of a broker on an external database shared by a cluster: package and
// configuration, and (for the broker that migrates the shared schema) a directory-format dump.
#include "internal.hpp"

#include "leo/common/clock.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/common/log.hpp"
#include "leo/installer/cluster.hpp"
#include "leo/installer/paths.hpp"
#include "leo/migrations/db_snapshot.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/rpm/transaction.hpp"

#include <fmt/format.h>

namespace leo::installer {
namespace stdfs = std::filesystem;
using namespace rp_detail;

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
    rp.id = clock::utc_now("%Y%m%dT%H%M%SZ");
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
        if (db.dump) {
            if (on_step)
                on_step(fmt::format("database part: pg_dump --format=directory --jobs={} of the shared database {} "
                                    "(not a template copy: the other brokers of the cluster keep their sessions on "
                                    "it, and this installer does not own that server)",
                                    db.jobs, db.endpoint));
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

RestoreOutcome restore_external(const stdfs::path& root, const RestorePoint& rp,
                                const std::function<void(const std::string&)>& on_step, const std::string& run,
                                std::chrono::seconds rpmdb_wait, const std::string* database_conninfo) {
    auto step = [&](const std::string& s) {
        log::info("restore {}: {}", rp.id, s);
        if (on_step) on_step(s);
    };
    RestoreOutcome out;
    step("verifying restore point " + rp.id);
    check_files(root, rp, false);
    const bool restore_database = database_conninfo != nullptr && rp.external_dump;
    if (restore_database) migrations::check_dump_readable_directory(rp.dir / "database.dir");

    step("keeping the current state as a restore point (the rollback can be rolled back)");
    ExternalDatabasePart left_db;
    left_db.conninfo = database_conninfo != nullptr ? *database_conninfo : std::string();
    left_db.endpoint = rp.external_endpoint;
    left_db.dump = restore_database;  // the shared database is put back: keep what it held
    if (database_conninfo != nullptr) {
        const auto left = create_external_restore_point(root, "state left by rollback " + run, {},
                                                        RestorePointKind::before_rollback, left_db, on_step, nullptr);
        out.left_restore_point = left.id;
    }
    fault::point("restore.left");
    out.saved_config = restore_package_and_config(root, rp, step, rpmdb_wait);
    fault::point("restore.database");
    if (restore_database) {
        step(fmt::format("restoring the shared database {} from the restore point's dump (one transaction): what "
                         "every broker of the cluster wrote since {} leaves it, and is kept in restore point {}",
                         rp.external_endpoint, rp.created, out.left_restore_point));
        const auto started = std::chrono::steady_clock::now();
        migrations::restore_database_directory(rp.dir / "database.dir", *database_conninfo);
        out.used_dump = true;
        log::info("restore {}: shared database restored in {:.2f} s", rp.id,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    } else {
        step(fmt::format("the shared database {} is left as it is (this restore point holds no dump of it)",
                         rp.external_endpoint));
    }
    return out;
}

} // namespace leo::installer
