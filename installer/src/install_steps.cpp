// Steps that install, upgrade and the rpm hooks share (install_steps.hpp).
#include "install_steps.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/paths.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"

#include <fmt/format.h>

#include <sys/stat.h>

namespace leo::installer::install_steps {
namespace stdfs = std::filesystem;

/// The root must look like an OS root, and /home/leo must be a place the broker and
/// its database can live: checked before anything changes.
void check_root_layout(const stdfs::path& root, bool with_database) {
    for (const char* f : {"etc/passwd", "etc/group"}) {
        std::error_code ec;
        if (!stdfs::is_regular_file(root / f, ec))
            throw InstallError(fmt::format("{} does not look like an operating system root: {} is missing; "
                                           "give the root of an installed CentOS/RHEL 7 system with --root",
                                           root.string(), (root / f).string()));
    }
    const fs::SystemRoot sr(root);
    const auto home = sr.host(k_home);
    std::error_code ec;
    const auto home_st = sr.lstat(k_home);
    if (home_st && S_ISLNK(home_st->st_mode))
        throw InstallError(fmt::format("{} is a symbolic link (to {}); the broker must live in a real {} directory "
                                       "(its location cannot change): replace the link with a directory",
                                       home.string(), stdfs::read_symlink(home, ec).string(), k_home));
    if (home_st && !S_ISDIR(home_st->st_mode))
        throw InstallError(fmt::format("{} exists and is not a directory; move it away", home.string()));
    if (!with_database) return;
    // initdb runs the server through /bin/sh with these paths: the one rule of migrations/.
    migrations::check_root_for_postgres(root);
    // Every directory above /home/leo must be searchable by others: PostgreSQL runs as
    // leo, which owns none of them (PITFALLS).
    for (stdfs::path p = home.parent_path();; p = p.parent_path()) {
        struct stat st {};
        if (::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0)
            throw InstallError(fmt::format(
                "the internal database runs as user leo, which cannot traverse {} (mode {:04o}); "
                "make it searchable (chmod o+x {}) and run the install again",
                p.string(), st.st_mode & 07777, p.string()));
        if (p == p.root_path() || p.empty()) break;
    }
}

DatabaseStepResult internal_database_step(const stdfs::path& root, const std::string& broker_version,
                                          const std::function<void(const std::string&)>& on_step) {
    auto say = [&on_step](const std::string& s) {
        if (on_step) on_step(s);
    };
    DatabaseStepResult out;
    migrations::InternalDatabase db(root);
    db.check_prerequisites();
    if (db.status().state == migrations::DbState::not_initialised)
        say(fmt::format("initialising the internal database in {}", db.data_dir().string()));
    out.initialised = db.init();
    fault::point("install.after_database_init");
    say("starting the internal database");
    db.start(say);
    auto conn = migrations::Connection::open(db.conninfo());
    const auto files = migrations::load_migrations(fs::SystemRoot(root).checked_host(k_migrations_dir));
    say(fmt::format("applying database migrations ({} shipped)", files.size()));
    auto result = migrations::migrate(conn, files, broker_version);
    out.applied = result.applied;
    out.schema_version = result.schema_after;
    return out;
}

} // namespace leo::installer::install_steps
