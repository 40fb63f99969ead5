// switch_database.pl's arguments: the input split on NUL bytes is the argv (without the
// program name), read into leo::installer::SwitchFlags the way the CLI's CLI11 options
// fill them (installer/src/cli/commands.cpp: `--flag value` or `--flag=value`, every flag
// also with hyphens, -y/--assumeyes; an unknown flag or a missing value is CLI11's usage
// error, so the input stops there), then leo::installer::parse_switch_flags, which checks
// every value and combination. The CLI11 wiring itself lives in the executable and is not
// part of this target. An accepted request must be storable in database.conf.
#include "fuzz_input.hpp"

#include "leo/common/error.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/switch_database.hpp"

#include <algorithm>
#include <optional>

namespace {
using leo::installer::SwitchFlags;

/// "--db-host" -> "--db_host".
std::string canonical(std::string flag) {
    std::replace(flag.begin() + std::min<std::size_t>(2, flag.size()), flag.end(), '-', '_');
    return flag;
}

/// Fill `f` from `args`; false when CLI11 would refuse them (unknown flag, missing value).
bool read_flags(const std::vector<std::string>& args, SwitchFlags& f) {
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string arg = args[i];
        std::optional<std::string> value;
        if (arg.starts_with("--")) {
            if (const auto eq = arg.find('='); eq != std::string::npos) {
                value = arg.substr(eq + 1);
                arg.resize(eq);
            }
            arg = canonical(arg);
        }
        bool* flag = arg == "--show_current"                                               ? &f.show_current
                     : arg == "--to_internal"                                              ? &f.to_internal
                     : arg == "--skip_confirmation" || arg == "-y" || arg == "--assumeyes" ? &f.skip_confirmation
                     : arg == "--allow_remote_upgrade"                                     ? &f.allow_remote_upgrade
                                                                                           : nullptr;
        if (flag != nullptr) {
            if (value)
                return false; // a flag takes no value
            *flag = true;
            continue;
        }
        std::optional<std::string>* option = arg == "--to_external" ? &f.to_external
                                             : arg == "--db_vendor" ? &f.db_vendor
                                             : arg == "--db_name"   ? &f.db_name
                                             : arg == "--db_host"   ? &f.db_host
                                             : arg == "--port"      ? &f.port
                                             : arg == "--username"  ? &f.username
                                             : arg == "--site_id"   ? &f.site_id
                                                                    : nullptr;
        const bool password = arg == "--password" || arg == "--password_file";
        if (option == nullptr && !password && arg != "--root")
            return false;
        if (!value) {
            if (i + 1 >= args.size())
                return false;
            value = args[++i];
        }
        if (option != nullptr) {
            *option = *value;
        } else if (password) {
            f.password_given = true;
            f.password_flag = arg;
        }
    }
    return true;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    SwitchFlags flags;
    if (!read_flags(leo::fuzz::split_nul(std::string_view(reinterpret_cast<const char*>(data), size)), flags))
        return 0;
    try {
        const auto request = leo::installer::parse_switch_flags(flags);
        if (request.action == leo::installer::SwitchAction::to_external) {
            (void)request.target.display();
            try {
                leo::installer::check_conf_value("host", request.target.host);
                leo::installer::check_conf_value("name", request.target.dbname);
                leo::installer::check_conf_value("username", request.target.username);
            } catch (const leo::Error&) {
                leo::fuzz::violated("parse_switch_flags accepted a value database.conf cannot hold");
            }
        }
    } catch (const leo::Error&) {
    }
    return 0;
}
