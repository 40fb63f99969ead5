// The metadata cache (entries.json: a checksummed record of the entries kept) and `clean`.
#include "cache.hpp"
#include "leo/repo/url.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/repo/cache.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

namespace leo::repo::detail {
namespace {

constexpr std::string_view k_header = "leo-installer-metadata-cache 1 sha256=";
constexpr std::size_t k_cache_read_limit = std::size_t{16} << 20;

nlohmann::json to_json(const PackageEntry& e) {
    return {{"name", e.name},
            {"arch", e.arch},
            {"epoch", e.epoch},
            {"version", e.version},
            {"release", e.release},
            {"checksum_type", e.checksum_type},
            {"checksum", e.checksum},
            {"size", e.size},
            {"location_href", e.location_href},
            {"location_base", e.location_base},
            {"base_url", redact_url(e.base_url)}};  // a password in a URL never reaches the (world-readable) cache
}

PackageEntry entry_of(const nlohmann::json& j) {
    PackageEntry e;
    e.name = j.at("name").get<std::string>();
    e.arch = j.at("arch").get<std::string>();
    e.epoch = j.at("epoch").get<std::uint32_t>();
    e.version = j.at("version").get<std::string>();
    e.release = j.at("release").get<std::string>();
    e.checksum_type = j.at("checksum_type").get<std::string>();
    e.checksum = j.at("checksum").get<std::string>();
    e.size = j.at("size").get<std::uint64_t>();
    e.location_href = j.at("location_href").get<std::string>();
    e.location_base = j.at("location_base").get<std::string>();
    e.base_url = j.at("base_url").get<std::string>();
    return e;
}

} // namespace

std::string url_settings(const RepoConfig& repo) {
    // repo_gpgcheck too: entries cached without a signature check are not an answer once it is on
    // Redacted: the cache is world-readable and a password is never written into it.
    std::vector<std::string> baseurls;
    for (const auto& u : repo.baseurls) baseurls.push_back(redact_url(u));
    nlohmann::json j{{"baseurl", baseurls},
                     {"mirrorlist", redact_url(repo.mirrorlist)},
                     {"metalink", redact_url(repo.metalink)},
                     {"repo_gpgcheck", repo.repo_gpgcheck}};
    return j.dump();
}

std::optional<CacheRecord> read_cache(const leo::fs::SystemRoot& root, const std::filesystem::path& dir,
                                      std::string& why) {
    const auto path = dir / k_entries_file;
    const auto st = root.lstat(path);
    if (!st) {
        why = "nothing is cached";
        return std::nullopt;
    }
    if (!S_ISREG(st->st_mode) || !leo::fs::owned_privately(*st)) {
        why = fmt::format("{} is not a file of ours (not a regular file, another owner, or writable by others)",
                          root.host(path).string());
        return std::nullopt;
    }
    const std::string text = root.read(path, k_cache_read_limit);
    const auto newline = text.find('\n');
    if (newline == std::string::npos || text.compare(0, k_header.size(), k_header) != 0) {
        why = fmt::format("{} is of another format or half-written", root.host(path).string());
        return std::nullopt;
    }
    const std::string_view body = std::string_view(text).substr(newline + 1);
    if (text.substr(k_header.size(), newline - k_header.size()) != crypto::digest_hex("sha256", body)) {
        why = fmt::format("{} does not match its checksum (half-written or altered)", root.host(path).string());
        return std::nullopt;
    }
    try {
        const auto j = nlohmann::json::parse(body);
        CacheRecord record;
        record.repomd_sha256 = j.at("repomd_sha256").get<std::string>();
        record.revision = j.at("revision").get<std::string>();
        record.timestamp = j.value("timestamp", std::int64_t{0});  // absent in records of older versions
        record.fetched = j.at("fetched").get<std::int64_t>();
        record.urls = j.at("urls").get<std::string>();
        record.filter = j.at("filter").get<std::string>();
        record.skipped = j.at("skipped").get<std::size_t>();
        record.first_skipped = j.at("first_skipped").get<std::string>();
        for (const auto& p : j.at("packages")) {
            record.packages.push_back(entry_of(p));
        }
        return record;
    } catch (const nlohmann::json::exception& e) {
        why = fmt::format("{} cannot be read: {}", root.host(path).string(), e.what());
        return std::nullopt;
    }
}

void write_cache(const leo::fs::SystemRoot& root, const std::filesystem::path& dir, const CacheRecord& record) {
    nlohmann::json j{{"repomd_sha256", record.repomd_sha256}, {"revision", record.revision},
                     {"timestamp", record.timestamp},
                     {"fetched", record.fetched},             {"urls", record.urls},
                     {"filter", record.filter},               {"skipped", record.skipped},
                     {"first_skipped", record.first_skipped}, {"packages", nlohmann::json::array()}};
    for (const auto& p : record.packages) {
        j["packages"].push_back(to_json(p));
    }
    const std::string body = j.dump(1) + "\n";
    root.write_atomic(dir / k_entries_file,
                      std::string(k_header) + crypto::digest_hex("sha256", body) + "\n" + body, 0644);
}

bool fresh(const CacheRecord& record, std::int64_t metadata_expire, std::int64_t now) {
    if (record.fetched > now + 60) {
        return false;
    }
    if (metadata_expire < 0) {
        return true;
    }
    return now - record.fetched < metadata_expire;
}

Metadata metadata_of(const RepoConfig& repo, const CacheRecord& record, MetadataSource source) {
    Metadata md;
    md.repo_id = repo.id;
    md.revision = record.revision;
    md.packages = record.packages;
    // The cache keeps URLs redacted: each entry gets back the baseurl (with its credentials)
    // it was redacted from.
    for (auto& p : md.packages) {
        for (const auto& b : repo.baseurls) {
            if (b != p.base_url && redact_url(b) == p.base_url) {
                p.base_url = b;
                break;
            }
        }
    }
    md.skipped = record.skipped;
    md.first_skipped = record.first_skipped;
    md.source = source;
    md.repomd_sha256 = record.repomd_sha256;
    md.fetched = record.fetched;
    return md;
}

} // namespace leo::repo::detail

namespace leo::repo {
namespace {

/// Count what `inside` holds (never following a link) into `out`.
void measure(const leo::fs::SystemRoot& root, const std::filesystem::path& inside, CleanResult& out) {
    const auto st = root.lstat(inside);
    if (!st) {
        return;
    }
    if (S_ISDIR(st->st_mode)) {
        for (const auto& name : root.list(inside)) {
            measure(root, inside / name, out);
        }
        return;
    }
    ++out.files;
    out.bytes += static_cast<std::uint64_t>(st->st_size);
}

} // namespace

CleanResult clean_cache(const leo::fs::SystemRoot& root, CleanKind kind) {
    std::vector<std::filesystem::path> dirs;
    if (kind == CleanKind::metadata || kind == CleanKind::all) {
        dirs.emplace_back(k_metadata_cache);
        dirs.emplace_back(k_key_cache);
        dirs.emplace_back(k_answer_cache);
    }
    if (kind == CleanKind::packages || kind == CleanKind::all) {
        dirs.emplace_back(k_package_cache);
    }
    CleanResult result;
    for (const auto& dir : dirs) {
        const auto st = root.lstat(dir);
        if (!st) {
            continue;
        }
        if (S_ISDIR(st->st_mode)) {
            measure(root, dir, result);
        } else {
            ++result.files;  // a link or file planted where our directory belongs: removed, not followed
        }
        if (root.remove_all(dir)) {
            result.removed.push_back(dir);
        }
    }
    return result;
}

} // namespace leo::repo
