// One parameterised test over every fixture root in tests/data/preflight/cases/<case>/:
// gather_facts(case) reads the file-based facts from the case, measured.json supplies the
// facts measured on the live system (arch, affinity count, statvfs/statfs of /home/leo's
// filesystem), and `expected` gives the profile and the verdict of every check.
// tests/data/preflight/make_cases.py writes the cases.
#include "leo/preflight/checks.hpp"
#include "leo/preflight/facts.hpp"

#include "leo/common/fs.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <sstream>

namespace {
namespace stdfs = std::filesystem;
using leo::preflight::Verdict;

stdfs::path cases_dir() { return leo::test::source_dir() / "tests/data/preflight/cases"; }

std::vector<std::string> case_names() {
    std::vector<std::string> names;
    for (const auto& e : stdfs::directory_iterator(cases_dir()))
        if (e.is_directory()) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

class FixtureCase : public testing::TestWithParam<std::string> {};

TEST_P(FixtureCase, GivesItsExpectedVerdicts) {
    const stdfs::path root = cases_dir() / GetParam();
    auto facts = leo::preflight::gather_facts(root);
    const auto measured = nlohmann::json::parse(leo::fs::read_file(root / "measured.json"));
    facts.arch = measured.at("arch").get<std::string>();
    facts.vcpus = measured.at("vcpus").get<unsigned>();
    facts.vcpus_source = "measured.json (sched_getaffinity)";
    facts.home.total_bytes = measured.at("total_bytes").get<std::uint64_t>();
    facts.home.available_bytes = measured.at("available_bytes").get<std::uint64_t>();
    facts.home.statfs_magic = measured.at("statfs_magic").get<std::uint64_t>();

    std::istringstream expected(leo::fs::read_file(root / "expected"));
    std::string key, value;
    ASSERT_TRUE(expected >> key >> value && key == "profile") << "expected must start with 'profile NAME'";
    const auto profile = leo::preflight::parse_profile(value);
    std::map<std::string, std::string> want;
    while (expected >> key >> value) want[key] = value;

    const auto report = leo::preflight::run_checks(facts, profile);
    std::map<std::string, std::string> got;
    for (const auto& r : report.results) {
        got[r.id] = std::string(leo::preflight::to_string(r.verdict));
        // Every check explains itself.
        EXPECT_FALSE(r.measured.empty()) << r.id;
        EXPECT_FALSE(r.evidence.empty()) << r.id;
        EXPECT_FALSE(r.required.empty()) << r.id;
        if (r.verdict != Verdict::pass) {
            EXPECT_FALSE(r.remediation.empty()) << r.id;
        }
    }
    EXPECT_EQ(got, want) << leo::preflight::to_table(report) << leo::preflight::to_json(facts).dump(2);
    // File-based facts came from the case, never from this machine.
    EXPECT_EQ(facts.mem_source, (root / "proc/meminfo").string());
    EXPECT_EQ(facts.home.source, (root / "proc/self/mountinfo").string());
}

INSTANTIATE_TEST_SUITE_P(Preflight, FixtureCase, testing::ValuesIn(case_names()),
                         [](const testing::TestParamInfo<std::string>& param) {
                             std::string name = param.param;
                             for (auto& c : name)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return name;
                         });

TEST(FixtureCases, AtLeastTwentyFive) { EXPECT_GE(case_names().size(), 25U); }

} // namespace

namespace {

leo::preflight::HostFacts case_facts(const std::string& name) {
    return leo::preflight::gather_facts(cases_dir() / name);
}

TEST(FixtureFacts, CgroupQuotaV1V2AndCpuinfo) {
    const auto v1 = case_facts("cpu-8-quota-1.5-v1");
    EXPECT_EQ(v1.cpu_quota_millicpus, 1500U);
    EXPECT_NE(v1.cpu_quota_source.find("cpu,cpuacct/cpu.cfs_quota_us: 150000"), std::string::npos) << v1.cpu_quota_source;
    EXPECT_EQ(v1.cpuinfo_cpus, 8U);
    const auto v2 = case_facts("cpu-8-quota-1.5-v2-parent");
    EXPECT_EQ(v2.cpu_quota_millicpus, 1500U); // the parent's limit caps the child's "max"
    EXPECT_NE(v2.cpu_quota_source.find("machine.slice/cpu.max: 150000 100000"), std::string::npos);
    EXPECT_EQ(case_facts("cpu-4-quota-unlimited-v1").cpu_quota_millicpus, 0U);
    const auto bad = case_facts("cpu-malformed-cpu-max");
    EXPECT_NE(bad.cpu_quota_error.find("cpu.max: malformed"), std::string::npos) << bad.cpu_quota_error;
    EXPECT_EQ(leo::preflight::parse_cpu_max("max 100000"), 0U);
    EXPECT_EQ(leo::preflight::parse_cpu_max("50000 100000\n"), 500U);
    EXPECT_FALSE(leo::preflight::parse_cpu_max("50000"));
}

TEST(FixtureFacts, InstalledMemoryFromMemoryBlocks) {
    const auto f = case_facts("mem-8gib-installed-blocks");
    EXPECT_EQ(f.installed_mem_bytes, 8ULL << 30);
    EXPECT_NE(f.installed_mem_source.find("(64 online of 64 blocks of 128 MiB)"), std::string::npos)
        << f.installed_mem_source;
    EXPECT_EQ(case_facts("mem-4gib-vm").installed_mem_bytes, 0U);
}

TEST(FixtureFacts, SymlinkedHomeIsJudgedAtItsTarget) {
    const auto f = case_facts("home-leo-symlink-to-nfs");
    EXPECT_EQ(f.home.resolved, "/data/leo");
    EXPECT_EQ(f.home.mount_point, "/data");
    EXPECT_EQ(f.home.fstype, "nfs4");
    const auto bind = case_facts("home-bind-of-nfs");
    EXPECT_EQ(bind.home.mount_root, "/home");
    EXPECT_EQ(bind.home.fstype, "nfs4");
    EXPECT_EQ(case_facts("rhel7-workstation").os.variant_id, "workstation");
}

TEST(FixtureFacts, MalformedFactFilesAreNamed) {
    leo::test::TempDir tmp;
    const auto root = tmp.path();
    stdfs::create_directories(root / "proc/self");
    leo::fs::write_file_atomic(root / "proc/meminfo", "MemTotal: lots\n");
    leo::fs::write_file_atomic(root / "proc/self/mountinfo", "garbage\n");
    const auto f = leo::preflight::gather_facts(root);
    EXPECT_EQ(f.mem_source, (root / "proc/meminfo").string() + " (no valid MemTotal line)");
    EXPECT_EQ(f.home.source, (root / "proc/self/mountinfo").string() + " (no valid mountinfo lines)");
    const auto report = leo::preflight::run_checks(f, leo::preflight::Profile::install);
    for (const auto& r : report.results) {
        if (r.id == "memory") {
            EXPECT_EQ(r.verdict, Verdict::inhibitor);
            EXPECT_NE(r.measured.find((root / "proc/meminfo").string()), std::string::npos) << r.measured;
        }
        if (r.id == "home-not-nfs") {
            EXPECT_NE(r.verdict, Verdict::pass);
        }
    }
}

} // namespace
