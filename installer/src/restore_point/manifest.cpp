// manifest.json of a restore point (formats 1 and 2), listing and finding restore points,
// and the helpers the other parts share (internal.hpp).
#include "internal.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/installer/paths.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>

#include <sys/stat.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace rp_detail {

const std::vector<std::string> k_config_paths = {"/home/leo/etc", "/etc/leostream", "/etc/leo-installer"};

stdfs::path snapshots_dir(const stdfs::path& root, bool create) {
    const fs::SystemRoot sr(root);
    if (create) {
        sr.make_dirs(fs::SystemRoot::k_state_dir, 0700, fs::Owner{0, 0});
        sr.make_dirs(fs::SystemRoot::k_snapshots, 0700, fs::Owner{0, 0});
    }
    return sr.checked_host(fs::SystemRoot::k_snapshots);
}

stdfs::path snapshot_inside(const std::string& name) { return stdfs::path(fs::SystemRoot::k_snapshots) / name; }

std::string database_name_for(const std::string& id, RestorePointKind kind) {
    std::string name = kind == RestorePointKind::before_rollback ? k_left_prefix : k_copy_prefix;
    for (char c : id) name += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
    return name;
}

migrations::InternalDatabase running_database(const stdfs::path& root,
                                              const std::function<void(const std::string&)>& notice) {
    migrations::InternalDatabase db(root);
    if (db.status().state != migrations::DbState::running) db.start(notice);
    return db;
}

migrations::Connection admin_connection(migrations::InternalDatabase& db) {
    // A server that was just stopped (an immediate shutdown in the middle of a migration)
    // can still look running for a moment, or be in crash recovery: wait for it, start it
    // again when it has stopped, for at most 60 s.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (true) {
        try {
            return migrations::Connection::open(db.conninfo("postgres"));
        } catch (const DatabaseError&) {
            if (std::chrono::steady_clock::now() >= deadline) throw;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        if (db.status().state != migrations::DbState::running) db.start();
    }
}

void write_manifest(const stdfs::path& root, const RestorePoint& rp, const stdfs::path& dir_inside) {
    fs::SystemRoot(root).write_atomic(dir_inside / "manifest.json", to_json(rp).dump(2) + "\n", 0600);
}

std::string checksum_differences(const std::map<std::string, std::string>& want,
                                 const std::map<std::string, std::string>& got) {
    std::string diff;
    for (const auto& [t, sum] : want)
        if (auto it = got.find(t); it == got.end() || it->second != sum) diff += (diff.empty() ? "" : ", ") + t;
    for (const auto& [t, sum] : got)
        if (want.count(t) == 0) diff += (diff.empty() ? "" : ", ") + t;
    return diff;
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

std::uintmax_t tree_size(const fs::SystemRoot& sr, const stdfs::path& inside) {
    const auto st = sr.lstat(inside);
    if (!st) return 0;
    if (S_ISREG(st->st_mode)) return static_cast<std::uintmax_t>(st->st_size);
    if (!S_ISDIR(st->st_mode)) return 0;
    std::uintmax_t total = 0;
    std::error_code ec;
    // directory_options::none: links to directories are listed, not entered (the leo
    // account owns /home/leo/etc: a link there to / must not make root walk the host).
    for (auto it = stdfs::recursive_directory_iterator(sr.checked_host(inside), ec);
         !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec))
        if (it->symlink_status(ec).type() == stdfs::file_type::regular) total += it->file_size(ec);
    return total;
}

std::string mib(std::uintmax_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }

} // namespace rp_detail

using namespace rp_detail;

std::string to_string(RestorePointKind kind) {
    switch (kind) {
    case RestorePointKind::manual: return "manual";
    case RestorePointKind::before_upgrade: return "before-upgrade";
    case RestorePointKind::before_rollback: return "before-rollback";
    }
    return "manual";
}

std::string RestorePoint::state() const {
    if (verification.rfind("failed", 0) == 0) return "failed";
    if (!usable()) return copy && copy->consumed ? "consumed" : "unusable";
    if (copy && copy->consumed) return "consumed";  // usable through its dump
    if (verification == "pending" || dump_state == "pending") return "pending";
    return "verified";
}

namespace {

RestorePointKind kind_from(const std::string& s) {
    if (s == "manual") return RestorePointKind::manual;
    if (s == "before-upgrade") return RestorePointKind::before_upgrade;
    if (s == "before-rollback") return RestorePointKind::before_rollback;
    throw InstallError("unknown restore point kind \"" + s + "\"");
}

nlohmann::json state_to_json(const migrations::DatabaseState& st) {
    nlohmann::json acl = nullptr;
    if (st.acl) {
        acl = nlohmann::json::array();
        for (const auto& g : *st.acl)
            acl.push_back({{"grantee", g.grantee}, {"privilege", g.privilege}, {"grantable", g.grantable}});
    }
    nlohmann::json settings = nlohmann::json::array();
    for (const auto& s : st.settings) settings.push_back({{"role", s.role}, {"name", s.name}, {"value", s.value}});
    return {{"owner", st.owner},
            {"acl", acl},
            {"settings", settings},
            {"comment", st.comment ? nlohmann::json(*st.comment) : nlohmann::json(nullptr)},
            {"connection_limit", st.connection_limit},
            {"allow_connections", st.allow_connections}};
}

migrations::DatabaseState state_from_json(const nlohmann::json& j) {
    migrations::DatabaseState st;
    st.owner = j.at("owner").get<std::string>();
    if (!j.at("acl").is_null()) {
        st.acl.emplace();
        for (const auto& g : j.at("acl"))
            st.acl->push_back({g.at("grantee").get<std::string>(), g.at("privilege").get<std::string>(),
                               g.at("grantable").get<bool>()});
    }
    for (const auto& s : j.at("settings"))
        st.settings.push_back(
            {s.at("role").get<std::string>(), s.at("name").get<std::string>(), s.at("value").get<std::string>()});
    if (!j.at("comment").is_null()) st.comment = j.at("comment").get<std::string>();
    st.connection_limit = j.at("connection_limit").get<int>();
    st.allow_connections = j.at("allow_connections").get<bool>();
    return st;
}

RestorePoint from_json(const nlohmann::json& j, const stdfs::path& dir) {
    try {
        // Compared as JSON: get<int>() of 1e84 or 2^40 would be out of range (undefined behaviour).
        const auto& version = j.at("format_version");
        if (!version.is_number_integer() || (version != 1 && version != k_manifest_format_version))
            throw InstallError(fmt::format("{}: manifest format version {} is not supported (this leo-installer "
                                           "reads versions 1 and {})",
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
        if (!db.at("schema_version").is_null()) rp.schema_version = db.at("schema_version").get<std::string>();
        rp.table_checksums = db.at("tables").get<std::map<std::string, std::string>>();
        if (version == 1) {
            // Format 1: a dump taken with the restore point, checksums of the live database.
            rp.kind = rp.reason == "taken by snapshot create" ? RestorePointKind::manual
                                                               : RestorePointKind::before_upgrade;
            rp.database_sha256 = db.at("sha256").get<std::string>();
            rp.checksum_method = migrations::ChecksumMethod::sorted_rows;
        } else {
            rp.kind = kind_from(j.at("kind").get<std::string>());
            rp.sequence = j.at("sequence").get<std::uint64_t>();
            if (!db.at("copy").is_null()) {
                const auto& c = db.at("copy");
                rp.copy = DatabaseCopy{c.at("name").get<std::string>(), c.at("oid").get<std::uint32_t>(),
                                       c.at("size_bytes").get<std::uint64_t>(), c.at("consumed").get<bool>()};
            }
            rp.dump_state = db.at("dump").at("state").get<std::string>();
            rp.database_sha256 = db.at("dump").at("sha256").get<std::string>();
            rp.verification = db.at("verification").get<std::string>();
            const auto method = db.at("checksum_method").get<std::string>();
            if (method == "sorted-rows") rp.checksum_method = migrations::ChecksumMethod::sorted_rows;
            else if (method == "row-digest-sum") rp.checksum_method = migrations::ChecksumMethod::row_digest_sum;
            else throw InstallError(fmt::format("{}: unknown checksum method \"{}\"", (dir / "manifest.json").string(), method));
            if (!db.at("state").is_null()) rp.database_state = state_from_json(db.at("state"));
            if (db.contains("location")) {
                rp.database_location = db.at("location").get<std::string>();
                if (rp.database_location != "internal" && rp.database_location != "external")
                    throw InstallError(fmt::format("{}: unknown database location \"{}\"",
                                                   (dir / "manifest.json").string(), rp.database_location));
                rp.external_endpoint = db.value("endpoint", "");
                rp.external_dump = db.value("directory_dump", false);
            }
        }
        if (j.contains("vm_snapshot") && j["vm_snapshot"].is_object())
            rp.vm_snapshot_id = j["vm_snapshot"].value("id", "");
        rp.dir = dir;
        return rp;
    } catch (const nlohmann::json::exception& e) {
        throw InstallError(fmt::format("{}: damaged manifest ({})", (dir / "manifest.json").string(), e.what()));
    }
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
    nlohmann::json copy = nullptr;
    if (rp.copy)
        copy = {{"name", rp.copy->name},
                {"oid", rp.copy->oid},
                {"size_bytes", rp.copy->size_bytes},
                {"consumed", rp.copy->consumed}};
    return {{"format_version", k_manifest_format_version},
            {"id", rp.id},
            {"created", rp.created},
            {"sequence", rp.sequence},
            {"reason", rp.reason},
            {"kind", to_string(rp.kind)},
            {"package", {{"nevra", rp.nevra}, {"file", "package.rpm"}, {"sha256", rp.package_sha256}}},
            {"config", {{"file", "config.tar.gz"}, {"sha256", rp.config_sha256}, {"entries", rp.config_entries}}},
            {"database",
             {{"copy", copy},
              {"dump", {{"file", rp.database_location == "external" ? "database.dir" : "database.dump"},
                        {"method", rp.database_location == "external" ? "pg_dump --format=directory" : "pg_dump -Fc"},
                        {"state", rp.dump_state},
                        {"sha256", rp.database_sha256}}},
              {"schema_version", rp.schema_version ? nlohmann::json(*rp.schema_version) : nlohmann::json(nullptr)},
              {"tables", rp.table_checksums},
              {"checksum_method",
               rp.checksum_method == migrations::ChecksumMethod::sorted_rows ? "sorted-rows" : "row-digest-sum"},
              {"verification", rp.verification},
              {"state", rp.database_state ? state_to_json(*rp.database_state) : nlohmann::json(nullptr)},
              {"location", rp.database_location},
              {"endpoint", rp.external_endpoint},
              {"directory_dump", rp.external_dump}}},
            {"vm_snapshot", rp.vm_snapshot_id.empty() ? nlohmann::json(nullptr)
                                                      : nlohmann::json{{"id", rp.vm_snapshot_id}}}};
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
    std::sort(out.begin(), out.end(), [](const RestorePoint& a, const RestorePoint& b) {
        return a.sequence != b.sequence ? a.sequence < b.sequence : a.id < b.id;
    });
    return out;
}

std::uint64_t next_sequence(const stdfs::path& root) {
    std::uint64_t n = 0;
    for (const auto& rp : list_restore_points(root)) n = std::max(n, rp.sequence);
    return n + 1;
}

RestorePoint find_restore_point(const stdfs::path& root, const std::string& id) {
    auto all = list_restore_points(root);
    if (all.empty()) throw InstallError(fmt::format("there is no restore point in {}", root.string()));
    if (id.empty()) {
        // The newest one a rollback can use, taken before an upgrade or by hand: "roll back"
        // goes back, never forward again to the state a rollback (or a failed upgrade's
        // automatic one) left; such a before-rollback restore point is used when named.
        for (auto it = all.rbegin(); it != all.rend(); ++it)
            if (it->usable() && it->kind != RestorePointKind::before_rollback) return *it;
        for (auto it = all.rbegin(); it != all.rend(); ++it)
            if (it->usable()) return *it;
        return all.back();
    }
    for (auto& rp : all)
        if (rp.id == id) return rp;
    throw InstallError(fmt::format("there is no restore point {} in {}; {} shows them", id, root.string(),
                                   command_hint("snapshot list")));
}

} // namespace leo::installer
