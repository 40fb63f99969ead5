#pragma once
/// Shared test support: temporary directories, sandbox roots, the broker RPM, the CLI.

#include "leo/common/subprocess.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <sys/types.h>

#include <nlohmann/json.hpp>

namespace leo::test {

/// The project's source directory and the public fixtures (tests/fixtures/public).
std::filesystem::path source_dir();
std::filesystem::path fixtures_dir();

/// A directory under $TMPDIR (or /tmp) removed with everything in it on destruction.
/// Short names: PostgreSQL socket paths must stay under 108 bytes.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::filesystem::path& path() const { return m_path; }

private:
    std::filesystem::path m_path;
};

/// scripts/make-sandbox-root.sh DIR --os OS; fails the test (throws) on error.
void make_sandbox_root(const std::filesystem::path& root, const std::string& os = "centos7");
/// groupadd --root + useradd --root: system user leo, home /home/leo (created, 0755).
void create_leo_user(const std::filesystem::path& root);

/// The permission bits (07777) and the owner of `p` itself (lstat: a link is not followed);
/// a failed lstat is a test failure.
mode_t mode_of(const std::filesystem::path& p);
uid_t owner_of(const std::filesystem::path& p);
/// The whole file, "" when it cannot be read.
std::string slurp(const std::filesystem::path& p);

/// Run a command; throws std::runtime_error with its output when it exits non-zero.
std::string run_ok(const std::vector<std::string>& argv);
/// `leo-installer status --json --root ROOT`, parsed (a discarded value when its output is
/// not JSON); `exit_code`, when given, receives its exit status.
nlohmann::json status_json(const std::filesystem::path& root, int* exit_code = nullptr);
/// A saved `facts --json` of the host seen through `root` with MemTotal set to `kib` and
/// the installed memory unknown (so MemTotal alone decides the RAM checks), written as
/// DIR/facts-KIB.json; its path. The --facts input of the rest-api preflight in tests.
std::filesystem::path facts_with_memory(const std::filesystem::path& root, const std::filesystem::path& dir,
                                        std::uint64_t kib);
/// Run the built leo-installer binary with `args`.
subprocess::Result run_installer(const std::vector<std::string>& args,
                                 const subprocess::Options& options = {});

/// Build the broker RPM of `version` into `outdir` (scripts/build-broker-rpm.sh) and
/// return its path. With a non-empty `gnupghome`/`key_name` it is signed. `env`: the
/// script's options (EXTRA_MIGRATIONS, EPOCH, ...: see its usage).
std::filesystem::path build_broker_rpm(const std::string& version, const std::filesystem::path& outdir,
                                       const std::filesystem::path& gnupghome = {},
                                       const std::string& key_name = {},
                                       const std::map<std::string, std::string>& env = {});
/// A package with no files the tests build at run time (no built RPM is committed).
struct TestPackage {
    std::string name;
    std::optional<unsigned> epoch;
    std::string version = "1";
    std::string release = "1";
    std::string arch = "noarch";
    int pre_sleep_s = 0;  ///< its %pre (Lua) sleeps that long; none when 0
    bool source = false;  ///< the source package (rpmbuild -bs: NAME-VERSION-RELEASE.src.rpm)
    std::vector<std::string> requires_;  ///< its Requires: lines
    std::vector<std::string> provides;  ///< "Provides:" lines ("system-release(releasever) = 7")
};
/// Build `p` with rpmbuild from a .spec written here, into `dir`; returns the RPM's path
/// (NAME-VERSION-RELEASE.ARCH.rpm, or .src.rpm for a source package).
std::filesystem::path build_test_package(const std::filesystem::path& dir, const TestPackage& p);

/// Build a noarch package `name`-1-1 with no files whose %pre (Lua: no shell needed in the
/// root) sleeps `sleep_s` seconds (none when 0), from a .spec written here, into `dir`;
/// returns its path. Installed by a background `rpm -i`, it holds rpm's transaction lock
/// that long: an administrator's second rpm transaction.
std::filesystem::path build_sleeping_package(const std::filesystem::path& dir, const std::string& name, int sleep_s);

/// A throwaway signing key: returns the armored public key file in `dir`.
std::filesystem::path make_signing_key(const std::filesystem::path& dir, const std::string& name);

/// Recursive listing of everything under `dir`, sorted, to assert that nothing changed:
/// "relative-path size mode mtime" for files, "relative-path/ mode" for directories
/// (their mtimes follow their entries, which are listed). Paths starting with one of
/// `exclude` are left out (by default var/log: the installer's log records refusals).
std::string snapshot_tree(const std::filesystem::path& dir, const std::vector<std::string>& exclude = {"var/log"});

/// `rpm --root ROOT --dbpath /var/lib/rpm -q NAME` (stdout; "" with the exit code
/// non-zero when not installed).
subprocess::Result rpm_query(const std::filesystem::path& root, const std::string& name);

/// The packages of scripts/build-test-packages.sh: $LEO_TEST_PACKAGES (set by ctest's
/// build_test_packages fixture), or built once per process into a temporary directory.
std::filesystem::path test_packages_dir();

/// Install the signed test package `nevra` ("leostream-broker-9.0.7-1.x86_64") from
/// test_packages_dir()/repo into `root` with the test key; throws std::runtime_error with
/// the output when it fails.
void install_test_broker(const std::filesystem::path& root, const std::string& nevra);
/// Copy the armored key file `key` into ROOT/etc/pki/rpm-gpg/ (where CentOS keeps its
/// keys) and return its gpgkey= value "file:///etc/pki/rpm-gpg/NAME": gpgkey file paths
/// are read inside the root, as yum reads them in an installroot.
std::string key_in_root(const std::filesystem::path& root, const std::filesystem::path& key);
/// ROOT/etc/yum.repos.d/leo.repo: the test packages' repository (file://), gpgcheck on,
/// its key as gpgkey (the newest there is 9.2.0).
void write_file_repo(const std::filesystem::path& root);

/// md5 of every table of the broker database in `root` (the internal database, which
/// must be running): "table=rows:md5" lines, to compare before and after.
std::string table_checksums(const std::filesystem::path& root);

/// A TCP port of 127.0.0.1 nothing listens on now (the kernel's choice for port 0).
/// Throws std::runtime_error when none can be found.
int free_port();

} // namespace leo::test
