// Backups on disk: the manifest, the listing, retention and deletion (backup.hpp).
// Taking and verifying a backup (the database part) is in backup_database.cpp.
#include "leo/installer/backup.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/system_root.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {
constexpr std::size_t k_manifest_limit = std::size_t{64} << 20;

bool is_partial(const std::string& name) {
    return name.size() > 9 && name[0] == '.' && name.ends_with(".partial");
}
/// (time, N) of an id "TIME" or "TIME-N" (N = 1 for the first of a second).
std::pair<std::string, long> age_key(const std::string& id) {
    const auto dash = id.rfind('-');
    if (dash == std::string::npos) return {id, 1};
    try {
        return {id.substr(0, dash), std::stol(id.substr(dash + 1))};
    } catch (const std::exception&) {
        return {id, 1};
    }
}
} // namespace

nlohmann::json to_json(const Backup& b) {
    nlohmann::json j{{"format", k_backup_manifest_format},
                     {"id", b.id},
                     {"created", b.created},
                     {"broker", b.broker_nevra},
                     {"schema_history", b.schema_history},
                     {"database", {{"location", b.database_location}, {"name", b.database},
                                   {"server_version", b.server_version}}},
                     {"dump", {{"file", "database.dump"}, {"method", "pg_dump --format=custom"},
                               {"size_bytes", b.size_bytes}, {"sha256", b.sha256}}},
                     {"tables", b.table_checksums}};
    j["schema_version"] = b.schema_version ? nlohmann::json(*b.schema_version) : nlohmann::json(nullptr);
    j["schema_broker_version"] =
        b.schema_broker_version ? nlohmann::json(*b.schema_broker_version) : nlohmann::json(nullptr);
    return j;
}

Backup parse_backup_manifest(const std::string& text, const stdfs::path& dir) {
    const std::string where = (dir / "manifest.json").string();
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw InstallError(fmt::format("{} is not JSON: {}", where, e.what()));
    }
    try {
        if (!j.is_object() || !j.contains("format"))
            throw InstallError(fmt::format("{} has no format version", where));
        const int format = j.at("format").get<int>();
        if (format != k_backup_manifest_format)
            throw InstallError(fmt::format("{} has format {}; this leo-installer reads format {}", where, format,
                                           k_backup_manifest_format));
        Backup b;
        b.id = j.at("id").get<std::string>();
        b.created = j.at("created").get<std::string>();
        b.broker_nevra = j.at("broker").get<std::string>();
        if (!j.at("schema_version").is_null()) b.schema_version = j.at("schema_version").get<std::string>();
        if (!j.at("schema_broker_version").is_null())
            b.schema_broker_version = j.at("schema_broker_version").get<std::string>();
        b.schema_history = j.at("schema_history").get<std::vector<std::string>>();
        const auto& db = j.at("database");
        b.database_location = db.at("location").get<std::string>();
        b.database = db.at("name").get<std::string>();
        b.server_version = db.at("server_version").get<std::string>();
        const auto& dump = j.at("dump");
        b.size_bytes = dump.at("size_bytes").get<std::uint64_t>();
        b.sha256 = dump.at("sha256").get<std::string>();
        b.table_checksums = j.at("tables").get<std::map<std::string, std::string>>();
        if (b.database_location != "internal" && b.database_location != "external")
            throw InstallError(fmt::format("{}: database location '{}' is neither internal nor external", where,
                                           b.database_location));
        if (b.id != dir.filename().string())
            throw InstallError(fmt::format("{} names backup {}, not its directory's", where, b.id));
        b.dir = dir;
        return b;
    } catch (const nlohmann::json::exception& e) {
        throw InstallError(fmt::format("{}: a field is missing or mistyped: {}", where, e.what()));
    }
}

stdfs::path backups_inside(const InstallerConfig& config) {
    if (!config.backup_directory.empty()) return config.backup_directory;
    return stdfs::path(fs::SystemRoot::k_state_dir) / "backups";
}

BackupListing list_backups(const stdfs::path& root, const InstallerConfig& config) {
    const fs::SystemRoot sr(root);
    const auto inside = backups_inside(config);
    BackupListing out;
    out.dir = sr.host(inside);
    for (const auto& name : sr.list(inside)) {
        if (is_partial(name)) {
            out.partial.push_back(name);
            continue;
        }
        if (name.empty() || name[0] == '.') continue;  // a temporary file of write_atomic
        try {
            const auto text = sr.try_read(inside / name / "manifest.json", k_manifest_limit);
            if (!text) {
                out.broken.push_back(name + ": it has no manifest.json");
                continue;
            }
            out.backups.push_back(parse_backup_manifest(*text, out.dir / name));
        } catch (const Error& e) {
            out.broken.push_back(fmt::format("{}: {}", name, e.what()));
        }
    }
    // Ids are UTC times (%Y%m%dT%H%M%SZ, "-N" within a second): they sort by age.
    std::sort(out.backups.begin(), out.backups.end(),
              [](const Backup& a, const Backup& b) { return age_key(a.id) < age_key(b.id); });
    return out;
}

Backup find_backup(const BackupListing& listing, const std::string& id) {
    if (listing.backups.empty())
        throw UsageError(fmt::format("there is no backup in {}; `leo-installer backup create` takes one",
                                     listing.dir.string()));
    if (id.empty()) return listing.backups.back();
    for (const auto& b : listing.backups)
        if (b.id == id) return b;
    throw UsageError(fmt::format("there is no backup '{}' in {}; `leo-installer backup list` shows them", id,
                                 listing.dir.string()));
}

std::vector<Backup> backups_to_prune(const BackupListing& listing, int keep) {
    if (keep < 1) throw UsageError(fmt::format("keep = {}: at least one backup is always kept", keep));
    const auto n = listing.backups.size();
    if (n <= static_cast<std::size_t>(keep)) return {};
    return {listing.backups.begin(), listing.backups.begin() + static_cast<std::ptrdiff_t>(n - keep)};
}

void delete_backup(const stdfs::path& root, const InstallerConfig& config, const std::string& id) {
    if (id.empty() || id[0] == '.' || id.find('/') != std::string::npos)
        throw UsageError(fmt::format("'{}' is not a backup id", id));
    const fs::SystemRoot sr(root);
    const auto inside = backups_inside(config) / id;
    // Renamed aside first: a deletion killed half-way leaves a partial directory, never a
    // listed backup with files missing.
    const auto aside = backups_inside(config) / ("." + id + ".deleting.partial");
    sr.rename(inside, aside);
    (void)sr.remove_all(aside);
    log::info("deleted backup {}", id);
}

std::vector<std::string> remove_partial_backups(const stdfs::path& root, const InstallerConfig& config) {
    const fs::SystemRoot sr(root);
    std::vector<std::string> removed;
    for (const auto& name : sr.list(backups_inside(config))) {
        if (!is_partial(name)) continue;
        (void)sr.remove_all(backups_inside(config) / name);
        log::info("removed the partial backup directory {}", name);
        removed.push_back(name);
    }
    return removed;
}

} // namespace leo::installer
