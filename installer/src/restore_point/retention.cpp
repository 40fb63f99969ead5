// Deleting restore points (with their database copies), retention, and what interrupted
// runs left behind.
#include "internal.hpp"

#include "leo/installer/database_config.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"

#include <algorithm>
#include <set>

#include <fmt/ranges.h>

#include <fmt/format.h>

namespace leo::installer {
namespace stdfs = std::filesystem;
using namespace rp_detail;

namespace {

/// Drop the copy of `rp` when it is still its copy: not consumed (a copy a rollback renamed
/// into place is the live database `live` now), and the database of its OID still bears the
/// copy's name (renames keep OIDs: the OID of a consumed copy can later belong to another
/// restore point's copy, the live database renamed away by a second rollback).
void drop_copy(migrations::Connection& admin, const RestorePoint& rp, const std::string& live) {
    if (!rp.copy || rp.copy->consumed || rp.copy->name.empty() || rp.copy->name == live) return;
    if (rp.copy->oid == 0) {
        // Recorded before the copy was made (a crash in between): only a database of that
        // name, which no other restore point can bear (names carry the restore point's id).
        migrations::drop_database(admin, rp.copy->name);
        return;
    }
    const auto found = migrations::find_database(admin, rp.copy->oid);
    if (!found || found->name != rp.copy->name) return;
    migrations::drop_database(admin, found->name);
    log::info("dropped the database copy {} of restore point {}", found->name, rp.id);
}

/// A session to drop internal copies with, when the instance runs or can be started;
/// nullopt when the restore points have no internal copies to drop.
std::optional<migrations::Connection> admin_for(const stdfs::path& root, const std::vector<RestorePoint>& points) {
    const bool any = std::any_of(points.begin(), points.end(), [](const RestorePoint& rp) {
        return rp.copy.has_value() && rp.database_location != "external";
    });
    if (!any) return std::nullopt;
    auto db = running_database(root, nullptr);
    return admin_connection(db);
}

void remove_restore_point(const stdfs::path& root, std::optional<migrations::Connection>& admin,
                          const RestorePoint& rp) {
    if (rp.database_location == "external") {
        // Its copy is on the external server (of the database the broker still uses:
        // otherwise the restore point is kept, since its copy cannot be dropped).
        if (rp.copy && rp.copy->oid != 0) {
            auto server = open_external_server(external_conninfo_for(root, rp));
            drop_copy(*server.admin, rp, server.dbname);
        }
    } else if (admin) {
        drop_copy(*admin, rp, "leo");
    }
    fs::SystemRoot(root).remove_all(snapshot_inside(rp.dir.filename().string()));
}

} // namespace

std::vector<std::string> prune_restore_points(const stdfs::path& root, int keep) {
    const auto all = list_restore_points(root);
    std::vector<const RestorePoint*> automatic;
    for (const auto& rp : all)
        if (rp.kind != RestorePointKind::manual) automatic.push_back(&rp);
    if (static_cast<int>(automatic.size()) <= keep) return {};
    // Order of deletion: the unusable first (a copy used by a rollback, no dump), then
    // older duplicates of a version that has a newer one, then the oldest.
    auto rank = [&](const RestorePoint* rp) {
        if (!rp->usable()) return 0;
        const bool newer_same = std::any_of(automatic.begin(), automatic.end(), [&](const RestorePoint* o) {
            return (o->sequence != rp->sequence ? o->sequence > rp->sequence : o->id > rp->id) &&
                   o->nevra == rp->nevra && o->usable();
        });
        return newer_same ? 1 : 2;
    };
    std::vector<const RestorePoint*> order = automatic;
    std::stable_sort(order.begin(), order.end(),
                     [&](const RestorePoint* a, const RestorePoint* b) { return rank(a) < rank(b); });
    const size_t excess = automatic.size() - static_cast<size_t>(std::max(keep, 0));
    order.resize(excess);
    std::vector<RestorePoint> doomed;
    for (const auto* rp : order) doomed.push_back(*rp);
    auto admin = admin_for(root, doomed);
    std::vector<std::string> deleted;
    for (const auto& rp : doomed) {
        try {
            remove_restore_point(root, admin, rp);
        } catch (const Error& e) {
            log::warning("retention: cannot delete restore point {}: {}", rp.id, e.what());
            continue;
        }
        deleted.push_back(rp.id);
    }
    if (!deleted.empty())
        log::info("retention (keep = {} automatic restore points; manual ones are never deleted): deleted {}", keep,
                  fmt::format("{}", fmt::join(deleted, ", ")));
    return deleted;
}

void delete_restore_point(const stdfs::path& root, const std::string& id) {
    const auto rp = find_restore_point(root, id);
    if (rp.id != id) throw InstallError(fmt::format("there is no restore point {} in {}", id, root.string()));
    auto admin = admin_for(root, {rp});
    remove_restore_point(root, admin, rp);
    log::info("deleted restore point {}", id);
}

Leftovers find_leftovers(const stdfs::path& root) {
    Leftovers out;
    const fs::SystemRoot sr(root);
    if (sr.exists(fs::SystemRoot::k_snapshots))
        for (const auto& name : sr.list(fs::SystemRoot::k_snapshots))
            if (name.rfind(".", 0) == 0) out.partial_dirs.push_back(name);
    out.external_databases = external_leftover_copies(root);
    migrations::InternalDatabase db(root);
    if (db.status().state != migrations::DbState::running) return out;
    auto admin = admin_connection(db);
    std::set<std::uint32_t> oids;
    std::set<std::string> names;
    for (const auto& rp : list_restore_points(root)) {
        if (!rp.copy) continue;
        if (rp.copy->oid != 0) oids.insert(rp.copy->oid);
        names.insert(rp.copy->name);
        // A run killed while it dumped a copy left that copy open to connections.
        if (!rp.has_copy()) continue;
        const auto copy = migrations::find_database(admin, rp.copy->oid);
        if (copy && copy->name != "leo" &&
            admin.query("SELECT datallowconn FROM pg_catalog.pg_database WHERE oid = $1::oid",
                        {std::to_string(rp.copy->oid)})
                    .at(0, 0) == "t")
            out.thawed.push_back(copy->name);
    }
    for (const char* prefix : {k_copy_prefix, k_left_prefix})
        for (const auto& d : migrations::databases_with_prefix(admin, prefix))
            if (oids.count(d.oid) == 0 && names.count(d.name) == 0) out.databases.push_back(d);
    return out;
}

std::vector<std::string> remove_leftovers(const stdfs::path& root) {
    std::vector<std::string> done;
    const auto found = find_leftovers(root);
    const fs::SystemRoot sr(root);
    if (!found.thawed.empty()) {
        migrations::InternalDatabase db(root);
        auto admin = admin_connection(db);
        for (const auto& name : found.thawed) {
            migrations::set_allow_connections(admin, name, false);
            done.push_back(fmt::format("the database copy {} refuses connections again", name));
        }
    }
    for (const auto& name : found.partial_dirs) {
        sr.remove_all(snapshot_inside(name));
        done.push_back(fmt::format("removed the unfinished restore point directory {}", name));
    }
    if (!found.databases.empty()) {
        migrations::InternalDatabase db(root);
        auto admin = admin_connection(db);
        for (const auto& d : found.databases) {
            migrations::drop_database(admin, d.name);
            done.push_back(fmt::format("dropped the database {} ({}), a copy no restore point names", d.name,
                                       mib(d.size_bytes)));
        }
    }
    if (!found.external_databases.empty()) {
        auto server = open_external_server(external_conninfo(load_database_config(root)));
        for (const auto& d : found.external_databases) {
            migrations::drop_database(*server.admin, d.name);
            done.push_back(fmt::format("dropped the database {} ({}) on the external server, a copy of this broker "
                                       "no restore point names",
                                       d.name, mib(d.size_bytes)));
        }
    }
    for (const auto& line : done) log::info("{}", line);
    return done;
}

} // namespace leo::installer
