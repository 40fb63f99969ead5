// Safe as root: the attacks of the issue, each by a real unprivileged user (the sandbox's
// `leo` uid, through setpriv) against an administrator's run of the real binary, which must
// refuse with a clear message or complete safely; runs under umask 000; hooks and
// installer.conf that another user can change; switch_database.pl started through a
// directory leo owns; root paths with shell metacharacters in every command taking --root.
#include "test_support.hpp"

#include "leo/common/accounts.hpp"

#include <fstream>
#include <atomic>
#include <mutex>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {
namespace stdfs = std::filesystem;
using leo::test::mode_of;
using leo::test::owner_of;
using leo::test::slurp;
using leo::test::run_installer;

constexpr uid_t k_stranger = 54321; ///< a uid with no account anywhere: "another user"

/// One installed broker (9.0.7, internal database) per suite: installed under umask 000,
/// which is itself the first case (every directory and file it makes has its own mode).
class SecurityTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        s_tmp = new leo::test::TempDir();
        s_root = s_tmp->path() / "root";
        leo::test::make_sandbox_root(s_root);
        const auto pkgs = leo::test::test_packages_dir();
        const std::string cmd = leo::subprocess::command_line(
            {LEO_INSTALLER_BIN, "install", "--rpm", (pkgs / "repo/leostream-broker-9.0.7-1.x86_64.rpm").string(),
             "--root", s_root.string(), "--gpgkey", (pkgs / "RPM-GPG-KEY-leo-test").string(), "-y"});
        s_install = leo::subprocess::run({"bash", "-c", "umask 000; exec " + cmd});
    }
    static void TearDownTestSuite() {
        (void)run_installer({"db", "stop", "--root", s_root.string()});
        delete s_tmp;
        s_tmp = nullptr;
    }
    void SetUp() override {
        ASSERT_EQ(s_install.exit_code, 0) << s_install.out << s_install.err;
        root = s_root;
        auto leo = leo::accounts::find_user(root, "leo");
        ASSERT_TRUE(leo.has_value());
        leo_uid = leo->uid;
        leo_gid = leo->gid;
    }
    void TearDown() override { stdfs::remove_all(root / "etc/leo-installer"); }

    /// Run `script` with /bin/sh as the sandbox's leo (a real unprivileged uid).
    leo::subprocess::Result as_leo(const std::string& script) const {
        return leo::subprocess::run({"setpriv", "--reuid=" + std::to_string(leo_uid),
                                     "--regid=" + std::to_string(leo_gid), "--clear-groups", "--", "/bin/sh", "-c",
                                     script});
    }
    void write_conf(const std::string& text, mode_t mode = 0644, uid_t owner = 0) {
        stdfs::create_directories(root / "etc/leo-installer");
        const auto f = root / "etc/leo-installer/installer.conf";
        std::ofstream(f) << text;
        ASSERT_EQ(::chmod(f.c_str(), mode), 0);
        ASSERT_EQ(::chown(f.c_str(), owner, owner), 0);
    }

    static leo::test::TempDir* s_tmp;
    static stdfs::path s_root;
    static leo::subprocess::Result s_install;
    stdfs::path root;
    uid_t leo_uid = 0;
    gid_t leo_gid = 0;
};
leo::test::TempDir* SecurityTest::s_tmp = nullptr;
stdfs::path SecurityTest::s_root;
leo::subprocess::Result SecurityTest::s_install;

TEST_F(SecurityTest, InstallUnderUmaskZeroMakesNothingWorldWritable) {
    EXPECT_EQ(mode_of(root / "var/lib/leo-installer"), 0700u);
    EXPECT_EQ(owner_of(root / "var/lib/leo-installer"), 0u);
    EXPECT_EQ(mode_of(root / "var/lib/leo-installer/packages"), 0700u);
    EXPECT_EQ(mode_of(root / "var/lib/leo-installer/journal"), 0600u);
    EXPECT_EQ(mode_of(root / "var/log/leo-installer"), 0750u);
    EXPECT_EQ(mode_of(root / "var/log/leo-installer/installer.log"), 0640u);
    EXPECT_EQ(mode_of(root / "home/leo/bin") & 022, 0u);
    EXPECT_EQ(mode_of(root / "home/leo/pgsql"), 0700u);
    EXPECT_EQ(mode_of(root / "usr/bin") & 022, 0u);
    // No file or directory the install made is writable by others, anywhere in the root.
    for (auto it = stdfs::recursive_directory_iterator(root); it != stdfs::recursive_directory_iterator(); ++it) {
        // PostgreSQL's socket is 0777 by design, inside the 0700 pgsql directory.
        if (it->path().filename() == "tmp" || it->is_symlink() || it->is_socket())
            continue;
        EXPECT_EQ(mode_of(it->path()) & S_IWOTH, 0u) << it->path() << " is world-writable";
    }
}

TEST_F(SecurityTest, SnapshotUnderUmaskZeroIsRootOnly) {
    auto r = leo::subprocess::run({"bash", "-c",
                                   "umask 000; exec " + leo::subprocess::command_line({LEO_INSTALLER_BIN, "snapshot",
                                                                                        "create", "--root",
                                                                                        root.string(), "-y"})});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto snaps = root / "var/lib/leo-installer/snapshots";
    EXPECT_EQ(mode_of(snaps), 0700u);
    for (const auto& e : stdfs::recursive_directory_iterator(snaps))
        EXPECT_EQ(mode_of(e.path()) & 077, 0u) << e.path();
    for (const auto& e : stdfs::directory_iterator(root / "var/lib/leo-installer/snapshots"))
        (void)run_installer({"snapshot", "delete", e.path().filename().string(), "--root", root.string(), "-y"});
}

TEST_F(SecurityTest, InstallerConfWritableByOthersIsRefusedAndNothingRuns) {
    const auto marker = s_tmp->path() / "hook-ran";
    for (const auto& [mode, owner] : {std::pair{mode_t{0666}, uid_t{0}}, std::pair{mode_t{0644}, k_stranger},
                                      std::pair{mode_t{0664}, uid_t{0}}}) {
        write_conf("[vm_snapshot]\ncreate_command = touch " + marker.string() + "\n", mode, owner);
        // The run lock's file is truncated when the run ends: its time changes, nothing else.
        const std::vector<std::string> ignore{"var/log", "var/lib/leo-installer/lock"};
        const auto before = leo::test::snapshot_tree(root, ignore);
        auto r = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
        EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
        EXPECT_NE(r.err.find("installer.conf"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find(fmt::format("mode {:04o}", mode)), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("a user other than root can change it"), std::string::npos) << r.err;
        EXPECT_FALSE(stdfs::exists(marker));
        EXPECT_EQ(leo::test::snapshot_tree(root, ignore), before);
    }
}

TEST_F(SecurityTest, LeoCannotPlantAHookThroughAWritableConfigDirectory) {
    // The directory is leo's: leo swaps in a config of its own; root refuses it.
    write_conf("[restore_points]\nkeep = 3\n");
    ASSERT_EQ(::chown((root / "etc/leo-installer").c_str(), leo_uid, leo_gid), 0);
    const auto marker = s_tmp->path() / "leo-hook-ran";
    auto planted = as_leo("cd " + (root / "etc/leo-installer").string() +
                          " && printf '[services]\\nstop_command = touch " + marker.string() +
                          "\\n' > new.conf && mv -f new.conf installer.conf");
    ASSERT_EQ(planted.exit_code, 0) << planted.err;
    auto r = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_NE(r.err.find("owner uid " + std::to_string(leo_uid)), std::string::npos) << r.err;
    EXPECT_FALSE(stdfs::exists(marker));
}

TEST_F(SecurityTest, HookProgramAnotherUserCanChangeIsRefused) {
    const auto marker = s_tmp->path() / "script-ran";
    const auto script = s_tmp->path() / "take-snapshot";
    std::ofstream(script) << "#!/bin/sh\ntouch " << marker.string() << "\necho snap-1\n";
    ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
    write_conf("[vm_snapshot]\ncreate_command = " + script.string() + " --vm broker1\n");
    for (const auto& [mode, owner] : {std::pair{mode_t{0775}, uid_t{0}}, std::pair{mode_t{0755}, k_stranger}}) {
        ASSERT_EQ(::chmod(script.c_str(), mode), 0);
        ASSERT_EQ(::chown(script.c_str(), owner, owner), 0);
        auto r = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
        EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
        EXPECT_NE(r.err.find("refusing to run " + script.string() + " as root"), std::string::npos) << r.err;
        EXPECT_FALSE(stdfs::exists(marker));
    }
    // Root's and 0755: it runs, with a clean environment and stdin from /dev/null.
    ASSERT_EQ(::chown(script.c_str(), 0, 0), 0);
    ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
    const auto env_file = s_tmp->path() / "hook-env";
    std::ofstream(script) << "#!/bin/sh\nenv > " << env_file.string() << "\nread x && echo stdin-had-data >> "
                          << env_file.string() << "\necho snap-1\n";
    leo::subprocess::Options o;
    o.env["LEO_TEST_SECRET"] = "do-not-pass-me";
    auto r = run_installer({"snapshot", "create", "--root", root.string(), "-y"}, o);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto env = slurp(env_file);
    EXPECT_EQ(env.find("LEO_TEST_SECRET"), std::string::npos) << env;
    EXPECT_NE(env.find("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), std::string::npos) << env;
    EXPECT_NE(env.find("LEO_RESTORE_POINT_ID="), std::string::npos) << env;
    EXPECT_EQ(env.find("stdin-had-data"), std::string::npos) << env;
    const auto log = slurp(root / "var/log/leo-installer/installer.log");
    EXPECT_NE(log.find("[vm_snapshot] create_command ended: exit 0"), std::string::npos);
    for (const auto& e : stdfs::directory_iterator(root / "var/lib/leo-installer/snapshots"))
        (void)run_installer({"snapshot", "delete", e.path().filename().string(), "--root", root.string(), "-y"});
}

TEST_F(SecurityTest, SwitchDatabaseThroughLeosHomeIsRefusedNamingTheSafePath) {
    const auto documented = root / "home/leo/bin/switch_database.pl";
    const auto safe = root / "usr/bin/switch_database.pl";
    ASSERT_TRUE(stdfs::is_symlink(documented));
    ASSERT_EQ(stdfs::read_symlink(documented), safe);
    // leo owns /home/leo: it could re-point the link at any moment, so root will not use it.
    auto r = leo::subprocess::run({documented.string(), "--show_current", "--root", root.string()});
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_NE(r.err.find("refusing to run as root through " + documented.string()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("Run " + safe.string()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("owner uid " + std::to_string(leo_uid)), std::string::npos) << r.err;
    auto ok = leo::subprocess::run({safe.string(), "--show_current", "--root", root.string()});
    EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
    EXPECT_NE(ok.out.find("internal"), std::string::npos) << ok.out;
    // The leo user itself may run it (it is not root): it then fails only for want of rights.
    auto as_user = as_leo(documented.string() + " --show_current --root " + root.string());
    EXPECT_EQ(as_user.err.find("refusing to run as root"), std::string::npos) << as_user.err;
}

TEST_F(SecurityTest, SwitchDatabaseLinkNamesTheLauncherNotTheProgramInLibexec) {
    // install ran as the full program (PREFIX/libexec/leo-installer/leo-installer, executed
    // by the launcher): the link names what an administrator runs, the launcher in bin/, as
    // the package's own link does, never the launcher's private part.
    const auto safe = root / "usr/bin/switch_database.pl";
    ASSERT_TRUE(stdfs::is_symlink(safe));
    EXPECT_EQ(stdfs::read_symlink(safe), stdfs::path(LEO_INSTALLER_BIN));
    EXPECT_EQ(stdfs::read_symlink(safe).string().find("/libexec/"), std::string::npos) << stdfs::read_symlink(safe);
    // And it works through the launcher: switch_database.pl is known by its name.
    auto ok = leo::subprocess::run({safe.string(), "--show_current", "--root", root.string()});
    EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
    EXPECT_NE(ok.out.find("internal"), std::string::npos) << ok.out;
}

TEST_F(SecurityTest, LeoCannotRedirectTheShippedMigrations) {
    // leo owns /home/leo: it swaps share/ for a link to a directory of its own choosing.
    auto planted = as_leo("cd " + (root / "home/leo").string() + " && mv share share.real && ln -s share.real share");
    ASSERT_EQ(planted.exit_code, 0) << planted.err;
    auto r = run_installer({"migrate", "--root", root.string()});
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_NE(r.err.find("refusing to follow the symbolic link " + (root / "home/leo/share").string()),
              std::string::npos)
        << r.err;
    stdfs::remove(root / "home/leo/share");
    stdfs::rename(root / "home/leo/share.real", root / "home/leo/share");
    auto ok = run_installer({"migrate", "--root", root.string()});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST_F(SecurityTest, ConninfoPasswordsNeverReachMessagesOrTheLog) {
    int n = 0;
    for (const std::string& conninfo :
         {std::string("host=127.0.0.1 port=1 dbname=x user=u password=SeCrEt-1"),
          std::string("postgresql://u:SeCrEt-2@127.0.0.1:1/x"), std::string("host=127.0.0.1 password='SeCrEt-3"),
          std::string("postgresql://u:SeCrEt-4@[::1"), std::string("postgresql://u:SeCrEt-5@127.0.0.1:1/x?sslmode=bogus")}) {
        auto r = run_installer({"migrate", "--db", conninfo, "--root", root.string()});
        EXPECT_NE(r.exit_code, 0) << conninfo;
        EXPECT_EQ(r.err.find("SeCrEt"), std::string::npos) << r.err;
        EXPECT_EQ(r.out.find("SeCrEt"), std::string::npos) << r.out;
        ++n;
    }
    EXPECT_EQ(n, 5);
    EXPECT_EQ(slurp(root / "var/log/leo-installer/installer.log").find("SeCrEt"), std::string::npos);
}

TEST_F(SecurityTest, LinksPlantedInAStateDirectoryLeftWorldWritableAreNotFollowed) {
    // An earlier version run under umask 000 left the state directory 1777; an unprivileged
    // user plants the lock and the journal as links to a file of root's. Root's next run
    // must neither empty nor append to it.
    const auto state = root / "var/lib/leo-installer";
    const auto victim = root / "etc/victim.conf";
    std::ofstream(victim) << "precious";
    ASSERT_EQ(::chmod(state.c_str(), 01777), 0);
    stdfs::rename(state / "lock", state / "lock.keep");
    stdfs::rename(state / "journal", state / "journal.keep");
    auto planted = as_leo("ln -s " + victim.string() + " " + (state / "lock").string() + " && ln -s " +
                          victim.string() + " " + (state / "journal").string());
    ASSERT_EQ(planted.exit_code, 0) << planted.err;
    auto r = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_NE(r.err.find("symbolic link " + (state / "lock").string()), std::string::npos) << r.err;
    EXPECT_EQ(slurp(victim), "precious");
    EXPECT_EQ(mode_of(state), 0700u) << "the state directory is root-only again";
    stdfs::remove(state / "lock");
    stdfs::remove(state / "journal");
    stdfs::rename(state / "lock.keep", state / "lock");
    stdfs::rename(state / "journal.keep", state / "journal");
    stdfs::remove(victim);
}

TEST_F(SecurityTest, AJournalRecordWithUnusableDataStopsRecoverCleanly) {
    // The journal is root's, but a damaged disk or a hand edit can leave a record whose step
    // data lacks what the step writes: recover says so instead of dying of an exception.
    const auto file = root / "var/lib/leo-installer/journal";
    const std::string before = slurp(file);
    std::ofstream(file, std::ios::app)
        << R"({"v":1,"time":"t","type":"begin","run":"bad-1","command":"upgrade","from":"a","to":"b"})" << "\n"
        << R"({"v":1,"time":"t","type":"step","run":"bad-1","step":"restore_point","state":"done","data":{"id":5}})"
        << "\n"
        << R"({"v":1,"time":"t","type":"step","run":"bad-1","step":"transaction","state":"start"})" << "\n";
    const std::string tables = leo::test::table_checksums(root);
    auto r = run_installer({"recover", "--root", root.string(), "-y"});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("records the last run with data this leo-installer cannot use"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
    EXPECT_EQ(leo::test::table_checksums(root), tables);
    std::ofstream(file, std::ios::trunc) << before;
}

TEST_F(SecurityTest, LeosLinkOutOfItsConfigurationIsRefusedWhenARestorePointIsTaken) {
    // A link leo plants in /home/leo/etc pointing out of the saved directories could not be
    // put back by a rollback (it used to be stored as etc/passwd, and every rollback and
    // recover then refused it): the restore point is refused when it is taken, naming the
    // link, and nothing is written.
    // The package's /home/leo/etc is root's; leo owns /home/leo, so it puts its own in place.
    auto planted = as_leo("cd " + (root / "home/leo").string() +
                          " && mv etc etc.orig && mkdir etc && cp etc.orig/broker.conf etc/ && ln -s "
                          "../../../etc/passwd etc/c-out");
    ASSERT_EQ(planted.exit_code, 0) << planted.err;
    const std::string passwd = slurp(root / "etc/passwd");
    auto c = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
    EXPECT_EQ(c.exit_code, 3) << c.out << c.err;
    EXPECT_NE(c.err.find("symbolic link " + (root / "home/leo/etc/c-out").string() + " -> ../../../etc/passwd"),
              std::string::npos)
        << c.err;
    EXPECT_NE(c.err.find("it points to /etc/passwd"), std::string::npos) << c.err;
    EXPECT_TRUE(!stdfs::exists(root / "var/lib/leo-installer/snapshots") ||
                stdfs::is_empty(root / "var/lib/leo-installer/snapshots"))
        << "a restore point was left behind";
    EXPECT_EQ(slurp(root / "etc/passwd"), passwd) << "the root's passwd is untouched";
    stdfs::remove_all(root / "home/leo/etc");
    stdfs::rename(root / "home/leo/etc.orig", root / "home/leo/etc");
}

TEST_F(SecurityTest, FreeSpaceCheckDoesNotWalkThroughLeosLinks) {
    // leo points /home/leo/etc at a root-only host directory holding a 100 GiB sparse file:
    // the restore point must neither follow it (the size estimate refused every restore
    // point, and a link to / made root walk the whole host) nor save it: it is refused as a
    // link out of the saved directories, before any size is estimated.
    const auto secret_dir = s_tmp->path() / "root-only";
    stdfs::create_directories(secret_dir);
    ASSERT_EQ(::chmod(secret_dir.c_str(), 0700), 0);
    ASSERT_TRUE(leo::subprocess::run({"truncate", "-s", "100G", (secret_dir / "secret.img").string()}).ok());
    ASSERT_EQ(as_leo("cd " + (root / "home/leo").string() + " && mv etc etc.pkg && ln -s " + secret_dir.string() +
                     " etc")
                  .exit_code,
              0);
    auto c = run_installer({"snapshot", "create", "--root", root.string(), "-y"});
    EXPECT_EQ(c.exit_code, 3) << c.out << c.err;
    EXPECT_EQ(c.err.find("not enough free space"), std::string::npos) << c.err;
    EXPECT_NE(c.err.find("symbolic link " + (root / "home/leo/etc").string() + " -> " + secret_dir.string()),
              std::string::npos)
        << c.err;
    EXPECT_TRUE(!stdfs::exists(root / "var/lib/leo-installer/snapshots") ||
                stdfs::is_empty(root / "var/lib/leo-installer/snapshots"))
        << "a restore point was left behind";
    stdfs::remove(root / "home/leo/etc");
    stdfs::rename(root / "home/leo/etc.pkg", root / "home/leo/etc");
}

/// A PostgreSQL server that only asks for a cleartext password and records what it gets.
class PasswordCatcher {
public:
    PasswordCatcher() {
        m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(m_fd, 8);
        socklen_t len = sizeof a;
        ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&a), &len);
        m_port = ntohs(a.sin_port);
        m_thread = std::thread([this] { serve(); });
    }
    ~PasswordCatcher() {
        ::shutdown(m_fd, SHUT_RDWR);
        ::close(m_fd);
        m_thread.join();
    }
    [[nodiscard]] int port() const { return m_port; }
    [[nodiscard]] int connections() const { return m_connections.load(); }
    [[nodiscard]] std::string caught() {
        std::lock_guard lock(m_mutex);
        return m_caught;
    }

private:
    void serve() {
        for (;;) {
            const int c = ::accept(m_fd, nullptr, nullptr);
            if (c < 0)
                return;
            m_connections.fetch_add(1);
            char buf[4096];
            ssize_t n = ::read(c, buf, sizeof buf);           // SSLRequest or startup packet
            if (n == 8) {                                      // SSLRequest: no
                (void)!::write(c, "N", 1);
                n = ::read(c, buf, sizeof buf);
            }
            const char ask[] = {'R', 0, 0, 0, 8, 0, 0, 0, 3}; // AuthenticationCleartextPassword
            (void)!::write(c, ask, sizeof ask);
            n = ::read(c, buf, sizeof buf);
            if (n > 5) {
                std::lock_guard lock(m_mutex);
                m_caught.append(buf + 5, static_cast<size_t>(n - 5));
            }
            ::close(c);
        }
    }
    int m_fd = -1;
    int m_port = 0;
    std::thread m_thread;
    std::atomic<int> m_connections{0};
    std::mutex m_mutex;
    std::string m_caught;
};

TEST_F(SecurityTest, LeosDatabaseConfNeverGetsRootsPgpassOrEnvironmentPassword) {
    // database.conf is leo's file: leo points it at its own server, with no password.
    PasswordCatcher catcher;
    stdfs::create_directories(root / "etc/leostream");
    const auto conf = root / "etc/leostream/database.conf";
    std::ofstream(conf) << "[database]\nformat = 1\nmode = external\nvendor = postgres\nhost = 127.0.0.1\nport = "
                        << catcher.port() << "\nname = leo\nusername = postgres\n";
    ASSERT_EQ(::chown(conf.c_str(), leo_uid, leo_gid), 0);
    const auto home = s_tmp->path() / "roothome";
    stdfs::create_directories(home);
    std::ofstream(home / ".pgpass") << "*:*:*:*:RootsPgPass\n";
    ASSERT_EQ(::chmod((home / ".pgpass").c_str(), 0600), 0);
    leo::subprocess::Options o;
    o.env["HOME"] = home.string();
    o.env["PGPASSWORD"] = "RootsEnvPass";
    for (const auto& args : std::vector<std::vector<std::string>>{{"status", "--root", root.string()},
                                                                  {"status", "--json", "--root", root.string()},
                                                                  {"migrate", "--dry-run", "--root", root.string()}})
        (void)run_installer(args, o);
    EXPECT_GE(catcher.connections(), 3) << "each command reached leo's server";
    EXPECT_EQ(catcher.caught().find("Roots"), std::string::npos) << catcher.caught();
    stdfs::remove(conf);
}

TEST_F(SecurityTest, LinkPlantedAtTheLogIsNotFollowed) {
    // The log directory is root's: only root could plant a link there. A link the
    // administrator left behind by mistake is still never written through.
    const auto log = root / "var/log/leo-installer/installer.log";
    const auto victim = s_tmp->path() / "victim";
    std::ofstream(victim) << "keep";
    stdfs::rename(log, root / "var/log/leo-installer/installer.log.keep");
    stdfs::create_symlink(victim, log);
    auto r = run_installer({"status", "--root", root.string()});
    EXPECT_EQ(slurp(victim), "keep");
    stdfs::remove(log);
    stdfs::rename(root / "var/log/leo-installer/installer.log.keep", log);
}

/// A root whose path holds shell syntax: every command either works or refuses in one
/// clear line; nothing the path says is ever run.
TEST(ShellMetacharacters, NoCommandRunsWhatTheRootPathSays) {
    leo::test::TempDir tmp;
    // The marker's directory is world-writable: whoever would run the path's command (root,
    // or leo inside initdb or pg_ctl) could create it.
    stdfs::create_directories(tmp.path() / "drop");
    ASSERT_EQ(::chmod((tmp.path() / "drop").c_str(), 01777), 0);
    ASSERT_EQ(::chmod(tmp.path().c_str(), 0755), 0);
    const auto marker = tmp.path() / "drop/pwned";
    for (const std::string& name : std::vector<std::string>{"r$(touch " + marker.string() + ")", "r`touch " + marker.string() + "`",
                                   "r;touch " + marker.string()}) {
        const auto root = tmp.path() / name;
        // mkdir via a vector: the marker must not come from the test itself.
        ASSERT_TRUE(leo::subprocess::run({"mkdir", "-p", root.string()}).ok());
        leo::test::make_sandbox_root(root);
        leo::test::create_leo_user(root); // so that `db init` gets as far as PostgreSQL's programs
        ASSERT_FALSE(stdfs::exists(marker)) << "make-sandbox-root.sh ran the path";
        const auto pkgs = leo::test::test_packages_dir();
        const std::string rpm = (pkgs / "repo/leostream-broker-9.0.7-1.x86_64.rpm").string();
        const std::vector<std::vector<std::string>> commands = {
            {"facts", "--root", root.string()},
            {"preflight", "--root", root.string()},
            {"verify", "--rpm", rpm, "--root", root.string()},
            {"install", "--rpm", rpm, "--root", root.string(), "--nogpgcheck", "-y"},
            {"check-update", "--root", root.string()},
            {"upgrade", "--root", root.string(), "-y"},
            {"rollback", "--root", root.string(), "-y"},
            {"recover", "--root", root.string()},
            {"snapshot", "list", "--root", root.string()},
            {"snapshot", "create", "--root", root.string(), "-y"},
            {"migrate", "--root", root.string()},
            {"status", "--root", root.string()},
            {"db", "init", "--root", root.string()},
            {"db", "start", "--root", root.string()},
            {"db", "status", "--root", root.string()},
            {"db", "stop", "--root", root.string()},
            {"switch-database", "--show_current", "--root", root.string()},
        };
        for (const auto& c : commands) {
            auto r = run_installer(c);
            EXPECT_FALSE(stdfs::exists(marker)) << leo::subprocess::command_line(c) << " ran the path: " << r.err;
            if (r.exit_code != 0 && !(c[0] == "check-update" || c[0] == "db")) {
                // One clear line, naming what is wrong.
                EXPECT_NE(r.err.find("error: "), std::string::npos) << leo::subprocess::command_line(c) << r.err;
            }
        }
        (void)run_installer({"db", "stop", "--root", root.string()});
    }
}

} // namespace
