#include "leo/installer/dry_run.hpp"

#include "leo/common/archive.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/log.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/paths.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/db_copy.hpp"
#include "leo/migrations/db_snapshot.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/migrations/vendor.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

/// Conninfos of the broker database, of the server's maintenance database and of the
/// scratch copy, and the role that owns the copy.
struct Server {
    std::string source;
    std::string admin;
    std::string scratch;
    std::string owner;
};

Server server_for(const stdfs::path& root, const std::string& scratch) {
    Server s;
    const auto config = load_database_config(root);
    if (config.mode == DatabaseMode::external) {
        s.source = external_conninfo(config);
        auto other = config;
        other.external.dbname = "postgres";
        s.admin = external_conninfo(other);
        other.external.dbname = scratch;
        s.scratch = external_conninfo(other);
        s.owner = config.external.username;
        return s;
    }
    migrations::InternalDatabase db(root);
    if (db.status().state != migrations::DbState::running) db.start();
    s.source = db.conninfo();
    s.admin = db.conninfo("postgres");
    s.scratch = db.conninfo(scratch);
    s.owner = "leo";
    return s;
}

} // namespace

MigrationTrial try_migrations_on_copy(const stdfs::path& root, const stdfs::path& package_file,
                                      const std::string& broker_version) {
    MigrationTrial trial;
    trial.copy_name = fmt::format("leo_dryrun_{}", ::getpid());
    const char* tmp = std::getenv("TMPDIR");
    const fs::PrivateTempDir work(tmp != nullptr && *tmp == '/' ? tmp : "/tmp", "leo-dry-run.");
    // The package's migrations, from its payload (cpio entries "./home/leo/share/migrations/V*.sql").
    const fs::SystemRoot scratch(work.path());  // a private 0700 directory of ours
    scratch.make_dirs("/migrations", 0700);
    const stdfs::path sql_dir = scratch.host("/migrations");
    const std::string prefix = std::string(".") + k_migrations_dir + "/";
    for (const auto& [name, content] : archive::regular_file_contents(package_file, 256u << 20)) {
        std::string n = name.rfind("./", 0) == 0 ? name : "./" + (name.rfind('/', 0) == 0 ? name.substr(1) : name);
        if (n.rfind(prefix, 0) != 0) continue;
        const std::string file = n.substr(prefix.size());
        if (file.empty() || file.find('/') != std::string::npos) continue;
        if (file == "." || file == "..") continue;
        scratch.write_atomic(stdfs::path("/migrations") / file, content, 0600);
    }
    const auto migrations = migrations::load_migrations(sql_dir);
    const Server server = server_for(root, trial.copy_name);
    const stdfs::path dump = work.path() / "broker.dump";
    migrations::dump_database(server.source, dump);
    try {
        migrations::restore_into_staging(server.admin, server.scratch, trial.copy_name, server.owner, dump);
    } catch (const DatabaseError& e) {
        trial.why_not = fmt::format("no throw-away copy could be made on the database server ({})", e.what());
        return trial;
    }
    trial.ran = true;
    std::string failure;
    try {
        auto conn = migrations::Connection::open(server.scratch);
        migrations::MigrateOptions options;
        options.allow_remote_upgrade = migrations::AllowRemoteUpgrade::yes;  // a copy: always ours to migrate
        auto result = migrations::migrate(conn, migrations, broker_version, options);
        trial.applied = result.applied;
        trial.schema_after = result.schema_after;
    } catch (const std::exception& e) {
        failure = describe(e);
    }
    try {
        auto admin = migrations::Connection::open(server.admin);
        migrations::drop_database(admin, trial.copy_name);
    } catch (const std::exception& e) {
        log::warning("dry run: could not drop the throw-away copy {}: {}", trial.copy_name, describe(e));
    }
    if (!failure.empty())
        throw InstallError(fmt::format("the migrations of {} fail on a throw-away copy of the broker database "
                                       "(dropped again; nothing was changed): {}",
                                       package_file.filename().string(), failure));
    log::info("dry run: {} migrations applied to the throw-away copy {} (dropped)", trial.applied.size(),
              trial.copy_name);
    return trial;
}

} // namespace leo::installer
