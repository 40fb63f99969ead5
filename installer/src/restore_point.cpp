#include "leo/installer/restore_point.hpp"
#include "leo/installer/database_config.hpp"

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
#include "leo/common/system_root.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/db_snapshot.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/rpm/transaction.hpp"

#include <algorithm>
#include <ctime>

#include <sys/stat.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

const std::vector<std::string> k_config_paths = {"/home/leo/etc", "/etc/leostream", "/etc/leo-installer"};

/// ROOT/var/lib/leo-installer/snapshots, root-only (0700) and reached through no unsafe
/// link: everything below it is root's alone, so its host paths can go to pg_dump, tar and
/// digests. Created when `create` is set.
stdfs::path snapshots_dir(const stdfs::path& root, bool create = false) {
    const fs::SystemRoot sr(root);
    if (create) {
        sr.make_dirs(fs::SystemRoot::k_state_dir, 0700, fs::Owner{0, 0});
        sr.make_dirs(fs::SystemRoot::k_snapshots, 0700, fs::Owner{0, 0});
    }
    return sr.checked_host(fs::SystemRoot::k_snapshots);
}

stdfs::path snapshot_inside(const std::string& name) { return stdfs::path(fs::SystemRoot::k_snapshots) / name; }


RestorePoint from_json(const nlohmann::json& j, const stdfs::path& dir) {
    try {
        // Compared as JSON: get<int>() of 1e84 or 2^40 would be out of range (undefined behaviour).
        const auto& version = j.at("format_version");
        if (!version.is_number_integer() || version != k_manifest_format_version)
            throw InstallError(fmt::format("{}: manifest format version {} is not supported (this leo-installer "
                                           "reads version {})",
                                           (dir / "manifest.json").string(), version.dump(),
                                           k_manifest_format_version));
        RestorePoint rp;
        rp.id = j.at("id").get<std::string>();
        rp.created = j.at("created").get<std::string>();
        rp.reason = j.at("reason").get<std::string>();
        rp.nevra = j.at("package").at("nevra").get<std::string>();
        rp.package_sha256 = j.at("package").at("sha256").get<std::string>();
        rp.config_sha256 = j.at("config").at("sha256").get<std::string>();
        rp.config_entries = j.at("config").at("entries").get<std::vector<std::string>>();
        const auto& db = j.at("database");
        rp.database_sha256 = db.at("sha256").get<std::string>();
        if (!db.at("schema_version").is_null()) rp.schema_version = db.at("schema_version").get<std::string>();
        rp.table_checksums = db.at("tables").get<std::map<std::string, std::string>>();
        if (j.contains("vm_snapshot") && j["vm_snapshot"].is_object())
            rp.vm_snapshot_id = j["vm_snapshot"].value("id", "");
        rp.dir = dir;
        return rp;
    } catch (const nlohmann::json::exception& e) {
        throw InstallError(fmt::format("{}: damaged manifest ({})", (dir / "manifest.json").string(), e.what()));
    }
}

void check_digest(const stdfs::path& file, const std::string& expected) {
    std::error_code ec;
    if (!stdfs::is_regular_file(file, ec))
        throw InstallError(fmt::format("restore point part {} is missing", file.string()));
    const auto actual = crypto::file_digest_hex("sha256", file);
    if (actual != expected)
        throw InstallError(fmt::format("restore point part {} is damaged: sha256 {} but the manifest says {}",
                                       file.string(), actual, expected));
}

/// The internal database, started when it is not running; what the start did with stale
/// lock files goes to `notice` (the caller's output), not only to the log.
migrations::InternalDatabase running_database(const stdfs::path& root,
                                              const std::function<void(const std::string&)>& notice) {
    migrations::InternalDatabase db(root);
    if (db.status().state != migrations::DbState::running) db.start(notice);
    return db;
}

} // namespace

RestorePoint parse_manifest(const std::string& text, const stdfs::path& dir) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw InstallError(fmt::format("{}: damaged manifest ({})", (dir / "manifest.json").string(), e.what()));
    }
    return from_json(j, dir);
}

nlohmann::json to_json(const RestorePoint& rp) {
    return {{"format_version", k_manifest_format_version},
            {"id", rp.id},
            {"created", rp.created},
            {"reason", rp.reason},
            {"package", {{"nevra", rp.nevra}, {"file", "package.rpm"}, {"sha256", rp.package_sha256}}},
            {"config", {{"file", "config.tar.gz"}, {"sha256", rp.config_sha256}, {"entries", rp.config_entries}}},
            {"database",
             {{"file", "database.dump"},
              {"method", "pg_dump -Fc"},
              {"sha256", rp.database_sha256},
              {"schema_version", rp.schema_version ? nlohmann::json(*rp.schema_version) : nlohmann::json(nullptr)},
              {"tables", rp.table_checksums}}},
            {"vm_snapshot", rp.vm_snapshot_id.empty() ? nlohmann::json(nullptr)
                                                      : nlohmann::json{{"id", rp.vm_snapshot_id}}}};
}

namespace {
/// Bytes of the regular files at and below `inside`, never following a link (the leo
/// account owns /home/leo/etc: a link there to / must not make root walk the host).
std::uintmax_t tree_size(const fs::SystemRoot& sr, const stdfs::path& inside) {
    const auto st = sr.lstat(inside);
    if (!st) return 0;
    if (S_ISREG(st->st_mode)) return static_cast<std::uintmax_t>(st->st_size);
    if (!S_ISDIR(st->st_mode)) return 0;
    std::uintmax_t total = 0;
    std::error_code ec;
    // directory_options::none: links to directories are listed, not entered.
    for (auto it = stdfs::recursive_directory_iterator(sr.checked_host(inside), ec);
         !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec))
        if (it->symlink_status(ec).type() == stdfs::file_type::regular) total += it->file_size(ec);
    return total;
}

std::string mib(std::uintmax_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }
} // namespace

RestorePoint create_restore_point(const stdfs::path& root, const std::string& reason, const InstallerConfig& config,
                                  const std::function<void(const std::string&)>& on_warning) {
    require_internal_database(root, "a restore point");
    // A link out of the saved directories could not be put back: refused before anything is written.
    archive::check_links(root, k_config_paths);
    const fs::ScopedUmask private_files(077); // the dump, the archive and the manifest: root's alone
    const auto installed = rpm::query_installed(root, k_broker_package);
    if (installed.size() != 1)
        throw InstallError(fmt::format("cannot take a restore point: {} broker packages are installed in {} "
                                       "(expected exactly one)",
                                       installed.size(), root.string()));
    RestorePoint rp;
    rp.nevra = installed.front().nevra();
    const auto kept_inside = stdfs::path(k_packages_dir) / (rp.nevra + ".rpm");
    const auto kept_st = fs::SystemRoot(root).stat(kept_inside);
    const auto kept = fs::SystemRoot(root).host(kept_inside);
    if (!kept_st || !S_ISREG(kept_st->st_mode))
        throw InstallError(fmt::format("cannot take a restore point: the RPM of the installed {} is not kept in {}; "
                                       "copy that package file there",
                                       rp.nevra, kept.parent_path().string()));

    rp.id = clock::utc_now("%Y%m%dT%H%M%SZ");
    rp.created = clock::utc_now("%Y-%m-%dT%H:%M:%SZ");
    rp.reason = reason;
    const auto base = snapshots_dir(root, true);
    const fs::SystemRoot sr(root);

    // Free space first: a restore point that cannot be completed must not be started.
    {
        auto db = running_database(root, on_warning);
        auto conn = migrations::Connection::open(db.conninfo());
        const std::uintmax_t db_size = std::stoull(conn.query("SELECT pg_database_size('leo')").at(0, 0));
        std::uintmax_t config_size = 0;
        for (const auto& p : k_config_paths) config_size += tree_size(fs::SystemRoot(root), p);
        const std::uintmax_t need = (static_cast<std::uintmax_t>(kept_st->st_size) + db_size + config_size) * 11 / 10 + (64u << 20);
        const auto space = stdfs::space(base);
        if (space.available < need)
            throw InstallError(fmt::format("not enough free space for a restore point in {}: it needs about {} "
                                           "(package, database {}, configuration, +10% and 64 MiB), {} is "
                                           "available; free some space (old restore points: `leo-installer snapshot "
                                           "delete ID`)",
                                           base.string(), mib(need), mib(db_size), mib(space.available)));
    }
    for (int n = 2; sr.exists(snapshot_inside(rp.id)); ++n) rp.id = clock::utc_now("%Y%m%dT%H%M%SZ") + "-" + std::to_string(n);
    const auto partial_inside = snapshot_inside("." + rp.id + ".partial");
    const auto partial = base / ("." + rp.id + ".partial");
    sr.remove_all(partial_inside);
    sr.make_dirs(partial_inside, 0700, fs::Owner{0, 0});
    try {
        if (!config.vm_snapshot_create_command.empty()) {
            auto r = run_hook(Hook{"[vm_snapshot] create_command",
                                   config.vm_snapshot_create_command,
                                   {{"LEO_ROOT", root.string()},
                                    {"LEO_RESTORE_POINT_ID", rp.id},
                                    {"LEO_RESTORE_POINT_DIR", (base / rp.id).string()}},
                                   config.vm_snapshot_timeout});
            if (r.ok() && !subprocess::last_line(r.out).empty()) {
                rp.vm_snapshot_id = subprocess::last_line(r.out);
                log::info("VM-snapshot hook recorded snapshot {}", rp.vm_snapshot_id);
            } else {
                const std::string why =
                    r.timed_out ? fmt::format("timed out after {} s", config.vm_snapshot_timeout.count())
                    : r.ok()    ? std::string("printed no snapshot id")
                                : fmt::format("exited {}: {}", r.exit_code, subprocess::last_line(r.err));
                const std::string msg =
                    fmt::format("the VM-snapshot hook `{}` {}", config.vm_snapshot_create_command, why);
                if (!config.vm_snapshot_optional)
                    throw InstallError(msg + "; fix it, or mark it optional ([vm_snapshot] optional = yes in "
                                             "installer.conf)");
                log::warning("{} (optional: going on without a VM snapshot)", msg);
                if (on_warning) on_warning(msg + " (optional: going on without a VM snapshot)");
            }
        }
        sr.copy(stdfs::path(k_packages_dir) / (rp.nevra + ".rpm"), partial_inside / "package.rpm", 0600);
        fault::point("restore_point.package");
        rp.package_sha256 = crypto::file_digest_hex("sha256", partial / "package.rpm");

        rp.config_entries = archive::create_tar_gz(root, k_config_paths, partial / "config.tar.gz");
        (void)archive::list_entries(partial / "config.tar.gz");
        rp.config_sha256 = crypto::file_digest_hex("sha256", partial / "config.tar.gz");

        auto db = running_database(root, on_warning);
        {
            auto conn = migrations::Connection::open(db.conninfo());
            rp.schema_version = migrations::read_schema_state(conn).schema_version;
            rp.table_checksums = migrations::table_checksums(conn);
        }
        fault::point("restore_point.database");
        migrations::dump_database(db.conninfo(), partial / "database.dump");
        rp.database_sha256 = crypto::file_digest_hex("sha256", partial / "database.dump");

        sr.write_atomic(partial_inside / "manifest.json", to_json(rp).dump(2) + "\n", 0600);
        sr.rename(partial_inside, snapshot_inside(rp.id));
    } catch (...) {
        try {
            sr.remove_all(partial_inside);
        } catch (const std::exception&) {
        }
        throw;
    }
    rp.dir = base / rp.id;
    log::info("restore point {} taken ({}): {}", rp.id, rp.nevra, rp.reason);
    return rp;
}

std::vector<RestorePoint> list_restore_points(const stdfs::path& root) {
    std::vector<RestorePoint> out;
    const fs::SystemRoot sr(root);
    if (!sr.exists(fs::SystemRoot::k_snapshots)) return out;
    const auto base = snapshots_dir(root);
    for (const auto& name : sr.list(fs::SystemRoot::k_snapshots)) {
        if (name.empty() || name[0] == '.') continue;  // partial or hidden
        const auto manifest = base / name / "manifest.json";
        auto text = sr.try_read(snapshot_inside(name) / "manifest.json", std::size_t{64} << 20);
        if (!text) throw InstallError(fmt::format("{} cannot be read", manifest.string()));
        out.push_back(parse_manifest(*text, base / name));
    }
    std::sort(out.begin(), out.end(), [](const RestorePoint& a, const RestorePoint& b) { return a.id < b.id; });
    return out;
}

RestorePoint find_restore_point(const stdfs::path& root, const std::string& id) {
    auto all = list_restore_points(root);
    if (all.empty()) throw InstallError(fmt::format("there is no restore point in {}", root.string()));
    if (id.empty()) return all.back();
    for (auto& rp : all)
        if (rp.id == id) return rp;
    throw InstallError(fmt::format("there is no restore point {} in {}; `leo-installer snapshot list` shows them", id,
                                   root.string()));
}

void verify_restore_point(const RestorePoint& rp) {
    check_digest(rp.dir / "package.rpm", rp.package_sha256);
    check_digest(rp.dir / "config.tar.gz", rp.config_sha256);
    (void)archive::list_entries(rp.dir / "config.tar.gz");
    check_digest(rp.dir / "database.dump", rp.database_sha256);
}

void check_restore_point(const stdfs::path& root, const RestorePoint& rp) {
    verify_restore_point(rp);
    const auto pkg = rpm::read_package_info(rp.dir / "package.rpm");
    if (pkg.nevra() != rp.nevra)
        throw InstallError(fmt::format("restore point {}: package.rpm is {}, but the manifest says {}; nothing was "
                                       "changed",
                                       rp.id, pkg.nevra(), rp.nevra));
    try {
        archive::check_restorable(rp.dir / "config.tar.gz", root, k_config_paths);
    } catch (const RefusedError& e) {
        throw InstallError(fmt::format("restore point {} cannot be used: {}", rp.id, e.what()));
    }
    migrations::check_dump_readable(rp.dir / "database.dump");
}

void restore(const stdfs::path& root, const RestorePoint& rp, const std::function<void(const std::string&)>& on_step) {
    auto step = [&](const std::string& s) {
        log::info("restore {}: {}", rp.id, s);
        if (on_step) on_step(s);
    };
    // Everything that can be checked is checked before anything changes.
    step("verifying restore point " + rp.id);
    check_restore_point(root, rp);
    auto db = running_database(root, on_step);

    // The database first, into a staging database: the live one stays until the
    // restored copy is proven equal to the restore point.
    step("restoring the database");
    fault::point("restore.database");
    const std::string staging = "leo_restore";
    migrations::restore_into_staging(db.conninfo("postgres"), db.conninfo(staging), staging, "leo",
                                     rp.dir / "database.dump");
    {
        auto conn = migrations::Connection::open(db.conninfo(staging));
        const auto now = migrations::table_checksums(conn);
        if (now != rp.table_checksums) {
            std::string diff;
            for (const auto& [t, sum] : rp.table_checksums) {
                auto it = now.find(t);
                if (it == now.end() || it->second != sum) diff += (diff.empty() ? "" : ", ") + t;
            }
            for (const auto& [t, sum] : now)
                if (rp.table_checksums.count(t) == 0) diff += (diff.empty() ? "" : ", ") + t;
            throw InstallError(fmt::format("the database restored from restore point {} differs from its manifest in: "
                                           "{}; the live database was not touched",
                                           rp.id, diff));
        }
    }

    // Always one transaction with the kept package, also when its NEVRA is installed:
    // after an interrupted upgrade the files on disk may be the new version's.
    step(fmt::format("reinstalling {} from the restore point", rp.nevra));
    fault::point("restore.rpm");
    rpm::TransactionOptions opts;
    opts.kind = rpm::TransactionKind::downgrade;
    opts.replace = true;
    opts.require_signature = false;  // the file is the one verified when it was installed (sha256 above)
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

    step("restoring the configuration");
    fault::point("restore.config");
    archive::extract(rp.dir / "config.tar.gz", root);

    step("switching to the restored database");
    fault::point("restore.switch");
    migrations::replace_database(db.conninfo("postgres"), "leo", staging);
    log::info("restored {} to {}", root.string(), rp.id);
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

std::vector<std::string> prune_restore_points(const stdfs::path& root, int keep) {
    std::vector<std::string> deleted;
    auto all = list_restore_points(root);
    while (static_cast<int>(all.size()) > keep) {
        try {
            fs::SystemRoot(root).remove_all(snapshot_inside(all.front().id));
        } catch (const Error&) {
            break;
        }
        log::info("deleted restore point {} (keeping the newest {})", all.front().id, keep);
        deleted.push_back(all.front().id);
        all.erase(all.begin());
    }
    return deleted;
}

void delete_restore_point(const stdfs::path& root, const std::string& id) {
    const auto rp = find_restore_point(root, id);
    fs::SystemRoot(root).remove_all(snapshot_inside(rp.dir.filename().string()));
    log::info("deleted restore point {}", id);
}

} // namespace leo::installer
