// Integration tests of the internal database's process truth (issue "Runs that cannot be
// torn", part 4): after a crash, postmaster.pid (and the socket lock file) may name a pid
// that now belongs to an unrelated process of the same leo uid, which PostgreSQL itself
// then takes for a running server. `db status` says stopped and why, `db start` moves the
// stale files aside and starts, `db stop` never signals that process, and the upgrade
// path's InternalDatabase::start() works; a data directory owned by another uid is named;
// `db restart`. Real PostgreSQL in a sandbox root; the unrelated process is a real `sleep`
// running as the root's leo uid (setpriv).
#include "leo/common/accounts.hpp"
#include "leo/common/error.hpp"
#include "leo/migrations/internal_db.hpp"

#include "db_support.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace leo::migrations {
namespace {

namespace stdfs = std::filesystem;

std::string describe(const subprocess::Result& r) {
    return fmt::format("exit {}\nstdout: {}\nstderr: {}", r.exit_code, r.out, r.err);
}

std::string read_text(const stdfs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines)
        out += l + "\n";
    return out;
}

/// A real process unrelated to PostgreSQL: `sleep 300` as `uid`:`gid` (setpriv execs it,
/// so the pid stays), a child of the test with default signal handling. Killed and reaped
/// at the end.
class Sleeper {
  public:
    Sleeper(uid_t uid, gid_t gid) {
        m_pid = ::fork();
        if (m_pid == 0) {
            ::signal(SIGINT, SIG_DFL);
            ::signal(SIGTERM, SIG_DFL);
            const auto reuid = fmt::format("--reuid={}", uid);
            const auto regid = fmt::format("--regid={}", gid);
            ::execlp("setpriv", "setpriv", reuid.c_str(), regid.c_str(), "--clear-groups", "sleep", "300",
                     static_cast<char*>(nullptr));
            ::_exit(127);
        }
        // Until setpriv has exec'd sleep as the uid.
        for (int i = 0; i < 500 && program() != "sleep 300"; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ~Sleeper() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            ::waitpid(m_pid, nullptr, 0);
        }
    }
    Sleeper(const Sleeper&) = delete;
    Sleeper& operator=(const Sleeper&) = delete;
    [[nodiscard]] pid_t pid() const { return m_pid; }
    /// /proc/PID/cmdline with spaces.
    [[nodiscard]] std::string program() const {
        auto text = read_text(fmt::format("/proc/{}/cmdline", m_pid));
        for (auto& c : text)
            if (c == '\0')
                c = ' ';
        while (!text.empty() && text.back() == ' ')
            text.pop_back();
        return text;
    }
    /// Alive, not a zombie, never signalled: kill(pid, 0) works, /proc says sleeping, and
    /// waitpid says it has not ended.
    void expect_untouched() const {
        EXPECT_EQ(::kill(m_pid, 0), 0) << "sleep " << m_pid << " is gone";
        int status = 0;
        EXPECT_EQ(::waitpid(m_pid, &status, WNOHANG), 0) << "sleep ended, status " << status;
        const auto stat = read_text(fmt::format("/proc/{}/stat", m_pid));
        ASSERT_NE(stat.rfind(')'), std::string::npos) << stat;
        EXPECT_EQ(stat.substr(stat.rfind(')') + 2, 1), "S") << stat;
        EXPECT_EQ(program(), "sleep 300");
    }

  private:
    pid_t m_pid = -1;
};

class DbPidFileTest : public test::SandboxDatabaseTest {
  protected:
    void SetUp() override {
        SandboxDatabaseTest::SetUp();
        const auto user = accounts::find_user(m_root, "leo");
        ASSERT_TRUE(user);
        m_leo = *user;
        ASSERT_EQ(::chown((m_root / "home/leo").c_str(), m_leo.uid, m_leo.gid), 0);
    }
    subprocess::Result db(const std::string& action) {
        return test::run_installer({"db", action, "--root", m_root.string()});
    }
    stdfs::path pid_file() const { return m_db->data_dir() / "postmaster.pid"; }
    stdfs::path socket_lock() const { return m_db->socket_dir() / ".s.PGSQL.5432.lock"; }

    /// Write `text` to `path` as leo's 0600 file, as the server writes its lock files.
    void write_leo_file(const stdfs::path& path, const std::string& text) const {
        { std::ofstream(path, std::ios::trunc) << text; }
        ASSERT_EQ(::chown(path.c_str(), m_leo.uid, m_leo.gid), 0);
        ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
    }

    /// The crash: the running server's postmaster is killed (SIGKILL: it leaves its lock
    /// files), its backends end, and its pid is reused by `pid`: both lock files now name
    /// it (their other lines are the dead server's).
    void crash_and_reuse_pid(pid_t pid) {
        const auto st = m_db->status();
        ASSERT_EQ(st.state, DbState::running);
        const auto postmaster = static_cast<pid_t>(*st.pid);
        ASSERT_EQ(::kill(postmaster, SIGKILL), 0);
        ASSERT_EQ(::waitpid(postmaster, nullptr, 0), postmaster) << "the test started the server: its child";
        for (const auto& file : {pid_file(), socket_lock()}) {
            auto lines = lines_of(read_text(file));
            ASSERT_GE(lines.size(), 3U) << file;
            ASSERT_EQ(lines[0], std::to_string(postmaster)) << file;
            lines[0] = std::to_string(pid);
            write_leo_file(file, join_lines(lines));
        }
    }
    /// The names in `dir` that start with `prefix`.
    static std::vector<std::string> names_starting(const stdfs::path& dir, const std::string& prefix) {
        std::vector<std::string> out;
        for (const auto& e : stdfs::directory_iterator(dir))
            if (e.path().filename().string().starts_with(prefix))
                out.push_back(e.path().filename().string());
        return out;
    }

    accounts::User m_leo;
};

TEST_F(DbPidFileTest, StalePidOfAnotherLeoProcessAfterACrash) {
    ASSERT_TRUE(m_db->init());
    ASSERT_TRUE(m_db->start());
    Sleeper sleeper(m_leo.uid, m_leo.gid);
    ASSERT_EQ(sleeper.program(), "sleep 300");
    crash_and_reuse_pid(sleeper.pid());
    const std::string what =
        fmt::format("stale postmaster.pid names pid {}, which is a process of uid {} (leo) running sleep",
                    sleeper.pid(), m_leo.uid);

    auto r = db("status");
    EXPECT_EQ(r.exit_code, 3) << describe(r);
    EXPECT_NE(r.out.find("internal database: stopped (" + what), std::string::npos) << describe(r);
    const auto st = m_db->status();
    EXPECT_EQ(st.state, DbState::stopped);
    EXPECT_EQ(st.stale_pid, sleeper.pid());
    EXPECT_EQ(st.detail, what);

    r = db("stop");
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.out.find("the internal database was not running (" + what + "; that process was not signalled)"),
              std::string::npos)
        << describe(r);
    sleeper.expect_untouched();

    r = db("start");
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.out.find(what + ": moved it aside to " + pid_file().string() + ".stale-"), std::string::npos)
        << describe(r);
    EXPECT_NE(r.out.find(fmt::format("stale .s.PGSQL.5432.lock names pid {}, which is a process of uid {} (leo) "
                                     "running sleep: moved it aside to {}.stale-",
                                     sleeper.pid(), m_leo.uid, socket_lock().string())),
              std::string::npos)
        << describe(r);
    EXPECT_NE(r.out.find("started the internal database, pid "), std::string::npos) << describe(r);
    // Moved, as leo's files, with the contents they had.
    const auto moved = names_starting(m_db->data_dir(), "postmaster.pid.stale-");
    ASSERT_EQ(moved.size(), 1U);
    EXPECT_EQ(test::owner_of(m_db->data_dir() / moved[0]), m_leo.uid);
    EXPECT_EQ(lines_of(read_text(m_db->data_dir() / moved[0])).at(0), std::to_string(sleeper.pid()));
    EXPECT_EQ(names_starting(m_db->socket_dir(), ".s.PGSQL.5432.lock.stale-").size(), 1U);

    const auto running = m_db->status();
    ASSERT_EQ(running.state, DbState::running);
    EXPECT_NE(*running.pid, sleeper.pid());
    EXPECT_TRUE(running.detail.empty()) << running.detail;
    {
        auto conn = Connection::open(m_db->conninfo());
        EXPECT_EQ(conn.query("SELECT current_database()").at(0, 0), "leo");
    }
    r = db("stop");
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.out.find(fmt::format("stopped the internal database (pid {})", *running.pid)), std::string::npos)
        << describe(r);
    EXPECT_EQ(m_db->status().state, DbState::stopped);
    sleeper.expect_untouched();
}

TEST_F(DbPidFileTest, UpgradePathStartWorksWithAStalePidFile) {
    ASSERT_TRUE(m_db->init());
    ASSERT_TRUE(m_db->start());
    Sleeper sleeper(m_leo.uid, m_leo.gid);
    crash_and_reuse_pid(sleeper.pid());
    // What upgrade, install, migrate and restore points do: start unless running.
    ASSERT_NE(m_db->status().state, DbState::running);
    std::vector<std::string> notices;
    ASSERT_TRUE(m_db->start([&](const std::string& n) { notices.push_back(n); }));
    EXPECT_EQ(notices.size(), 2U);
    const auto st = m_db->status();
    ASSERT_EQ(st.state, DbState::running);
    EXPECT_NE(*st.pid, sleeper.pid());
    auto conn = Connection::open(m_db->conninfo());
    EXPECT_EQ(conn.query("SELECT 1").at(0, 0), "1");
    ASSERT_TRUE(m_db->stop());
    sleeper.expect_untouched();
}

TEST_F(DbPidFileTest, PidOfAProcessThatEndedIsNotRunning) {
    ASSERT_TRUE(m_db->init());
    ASSERT_TRUE(m_db->start());
    const pid_t gone = ::fork();
    if (gone == 0)
        ::_exit(0);
    ASSERT_EQ(::waitpid(gone, nullptr, 0), gone);
    crash_and_reuse_pid(gone);
    const auto st = m_db->status();
    EXPECT_EQ(st.state, DbState::stopped);
    EXPECT_EQ(st.detail, fmt::format("stale postmaster.pid names pid {}, which is not running", gone));
    EXPECT_FALSE(m_db->stop());
    ASSERT_TRUE(m_db->start());
    EXPECT_EQ(m_db->status().state, DbState::running);
}

TEST_F(DbPidFileTest, PostgresOfAnotherDataDirectoryIsNotOurs) {
    // Another PostgreSQL server of the same leo uid (a second sandbox root's, whose leo has
    // the same system uid), its pid in our postmaster.pid.
    test::ExternalPostgres other;
    ASSERT_TRUE(m_db->init());
    const stdfs::path other_data = other.admin().query("SHOW data_directory").at(0, 0);
    const auto other_lines = lines_of(read_text(other_data / "postmaster.pid"));
    const pid_t other_pid = std::stoi(other_lines.at(0));
    const auto other_leo = accounts::find_user(other_data / "../../../..", "leo");
    ASSERT_TRUE(other_leo);
    if (other_leo->uid != m_leo.uid)
        GTEST_SKIP() << "the two sandbox roots gave leo different uids";
    write_leo_file(pid_file(), join_lines(other_lines));
    const auto st = m_db->status();
    EXPECT_EQ(st.state, DbState::stopped);
    EXPECT_EQ(st.detail, fmt::format("stale postmaster.pid names pid {}, which is not this data directory's "
                                     "server (a postgres of leo working in {})",
                                     other_pid, other_data.string()));
    EXPECT_FALSE(m_db->stop());
    ASSERT_TRUE(m_db->start());
    EXPECT_EQ(m_db->status().state, DbState::running);
    // The other server was never signalled.
    auto conn = other.admin();
    EXPECT_EQ(conn.query("SELECT 1").at(0, 0), "1");
}

TEST_F(DbPidFileTest, StartWaitsForLeftoverBackendsAndRefusesWhileTheyRun) {
    ASSERT_TRUE(m_db->init());
    ASSERT_TRUE(m_db->start());
    const pid_t gone = ::fork();
    if (gone == 0)
        ::_exit(0);
    ASSERT_EQ(::waitpid(gone, nullptr, 0), gone);
    crash_and_reuse_pid(gone);
    // What a killed postmaster can leave: a backend (leo's postgres working in the data
    // directory) still running. Here a `sleep` whose argv[0] is "postgres".
    const pid_t backend = ::fork();
    if (backend == 0) {
        if (::chdir(m_db->data_dir().c_str()) != 0 || ::setgroups(0, nullptr) != 0 || ::setgid(m_leo.gid) != 0 ||
            ::setuid(m_leo.uid) != 0)
            ::_exit(126);
        ::execl("/bin/sleep", "postgres", "300", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    struct Reap {
        pid_t pid;
        ~Reap() {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    } reap{backend};
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto before = test::snapshot_tree(m_db->pgsql_dir(), {"postgresql.log"});
    const auto started = std::chrono::steady_clock::now();
    auto r = db("start");
    EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::seconds(9)) << "waited for it to end";
    EXPECT_EQ(r.exit_code, 1) << describe(r);
    EXPECT_NE(r.err.find(fmt::format("postgres processes of leo still work in {} (pid {})", m_db->data_dir().string(),
                                     backend)),
              std::string::npos)
        << describe(r);
    EXPECT_NE(r.err.find("A second server beside them could corrupt the database"), std::string::npos) << describe(r);
    EXPECT_EQ(test::snapshot_tree(m_db->pgsql_dir(), {"postgresql.log"}), before) << "nothing moved";

    // Once it has ended, start works.
    ::kill(backend, SIGKILL);
    ::waitpid(backend, nullptr, 0);
    r = db("start");
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_EQ(m_db->status().state, DbState::running);
}

TEST_F(DbPidFileTest, OurServerWithAnotherStartTimeOrDataDirectoryIsNeverSignalledNorMoved) {
    ASSERT_TRUE(m_db->init());
    ASSERT_TRUE(m_db->start());
    const auto pid = *m_db->status().pid;
    const auto original = read_text(pid_file());
    auto lines = lines_of(original);
    ASSERT_GE(lines.size(), 3U);

    // Line 3: a start time an hour away from the process's.
    auto changed = lines;
    changed[2] = std::to_string(std::stol(lines[2]) - 3600);
    write_leo_file(pid_file(), join_lines(changed));
    auto st = m_db->status();
    EXPECT_EQ(st.state, DbState::stopped);
    EXPECT_NE(st.detail.find(fmt::format("stale postmaster.pid names pid {}, which is not this data directory's "
                                         "server (it started at ",
                                         pid)),
              std::string::npos)
        << st.detail;
    EXPECT_FALSE(m_db->stop()) << "a postmaster.pid that is not believed: nothing is signalled";
    auto r = db("start");
    EXPECT_EQ(r.exit_code, 1) << describe(r);
    EXPECT_NE(r.err.find("that process is a postgres of leo working in " + m_db->data_dir().string() +
                         ", so the file is not moved aside and the process is not signalled"),
              std::string::npos)
        << describe(r);
    EXPECT_EQ(read_text(pid_file()), join_lines(changed)) << "not moved";
    EXPECT_TRUE(names_starting(m_db->data_dir(), "postmaster.pid.stale-").empty());

    // Line 2: another data directory.
    changed = lines;
    changed[1] = (m_tmp.path() / "elsewhere").string();
    write_leo_file(pid_file(), join_lines(changed));
    st = m_db->status();
    EXPECT_EQ(st.state, DbState::stopped);
    EXPECT_EQ(st.detail, fmt::format("stale postmaster.pid names pid {}, which is not this data directory's server "
                                     "(postmaster.pid names the data directory '{}')",
                                     pid, changed[1]));
    EXPECT_FALSE(m_db->stop());
    EXPECT_THROW(m_db->start(), DatabaseError);

    // The server ran all along, and is ours again with its own file.
    write_leo_file(pid_file(), original);
    st = m_db->status();
    ASSERT_EQ(st.state, DbState::running);
    EXPECT_EQ(*st.pid, pid);
    ASSERT_TRUE(m_db->stop());
}

TEST_F(DbPidFileTest, DataDirectoryOwnedByAnotherUidIsNamed) {
    ASSERT_TRUE(m_db->init());
    // Earlier server log lines that must not be quoted as this failure's reason.
    ASSERT_TRUE(m_db->start());
    ASSERT_TRUE(m_db->stop());
    test::run_ok({"useradd", "--root", m_root.string(), "--system", "-M", "-s", "/sbin/nologin", "intruder"});
    const auto intruder = accounts::find_user(m_root, "intruder");
    ASSERT_TRUE(intruder);
    const auto data = m_db->data_dir();
    for (const auto& [uid, name] :
         {std::pair{intruder->uid, std::string("intruder")},
          std::pair{uid_t{54321}, "no user of that uid in " + (m_root / "etc/passwd").string()}}) {
        ASSERT_EQ(::chown(data.c_str(), uid, uid), 0);
        const auto expected =
            fmt::format("{} is owned by uid {} ({}), expected leo (uid {})", data.string(), uid, name, m_leo.uid);
        const auto before = test::snapshot_tree(m_root);
        auto r = db("start");
        EXPECT_EQ(r.exit_code, 1) << describe(r);
        EXPECT_NE(r.err.find("cannot start the internal database: " + expected), std::string::npos) << describe(r);
        EXPECT_NE(r.err.find(fmt::format("chown -R {}:{} {}", m_leo.uid, m_leo.gid, data.string())), std::string::npos)
            << describe(r);
        EXPECT_EQ(r.err.find("server log"), std::string::npos) << "no old server log lines\n" << describe(r);
        EXPECT_EQ(test::snapshot_tree(m_root), before) << "nothing changed";
        r = db("status");
        EXPECT_EQ(r.exit_code, 3) << describe(r);
        EXPECT_NE(r.out.find("internal database: stopped"), std::string::npos) << describe(r);
        EXPECT_NE(r.out.find(expected), std::string::npos) << describe(r);
        EXPECT_EQ(m_db->status().ownership_problem, expected);
    }
    ASSERT_EQ(::chown(data.c_str(), m_leo.uid, m_leo.gid), 0);
    EXPECT_TRUE(m_db->status().ownership_problem.empty());
    ASSERT_TRUE(m_db->start());
}

TEST_F(DbPidFileTest, RestartFromStoppedAndFromRunning) {
    auto r = db("status");
    EXPECT_EQ(r.exit_code, 3) << describe(r);
    EXPECT_NE(r.out.find("internal database: not initialised (" + m_db->data_dir().string() +
                         " does not exist; `leo-installer db init --root " + m_root.string() + "` creates it)"),
              std::string::npos)
        << describe(r);
    r = db("restart");
    EXPECT_EQ(r.exit_code, 1) << describe(r);
    EXPECT_NE(r.err.find("is not initialised"), std::string::npos) << describe(r);

    ASSERT_TRUE(m_db->init());
    r = db("status");
    EXPECT_EQ(r.exit_code, 3) << describe(r);
    EXPECT_NE(r.out.find("internal database: stopped (" + m_db->data_dir().string() + ", PostgreSQL "),
              std::string::npos)
        << describe(r);

    r = db("restart");
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.out.find("the internal database was not running\nstarted the internal database, pid "),
              std::string::npos)
        << describe(r);
    const auto first = m_db->status();
    ASSERT_EQ(first.state, DbState::running);

    r = db("restart");
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.out.find(fmt::format("stopped the internal database (pid {})\nstarted it again, pid ", *first.pid)),
              std::string::npos)
        << describe(r);
    const auto second = m_db->status();
    ASSERT_EQ(second.state, DbState::running);
    EXPECT_NE(*second.pid, *first.pid);
    EXPECT_NE(r.out.find(fmt::format("started it again, pid {}", *second.pid)), std::string::npos) << describe(r);
    r = db("status");
    EXPECT_EQ(r.exit_code, 0) << describe(r);
}

} // namespace
} // namespace leo::migrations
