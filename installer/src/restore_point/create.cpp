// Taking a restore point (a frozen template copy of the database), finishing it off the
// critical path (checksums and the dump of the copy), and checking it again on demand.
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
#include "leo/installer/database_config.hpp"
#include "leo/installer/kept_package.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/trust.hpp"
#include "leo/migrations/db_snapshot.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/rpm/transaction.hpp"

#include <chrono>
#include <map>

#include <sys/stat.h>

#include <fmt/format.h>

namespace leo::installer {
namespace stdfs = std::filesystem;
using namespace rp_detail;

namespace {

/// Free space per filesystem: everything that will be written on one device must fit on it
/// together (+10% and 64 MiB), as the database and the snapshots often share one.
class SpaceCheck {
public:
    void need(const stdfs::path& where, std::uintmax_t bytes, const std::string& what) {
        struct stat st {};
        if (::stat(where.c_str(), &st) != 0) throw system_error("cannot stat " + where.string(), errno);
        auto& e = m_by_device[st.st_dev];
        if (e.where.empty()) e.where = where;
        e.bytes += bytes;
        e.what += (e.what.empty() ? "" : ", ") + fmt::format("{} {}", what, mib(bytes));
    }
    void check() const {
        for (const auto& [dev, e] : m_by_device) {
            const std::uintmax_t need = e.bytes * 11 / 10 + (std::uintmax_t{64} << 20);
            const auto space = stdfs::space(e.where);
            if (space.available < need)
                throw InstallError(fmt::format(
                    "not enough free space for a restore point on the filesystem of {}: it needs about {} ({}, +10% "
                    "and 64 MiB), {} is available; free some space (old restore points: {}); nothing was "
                    "changed",
                    e.where.string(), mib(need), e.what, mib(space.available), command_hint("snapshot delete ID")));
        }
    }

private:
    struct Entry {
        stdfs::path where;
        std::uintmax_t bytes = 0;
        std::string what;
    };
    std::map<dev_t, Entry> m_by_device;
};

/// The VM-snapshot hook of installer.conf, when one is configured: records its snapshot id.
void run_vm_snapshot_hook(const stdfs::path& root, RestorePoint& rp, const stdfs::path& base,
                          const InstallerConfig& config, const std::function<void(const std::string&)>& on_warning) {
    if (config.vm_snapshot_create_command.empty()) return;
    auto r = run_hook(Hook{"[vm_snapshot] create_command",
                           config.vm_snapshot_create_command,
                           {{"LEO_ROOT", root.string()},
                            {"LEO_RESTORE_POINT_ID", rp.id},
                            {"LEO_RESTORE_POINT_DIR", (base / rp.id).string()}},
                           config.vm_snapshot_timeout});
    if (r.ok() && !subprocess::last_line(r.out).empty()) {
        rp.vm_snapshot_id = subprocess::last_line(r.out);
        log::info("VM-snapshot hook recorded snapshot {}", rp.vm_snapshot_id);
        return;
    }
    const std::string why = r.timed_out ? fmt::format("timed out after {} s", config.vm_snapshot_timeout.count())
                            : r.ok()    ? std::string("printed no snapshot id")
                                        : fmt::format("exited {}: {}", r.exit_code, subprocess::last_line(r.err));
    const std::string msg = fmt::format("the VM-snapshot hook `{}` {}", config.vm_snapshot_create_command, why);
    if (!config.vm_snapshot_optional)
        throw InstallError(msg + "; fix it, or mark it optional ([vm_snapshot] optional = yes in installer.conf)");
    log::warning("{} (optional: going on without a VM snapshot)", msg);
    if (on_warning) on_warning(msg + " (optional: going on without a VM snapshot)");
}

} // namespace

namespace rp_detail {
Thaw::Thaw(migrations::Connection& admin, std::string name) : m_admin(admin), m_name(std::move(name)) {
    migrations::set_allow_connections(m_admin, m_name, true);
}

Thaw::~Thaw() {
    try {
        migrations::set_allow_connections(m_admin, m_name, false);
    } catch (const std::exception& e) {
        log::warning("could not refuse connections to {} again: {}", m_name, e.what());
    }
}

std::string record_finishing(const stdfs::path& root, RestorePoint& rp, const std::function<void()>& work) {
    std::string problem;
    try {
        work();
        rp.verification = "verified";
    } catch (const std::exception& e) {
        problem = describe(e);
        if (rp.dump_state != "complete") rp.dump_state = "failed: " + problem;
        log::warning("restore point {}: {}", rp.id, problem);
    }
    write_manifest(root, rp, snapshot_inside(rp.dir.filename().string()));
    return problem;
}

void save_package_and_config(const stdfs::path& root, RestorePoint& rp, const stdfs::path& base,
                             const stdfs::path& partial_inside, const InstallerConfig& config,
                             const std::function<void(const std::string&)>& on_warning) {
    const fs::SystemRoot sr(root);
    const stdfs::path partial = sr.host(partial_inside);
    run_vm_snapshot_hook(root, rp, base, config, on_warning);
    sr.copy(stdfs::path(k_packages_dir) / (rp.nevra + ".rpm"), partial_inside / "package.rpm", 0600);
    fault::point("restore_point.package");
    rp.package_sha256 = crypto::file_digest_hex("sha256", partial / "package.rpm");

    rp.config_entries = archive::create_tar_gz(root, k_config_paths, partial / "config.tar.gz");
    (void)archive::list_entries(partial / "config.tar.gz");
    rp.config_sha256 = crypto::file_digest_hex("sha256", partial / "config.tar.gz");
}
} // namespace rp_detail

void check_configuration_saveable(const stdfs::path& root) { archive::check_links(root, k_config_paths); }

void precheck_restore_point(const stdfs::path& root, const std::function<void(const std::string&)>& on_warning,
                            bool check_sessions) {
    require_internal_database(root, "a restore point");
    // A link out of the saved directories could not be put back: refused before anything is written.
    archive::check_links(root, k_config_paths);
    const auto installed = rpm::query_installed(root, k_broker_package);
    if (installed.size() != 1)
        throw InstallError(fmt::format("cannot take a restore point: {} broker packages are installed in {} "
                                       "(expected exactly one)",
                                       installed.size(), root.string()));
    const fs::SystemRoot sr(root);
    // A broker installed by rpm -U has no kept RPM: one of that very build in a package
    // cache is kept now; otherwise the restore point cannot be taken.
    try {
        (void)keep_installed_package(root, installed.front());  // logged when it keeps one
    } catch (const InstallError& e) {
        throw InstallError(fmt::format("cannot take a restore point: {}", e.what()));
    }
    const auto kept_st = sr.stat(stdfs::path(k_packages_dir) / (installed.front().nevra() + ".rpm"));
    if (!kept_st) throw InstallError("cannot take a restore point: the kept RPM of the installed broker vanished");
    auto db = running_database(root, on_warning);
    auto admin = admin_connection(db);
    // A copy needs the broker database to itself: name who else uses it, end nobody.
    if (const auto clients = migrations::database_clients(admin, "leo"); check_sessions && !clients.empty())
        throw RefusedError(fmt::format("cannot take a restore point: other sessions are connected to the broker "
                                       "database: {}; stop the broker's components (or those clients) and run again; "
                                       "nothing was changed",
                                       migrations::describe_clients(clients)));
    // Free space: a restore point that cannot be completed must not be started.
    const auto live = migrations::find_database(admin, "leo");
    if (!live) throw InstallError("cannot take a restore point: the internal instance has no database leo");
    std::uintmax_t config_size = 0;
    for (const auto& p : k_config_paths) config_size += tree_size(sr, p);
    // The snapshots directory may not exist yet: its nearest existing parent is on the
    // same filesystem.
    const stdfs::path base = fs::nearest_existing_ancestor(sr.host(fs::SystemRoot::k_snapshots));
    SpaceCheck space;
    space.need(db.data_dir(), live->size_bytes, "the database copy");
    space.need(base, static_cast<std::uintmax_t>(kept_st->st_size) + config_size, "the package and the configuration");
    space.need(base, live->size_bytes, "its dump");
    space.check();
}

RestorePoint create_restore_point(const stdfs::path& root, const std::string& reason, const InstallerConfig& config,
                                  const std::function<void(const std::string&)>& on_warning, RestorePointKind kind) {
    precheck_restore_point(root, on_warning);
    const fs::ScopedUmask private_files(077);  // the dump, the archive and the manifest: root's alone
    RestorePoint rp;
    rp.kind = kind;
    rp.nevra = rpm::query_installed(root, k_broker_package).front().nevra();
    rp.id = clock::utc_now("%Y%m%dT%H%M%SZ");
    rp.created = clock::utc_now("%Y-%m-%dT%H:%M:%SZ");
    rp.reason = reason;
    rp.sequence = next_sequence(root);
    const auto base = snapshots_dir(root, true);
    const fs::SystemRoot sr(root);
    auto db = running_database(root, on_warning);
    auto admin = admin_connection(db);
    for (int n = 2; sr.exists(snapshot_inside(rp.id)); ++n)
        rp.id = clock::utc_now("%Y%m%dT%H%M%SZ") + "-" + std::to_string(n);
    const auto partial_inside = snapshot_inside("." + rp.id + ".partial");
    const auto partial = base / ("." + rp.id + ".partial");
    sr.remove_all(partial_inside);
    sr.make_dirs(partial_inside, 0700, fs::Owner{0, 0});
    bool copied = false;
    try {
        save_package_and_config(root, rp, base, partial_inside, config, on_warning);

        {
            auto conn = migrations::Connection::open(db.conninfo());
            rp.schema_version = migrations::read_schema_state(conn).schema_version;
        }  // closed: the copy needs the database to itself
        rp.database_state = migrations::read_database_state(admin, "leo");
        fault::point("restore_point.database");
        rp.copy = DatabaseCopy{database_name_for(rp.id, kind)};
        const auto copy_start = std::chrono::steady_clock::now();
        const auto info = migrations::copy_database(
            admin, "leo", rp.copy->name,
            fmt::format("leo-installer restore point {} ({}): frozen, do not use", rp.id, reason));
        copied = true;
        rp.copy->oid = info.oid;
        rp.copy->size_bytes = info.size_bytes;
        log::info("restore point {}: database copy {} ({}) in {:.2f} s", rp.id, rp.copy->name, mib(info.size_bytes),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - copy_start).count());
        fault::point("restore_point.copy");
        rp.dump_state = "pending";
        rp.verification = "pending";
        write_manifest(root, rp, partial_inside);
        sr.rename(partial_inside, snapshot_inside(rp.id));
    } catch (...) {
        try {
            sr.remove_all(partial_inside);
            if (copied) migrations::drop_database(admin, rp.copy->name);
        } catch (const std::exception&) {
        }
        throw;
    }
    rp.dir = base / rp.id;
    log::info("restore point {} taken ({}): {}; database copy {} ({})", rp.id, rp.nevra, reason, rp.copy->name,
              mib(rp.copy->size_bytes));
    return rp;
}

std::string finish_restore_point(const stdfs::path& root, RestorePoint& rp,
                                 const std::function<void(const std::string&)>& on_step) {
    if (rp.database_location == "external") return finish_external_restore_point(root, rp, on_step);
    if (!rp.has_copy()) return "";  // format 1, or consumed: nothing left to take from the copy
    if (rp.dump_state == "complete" && rp.verification != "pending") return "";
    const fs::ScopedUmask private_files(077);
    return record_finishing(root, rp, [&] {
        auto db = running_database(root, on_step);
        auto admin = admin_connection(db);
        const Thaw thaw(admin, rp.copy->name);
        if (rp.verification == "pending") {
            const auto start = std::chrono::steady_clock::now();
            auto conn = migrations::Connection::open(db.conninfo(rp.copy->name));
            rp.table_checksums = migrations::table_checksums(conn, rp.checksum_method);
            log::info("restore point {}: checksums of its copy in {:.2f} s", rp.id,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
        if (rp.dump_state != "complete") {
            if (on_step) on_step(fmt::format("dumping the database copy of restore point {} off the instance", rp.id));
            fault::point("restore_point.dump");
            const auto dump_start = std::chrono::steady_clock::now();
            migrations::dump_database(db.conninfo(rp.copy->name), rp.dir / "database.dump");
            log::info("restore point {}: dump of its copy in {:.2f} s", rp.id,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - dump_start).count());
            rp.database_sha256 = crypto::file_digest_hex("sha256", rp.dir / "database.dump");
            rp.dump_state = "complete";
        }
    });
}

std::string check_restore_point(const stdfs::path& root, RestorePoint& rp,
                                const std::function<void(const std::string&)>& on_step) {
    auto say = [&](const std::string& s) {
        if (on_step) on_step(s);
    };
    if (const auto problem = finish_restore_point(root, rp, on_step); !problem.empty())
        say("finishing it failed: " + problem);
    std::vector<std::string> failures;
    try {
        say("checking the digests of its files");
        verify_restore_point(rp);
    } catch (const Error& e) {
        failures.push_back(describe(e));
    }
    if (rp.database_location == "external") {
        // The shared database's part: the copy on its server (by OID) and its directory dump.
        if (rp.has_copy()) {
            try {
                auto server = open_external_server(external_conninfo_for(root, rp));
                if (!migrations::find_database(*server.admin, rp.copy->oid))
                    failures.push_back(fmt::format("its database copy {} (oid {}) is gone from the server",
                                                   rp.copy->name, rp.copy->oid));
            } catch (const Error& e) {
                failures.push_back(describe(e));
            }
        }
    } else try {
        auto db = running_database(root, on_step);
        auto admin = admin_connection(db);
        if (rp.has_copy()) {
            say(fmt::format("comparing the database copy {} with its checksums", rp.copy->name));
            const auto found = migrations::find_database(admin, rp.copy->oid);
            if (!found) {
                failures.push_back(fmt::format("its database copy {} (oid {}) is gone", rp.copy->name, rp.copy->oid));
            } else {
                const Thaw thaw(admin, found->name);
                auto conn = migrations::Connection::open(db.conninfo(found->name));
                if (const auto diff = checksum_differences(rp.table_checksums, migrations::table_checksums(conn, rp.checksum_method));
                    !diff.empty())
                    failures.push_back(fmt::format("the database copy {} differs from its checksums in: {}",
                                                   found->name, diff));
            }
        }
        if (rp.dump_state == "complete" && !rp.table_checksums.empty()) {
            say("restoring the dump into a scratch database and comparing it");
            const std::string scratch = "leo_rp_verify";
            migrations::restore_into_staging(db.conninfo("postgres"), db.conninfo(scratch), scratch, "leo",
                                             rp.dir / "database.dump");
            std::string diff;
            {
                auto conn = migrations::Connection::open(db.conninfo(scratch));
                diff = checksum_differences(rp.table_checksums, migrations::table_checksums(conn, rp.checksum_method));
            }
            migrations::drop_database(admin, scratch);
            if (!diff.empty()) failures.push_back("the dump restores to different contents in: " + diff);
        }
    } catch (const Error& e) {
        failures.push_back(describe(e));
    }
    std::string joined;
    for (const auto& f : failures) joined += (joined.empty() ? "" : "; ") + f;
    rp.verification = failures.empty() ? "verified" : "failed: " + joined;
    write_manifest(root, rp, snapshot_inside(rp.dir.filename().string()));
    log::info("restore point {} checked: {}", rp.id, rp.verification);
    return rp.verification;
}

} // namespace leo::installer
