#include "leo/installer/config.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"

#include "ini_errors.hpp"
#include "leo/installer/gates.hpp"

#include <fmt/format.h>
#include <ini.h>

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
    } else if (s == "maintenance_window" && n == "time_zone") {
        if (v.empty() || v.size() > 64 || v.find_first_of(" \t'\"\\") != std::string::npos)
            return refuse(fmt::format("[maintenance_window] time_zone = {}: expected a time zone name such as "
                                      "Europe/Berlin or UTC", v));
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
    return parse_config(*text, sr.host(inside).string());
}

InstallerConfig parse_config(const std::string& text, const std::string& file) {
    ParseState st;
    st.file = file;
    const int rc = detail::ini_parse_text(text, handler, &st);
    if (rc < 0) throw UsageError(fmt::format("{}: cannot be parsed (inih error {})", file, rc));
    if (rc > 0) throw detail::ini_error(file, text, rc, st.refusals);
    return st.config;
}

} // namespace leo::installer
