// Host facts read from files (preflight/src/facts.cpp), one parser per input chosen by the
// first byte (its value modulo 8; the seeds use the digits '0'..'7'), the rest is the file:
//   0 os-release            parse_os_release
//   1 redhat-release        parse_redhat_release
//   2 mountinfo             parse_mountinfo, then find_mount for /home/leo and each mount point
//   3 meminfo               parse_meminfo_total_kib
//   4 cpuinfo               parse_cpuinfo_count
//   5 cgroup v2 cpu.max     parse_cpu_max
//   6 cgroup v1 quota       parse_cfs_quota (cpu.cfs_quota_us, NUL, cpu.cfs_period_us)
//   7 /proc/self/cgroup     parse_proc_cgroup
// These parsers never throw: a malformed file is an empty fact. What the OS and mount
// parsers read must also be writable as facts JSON (to_json, dump) and read back unchanged.
#include "fuzz_input.hpp"

#include "leo/common/error.hpp"
#include "leo/preflight/facts.hpp"

#include <nlohmann/json.hpp>

namespace pf = leo::preflight;

namespace {
/// What was read must be writable as facts JSON (`facts --json`, `preflight --json`) and
/// read back the same (`preflight --facts FILE`).
void written(const pf::HostFacts& f) {
    const std::string text = pf::to_json(f).dump(2);
    if (pf::to_json(pf::parse_facts_text(text, "facts.json")) != pf::to_json(f))
        leo::fuzz::violated("facts JSON does not read back as written");
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const std::string text = leo::fuzz::text_of(data + 1, size - 1);
    try {
        switch (data[0] % 8) {
        case 0: written(pf::HostFacts{.os = pf::parse_os_release(text)}); break;
        case 1: written(pf::HostFacts{.os = pf::parse_redhat_release(text)}); break;
        case 2: {
            const auto entries = pf::parse_mountinfo(text);
            if (const auto home = pf::find_mount(entries, "/home/leo")) {
                pf::HostFacts f;
                f.home.mount_point = home->mount_point;
                f.home.fstype = home->fstype;
                f.home.mount_source = home->source;
                f.home.mount_root = home->root;
                written(f);
            }
            for (const auto& e : entries) {
                if (!e.mount_point.empty() && e.mount_point.front() == '/' && !pf::find_mount(entries, e.mount_point))
                    leo::fuzz::violated("find_mount does not find an entry's own mount point");
            }
            break;
        }
        case 3: (void)pf::parse_meminfo_total_kib(text); break;
        case 4: (void)pf::parse_cpuinfo_count(text); break;
        case 5: (void)pf::parse_cpu_max(text); break;
        case 6: {
            const auto nul = text.find('\0');
            (void)pf::parse_cfs_quota(text.substr(0, nul), nul == std::string::npos ? "" : text.substr(nul + 1));
            break;
        }
        case 7: (void)pf::parse_proc_cgroup(text); break;
        }
    } catch (const leo::Error&) {
    }
    return 0;
}
