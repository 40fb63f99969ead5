#include "leo/installer/config.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/log.hpp"
#include "leo/common/system_root.hpp"

#include "ini_errors.hpp"
#include "leo/installer/gates.hpp"

#include <fmt/format.h>
#include <ini.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {
/// The largest count or number of seconds: `keep` is an int, and a timeout must stay
/// within the milliseconds the hooks run with (a larger value would overflow there).
constexpr long k_max_number = 2147483647;

struct ParseState {
    InstallerConfig config;
    std::string file;
    std::vector<detail::IniRefusal> refusals;
};

bool parse_bool(const std::string& v, bool& out) {
    if (v == "1" || v == "yes" || v == "true" || v == "on") return out = true, true;
    if (v == "0" || v == "no" || v == "false" || v == "off") return out = false, true;
    return false;
}

int handler(void* user, const char* section, const char* name, const char* value) {
    auto* st = static_cast<ParseState*>(user);
    const std::string s = section, n = name, v = value;
    long number = 0;
    auto refuse = [&](std::string message) {
        st->refusals.push_back({n, std::move(message)});
        return 0;
    };
    if (s == "restore_points" && n == "keep") {
        if (!detail::parse_long(v, number) || number < 1 || number > k_max_number) {
            return refuse(fmt::format("[restore_points] keep = {}: expected a whole number from 1 to {}", v,
                                      k_max_number));
        }
        st->config.keep_restore_points = static_cast<int>(number);
    } else if (s == "backup" && n == "keep") {
        if (!detail::parse_long(v, number) || number < 1 || number > k_max_number) {
            return refuse(fmt::format("[backup] keep = {}: expected a whole number from 1 to {}", v, k_max_number));
        }
        st->config.backup_keep = static_cast<int>(number);
    } else if (s == "backup" && n == "directory") {
        const stdfs::path dir(v);
        const bool dotdot = std::any_of(dir.begin(), dir.end(), [](const stdfs::path& c) { return c == ".."; });
        if (!dir.is_absolute() || dotdot || dir.lexically_normal() == "/")
            return refuse(fmt::format("[backup] directory = {}: expected an absolute directory (inside the root) "
                                      "without '..', other than /",
                                      v));
        auto normal = dir.lexically_normal();
        if (!normal.has_filename()) normal = normal.parent_path();  // "/srv/backups/" -> "/srv/backups"
        st->config.backup_directory = normal.string();
    } else if (s == "vm_snapshot" && n == "create_command") {
        st->config.vm_snapshot_create_command = v;
    } else if (s == "vm_snapshot" && n == "restore_command") {
        st->config.vm_snapshot_restore_command = v;
    } else if (s == "vm_snapshot" && n == "timeout") {
        if (!detail::parse_long(v, number) || number < 1 || number > k_max_number) {
            return refuse(fmt::format("[vm_snapshot] timeout = {}: expected seconds from 1 to {}", v, k_max_number));
        }
        st->config.vm_snapshot_timeout = std::chrono::seconds(number);
    } else if (s == "vm_snapshot" && n == "optional") {
        if (!parse_bool(v, st->config.vm_snapshot_optional)) {
            return refuse(fmt::format("[vm_snapshot] optional = {}: expected yes or no", v));
        }
    } else if (s == "services" && n == "stop_command") {
        st->config.services_stop_command = v;
    } else if (s == "services" && n == "start_command") {
        st->config.services_start_command = v;
    } else if (s == "services" && n == "timeout") {
        if (!detail::parse_long(v, number) || number < 1 || number > k_max_number) {
            return refuse(fmt::format("[services] timeout = {}: expected seconds from 1 to {}", v, k_max_number));
        }
        st->config.services_timeout = std::chrono::seconds(number);
    } else if (s == "services" && n == "ready_timeout") {
        if (!detail::parse_long(v, number) || number < 1 || number > k_max_number) {
            return refuse(fmt::format("[services] ready_timeout = {}: expected seconds from 1 to {}", v, k_max_number));
        }
        st->config.services_ready_timeout = std::chrono::seconds(number);
    } else if (s == "cluster" && n == "lease_ttl") {
        if (!detail::parse_long(v, number) || number < 1 || number > k_max_number) {
            return refuse(fmt::format("[cluster] lease_ttl = {}: expected seconds from 1 to {}", v, k_max_number));
        }
        st->config.cluster_lease_ttl = std::chrono::seconds(number);
    } else if (s == "spot_check" && n == "timeout") {
        if (!detail::parse_long(v, number) || number < 1 || number > k_max_number) {
            return refuse(fmt::format("[spot_check] timeout = {}: expected seconds from 1 to {}", v, k_max_number));
        }
        st->config.spot_check_timeout = std::chrono::seconds(number);
    } else if (s == "support_bundle" && n == "secret_keys") {
        st->config.support_bundle_secret_keys.clear();
        std::size_t start = 0;
        while (start <= v.size()) {
            const std::size_t comma = std::min(v.find(',', start), v.size());
            const std::string item = v.substr(start, comma - start);
            const auto b = item.find_first_not_of(" \t");
            if (b != std::string::npos) {
                const std::string key = item.substr(b, item.find_last_not_of(" \t") - b + 1);
                if (key.find_first_of(" \t=") != std::string::npos)
                    return refuse(fmt::format("[support_bundle] secret_keys = {}: '{}' is not a key name", v, key));
                st->config.support_bundle_secret_keys.push_back(key);
            }
            start = comma + 1;
        }
    } else if (s == "maintenance_window" && n == "time_zone") {
        if (const auto problem = time_zone_problem(v))
            return refuse(fmt::format("[maintenance_window] time_zone = {}: {}", v, *problem));
        st->config.maintenance_time_zone = v;
    } else if (s == "maintenance_window" && n == "windows") {
        try {
            (void)parse_windows(v);
        } catch (const UsageError& e) {
            return refuse(fmt::format("[maintenance_window] windows = {}: {}", v, e.what()));
        }
        st->config.maintenance_windows = v;
    } else {
        return refuse(fmt::format("unknown setting [{}] {}", s, n));
    }
    return 1;
}
} // namespace

void check_trusted_config(const fs::SystemRoot& sr, const stdfs::path& inside) {
    auto describe = [](const struct stat& st) {
        return fmt::format("owner uid {}, mode {:04o}", st.st_uid, st.st_mode & 07777);
    };
    const auto st = sr.stat(inside);
    if (!st) return;
    const auto host = sr.host(inside).string();
    if (st->st_uid != 0 || (st->st_mode & (S_IWGRP | S_IWOTH)) != 0)
        throw RefusedError(fmt::format("{} ({}) holds commands that run as root, but a user other than root can "
                                       "change it; make it root's and not writable by group or others (chown root: {}; "
                                       "chmod go-w {}) and run again",
                                       host, describe(*st), host, host));
    const auto dir = sr.stat(inside.parent_path());
    if (dir && fs::writable_by_others(*dir))
        throw RefusedError(fmt::format("{} is in {} ({}), which a user other than root can change; make that "
                                       "directory root's and not writable by group or others and run again",
                                       host, sr.host(inside.parent_path()).string(), describe(*dir)));
}

InstallerConfig load_config(const stdfs::path& root) {
    const fs::SystemRoot sr(root);
    const stdfs::path inside(fs::SystemRoot::k_installer_conf);
    const auto text = sr.try_read(inside, std::size_t{1} << 20);
    if (!text) return {};
    check_trusted_config(sr, inside);
    auto config = parse_config(*text, sr.host(inside).string());
    if (!config.maintenance_window_error.empty())
        log::warning("{} (an upgrade refuses until it is fixed)", config.maintenance_window_error);
    return config;
}

namespace {

/// `text` split in two of the same lines: the [maintenance_window] sections' lines (with
/// their headers), and every other line; each with blank lines in place of the other's, so
/// that an error names the line of the file.
std::pair<std::string, std::string> split_maintenance_window(const std::string& text) {
    std::string window, rest;
    bool inside = false;
    std::size_t pos = 0;
    bool first = true;
    while (pos < text.size()) {
        const auto nl = text.find('\n', pos);
        const std::size_t end = nl == std::string::npos ? text.size() : nl + 1;
        std::string_view line(text.data() + pos, end - pos);
        std::string_view body = line;
        if (first && body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);  // inih skips a BOM
        first = false;
        const auto b = body.find_first_not_of(" \t");
        // A section header as inih reads one: "[" NAME "]" at the line's first non-blank.
        if (b != std::string_view::npos && body[b] == '[') {
            const auto close = body.find(']', b);
            if (close != std::string_view::npos) inside = body.substr(b + 1, close - b - 1) == "maintenance_window";
        }
        const std::string blank = nl == std::string::npos ? "" : "\n";
        (inside ? window : rest) += std::string(line);
        (inside ? rest : window) += blank;
        pos = end;
    }
    return {window, rest};
}

} // namespace

std::optional<std::string> time_zone_problem(const std::string& name, const stdfs::path& zoneinfo) {
    const std::string expected = "expected an IANA time zone name of the zoneinfo database (" + zoneinfo.string() +
                                 ") such as Europe/Berlin, America/New_York or UTC";
    if (name.find(',') != std::string::npos || name.find('<') != std::string::npos)
        return "a POSIX TZ rule, which is not accepted: " + expected;
    bool valid = !name.empty() && name.size() <= 64 && name.front() != '/' && name.back() != '/';
    for (std::size_t i = 0; valid && i < name.size(); ++i) {
        const char ch = name[i];
        const bool starts = i == 0 || name[i - 1] == '/';
        if (starts && !std::isalpha(static_cast<unsigned char>(ch))) valid = false;  // no ".", "..", "-x"
        else if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '/' && ch != '_' && ch != '-' && ch != '+')
            valid = false;
        else if (ch == '/' && name[i + 1] == '/')
            valid = false;
    }
    if (!valid) return expected;
    // The database's copies (posix/, right/) and its helper files are not zone names.
    if (name.rfind("posix/", 0) == 0 || name.rfind("right/", 0) == 0 || name == "posixrules" || name == "localtime" ||
        name == "Factory")
        return expected;
    // A zone is a TZif file of the database (zone.tab, tzdata.zi and the like are not).
    const stdfs::path file = zoneinfo / name;
    std::error_code ec;
    if (!stdfs::is_regular_file(file, ec)) {
        const bool posix_like = std::any_of(name.begin(), name.end(),
                                            [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); }) &&
                                name.find('/') == std::string::npos;
        return posix_like ? "not a zone of the zoneinfo database (a POSIX TZ string such as UTC+3 is not accepted: "
                            "use Etc/GMT-3 for UTC+3): " + expected
                          : "not a zone of the zoneinfo database: " + expected;
    }
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);  // not-under-root: the host's tzdata, read-only
    char magic[4] = {};
    const bool tzif = fd >= 0 && ::read(fd, magic, sizeof magic) == 4 && std::memcmp(magic, "TZif", 4) == 0;
    if (fd >= 0) ::close(fd);
    if (!tzif) return "not a zone of the zoneinfo database (" + file.string() + " is not a TZif file): " + expected;
    return std::nullopt;
}

InstallerConfig parse_config(const std::string& text, const std::string& file) {
    const auto [window, rest] = split_maintenance_window(text);
    ParseState st;
    st.file = file;
    const int rc = detail::ini_parse_text(rest, handler, &st);
    if (rc < 0) throw UsageError(fmt::format("{}: cannot be parsed (inih error {})", file, rc));
    if (rc > 0) throw detail::ini_error(file, text, rc, st.refusals);
    // [maintenance_window] only matters to an upgrade: an error in it is kept for the
    // upgrade's gate (which refuses), never thrown at the commands that do not use it.
    ParseState mw;
    mw.file = file;
    const int mw_rc = detail::ini_parse_text(window, handler, &mw);
    if (mw_rc != 0) {
        st.config.maintenance_window_error =
            mw_rc < 0 ? fmt::format("{}: [maintenance_window] cannot be parsed (inih error {})", file, mw_rc)
                      : detail::ini_error(file, text, mw_rc, mw.refusals).what();
        return st.config;
    }
    st.config.maintenance_time_zone = mw.config.maintenance_time_zone;
    st.config.maintenance_windows = mw.config.maintenance_windows;
    return st.config;
}

} // namespace leo::installer
