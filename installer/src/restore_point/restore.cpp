// Rollback to a restore point: the state being left kept as a restore point of its own,
// the package, the configuration (changed files kept as .rpmsave), and the database by
// renames (or from the dump when the copy is gone). Every step can run again after a
// crash and continues where it stopped.
#include "internal.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/archive.hpp"
#include "leo/common/clock.hpp"
#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/log.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/trust.hpp"
#include "leo/migrations/db_snapshot.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/rpm/transaction.hpp"

#include <algorithm>
#include <chrono>

#include <sys/stat.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace leo::installer {
namespace stdfs = std::filesystem;
using namespace rp_detail;

void verify_restore_point(const RestorePoint& rp) {
    if (!rp.package_sha256.empty()) check_digest(rp.dir / "package.rpm", rp.package_sha256);
    check_digest(rp.dir / "config.tar.gz", rp.config_sha256);
    (void)archive::list_entries(rp.dir / "config.tar.gz");
    if (rp.database_location == "external") {
        if (rp.external_dump) migrations::check_dump_readable_directory(rp.dir / "database.dir");
        return;
    }
    if (rp.dump_state == "complete") check_digest(rp.dir / "database.dump", rp.database_sha256);
}

namespace {

/// The state the rollback leaves, as a restore point: package (when kept), configuration,
/// and, once the rollback renames it, the live database. Taken before anything changes;
/// found again when the rollback runs a second time.
RestorePoint keep_state_being_left(const stdfs::path& root, const RestorePoint& target, const std::string& run,
                                   migrations::Connection& admin, const migrations::InternalDatabase& db) {
    const fs::ScopedUmask private_files(077);
    const std::string id = left_id_for(run);
    const fs::SystemRoot sr(root);
    const auto base = snapshots_dir(root, true);
    if (sr.exists(snapshot_inside(id)))
        return parse_manifest(sr.read(snapshot_inside(id) / "manifest.json"), base / id);
    RestorePoint left;
    left.id = id;
    left.kind = RestorePointKind::before_rollback;
    left.created = clock::utc_now("%Y-%m-%dT%H:%M:%SZ");
    left.sequence = next_sequence(root);
    const auto installed = rpm::query_installed(root, k_broker_package);
    left.nevra = installed.size() == 1 ? installed.front().nevra() : "";
    left.reason = fmt::format("left by the rollback to {} ({}){}", target.id, target.nevra,
                              left.nevra.empty() ? "" : "; was " + left.nevra);
    const auto partial_inside = snapshot_inside("." + id + ".partial");
    const auto partial = base / ("." + id + ".partial");
    sr.remove_all(partial_inside);
    sr.make_dirs(partial_inside, 0700, fs::Owner{0, 0});
    try {
        const auto kept = stdfs::path(k_packages_dir) / (left.nevra + ".rpm");
        if (!left.nevra.empty() && sr.exists(kept)) {
            sr.copy(kept, partial_inside / "package.rpm", 0600);
            left.package_sha256 = crypto::file_digest_hex("sha256", partial / "package.rpm");
        }
        left.config_entries = archive::create_tar_gz(root, k_config_paths, partial / "config.tar.gz");
        left.config_sha256 = crypto::file_digest_hex("sha256", partial / "config.tar.gz");
        if (migrations::find_database(admin, "leo")) {
            {
                auto conn = migrations::Connection::open(db.conninfo());
                left.schema_version = migrations::read_schema_state(conn).schema_version;
            }
            left.database_state = migrations::read_database_state(admin, "leo");
            left.copy = DatabaseCopy{database_name_for(id, RestorePointKind::before_rollback)};
        }
        left.dump_state = "pending";
        left.verification = "pending";
        write_manifest(root, left, partial_inside);
        sr.rename(partial_inside, snapshot_inside(id));
    } catch (...) {
        try {
            sr.remove_all(partial_inside);
        } catch (const std::exception&) {
        }
        throw;
    }
    left.dir = base / id;
    return left;
}


/// The live database renamed to `left_name` (frozen: it is a restore point's copy now),
/// when there is a live database.
void keep_live_as(migrations::Connection& admin, const std::string& left_name) {
    if (!migrations::find_database(admin, "leo")) return;
    if (migrations::find_database(admin, left_name))
        throw InstallError(fmt::format("cannot keep the live database as {}: a database of that name exists",
                                       left_name));
    migrations::rename_database(admin, "leo", left_name);
    migrations::set_allow_connections(admin, left_name, false);
}

/// The frozen copy renamed into place; the live database renamed to `left_name` first.
/// Continues a switch a crash interrupted (the copy found by its OID under any name).
void switch_to_copy(migrations::Connection& admin, const RestorePoint& rp, const std::string& left_name) {
    const auto copy = migrations::find_database(admin, rp.copy->oid);
    if (!copy) throw InstallError(fmt::format("the database copy {} of restore point {} is gone", rp.copy->name, rp.id));
    if (copy->name != "leo") {
        migrations::set_allow_connections(admin, copy->name, false);  // no session can slip in before the rename
        keep_live_as(admin, left_name);
        fault::point("restore.switch");
        migrations::rename_database(admin, copy->name, "leo");
    }
}

/// The dump restored into a staging database, proved equal to the recorded checksums, and
/// renamed into place; the live database renamed to `left_name` first.
void switch_to_dump(const migrations::InternalDatabase& db, migrations::Connection& admin, const RestorePoint& rp,
                    const std::string& left_name, const std::function<void(const std::string&)>& step) {
    const std::string staging = "leo_restore";
    const bool live = migrations::find_database(admin, "leo").has_value();
    if (!live && migrations::find_database(admin, staging)) {
        // A crash between the renames: the staging database was complete and proven.
        migrations::rename_database(admin, staging, "leo");
        return;
    }
    step("restoring the database from the dump (the copy of this restore point was used by an earlier rollback)");
    migrations::restore_into_staging(db.conninfo("postgres"), db.conninfo(staging), staging, "leo",
                                     rp.dir / "database.dump");
    if (!rp.table_checksums.empty()) {
        auto conn = migrations::Connection::open(db.conninfo(staging));
        if (const auto diff = checksum_differences(rp.table_checksums, migrations::table_checksums(conn, rp.checksum_method));
            !diff.empty())
            throw InstallError(fmt::format("the database restored from restore point {} differs from its manifest in: "
                                           "{}; the live database was not touched",
                                           rp.id, diff));
    }
    keep_live_as(admin, left_name);
    fault::point("restore.switch");
    migrations::rename_database(admin, staging, "leo");
}

} // namespace

namespace rp_detail {
std::string left_id_for(const std::string& run) {
    std::string id;
    for (char c : run)
        if (c != ':' && !(c == '-' && id.find('T') == std::string::npos)) id += c;
    return id + "-left";
}

/// Put the configuration archive back; a file that differs from the archived one is kept
/// beside it as FILE.rpmsave first (rpm's convention). Returns the host paths kept.
std::vector<std::string> restore_config(const stdfs::path& root, const RestorePoint& rp,
                                        const std::function<void(const std::string&)>& step) {
    const fs::SystemRoot sr(root);
    std::vector<std::string> saved;
    for (const auto& [name, content] : archive::regular_file_contents(rp.dir / "config.tar.gz", 64u << 20)) {
        const stdfs::path inside = stdfs::path("/") / name;
        const auto st = sr.lstat(inside);
        if (!st || !S_ISREG(st->st_mode)) continue;
        if (sr.read(inside) == content) continue;
        const auto save = stdfs::path(inside.string() + ".rpmsave");
        sr.remove(save);
        sr.rename(inside, save);
        saved.push_back(sr.host(inside).string());
        step(fmt::format("{} had changed since the restore point: kept as {}", sr.host(inside).string(),
                         sr.host(save).string()));
    }
    archive::extract(rp.dir / "config.tar.gz", root);
    return saved;
}

void check_files(const stdfs::path& root, const RestorePoint& rp, bool force) {
    if (rp.verification.rfind("failed", 0) == 0 && !force)
        throw RefusedError(fmt::format("restore point {} failed its verification ({}); nothing was changed: "
                                       "{} checks it again, and --force rolls back to it anyway",
                                       rp.id, rp.verification.substr(std::min<size_t>(8, rp.verification.size())),
                                       command_hint("snapshot verify " + rp.id)));
    if (rp.package_sha256.empty())
        throw InstallError(fmt::format("restore point {} cannot be rolled back to: the package {} was not kept; its "
                                       "database is kept for inspection only; nothing was changed",
                                       rp.id, rp.nevra.empty() ? std::string("(none installed)") : rp.nevra));
    verify_restore_point(rp);
    const auto pkg = rpm::read_package_info(rp.dir / "package.rpm");
    if (pkg.nevra() != rp.nevra)
        throw InstallError(fmt::format("restore point {}: package.rpm is {}, but the manifest says {}; nothing was "
                                       "changed",
                                       rp.id, pkg.nevra(), rp.nevra));
    // Only configuration, only files, directories and links, and no link out of the saved
    // directories (as they will be once extracted).
    try {
        archive::check_restorable(rp.dir / "config.tar.gz", root, k_config_paths);
    } catch (const RefusedError& e) {
        throw InstallError(fmt::format("restore point {} cannot be used: {}", rp.id, e.what()));
    }
}

void reinstall_package(const stdfs::path& root, const RestorePoint& rp,
                       const std::function<void(const std::string&)>& step, std::chrono::seconds rpmdb_wait) {
    step(fmt::format("reinstalling {} from the restore point", rp.nevra));
    fault::point("restore.rpm");
    rpm::TransactionOptions opts;
    opts.kind = rpm::TransactionKind::downgrade;
    opts.replace = true;
    opts.require_signature = false;  // the file is the one verified when it was installed (sha256 above)
    opts.lock_wait_limit = rpmdb_wait;
    opts.on_lock_wait = [&](const rpm::LockHolder& h) {  // the wait is bounded (lock_wait_limit)
        step(fmt::format("waiting up to {} s for another rpm transaction to finish (pid {}{})",
                         opts.lock_wait_limit.count(), h.pid, h.command.empty() ? "" : ": " + h.command));
    };
    try {
        rpm::run_transaction(root, rp.dir / "package.rpm", opts);
    } catch (const RpmError&) {
        std::throw_with_nested(InstallError(fmt::format("putting back {} failed", rp.nevra)));
    }
    {
        const fs::SystemRoot sr(root);
        const auto kept = stdfs::path(k_packages_dir) / (rp.nevra + ".rpm");
        if (!sr.exists(kept)) {
            sr.make_dirs(k_packages_dir, 0700, fs::Owner{0, 0});
            sr.copy(snapshot_inside(rp.dir.filename().string()) / "package.rpm", kept, 0600);
        }
    }

}

std::vector<std::string> restore_package_and_config(const stdfs::path& root, const RestorePoint& rp,
                                                    const std::function<void(const std::string&)>& step,
                                                    std::chrono::seconds rpmdb_wait) {
    reinstall_package(root, rp, step, rpmdb_wait);
    step("restoring the configuration");
    fault::point("restore.config");
    return restore_config(root, rp, step);
}
} // namespace rp_detail

bool check_rollback(const stdfs::path& root, const RestorePoint& rp, bool force, bool continuing, bool sessions) {
    check_files(root, rp, force);
    if (rp.database_location == "external") return false;  // no copy: the shared database is the cluster's
    // Asked only whether it is unusable for good (recover's plan, also a dry run): a
    // stopped server is not started; the manifest says whether the copy is there.
    migrations::InternalDatabase stopped(root);
    if (!sessions && stopped.status().state != migrations::DbState::running) {
        if (!rp.has_copy() && rp.dump_state != "complete")
            throw InstallError(fmt::format("restore point {} cannot be rolled back to: no database copy and its dump "
                                           "is {}",
                                           rp.id, rp.dump_state));
        return rp.has_copy();
    }
    auto db = running_database(root, nullptr);
    auto admin = admin_connection(db);
    const auto found = rp.copy && rp.copy->oid != 0 ? migrations::find_database(admin, rp.copy->oid) : std::nullopt;
    const bool use_copy = found && (!rp.copy->consumed || (continuing && found->name == "leo"));
    if (!use_copy) {
        if (rp.dump_state != "complete")
            throw InstallError(fmt::format("restore point {} cannot be rolled back to: its database copy {} and its "
                                           "dump is {}; nothing was changed",
                                           rp.id, rp.copy && rp.copy->consumed ? "was used by an earlier rollback"
                                                                                : "is gone",
                                           rp.dump_state));
        migrations::check_dump_readable(rp.dir / "database.dump");
    }
    if (const auto clients = migrations::database_clients(admin, "leo"); sessions && !clients.empty())
        throw RefusedError(fmt::format("cannot roll back: other sessions are connected to the broker database: {}; "
                                       "stop the broker's components (or those clients) and run again; nothing was "
                                       "changed",
                                       migrations::describe_clients(clients)));
    return use_copy;
}

RestoreOutcome restore(const stdfs::path& root, const RestorePoint& rp_in,
                       const std::function<void(const std::string&)>& on_step, const std::string& run, bool force,
                       std::chrono::seconds rpmdb_wait) {
    RestorePoint rp = rp_in;
    auto step = [&](const std::string& s) {
        log::info("restore {}: {}", rp.id, s);
        if (on_step) on_step(s);
    };
    if (rp.database_location == "external") return restore_external(root, rp, on_step, run, rpmdb_wait, {});
    RestoreOutcome out;
    // 1. Everything that can be checked is checked before anything changes.
    step("verifying restore point " + rp.id);
    // Running again after a crash (recover): the state being left was kept already, and a
    // copy this very rollback renamed into place counts as used by it, not by an earlier one.
    const bool continuing = fs::SystemRoot(root).exists(snapshot_inside(left_id_for(run)));
    const bool use_copy = check_rollback(root, rp, force, continuing);
    auto db = running_database(root, on_step);
    auto admin = admin_connection(db);

    // 2. The state being left, kept as a restore point of its own (before any change).
    step("keeping the current state as a restore point (the rollback can be rolled back)");
    RestorePoint left = keep_state_being_left(root, rp, run, admin, db);
    out.left_restore_point = left.id;
    fault::point("restore.left");

    // 3. The package: always one transaction with the kept package, also when its NEVRA
    // is installed (after an interrupted upgrade the files on disk may be the new version's).
    // 4. The configuration.
    out.saved_config = restore_package_and_config(root, rp, step, rpmdb_wait);

    // 5. The database.
    fault::point("restore.database");
    const auto db_start = std::chrono::steady_clock::now();
    const std::string left_name = left.copy ? left.copy->name : database_name_for(left.id, left.kind);
    if (use_copy) {
        step(fmt::format("switching to the database copy {} (a rename)", rp.copy->name));
        switch_to_copy(admin, rp, left_name);
    } else {
        out.used_dump = true;
        switch_to_dump(db, admin, rp, left_name, step);
    }
    if (rp.database_state) {
        migrations::apply_database_state(admin, "leo", *rp.database_state);
    } else {
        migrations::set_allow_connections(admin, "leo", true);
    }
    log::info("restore {}: database part ({}) in {:.2f} s", rp.id, use_copy ? "renames" : "the dump",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - db_start).count());

    // 6. The records: the copy is the live database now; the left database belongs to `left`.
    if (use_copy) {
        rp.copy->consumed = true;
        write_manifest(root, rp, snapshot_inside(rp.dir.filename().string()));
    }
    if (left.copy) {
        if (const auto info = migrations::find_database(admin, left.copy->name)) {
            left.copy->oid = info->oid;
            left.copy->size_bytes = info->size_bytes;
        } else {
            left.copy.reset();
        }
        write_manifest(root, left, snapshot_inside(left.id));
    }
    log::info("restored {} to {}; the state it left is restore point {}", root.string(), rp.id, left.id);
    return out;
}

void run_vm_restore_hook(const stdfs::path& root, const RestorePoint& rp, const InstallerConfig& config) {
    if (rp.vm_snapshot_id.empty())
        throw InstallError(fmt::format("restore point {} has no VM snapshot (no create_command ran when it was "
                                       "taken); roll back without --vm-snapshot",
                                       rp.id));
    if (config.vm_snapshot_restore_command.empty())
        throw InstallError("no [vm_snapshot] restore_command in installer.conf; configure the command that reverts "
                           "a VM snapshot, or revert snapshot " + rp.vm_snapshot_id + " by hand");
    auto r = run_hook(Hook{"[vm_snapshot] restore_command",
                           config.vm_snapshot_restore_command,
                           {{"LEO_ROOT", root.string()},
                            {"LEO_RESTORE_POINT_ID", rp.id},
                            {"LEO_RESTORE_POINT_DIR", rp.dir.string()},
                            {"LEO_VM_SNAPSHOT_ID", rp.vm_snapshot_id}},
                           config.vm_snapshot_timeout});
    if (r.timed_out)
        throw InstallError(fmt::format("the VM-snapshot restore hook timed out after {} s",
                                       config.vm_snapshot_timeout.count()));
    if (!r.ok())
        throw InstallError(fmt::format("the VM-snapshot restore hook `{}` exited {}: {}",
                                       config.vm_snapshot_restore_command, r.exit_code, subprocess::last_line(r.err)));
    log::info("VM snapshot {} of restore point {} restored by the hook", rp.vm_snapshot_id, rp.id);
}

} // namespace leo::installer
