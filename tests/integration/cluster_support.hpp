#pragma once
// The fixture of the cluster tests (test_cluster.cpp, test_hooks_cluster.cpp): brokers on
// 9.0.7 in sandbox roots, joined by switch_database.pl to one shared database (leo_cluster)
// on an external PostgreSQL the test starts (TCP on 127.0.0.1, scram-sha-256).
#include "db_support.hpp"
#include "test_support.hpp"

#include "leo/migrations/connection.hpp"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace leo::test::cluster {
namespace stdfs = std::filesystem;
using leo::test::run_installer;

inline constexpr const char* k_password = "cluster-secret";
inline constexpr const char* k_old = "leostream-broker-9.0.7-1.x86_64";
inline constexpr const char* k_new = "leostream-broker-9.1.2-1.x86_64";

class Cluster : public ::testing::Test {
protected:
    void SetUp() override {
        ext = std::make_unique<leo::test::ExternalPostgres>();
        ext->create_role("broker", k_password, true);
        std::ofstream(password_file) << k_password << "\n";
    }
    void TearDown() override {
        for (const auto& r : roots) (void)run_installer({"db", "stop", "--root", r.string()});
    }

    /// A broker root on 9.0.7 that joined the shared database leo_cluster with `site`.
    stdfs::path add_broker(int site, const std::string& installer_conf = "", bool snapshot_before_joining = false) {
        const auto root = tmp.path() / ("b" + std::to_string(site));
        roots.push_back(root);
        leo::test::make_sandbox_root(root);
        const auto pkgs = leo::test::test_packages_dir();
        auto r = run_installer({"install", "--rpm", (pkgs / "repo" / (std::string(k_old) + ".rpm")).string(), "--root",
                                root.string(), "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y"});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        if (snapshot_before_joining) {
            auto snap = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
            EXPECT_EQ(snap.exit_code, 0) << snap.err;
        }
        if (!installer_conf.empty()) {
            stdfs::create_directories(root / "etc/leo-installer");
            std::ofstream(root / "etc/leo-installer/installer.conf") << installer_conf;
        }
        const std::vector<std::string> argv{(root / "usr/bin/switch_database.pl").string(),
                                            "--root",
                                            root.string(),
                                            "--to_external",
                                            roots.size() == 1 ? "new" : "existing",
                                            "--db_vendor",
                                            "postgres",
                                            "--db_host",
                                            "127.0.0.1",
                                            "--port",
                                            std::to_string(ext->port()),
                                            "--db_name",
                                            "leo_cluster",
                                            "--username",
                                            "broker",
                                            "--password_file",
                                            password_file.string(),
                                            "--site_id",
                                            std::to_string(site),
                                            "--skip_confirmation"};
        auto s = leo::subprocess::run(argv);
        EXPECT_EQ(s.exit_code, 0) << s.out << s.err;
        (void)run_installer({"db", "stop", "--root", root.string()});
        return root;
    }
    leo::migrations::Connection shared() const {
        return leo::migrations::Connection::open(ext->conninfo("leo_cluster", "broker", k_password));
    }
    std::vector<std::string> upgrade_args(const stdfs::path& root, bool allow_remote) const {
        const auto pkgs = leo::test::test_packages_dir();
        std::vector<std::string> a{"upgrade", "--root", root.string(), "--rpm",
                                   (pkgs / "repo" / (std::string(k_new) + ".rpm")).string(), "--gpgkey",
                                   (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y", "--lease-wait", "120"};
        if (allow_remote) a.push_back("--allow-remote-upgrade");
        return a;
    }
    static std::string installed(const stdfs::path& root) {
        auto r = leo::subprocess::run({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-q",
                                       "leostream-broker"});
        return leo::subprocess::last_line(r.out);
    }

    leo::test::TempDir tmp;
    std::unique_ptr<leo::test::ExternalPostgres> ext;
    stdfs::path password_file = tmp.path() / "password";
    std::vector<stdfs::path> roots;
};

} // namespace leo::test::cluster
