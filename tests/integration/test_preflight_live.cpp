// On this machine: gather_facts("/") agrees with nproc, /proc/meminfo and df.
#include "leo/preflight/checks.hpp"
#include "leo/preflight/facts.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace {

/// stdout of a shell command (test-only: fixed commands, no user input).
std::string run(const std::string& command) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    if (p == nullptr) return out;
    std::array<char, 4096> buf{};
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), p) != nullptr) out += buf.data();
    ::pclose(p);
    return out;
}

const leo::preflight::HostFacts& live() {
    static const auto facts = leo::preflight::gather_facts("/");
    return facts;
}

TEST(PreflightLive, VcpusAgreeWithNproc) {
    const auto nproc = std::stoul(run("nproc"));
    EXPECT_EQ(live().vcpus, nproc);
    // The quota can only lower what is usable; cpuinfo counts every online CPU.
    EXPECT_LE(leo::preflight::usable_millicpus(live()), live().vcpus * 1000ULL);
    EXPECT_GT(leo::preflight::usable_millicpus(live()), 0U) << live().cpu_quota_source;
    EXPECT_GE(live().cpuinfo_cpus, live().vcpus);
    EXPECT_EQ(live().cpu_quota_error, "");
}

TEST(PreflightLive, MemTotalAgreesWithProcMeminfo) {
    std::ifstream in("/proc/meminfo");
    std::string key;
    std::uint64_t kib = 0;
    in >> key >> kib;
    ASSERT_EQ(key, "MemTotal:");
    EXPECT_EQ(live().mem_total_kib, kib);
    EXPECT_EQ(live().mem_source, "/proc/meminfo");
    // Installed memory, when this machine exposes memory blocks, is at least MemTotal.
    if (live().installed_mem_bytes != 0) {
        EXPECT_GE(live().installed_mem_bytes, kib * 1024);
    }
}

TEST(PreflightLive, HomeFilesystemAgreesWithDf) {
    const auto& home = live().home;
    ASSERT_FALSE(home.path.empty());
    std::istringstream df(run("df -B1 --output=size,avail '" + home.path + "' | tail -n 1"));
    std::uint64_t size = 0, avail = 0;
    ASSERT_TRUE(df >> size >> avail) << home.path;
    EXPECT_EQ(home.total_bytes, size);
    // Free space moves while tests run: within 256 MiB.
    const std::uint64_t diff = home.available_bytes > avail ? home.available_bytes - avail : avail - home.available_bytes;
    EXPECT_LE(diff, 256ULL << 20);
    EXPECT_FALSE(home.mount_point.empty());
    EXPECT_FALSE(home.fstype.empty());
    EXPECT_EQ(home.fstype, run("findmnt -n -o FSTYPE -T '" + home.path + "' | tail -n 1").substr(0, home.fstype.size()));
}

TEST(PreflightLive, ReportExplainsEveryCheck) {
    const auto report = leo::preflight::run_checks(live(), leo::preflight::Profile::upgrade);
    for (const auto& r : report.results) {
        EXPECT_FALSE(r.measured.empty()) << r.id;
        EXPECT_FALSE(r.evidence.empty()) << r.id;
        EXPECT_FALSE(r.required.empty()) << r.id;
    }
}

} // namespace
