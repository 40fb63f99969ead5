// Reading migration files (through a SystemRoot of "/"), their checksums and the
// no-transaction marker.
#include "internal.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/system_root.hpp"

#include <fmt/format.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace leo::migrations::detail {
namespace {

/// The largest migration file read (its text is held in memory and sent to the server).
constexpr std::size_t k_max_migration_bytes = std::size_t{64} << 20;

/// load_migrations() and read_migration() get host paths without a root (the shipped
/// migrations are ROOT/home/leo/share/migrations, a directory leo owns): they read them
/// through a SystemRoot of "/", which walks every component and never follows a link in
/// a directory a user other than root can write (a link leo made to /etc/shadow, or to a
/// FIFO, is refused, not read), opens the last component with O_NOFOLLOW, reads regular
/// files only and at most k_max_migration_bytes.
const fs::SystemRoot& host_files() {
    static const fs::SystemRoot host("/");
    return host;
}

std::filesystem::path absolute_host_path(const std::filesystem::path& p) {
    auto abs = std::filesystem::absolute(p).lexically_normal();
    if (abs != "/" && abs.filename().empty())
        abs = abs.parent_path();
    return abs;
}

std::string read_migration_file(const std::filesystem::path& path) {
    return host_files().read(absolute_host_path(path), k_max_migration_bytes);
}

} // namespace

/// The text sent to the server: without a leading byte-order mark (PostgreSQL would read
/// it as part of the first token).
std::string strip_bom(std::string text) {
    if (text.starts_with(k_utf8_bom))
        text.erase(0, k_utf8_bom.size());
    return text;
}

/// Read a migration's text, checked against the checksum it was loaded with.
std::string read_migration(const Migration& m) {
    std::string text;
    try {
        text = read_migration_file(m.path);
    } catch (const std::exception& e) {
        throw MigrationError(fmt::format("migration {} failed: {}", m.script, e.what()));
    }
    if (!m.checksum.empty() && migration_checksum(text) != m.checksum)
        throw MigrationError(fmt::format("migration {} failed: {} changed since it was read (checksum {}, now {})",
                                         m.script, m.path.string(), m.checksum, migration_checksum(text)));
    return strip_bom(std::move(text));
}

} // namespace leo::migrations::detail

namespace leo::migrations {
using namespace detail;

std::string migration_checksum(const std::string& text) {
    std::string_view in = text;
    if (in.starts_with(k_utf8_bom))
        in.remove_prefix(k_utf8_bom.size());
    std::string normalized;
    normalized.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '\r') {
            normalized += '\n';
            if (i + 1 < in.size() && in[i + 1] == '\n')
                ++i;
        } else {
            normalized += in[i];
        }
    }
    return crypto::digest_hex("sha256", normalized);
}

bool has_no_transaction_marker(const std::string& text) {
    std::string_view in = text;
    if (in.starts_with(k_utf8_bom))
        in.remove_prefix(k_utf8_bom.size());
    const std::string_view marker = k_no_transaction_marker;
    size_t pos = 0;
    while (pos <= in.size()) {
        size_t end = in.find_first_of("\r\n", pos);
        if (end == std::string_view::npos)
            end = in.size();
        std::string_view line = in.substr(pos, end - pos);
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
            line.remove_prefix(1);
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t'))
            line.remove_suffix(1);
        if (line == marker)
            return true;
        pos = end + 1;
    }
    return false;
}

std::vector<Migration> load_migrations(const stdfs::path& given) {
    std::vector<Migration> out;
    const stdfs::path dir = absolute_host_path(given);
    const auto& host = host_files();
    std::vector<std::string> names;
    // (SystemRoot::list opens the directory itself, following a link only where that is
    // safe; lstat first tells a missing directory from an unreadable one.)
    try {
        if (!host.lstat(dir))
            throw MigrationError(
                fmt::format("cannot read the migrations directory {}: {}", dir.string(), std::strerror(ENOENT)));
        names = host.list(dir);
    } catch (const SystemError& e) {
        throw MigrationError(fmt::format("cannot read the migrations directory {}: {}", dir.string(), e.what()));
    }
    for (const auto& name : names) {
        if (!name.starts_with('V') || !name.ends_with(".sql"))
            continue;
        const auto path = dir / name;
        try {
            // Regular files, and links SystemRoot may follow (reading them below refuses
            // the others and anything that is not a regular file); a directory named
            // V2__x.sql, a FIFO or a socket is not a migration.
            const auto file_st = host.lstat(path);
            if (!file_st || !(S_ISREG(file_st->st_mode) || S_ISLNK(file_st->st_mode)))
                continue;
        } catch (const SystemError& e) {
            throw MigrationError(fmt::format("cannot read migration {}: {}", name, e.what()));
        }
        Migration m = *parse_migration_name(name, dir);
        m.path = path;
        try {
            const std::string text = read_migration_file(m.path);
            m.checksum = migration_checksum(text);
            m.transactional = !has_no_transaction_marker(text);
            m.transaction_control = find_transaction_control(text);
        } catch (const SystemError& e) {
            throw MigrationError(fmt::format("cannot read migration {}: {}", name, e.what()));
        }
        out.push_back(std::move(m));
    }
    std::sort(out.begin(), out.end(), [](const Migration& a, const Migration& b) {
        const int c = compare_parts(a.version_parts, b.version_parts);
        return c != 0 ? c < 0 : a.script < b.script;
    });
    for (size_t i = 1; i < out.size(); ++i)
        if (compare_parts(out[i - 1].version_parts, out[i].version_parts) == 0)
            throw MigrationError(fmt::format("two migrations in {} have version {}: {} and {}", dir.string(),
                                             out[i].version, out[i - 1].script, out[i].script));
    return out;
}

} // namespace leo::migrations
