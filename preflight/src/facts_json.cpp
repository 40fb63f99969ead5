// The facts file (`facts --json`, `preflight --facts FILE`): HostFacts as JSON and back,
// every field checked by name.
#include "leo/preflight/facts.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>

namespace leo::preflight {
namespace stdfs = std::filesystem;
using nlohmann::json;

namespace {

// ---- JSON reading with field names in errors ----

[[noreturn]] void field_error(const std::string& name, const std::string& problem) {
    throw PreflightError(fmt::format("facts file: field '{}' {}", name, problem));
}

const json& require(const json& obj, const std::string& prefix, const char* key) {
    const std::string name = prefix.empty() ? key : prefix + "." + key;
    const auto it = obj.find(key);
    if (it == obj.end()) field_error(name, "missing");
    return *it;
}

std::string get_string(const json& obj, const std::string& prefix, const char* key) {
    const auto& v = require(obj, prefix, key);
    if (!v.is_string())
        field_error(prefix.empty() ? key : prefix + "." + key,
                    fmt::format("must be a string, not {}", v.type_name()));
    return v.get<std::string>();
}

std::uint64_t get_uint(const json& obj, const std::string& prefix, const char* key,
                       std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) {
    const auto& v = require(obj, prefix, key);
    const std::string name = prefix.empty() ? key : prefix + "." + key;
    if (!v.is_number_integer())
        field_error(name, fmt::format("must be a non-negative integer, not {}", v.type_name()));
    if (!v.is_number_unsigned() && v.get<std::int64_t>() < 0)
        field_error(name, fmt::format("must be a non-negative integer, not {}", v.get<std::int64_t>()));
    const auto value = v.get<std::uint64_t>();
    if (value > max) field_error(name, fmt::format("is out of range ({} > {})", value, max));
    return value;
}

const json& get_object(const json& obj, const std::string& prefix, const char* key) {
    const auto& v = require(obj, prefix, key);
    if (!v.is_object())
        field_error(prefix.empty() ? key : prefix + "." + key,
                    fmt::format("must be an object, not {}", v.type_name()));
    return v;
}

} // namespace

json to_json(const HostFacts& f) {
    // Text read from the host's files may be any bytes (a Latin-1 os-release, a mount
    // point); JSON holds UTF-8 only, and dump() would throw on anything else.
    return json{
        {"format_version", k_facts_format_version},
        {"os",
         {{"id", valid_utf8(f.os.id)},
          {"version_id", valid_utf8(f.os.version_id)},
          {"id_like", valid_utf8(f.os.id_like)},
          {"name", valid_utf8(f.os.name)},
          {"pretty_name", valid_utf8(f.os.pretty_name)},
          {"variant_id", valid_utf8(f.os.variant_id)},
          {"source", valid_utf8(f.os.source)},
          {"error", valid_utf8(f.os.error)}}},
        {"arch", valid_utf8(f.arch)},
        {"vcpus", f.vcpus},
        {"vcpus_source", valid_utf8(f.vcpus_source)},
        {"cpu_quota_millicpus", f.cpu_quota_millicpus},
        {"cpu_quota_source", valid_utf8(f.cpu_quota_source)},
        {"cpu_quota_error", valid_utf8(f.cpu_quota_error)},
        {"cpuinfo_cpus", f.cpuinfo_cpus},
        {"cpuinfo_source", valid_utf8(f.cpuinfo_source)},
        {"usable_millicpus", usable_millicpus(f)},
        {"mem_total_kib", f.mem_total_kib},
        {"mem_source", valid_utf8(f.mem_source)},
        {"installed_mem_bytes", f.installed_mem_bytes},
        {"installed_mem_source", valid_utf8(f.installed_mem_source)},
        {"home",
         {{"path", valid_utf8(f.home.path)},
          {"mount_point", valid_utf8(f.home.mount_point)},
          {"fstype", valid_utf8(f.home.fstype)},
          {"mount_source", valid_utf8(f.home.mount_source)},
          {"statfs_magic", f.home.statfs_magic},
          {"total_bytes", f.home.total_bytes},
          {"available_bytes", f.home.available_bytes},
          {"source", valid_utf8(f.home.source)},
          {"mount_root", valid_utf8(f.home.mount_root)},
          {"requested", valid_utf8(f.home.requested)},
          {"resolved", valid_utf8(f.home.resolved)},
          {"untraversable", valid_utf8(f.home.untraversable)}}},
    };
}

HostFacts facts_from_json(const json& j) {
    if (!j.is_object())
        throw PreflightError(fmt::format("facts file: expected a JSON object, not {}", j.type_name()));
    const auto& version = require(j, "", "format_version");
    if (!version.is_number_integer())
        field_error("format_version", fmt::format("must be an integer, not {}", version.type_name()));
    const auto format = version.get<std::int64_t>();
    if (format != k_facts_format_version && format != 1)
        throw PreflightError(fmt::format(
            "facts file: format_version {} is not supported (this installer reads 1 and {}); "
            "gather the facts again with this installer's 'facts --json'",
            version.dump(), k_facts_format_version));
    const bool v2 = format >= 2;

    HostFacts f;
    const auto& os = get_object(j, "", "os");
    f.os.id = get_string(os, "os", "id");
    f.os.version_id = get_string(os, "os", "version_id");
    f.os.id_like = get_string(os, "os", "id_like");
    f.os.name = get_string(os, "os", "name");
    f.os.pretty_name = get_string(os, "os", "pretty_name");
    f.os.source = get_string(os, "os", "source");
    // Added after format_version 1 was published: optional, "" when absent.
    if (os.contains("error")) f.os.error = get_string(os, "os", "error");
    if (v2) f.os.variant_id = get_string(os, "os", "variant_id");

    f.arch = get_string(j, "", "arch");
    f.vcpus = static_cast<unsigned>(get_uint(j, "", "vcpus", std::numeric_limits<unsigned>::max()));
    f.vcpus_source = get_string(j, "", "vcpus_source");
    f.mem_total_kib = get_uint(j, "", "mem_total_kib");
    f.mem_source = get_string(j, "", "mem_source");
    if (v2) {
        f.cpu_quota_millicpus = get_uint(j, "", "cpu_quota_millicpus");
        f.cpu_quota_source = get_string(j, "", "cpu_quota_source");
        f.cpu_quota_error = get_string(j, "", "cpu_quota_error");
        f.cpuinfo_cpus = static_cast<unsigned>(get_uint(j, "", "cpuinfo_cpus", std::numeric_limits<unsigned>::max()));
        f.cpuinfo_source = get_string(j, "", "cpuinfo_source");
        f.installed_mem_bytes = get_uint(j, "", "installed_mem_bytes");
        f.installed_mem_source = get_string(j, "", "installed_mem_source");
        // "usable_millicpus" is derived (usable_millicpus()), written for readers only.
    }

    const auto& home = get_object(j, "", "home");
    f.home.path = get_string(home, "home", "path");
    f.home.mount_point = get_string(home, "home", "mount_point");
    f.home.fstype = get_string(home, "home", "fstype");
    f.home.mount_source = get_string(home, "home", "mount_source");
    f.home.statfs_magic = get_uint(home, "home", "statfs_magic");
    f.home.total_bytes = get_uint(home, "home", "total_bytes");
    f.home.available_bytes = get_uint(home, "home", "available_bytes");
    f.home.source = get_string(home, "home", "source");
    if (v2) {
        f.home.mount_root = get_string(home, "home", "mount_root");
        f.home.requested = get_string(home, "home", "requested");
        f.home.resolved = get_string(home, "home", "resolved");
    }
    // Added after format_version 2 was published: optional, "" when absent.
    if (home.contains("untraversable")) f.home.untraversable = get_string(home, "home", "untraversable");
    return f;
}

HostFacts parse_facts_text(const std::string& text, const std::string& file) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {  // parse_error, and out_of_range for a number too large
        throw PreflightError(fmt::format("facts file {}: not JSON: {}", file, e.what()));
    }
    try {
        return facts_from_json(j);
    } catch (const PreflightError&) {
        std::throw_with_nested(PreflightError(fmt::format("cannot use {}", file)));
    }
}

} // namespace leo::preflight
