#include "leo/installer/dry_run.hpp"

#include "leo/common/archive.hpp"
#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/log.hpp"
#include "leo/common/process_info.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/signals.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/cluster.hpp"
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
#include <ctime>
#include <regex>

#include <sys/stat.h>
#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

/// Prefix of the private dump directories: "leo-dry-run.PID." then mkdtemp's six characters.
constexpr const char* k_dump_dir_prefix = "leo-dry-run.";

/// Conninfos of the broker database, of the server's maintenance database and of the
/// scratch copy, and the role that owns the copy.
struct Server {
    std::string source;
    std::string admin;
    std::string scratch;
    std::string owner;
};

enum class StartDatabase { no, yes };

/// nullopt when the internal database is not running and `start` is no.
std::optional<Server> server_for(const stdfs::path& root, const std::string& scratch, StartDatabase start) {
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
    if (db.status().state != migrations::DbState::running) {
        if (start == StartDatabase::no) return std::nullopt;
        db.start();
    }
    s.source = db.conninfo();
    s.admin = db.conninfo("postgres");
    s.scratch = db.conninfo(scratch);
    s.owner = "leo";
    return s;
}

std::string temp_parent() {
    const char* tmp = std::getenv("TMPDIR");
    return tmp != nullptr && *tmp == '/' ? tmp : "/tmp";
}

/// 8 hex digits of sha256(member_id(root)): this broker's part of its copies' names.
std::string member_hash(const stdfs::path& root) { return crypto::digest_hex("sha256", member_id(root)).substr(0, 8); }

/// Whether the process `pid` runs and (when `start` is known) is the one started then
/// (a pid reused by another process is not the owner).
bool owner_alive(pid_t pid, std::optional<std::int64_t> start) {
    if (pid <= 0) return false;
    const auto p = proc::read_process(pid);
    if (!p || !p->running()) return false;
    if (start && p->start_time && *p->start_time != *start) return false;
    return true;
}

std::string this_comment(const stdfs::path& root) {
    const auto self = proc::read_process(::getpid());
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return fmt::format("{}host={}; pid={}; start={}; member={}; time={}", k_dry_run_comment_prefix,
                       migrations::host_name(), ::getpid(),
                       self && self->start_time ? std::to_string(*self->start_time) : std::string("unknown"),
                       member_id(root), when);
}

/// Drops the copy at the end of its scope (every exit path but SIGKILL).
class CopyGuard {
public:
    CopyGuard(std::string admin, std::string name) : m_admin(std::move(admin)), m_name(std::move(name)) {}
    ~CopyGuard() {
        try {
            auto admin = migrations::Connection::open(m_admin);
            migrations::drop_database(admin, m_name);
        } catch (const std::exception& e) {
            log::warning("dry run: could not drop the throw-away copy {}: {}; the next dry run drops it", m_name,
                         describe(e));
        }
    }
    CopyGuard(const CopyGuard&) = delete;
    CopyGuard& operator=(const CopyGuard&) = delete;

private:
    std::string m_admin;
    std::string m_name;
};

/// Throw leo::InterruptedError when a signal arrived during the dry run (the guards then
/// drop the copy and remove the dump on the way out).
void stop_if_signalled(const std::string& copy) {
    if (const int sig = signals::pending())
        throw InterruptedError(fmt::format("dry run interrupted by {}: its throw-away copy {} is dropped and its dump "
                                           "removed; nothing was changed",
                                           signals::name(sig), copy),
                               sig);
}

/// The stale dry-run copies on the server of `root` (see stale_dry_run_leftovers).
void stale_copies(const stdfs::path& root, StaleAction action, std::vector<std::string>& out) {
    const auto server = server_for(root, "postgres", StartDatabase::no);
    if (!server) return;
    auto admin = migrations::Connection::open(server->admin);
    const auto rows = admin.query(
        "SELECT datname::text, pg_catalog.shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database "
        "WHERE datname LIKE $1 ORDER BY datname",
        {std::string(k_dry_run_copy_prefix) + "%"});
    const std::string host = migrations::host_name();
    const std::string ours = std::string(k_dry_run_copy_prefix) + member_hash(root) + "_";
    static const std::regex k_comment("host=([^;]*); pid=([0-9]+); start=([0-9]+|unknown);");
    for (size_t r = 0; r < rows.rows.size(); ++r) {
        const std::string name = rows.at(r, 0);
        const std::string comment = rows.rows[r][1].value_or("");
        pid_t pid = 0;
        std::optional<std::int64_t> start;
        std::smatch m;
        // Only this broker's own copies (its member hash in the name): another broker on a
        // host of the same name (a container, a cloned VM) has processes ours cannot see.
        if (name.rfind(ours, 0) != 0) continue;
        if (comment.rfind(k_dry_run_comment_prefix, 0) == 0 && std::regex_search(comment, m, k_comment)) {
            if (m[1].str() != host) continue;  // another host's: its processes are not ours to judge
            pid = static_cast<pid_t>(std::stol(m[2].str()));
            if (m[3].str() != "unknown") start = std::stoll(m[3].str());
        } else if (name.rfind(ours, 0) == 0 && name.size() > ours.size() &&
                   name.find_first_not_of("0123456789", ours.size()) == std::string::npos) {
            // Killed between CREATE DATABASE and its COMMENT: the name says whose it is.
            pid = static_cast<pid_t>(std::stol(name.substr(ours.size())));
        } else {
            continue;
        }
        if (pid == ::getpid() || owner_alive(pid, start)) continue;
        const std::string what = fmt::format("the throw-away copy {} of a dry run (pid {} on {}), which has ended",
                                             name, pid, host);
        if (action == StaleAction::list) {
            out.push_back("stale: " + what);
            continue;
        }
        try {
            migrations::drop_database(admin, name);
            out.push_back("dropped " + what);
        } catch (const std::exception& e) {
            out.push_back(fmt::format("could not drop {}: {}", what, describe(e)));
        }
    }
}

/// The stale dump directories "leo-dry-run.PID.XXXXXX" of ours under the temporary directory.
void stale_dump_dirs(StaleAction action, std::vector<std::string>& out) {
    const stdfs::path parent = temp_parent();
    const fs::SystemRoot host("/");
    for (const auto& name : host.list(parent)) {
        if (name.rfind(k_dump_dir_prefix, 0) != 0) continue;
        const auto rest = name.substr(std::string(k_dump_dir_prefix).size());
        const auto dot = rest.find('.');
        if (dot == std::string::npos || dot == 0 || rest.find_first_not_of("0123456789") != dot) continue;
        const auto pid = static_cast<pid_t>(std::stol(rest.substr(0, dot)));
        const auto st = host.lstat(parent / name);
        // Only our own private directories (never a link, nothing another user made).
        if (!st || !S_ISDIR(st->st_mode) || st->st_uid != ::geteuid() || (st->st_mode & 077) != 0) continue;
        if (pid == ::getpid() || owner_alive(pid, std::nullopt)) continue;
        const std::string what = fmt::format("the dump directory {} of a dry run (pid {}), which has ended",
                                             (parent / name).string(), pid);
        if (action == StaleAction::list) {
            out.push_back("stale: " + what);
            continue;
        }
        try {
            (void)host.remove_all(parent / name);
            out.push_back("removed " + what);
        } catch (const std::exception& e) {
            out.push_back(fmt::format("could not remove {}: {}", what, describe(e)));
        }
    }
}

} // namespace

std::string dry_run_copy_name(const stdfs::path& root) {
    return fmt::format("{}{}_{}", k_dry_run_copy_prefix, member_hash(root), ::getpid());
}

std::vector<std::string> stale_dry_run_leftovers(const stdfs::path& root, StaleAction action) {
    std::vector<std::string> out;
    try {
        stale_copies(root, action, out);
    } catch (const std::exception& e) {
        out.push_back(fmt::format("the database server could not be searched for stale dry-run copies: {}",
                                  describe(e)));
    }
    try {
        stale_dump_dirs(action, out);
    } catch (const std::exception& e) {
        out.push_back(fmt::format("{} could not be searched for stale dry-run dumps: {}", temp_parent(), describe(e)));
    }
    return out;
}

MigrationTrial try_migrations_on_copy(const stdfs::path& root, const stdfs::path& package_file,
                                      const std::string& broker_version) {
    // A signal ends the current step, then the copy is dropped and the dump removed.
    const signals::Deferred deferred("stopping the dry run: dropping its throw-away copy; please wait");
    MigrationTrial trial;
    trial.copy_name = dry_run_copy_name(root);
    trial.cleaned_up = stale_dry_run_leftovers(root, StaleAction::remove);
    for (const auto& line : trial.cleaned_up) log::info("dry run: {}", line);
    const fs::PrivateTempDir work(temp_parent(), fmt::format("{}{}.", k_dump_dir_prefix, ::getpid()));
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
    const Server server = *server_for(root, trial.copy_name, StartDatabase::yes);
    const stdfs::path dump = work.path() / "broker.dump";
    const auto no_copy = [&](const std::string& what) {
        return InstallError(fmt::format("dry run: no throw-away copy of the broker database could be made ({}); the "
                                        "dry run runs the migrations of {} in such a copy and cannot say whether "
                                        "they work without one: the broker's database role needs CREATEDB on the "
                                        "database server (ALTER ROLE ... CREATEDB) and room for a copy; nothing "
                                        "was changed",
                                        what, package_file.filename().string()));
    };
    try {
        migrations::dump_database(server.source, dump);
    } catch (const Error&) {
        std::throw_with_nested(no_copy("the dump of the broker database failed"));
    }
    stop_if_signalled(trial.copy_name);
    std::optional<CopyGuard> guard;
    try {
        guard.emplace(server.admin, trial.copy_name);
        migrations::restore_into_staging(server.admin, server.scratch, trial.copy_name, server.owner, dump,
                                         this_comment(root));
    } catch (const Error&) {
        std::throw_with_nested(no_copy(fmt::format("creating {} failed", trial.copy_name)));
    }
    fault::point("dry_run.after_copy");
    stop_if_signalled(trial.copy_name);
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
    guard.reset();  // dropped now (a failure to drop is logged; the next dry run drops it)
    stop_if_signalled(trial.copy_name);
    if (!failure.empty())
        throw InstallError(fmt::format("the migrations of {} fail on a throw-away copy of the broker database "
                                       "(dropped again; nothing was changed): {}",
                                       package_file.filename().string(), failure));
    log::info("dry run: {} migrations applied to the throw-away copy {} (dropped)", trial.applied.size(),
              trial.copy_name);
    return trial;
}

} // namespace leo::installer
