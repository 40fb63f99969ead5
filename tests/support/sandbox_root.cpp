#include "sandbox_root.hpp"

#include "leo/common/subprocess.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"

namespace leo::test {
namespace stdfs = std::filesystem;

void stop_database(const stdfs::path& root) {
    if (stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid")) {
        (void)run_installer({"db", "stop", "--root", root.string()});
    }
}

void add_support_licence(const stdfs::path& root) {
    leo::migrations::InternalDatabase db(root);
    auto conn = leo::migrations::Connection::open(db.conninfo());
    (void)conn.query("INSERT INTO support_licence (licence_key, customer, expires_on) VALUES ('K-1', 'Acme', "
                     "'2027-12-31')");
}

std::string installed_broker(const stdfs::path& root) {
    return leo::subprocess::last_line(rpm_query(root, "leostream-broker").out);
}

void SandboxRootTest::SetUp() {
    pkgs = test_packages_dir();
    root = tmp.path() / "root";
    make_sandbox_root(root);
}

void SandboxRootTest::TearDown() { stop_database(root); }

} // namespace leo::test
