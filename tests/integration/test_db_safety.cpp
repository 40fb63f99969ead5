// Integration tests of the internal database's safety as root (issue "Safe as root"):
// the leo account cannot turn `db init` into a chown/chmod of another directory, a root
// path cannot smuggle shell code into initdb's popen(), the server is started and stopped
// without pg_ctl, and a stale postmaster.pid never makes us believe in (or signal) an
// unrelated process. The attacks run as a real unprivileged uid (setpriv).
#include "leo/common/accounts.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/migrations/internal_db.hpp"

#include "db_support.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <csignal>
#include <fstream>
#include <utility>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace leo::migrations {
namespace {

namespace stdfs = std::filesystem;

struct Ownership {
    uid_t uid;
    gid_t gid;
    mode_t mode;
    bool operator==(const Ownership&) const = default;
};

Ownership ownership(const stdfs::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) throw std::runtime_error("cannot stat " + p.string());
    return {st.st_uid, st.st_gid, st.st_mode & 07777};
}

std::string describe(const subprocess::Result& r) {
    return fmt::format("exit {}\nstdout: {}\nstderr: {}", r.exit_code, r.out, r.err);
}

class DbSafetyTest : public test::SandboxDatabaseTest {
protected:
    void SetUp() override {
        SandboxDatabaseTest::SetUp();
        const auto user = accounts::find_user(m_root, "leo");
        ASSERT_TRUE(user);
        m_leo = *user;
        // As on an installed system: leo owns its home.
        ASSERT_EQ(::chown((m_root / "home/leo").c_str(), m_leo.uid, m_leo.gid), 0);
    }
    void TearDown() override {
        // Undo the attacks so that the fixture's stop() sees a real directory again.
        const auto home = m_root / "home/leo";
        for (const auto& [link, real] : {std::pair{home / "pgsql", home / "pgsql.old"},
                                         std::pair{home / "pgsql/data", home / "pgsql/data.real"}}) {
            std::error_code ec;
            if (stdfs::is_symlink(link, ec)) {
                stdfs::remove(link, ec);
                if (stdfs::exists(real, ec)) stdfs::rename(real, link, ec);
            }
        }
        SandboxDatabaseTest::TearDown();
    }
    /// Run `script` with /bin/sh as the sandbox's leo uid (which the host does not know:
    /// setpriv takes the numeric ids), failing the test when it fails.
    void as_leo(const std::string& script) {
        test::run_ok({"setpriv", fmt::format("--reuid={}", m_leo.uid), fmt::format("--regid={}", m_leo.gid),
                      "--clear-groups", "--", "/bin/sh", "-c", script});
    }
    subprocess::Result db(const std::string& action, const stdfs::path& root) {
        return test::run_installer({"db", action, "--root", root.string()});
    }
    accounts::User m_leo;
};

/// leo replaces /home/leo/pgsql with a link to `target`; `db init` as root must refuse,
/// naming the link, and leave the target exactly as it was.
void expect_link_refused(DbSafetyTest& t, const stdfs::path& root, const stdfs::path& target,
                         const std::function<subprocess::Result()>& run) {
    const auto link = root / "home/leo/pgsql";
    const auto before = ownership(target);
    const auto tree = test::snapshot_tree(target);
    const auto r = run();
    EXPECT_NE(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.err.find(link.string()), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << describe(r);
    EXPECT_EQ(ownership(target), before) << "owner or mode of " << target << " changed";
    EXPECT_EQ(test::snapshot_tree(target), tree) << "something was created or changed in " << target;
    EXPECT_TRUE(stdfs::is_symlink(link));
    (void)t;
}

TEST_F(DbSafetyTest, InitRefusesPgsqlLinkedToTheRootsEtc) {
    as_leo(fmt::format("ln -s {0}/etc {0}/home/leo/pgsql", m_root.string()));
    expect_link_refused(*this, m_root, m_root / "etc", [&] { return db("init", m_root); });
}

TEST_F(DbSafetyTest, InitRefusesPgsqlLinkedOutsideTheRoot) {
    const auto outside = m_tmp.path() / "outside";
    stdfs::create_directories(outside / "inner");
    ::chmod(outside.c_str(), 0755);
    std::ofstream(outside / "file") << "root's\n";
    as_leo(fmt::format("ln -s {} {}/home/leo/pgsql", outside.string(), m_root.string()));
    expect_link_refused(*this, m_root, outside, [&] { return db("init", m_root); });
}

TEST_F(DbSafetyTest, InitRefusesALinkThatReplacedAnExistingPgsql) {
    ASSERT_TRUE(m_db->init());
    // leo moves the real directory away and leaves a link to /etc: init, start and status
    // refuse it (none follows it as root).
    as_leo(fmt::format("mv {0}/home/leo/pgsql {0}/home/leo/pgsql.old && ln -s {0}/etc {0}/home/leo/pgsql",
                       m_root.string()));
    for (const char* action : {"init", "start", "status"})
        expect_link_refused(*this, m_root, m_root / "etc", [&] { return db(action, m_root); });
}

TEST_F(DbSafetyTest, StartRefusesADataDirectoryLinkedElsewhere) {
    ASSERT_TRUE(m_db->init());
    const auto data = m_db->data_dir();
    const auto before = ownership(m_root / "etc");
    const auto tree = test::snapshot_tree(m_root / "etc");
    as_leo(fmt::format("mv {0} {0}.real && ln -s {1}/etc {0}", data.string(), m_root.string()));
    const auto r = db("start", m_root);
    EXPECT_NE(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.err.find(data.string()), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << describe(r);
    EXPECT_EQ(ownership(m_root / "etc"), before);
    EXPECT_EQ(test::snapshot_tree(m_root / "etc"), tree);
}

// ---- root paths with shell characters: refused by every db command, nothing runs ----

struct OddRoot {
    std::string name;   ///< the last component of the root
    std::string shown;  ///< the character the refusal names
};

TEST_F(DbSafetyTest, RootsWithShellCharactersAreRefusedByEveryDbCommand) {
    const std::string marker = fmt::format("/tmp/pwned-{}", ::getpid());
    stdfs::remove(marker);
    const std::vector<OddRoot> roots = {
        {"r$(touch " + marker + ")", "'$'"},
        {"r a", "' ' (a space)"},
        {"r`touch " + marker + "`", "'`'"},
    };
    for (const auto& odd : roots) {
        const auto root = m_tmp.path() / odd.name;
        test::make_sandbox_root(root);
        // A complete root with leo: only the rule stops the commands.
        for (const char* f : {"etc/passwd", "etc/group"})
            stdfs::copy_file(m_root / f, root / f, stdfs::copy_options::overwrite_existing);
        stdfs::create_directories(root / "home/leo");
        for (const char* action : {"init", "start", "stop", "status"}) {
            const auto r = db(action, root);
            EXPECT_EQ(r.exit_code, 1) << action << " " << odd.name << "\n" << describe(r);
            EXPECT_NE(r.err.find("the root path " + root.string() + " contains " + odd.shown +
                                 ", which a shell would interpret"),
                      std::string::npos)
                << action << " " << odd.name << "\n" << describe(r);
            EXPECT_NE(r.err.find("use a root path without shell characters"), std::string::npos) << describe(r);
            EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line\n" << describe(r);
            EXPECT_FALSE(stdfs::exists(marker)) << action << " " << odd.name << " ran the shell code";
            EXPECT_FALSE(stdfs::exists(root / "home/leo/pgsql")) << action << " " << odd.name;
        }
        // The library refuses as well (install, upgrade and switch_database.pl reach it).
        InternalDatabase db(root);
        EXPECT_THROW(db.init(), DatabaseError);
        EXPECT_THROW((void)db.status(), DatabaseError);
    }
    EXPECT_FALSE(stdfs::exists(marker));
}

// ---- start, stop and status without pg_ctl ----

TEST_F(DbSafetyTest, CliStartStopStatusWorkWithoutPgCtl) {
    // A server directory holding only initdb and postgres: pg_ctl cannot be used.
    const auto bindir = m_tmp.path() / "bin";
    stdfs::create_directories(bindir);
    const auto real = find_pg_bindir();
    for (const char* p : {"initdb", "postgres"}) stdfs::create_symlink(real / p, bindir / p);
    subprocess::Options o;
    o.env["LEO_PG_BINDIR"] = bindir.string();
    const auto run = [&](const std::string& action) {
        return test::run_installer({"db", action, "--root", m_root.string()}, o);
    };
    auto r = run("init");
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    r = run("status");
    EXPECT_EQ(r.exit_code, 3) << describe(r);
    EXPECT_NE(r.out.find("stopped"), std::string::npos) << describe(r);
    r = run("start");
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.out.find("started the internal database"), std::string::npos) << describe(r);
    r = run("status");
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.out.find("running, pid"), std::string::npos) << describe(r);
    const auto st = m_db->status();
    ASSERT_EQ(st.state, DbState::running);
    // The server was started detached: its own session, stdin /dev/null.
    {
        std::ifstream stat("/proc/" + std::to_string(*st.pid) + "/stat");
        std::string line;
        std::getline(stat, line);
        const auto fields = line.substr(line.rfind(')') + 2);
        long ppid = 0, pgrp = 0, session = 0;
        char state = 0;
        ASSERT_EQ(std::sscanf(fields.c_str(), "%c %ld %ld %ld", &state, &ppid, &pgrp, &session), 4) << line;
        EXPECT_EQ(session, *st.pid) << line;
        EXPECT_EQ(stdfs::read_symlink("/proc/" + std::to_string(*st.pid) + "/fd/0"), "/dev/null");
        EXPECT_EQ(stdfs::read_symlink("/proc/" + std::to_string(*st.pid) + "/fd/2"), m_db->log_file());
    }
    {
        auto conn = Connection::open(m_db->conninfo());
        EXPECT_EQ(conn.query("SELECT current_database()").at(0, 0), "leo");
    }
    r = run("stop");
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.out.find("stopped the internal database"), std::string::npos) << describe(r);
    EXPECT_FALSE(stdfs::exists(m_db->data_dir() / "postmaster.pid"));
    {
        // Gone, or a zombie of a parent that does not reap (a container's init).
        std::ifstream stat("/proc/" + std::to_string(*st.pid) + "/stat");
        std::string line;
        std::getline(stat, line);
        EXPECT_TRUE(line.empty() || line.substr(line.rfind(')') + 2, 1) == "Z") << "the postmaster ended: " << line;
    }
    r = run("status");
    EXPECT_EQ(r.exit_code, 3) << describe(r);
    r = run("stop");
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.out.find("was not running"), std::string::npos) << describe(r);
}

// ---- a stale postmaster.pid naming an unrelated live process ----

TEST_F(DbSafetyTest, StalePidFileOfAnUnrelatedProcessIsNotBelievedNorSignalled) {
    ASSERT_TRUE(m_db->init());
    // An unrelated live process of the test's own (root), with default SIGINT handling.
    const pid_t sleeper = ::fork();
    ASSERT_GE(sleeper, 0);
    if (sleeper == 0) {
        ::signal(SIGINT, SIG_DFL);
        ::execl("/bin/sleep", "sleep", "100", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    struct Reap {
        pid_t pid;
        ~Reap() {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    } reap{sleeper};
    const auto pidfile = m_db->data_dir() / "postmaster.pid";
    {
        // What a crashed postmaster leaves (PostgreSQL 15's format), its pid now reused.
        std::ofstream f(pidfile);
        f << sleeper << "\n" << m_db->data_dir().string() << "\n1700000000\n5432\n" << m_db->socket_dir().string()
          << "\n\n  5432001         0\nready   \n";
    }
    ASSERT_EQ(::chown(pidfile.c_str(), m_leo.uid, m_leo.gid), 0);
    ASSERT_EQ(::chmod(pidfile.c_str(), 0600), 0);

    auto r = db("status", m_root);
    EXPECT_EQ(r.exit_code, 3) << describe(r);
    EXPECT_NE(r.out.find("internal database: stopped"), std::string::npos) << describe(r);
    EXPECT_EQ(m_db->status().state, DbState::stopped);
    EXPECT_FALSE(m_db->stop()) << "nothing to stop: the pid is not a postmaster";

    r = db("start", m_root);
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    const auto st = m_db->status();
    ASSERT_EQ(st.state, DbState::running);
    EXPECT_NE(*st.pid, sleeper);
    r = db("stop", m_root);
    ASSERT_EQ(r.exit_code, 0) << describe(r);

    // The sleeper was never signalled: still alive, not a zombie.
    int status = 0;
    EXPECT_EQ(::waitpid(sleeper, &status, WNOHANG), 0) << "sleep ended (status " << status << ")";
    std::ifstream stat("/proc/" + std::to_string(sleeper) + "/stat");
    std::string line;
    std::getline(stat, line);
    EXPECT_EQ(line.substr(line.rfind(')') + 2, 1), "S") << line;
}

} // namespace
} // namespace leo::migrations
