#include "leo/installer/config.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"

#include "ini_errors.hpp"

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
    } else {
        return refuse(fmt::format("unknown setting [{}] {}", s, n));
    }
    return 1;
}
} // namespace

InstallerConfig load_config(const stdfs::path& root) {
    const auto file = fs::under_root(root, "/etc/leo-installer/installer.conf");
    std::error_code ec;
    if (!stdfs::exists(file, ec)) return {};
    const auto text = fs::try_read_file(file);
    if (!text) throw UsageError(fmt::format("{}: cannot be read", file.string()));
    return parse_config(*text, file.string());
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
