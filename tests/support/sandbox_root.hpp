#pragma once
/// The gtest fixture of the tests that run the real binary on a sandbox root, and what
/// those tests do to such a root (the internal database, the installed broker).

#include "test_support.hpp"

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace leo::test {

/// `leo-installer db stop --root ROOT` when ROOT's internal database is running (its
/// home/leo/pgsql/data/postmaster.pid exists); its result is not checked (a tear-down).
void stop_database(const std::filesystem::path& root);

/// A valid support licence ('K-1', Acme, until 2027-12-31) in ROOT's internal database,
/// which must be running: the upgrade's licence gate passes. Throws leo::DbError.
void add_support_licence(const std::filesystem::path& root);

/// The NEVRA of the broker installed in `root` ("leostream-broker-9.0.7-1.x86_64"): the
/// last line of `rpm -q leostream-broker` (its "not installed" line when none is).
std::string installed_broker(const std::filesystem::path& root);

/// A fixture: `root` = a sandbox root (make_sandbox_root, centos7) in a fresh TempDir,
/// `pkgs` = test_packages_dir(); at the end the root's internal database is stopped
/// when a test started it. Fixtures deriving from it call SandboxRootTest::SetUp() first.
class SandboxRootTest : public ::testing::Test {
protected:
    void SetUp() override;
    void TearDown() override;

    /// installed_broker(root).
    std::string installed() const { return installed_broker(root); }
    /// The test packages' signing key (armored), outside the root.
    std::filesystem::path key() const { return pkgs / "RPM-GPG-KEY-leo-test"; }

    TempDir tmp;
    std::filesystem::path pkgs;
    std::filesystem::path root;
};

} // namespace leo::test
