#include "test_support.hpp"

#include "repo_support.hpp"
#include <gtest/gtest.h>
#include <fstream>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace leo::test {
namespace stdfs = std::filesystem;

stdfs::path source_dir() { return LEO_SOURCE_DIR; }
stdfs::path fixtures_dir() { return stdfs::weakly_canonical(LEO_FIXTURES_DIR); }

TempDir::TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/leo-t.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    m_path = buf.data();
    ::chmod(m_path.c_str(), 0755);
}

TempDir::~TempDir() {
    std::error_code ec;
    stdfs::remove_all(m_path, ec);
}

std::string run_ok(const std::vector<std::string>& argv) {
    auto r = subprocess::run(argv);
    if (!r.ok())
        throw std::runtime_error(subprocess::command_line(argv) + " failed (" +
                                 std::to_string(r.exit_code) + "): " + r.out + r.err);
    return r.out;
}

void make_sandbox_root(const stdfs::path& root, const std::string& os) {
    run_ok({(source_dir() / "scripts/make-sandbox-root.sh").string(), root.string(), "--os", os});
}

void create_leo_user(const stdfs::path& root) {
    run_ok({"groupadd", "--root", root.string(), "--system", "leo"});
    run_ok({"useradd", "--root", root.string(), "--system", "-g", "leo", "-d", "/home/leo", "-M",
            "-s", "/bin/bash", "leo"});
    stdfs::create_directories(root / "home/leo");
    ::chmod((root / "home/leo").c_str(), 0755);
}

subprocess::Result run_installer(const std::vector<std::string>& args, const subprocess::Options& options) {
    std::vector<std::string> argv{LEO_INSTALLER_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    return subprocess::run(argv, options);
}

stdfs::path build_broker_rpm(const std::string& version, const stdfs::path& outdir,
                             const stdfs::path& gnupghome, const std::string& key_name,
                             const std::map<std::string, std::string>& env) {
    subprocess::Options opts;
    opts.env = env;
    if (!key_name.empty()) {
        opts.env["SIGN_KEY"] = key_name;
        opts.env["GNUPGHOME"] = gnupghome.string();
    }
    std::vector<std::string> argv{(source_dir() / "scripts/build-broker-rpm.sh").string(), version,
                                  outdir.string()};
    auto r = subprocess::run(argv, opts);
    if (!r.ok()) throw std::runtime_error("build-broker-rpm.sh failed: " + r.err);
    return subprocess::last_line(r.out);
}

stdfs::path make_signing_key(const stdfs::path& dir, const std::string& name) {
    const auto pub = dir / (name + ".pub");
    run_ok({(source_dir() / "scripts/make-signing-key.sh").string(), (dir / "gnupg").string(), name,
            pub.string()});
    return pub;
}

subprocess::Result rpm_query(const stdfs::path& root, const std::string& name) {
    return subprocess::run({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-q", name});
}

std::string snapshot_tree(const stdfs::path& dir, const std::vector<std::string>& exclude) {
    std::vector<std::string> lines;
    std::error_code ec;
    if (!stdfs::exists(dir, ec)) return "<missing>";
    for (auto it = stdfs::recursive_directory_iterator(dir, ec); it != stdfs::recursive_directory_iterator();
         it.increment(ec)) {
        struct stat st{};
        if (::lstat(it->path().c_str(), &st) != 0) continue;
        // (lexically: relative() would resolve a symbolic link to where it points)
        const std::string rel = it->path().lexically_relative(dir).string();
        if (std::any_of(exclude.begin(), exclude.end(), [&](const std::string& e) { return rel.rfind(e, 0) == 0; }))
            continue;
        if (S_ISDIR(st.st_mode)) {
            lines.push_back(rel + "/ " + std::to_string(st.st_mode));
            continue;
        }
        lines.push_back(rel + " " + std::to_string(st.st_size) + " " +
                        std::to_string(st.st_mode) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
                        std::to_string(st.st_mtim.tv_nsec));
    }
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (auto& l : lines) out += l + "\n";
    return out;
}

stdfs::path test_packages_dir() {
    if (const char* env = std::getenv("LEO_TEST_PACKAGES"); env != nullptr && *env != '\0') return env;
    static TempDir dir;
    static const stdfs::path built = [] {
        const auto out = dir.path() / "packages";
        run_ok({(source_dir() / "scripts/build-test-packages.sh").string(), out.string()});
        return out;
    }();
    return built;
}

mode_t mode_of(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
}

uid_t owner_of(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_uid;
}

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::filesystem::path facts_with_memory(const std::filesystem::path& root, const std::filesystem::path& dir,
                                        std::uint64_t kib) {
    const auto f = run_installer({"facts", "--json", "--root", root.string()});
    if (f.exit_code != 0) throw std::runtime_error("facts --json: " + f.err);
    auto j = nlohmann::json::parse(f.out);
    j["mem_total_kib"] = kib;
    j["installed_mem_bytes"] = 0;
    const auto file = dir / ("facts-" + std::to_string(kib) + ".json");
    std::ofstream(file) << j.dump();
    return file;
}

nlohmann::json status_json(const std::filesystem::path& root, int* exit_code) {
    const auto s = run_installer({"status", "--json", "--root", root.string()});
    if (exit_code != nullptr) *exit_code = s.exit_code;
    return nlohmann::json::parse(s.out, nullptr, false);
}

void install_test_broker(const std::filesystem::path& root, const std::string& nevra) {
    const auto pkgs = test_packages_dir();
    const auto r = run_installer({"install", "--rpm", (pkgs / "repo" / (nevra + ".rpm")).string(), "--root",
                                  root.string(), "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y"});
    if (r.exit_code != 0) throw std::runtime_error("install of " + nevra + " failed: " + r.out + r.err);
}

std::string key_in_root(const std::filesystem::path& root, const std::filesystem::path& key) {
    std::filesystem::create_directories(root / "etc/pki/rpm-gpg");
    std::filesystem::copy_file(key, root / "etc/pki/rpm-gpg" / key.filename(),
                               std::filesystem::copy_options::overwrite_existing);
    return "file:///etc/pki/rpm-gpg/" + key.filename().string();
}

void write_file_repo(const std::filesystem::path& root) {
    const auto pkgs = test_packages_dir();
    write_repo_file(root, "leo",
                    "name=Broker\nbaseurl=file://" + (pkgs / "repo").string() + "\ngpgcheck=1\ngpgkey=" +
                        key_in_root(root, pkgs / "RPM-GPG-KEY-leo-test") + "\n");
}

// Build a noarch package `name`-1-1 with no files whose %pre (Lua) sleeps `sleep_s`
// seconds (none when 0), from a .spec written here, into `dir`; returns its path.
std::filesystem::path build_test_package(const std::filesystem::path& dir, const TestPackage& p) {
    const auto top = dir / ("build-" + p.name);
    for (const char* d : {"SOURCES", "SPECS", "BUILD", "RPMS", "SRPMS"})
        std::filesystem::create_directories(top / d);
    const auto spec = top / "SPECS" / (p.name + ".spec");
    {
        std::ofstream out(spec);
        out << "Name: " << p.name << "\n";
        if (p.epoch) out << "Epoch: " << *p.epoch << "\n";
        out << "Version: " << p.version << "\nRelease: " << p.release << "\nSummary: a package built by the tests\n"
            << "License: MIT\nBuildArch: " << p.arch << "\n";
        for (const auto& r : p.requires_) out << "Requires: " << r << "\n";
        for (const auto& provide : p.provides) out << "Provides: " << provide << "\n";
        out << "\n%description\nBuilt by the tests.\n\n";
        if (p.pre_sleep_s > 0)
            out << "%pre -p <lua>\nposix.sleep(" << p.pre_sleep_s << ")\n\n";
        out << "%files\n";
    }
    run_ok({"rpmbuild", p.source ? "-bs" : "-bb", "--quiet", "--define", "_topdir " + top.string(), "--define",
                  "_dbpath /var/lib/rpm", "--define", "_build_id_links none", spec.string()});
    const std::string file =
        p.name + "-" + p.version + "-" + p.release + "." + (p.source ? std::string("src") : p.arch) + ".rpm";
    const auto rpm = p.source ? top / "SRPMS" / file : top / "RPMS" / p.arch / file;
    if (!std::filesystem::exists(rpm))
        throw std::runtime_error("rpmbuild made no " + rpm.string());
    const auto out = dir / file;
    std::filesystem::copy_file(rpm, out);
    return out;
}

std::filesystem::path build_sleeping_package(const std::filesystem::path& dir, const std::string& name, int sleep_s) {
    TestPackage p;
    p.name = name;
    p.pre_sleep_s = sleep_s;
    return build_test_package(dir, p);
}

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
    if (fd >= 0) ::close(fd);
    if (!ok) throw std::runtime_error("cannot find a free port");
    return ntohs(a.sin_port);
}

} // namespace leo::test
