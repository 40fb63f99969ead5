// The package file that is verified is the one installed: a package whose path another user
// can change (a directory of theirs) is copied first into ROOT/var/lib/leo-installer/staging
// and only the copy is verified and installed (private_package.hpp). The other user is a
// real unprivileged uid (setpriv) that swaps the file while the run waits between its
// verification and its transaction (a fault point made slow).
#include "test_support.hpp"

#include "leo/installer/private_package.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"

#include <chrono>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {
namespace stdfs = std::filesystem;
using ::testing::HasSubstr;
using leo::test::run_installer;

constexpr uid_t k_stranger = 54321;  ///< a uid with no account anywhere: "another user"

/// Run `script` with /bin/sh as k_stranger.
leo::subprocess::Result as_stranger(const std::string& script) {
    return leo::subprocess::run({"setpriv", "--reuid=" + std::to_string(k_stranger),
                                 "--regid=" + std::to_string(k_stranger), "--clear-groups", "--", "/bin/sh", "-c",
                                 script});
}

void give_to_stranger(const stdfs::path& p) { ASSERT_EQ(::chown(p.c_str(), k_stranger, k_stranger), 0) << p; }

/// `command` (install or upgrade) of the signed `package` from a directory of the stranger's,
/// who swaps in the unsigned 9.1.2 while the run waits at `point` (after the verification,
/// before the transactions). The run must install the signed file it verified.
void swap_during(const std::string& command, const std::string& point, const std::string& package,
                 bool installed_first) {
    leo::test::TempDir tmp;
    const auto root = tmp.path() / "root";
    leo::test::make_sandbox_root(root);
    if (installed_first) leo::test::install_test_broker(root, "leostream-broker-9.0.7-1.x86_64");
    const auto pkgs = leo::test::test_packages_dir();
    const auto drop = tmp.path() / "drop";
    stdfs::create_directory(drop);
    ::chmod(tmp.path().c_str(), 0755);
    give_to_stranger(drop);
    const auto file = drop / (package + ".rpm");
    stdfs::copy_file(pkgs / "repo" / (package + ".rpm"), file);
    stdfs::copy_file(pkgs / "unsigned/leostream-broker-9.1.2-1.x86_64.rpm", drop / "other.rpm");
    give_to_stranger(file);
    give_to_stranger(drop / "other.rpm");
    const std::string signed_sha256 = leo::crypto::file_digest_hex("sha256", pkgs / "repo" / (package + ".rpm"));

    leo::subprocess::Options o;
    const auto reached = tmp.path() / "verified";
    o.env["LEO_FAULT_INJECT"] = point;
    o.env["LEO_FAULT_SLEEP"] = "3";
    o.env["LEO_FAULT_REACHED"] = reached.string();
    leo::subprocess::Result swap;
    std::thread stranger([&] {
        for (int i = 0; i < 2400 && !stdfs::exists(reached); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        swap = as_stranger("mv -f " + (drop / "other.rpm").string() + " " + file.string());
    });
    auto r = run_installer({command, "--rpm", file.string(), "--root", root.string(), "--gpgkey",
                            (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y"},
                           o);
    stranger.join();
    (void)run_installer({"db", "stop", "--root", root.string()});
    ASSERT_TRUE(stdfs::exists(reached)) << r.out << r.err;
    ASSERT_EQ(swap.exit_code, 0) << swap.err;
    ASSERT_NE(leo::crypto::file_digest_hex("sha256", file), signed_sha256) << "the stranger swapped the file";
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr(fmt::format("{} can be changed by another user (its directory {} (owner uid {}, mode "
                                             "0755) can be written by a user other than root): verifying and "
                                             "installing a private copy, {}/",
                                             file.string(), drop.string(), k_stranger,
                                             (root / "var/lib/leo-installer/staging").string())));
    EXPECT_THAT(r.err, HasSubstr("-" + package + ".rpm\n")) << "the copy is named PID-NAME";
    // What rpm installed, and what is kept for rollbacks, is the signed file as verified.
    const auto q = leo::subprocess::run({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-q", "--qf",
                                         "%{NEVRA} %{RSAHEADER:pgpsig}", "leostream-broker"});
    EXPECT_THAT(q.out, HasSubstr(package + " RSA/SHA"));
    EXPECT_EQ(leo::crypto::file_digest_hex("sha256", root / "var/lib/leo-installer/packages" / (package + ".rpm")),
              signed_sha256);
    EXPECT_FALSE(stdfs::exists(root / "var/lib/leo-installer/staging")) << "the private copy is removed";
}

TEST(PackageSwap, AnotherUsersFileSwappedAfterTheVerificationIsNotWhatGetsInstalled) {
    swap_during("install", "install.begin", "leostream-broker-9.0.7-1.x86_64", false);
}

TEST(PackageSwap, AnotherUsersFileSwappedBeforeTheUpgradesTransactionIsNotWhatGetsInstalled) {
    swap_during("upgrade", "upgrade.before_transaction", "leostream-broker-9.2.0-1.x86_64", true);
}

TEST(PackageSwap, ARootOwnedFileInRootOwnedDirectoriesIsUsedInPlace) {
    leo::test::TempDir tmp;
    const auto dir = tmp.path() / "pkgs";
    stdfs::create_directory(dir);
    ::chmod(dir.c_str(), 0755);
    const auto f = dir / "p.rpm";
    std::ofstream(f) << "x";
    ::chmod(f.c_str(), 0644);
    EXPECT_EQ(leo::installer::changeable_by_others(f), "");
    // Sticky (as /tmp): a root-owned entry cannot be renamed by another user.
    ::chmod(dir.c_str(), 01777);
    EXPECT_EQ(leo::installer::changeable_by_others(f), "");
    // Not sticky, or the entry another user's, or the file writable by the group: changeable.
    ::chmod(dir.c_str(), 0777);
    EXPECT_THAT(leo::installer::changeable_by_others(f),
                HasSubstr(fmt::format("its directory {} (owner uid 0, mode 0777)", dir.string())));
    ::chmod(dir.c_str(), 01777);
    ASSERT_EQ(::chown(f.c_str(), k_stranger, k_stranger), 0);
    EXPECT_THAT(leo::installer::changeable_by_others(f),
                HasSubstr(fmt::format("its directory {} (owner uid 0, mode 1777)", dir.string())));
    ::chmod(dir.c_str(), 0755);
    EXPECT_THAT(leo::installer::changeable_by_others(f),
                HasSubstr(fmt::format("{} (owner uid {}, mode 0644)", f.string(), k_stranger)));
    ASSERT_EQ(::chown(f.c_str(), 0, 0), 0);
    ::chmod(f.c_str(), 0664);
    EXPECT_THAT(leo::installer::changeable_by_others(f), HasSubstr("mode 0664"));
    // A link is judged by what it resolves to.
    ::chmod(f.c_str(), 0644);
    const auto other = tmp.path() / "theirs";
    stdfs::create_directory(other);
    give_to_stranger(other);
    stdfs::create_symlink(f, other / "link.rpm");
    EXPECT_EQ(leo::installer::changeable_by_others(other / "link.rpm"), "");
    EXPECT_EQ(leo::installer::changeable_by_others(dir / "missing.rpm"), "") << "the verification says it is missing";
    // Missing where another user could make it: changeable (it could appear after the check).
    EXPECT_THAT(leo::installer::changeable_by_others(other / "later.rpm"),
                HasSubstr(fmt::format("its directory {} (owner uid {}", other.string(), k_stranger)));
}

TEST(PackageSwap, NoPrivateCopyIsMadeWhereAnotherUserCouldReachItAndNoneOverOneGiB) {
    leo::test::TempDir tmp;
    ::chmod(tmp.path().c_str(), 0755);
    const auto theirs = tmp.path() / "theirs";
    stdfs::create_directory(theirs);
    give_to_stranger(theirs);
    const auto file = theirs / "p.rpm";
    std::ofstream(file) << "x";
    // ROOT/var is theirs and ROOT/var/lib missing: they could make the staging directory.
    const auto root = tmp.path() / "root";
    stdfs::create_directories(root / "var");
    give_to_stranger(root / "var");
    try {
        leo::installer::PrivatePackage p(root, file);
        FAIL() << "a copy was made at " << p.path();
    } catch (const leo::InstallError& e) {
        EXPECT_THAT(e.what(), HasSubstr(fmt::format("no private copy of it can be made under {}: its directory {} "
                                                    "(owner uid {}",
                                                    root.string(), (root / "var").string(), k_stranger)));
    }
    EXPECT_FALSE(stdfs::exists(root / "var/lib"));
    // A file over 1 GiB (sparse: nothing is read) is refused naming both sizes, nothing left.
    ASSERT_EQ(::chown((root / "var").c_str(), 0, 0), 0);
    ASSERT_EQ(::truncate(file.c_str(), (off_t{1} << 30) + 1), 0);
    try {
        leo::installer::PrivatePackage p(root, file);
        FAIL() << "a copy was made at " << p.path();
    } catch (const leo::SystemError& e) {
        EXPECT_THAT(e.what(), HasSubstr(fmt::format("{} is 1073741825 bytes, more than the 1073741824 bytes",
                                                    file.string())));
    }
    EXPECT_FALSE(stdfs::exists(root / "var/lib/leo-installer")) << "what it made is removed";
}

/// mkdir -p of `chain` ("d1/d2/...") below the directory `from` (a descriptor), one
/// component at a time (each call's path stays short); returns a descriptor of the last.
int make_chain(int from, const std::string& chain) {
    int parent = ::dup(from);
    std::size_t start = 0;
    while (parent >= 0) {
        const auto slash = chain.find('/', start);
        const std::string name = chain.substr(start, slash - start);
        ::mkdirat(parent, name.c_str(), 0755);
        const int next = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ::close(parent);
        parent = next;
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    return parent;
}

TEST(PackageSwap, APathThatCannotBeResolvedIsJudgedChangeable) {
    // Links that resolve past PATH_MAX: canonical() fails while open() still walks the short
    // path; such a path must not pass as safe (the copy is made from what open() reaches).
    leo::test::TempDir tmp;
    const int base = ::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(base, 0);
    std::string a;
    std::string b;
    for (int i = 0; i < 10; ++i) {
        a += (i ? "/" : "") + std::string(250, 'a') + std::to_string(i);
        b += (i ? "/" : "") + std::string(250, 'b') + std::to_string(i);
    }
    const int in_a = make_chain(base, a);
    ASSERT_GE(in_a, 0);
    const int in_b = make_chain(in_a, b);
    ASSERT_GE(in_b, 0);
    const int f = ::openat(in_b, "pkg.rpm", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(f, 0);
    ::close(f);
    ASSERT_EQ(::symlinkat(a.c_str(), base, "s1"), 0);
    ASSERT_EQ(::symlinkat(b.c_str(), in_a, "s2"), 0);
    for (const int fd : {in_b, in_a, base}) ::close(fd);
    const auto link = tmp.path() / "s1/s2/pkg.rpm";
    ASSERT_EQ(::access(link.c_str(), R_OK), 0) << "the kernel reaches it";
    EXPECT_THAT(leo::installer::changeable_by_others(link), HasSubstr("it cannot be resolved"));
}

} // namespace
