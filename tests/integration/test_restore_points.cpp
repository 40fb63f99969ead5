// Restore points against what a broker's administrator really has: tables whose names need
// quoting (mixed case, a space, a dot, a double quote, other schemas), symbolic links in
// the saved configuration (relative ones kept as they are, ones leading out refused when
// the restore point is taken, a tampered archive refused when it is used without wedging
// recover), and the modes of every part whatever the umask and the snapshots directory.
// The real binary, a real PostgreSQL, real rpm transactions in a sandbox root.
#include "broker_runs.hpp"
#include "db_support.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/fs.hpp"

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

namespace {
namespace stdfs = std::filesystem;
using ::testing::HasSubstr;
using leo::test::mode_of;
using leo::test::owner_of;
using leo::test::run_installer;
using leo::test::runs::k_new;
using leo::test::runs::k_old;

class RestorePoints : public leo::test::runs::Broker {
protected:
    leo::migrations::Connection db() {
        leo::migrations::InternalDatabase d(root);
        if (d.status().state != leo::migrations::DbState::running) d.start();
        return leo::migrations::Connection::open(d.conninfo());
    }
    std::string contents() {
        auto c = db();
        return leo::test::odd_table_contents(c);
    }
    stdfs::path snapshots() const { return root / "var/lib/leo-installer/snapshots"; }
    /// The ids of the restore points, oldest first.
    std::vector<std::string> restore_points() const {
        std::vector<std::string> out;
        std::error_code ec;
        for (const auto& e : stdfs::directory_iterator(snapshots(), ec)) out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }
    /// What a refusal must leave as it was: the files (without the log, the server's own
    /// files, the run lock's holder line and rpm's shared memory), the broker's tables and
    /// the odd ones. `journal` false also leaves out the journal (an upgrade records its
    /// refused run there, like a log) and the download cache.
    std::string state(bool journal = true) {
        std::vector<std::string> ignore{"var/log", "home/leo/pgsql", "var/lib/leo-installer/lock",
                                        "var/lib/rpm/rpmdb.sqlite-shm"};
        if (!journal) ignore.insert(ignore.end(), {"var/lib/leo-installer/journal", "var/cache"});
        return leo::test::snapshot_tree(root, ignore) + "\ntables:\n" + leo::test::table_checksums(root);
    }
    /// Replace restore point `id`'s config.tar.gz by one that also holds `link` -> `target`
    /// (a root-made archive with tar, as an attacker with the disk would), and put its
    /// digest in the manifest so that only the content can give it away.
    void tamper(const std::string& id, const std::string& link, const std::string& target) {
        const auto dir = snapshots() / id;
        leo::test::TempDir work;
        leo::test::run_ok({"tar", "-xzf", (dir / "config.tar.gz").string(), "-C", work.path().string()});
        stdfs::create_directories((work.path() / link).parent_path());
        stdfs::create_symlink(target, work.path() / link);
        std::vector<std::string> argv{"tar", "--format=pax", "-czf", (dir / "config.tar.gz").string(), "-C",
                                      work.path().string()};
        for (const char* top : {"home/leo/etc", "etc/leostream", "etc/leo-installer"})
            if (stdfs::exists(work.path() / top)) argv.emplace_back(top);
        leo::test::run_ok(argv);
        auto manifest = nlohmann::json::parse(leo::fs::read_file(dir / "manifest.json"));
        manifest["config"]["sha256"] = leo::crypto::file_digest_hex("sha256", dir / "config.tar.gz");
        std::ofstream(dir / "manifest.json", std::ios::trunc) << manifest.dump(2) << "\n";
    }
};

// ---- 1. names that need quoting ----

TEST_F(RestorePoints, TablesWhoseNamesNeedQuotingSurviveSnapshotUpgradeAndRollback) {
    {
        auto c = db();
        leo::test::create_odd_tables(c);
    }
    const std::string before = contents();
    ASSERT_THAT(before, HasSubstr("O'Brien \"\"the\"\" admin")) << before;  // row text doubles quotes
    ASSERT_THAT(before, HasSubstr("in schema a, named b")) << before;

    auto snap = run_installer(args({"snapshot", "create", "-y"}));
    ASSERT_EQ(snap.exit_code, 0) << snap.out << snap.err;
    ASSERT_EQ(restore_points().size(), 1u);
    const auto first = restore_points().front();
    // Every schema is seen; a public table needing no quotes keeps its bare key (manifests
    // taken before stay comparable), the others are schema-qualified as libpq quotes them.
    const auto tables = nlohmann::json::parse(leo::fs::read_file(snapshots() / first / "manifest.json"))
                            ["database"]["tables"];
    for (const char* key : {"work_queue", "\"public\".\"AuditLog\"", "\"public\".\"audit log\"",
                            "\"public\".\"a.b\"", "\"public\".\"quo\"\"te\"", "\"audit\".\"events\"", "\"a\".\"b\"",
                            "\"Ops.Team\".\"Mixed Case\""})
        EXPECT_TRUE(tables.contains(key)) << key << " missing from " << tables.dump();
    EXPECT_THAT(tables["\"a\".\"b\""].get<std::string>(), ::testing::StartsWith("2:"));
    EXPECT_THAT(tables["\"public\".\"a.b\""].get<std::string>(), ::testing::StartsWith("1:"));

    auto up = run_installer(args({"upgrade", "-y"}));
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_THAT(installed(), HasSubstr("9.2.0"));
    EXPECT_EQ(contents(), before) << "the upgrade changed the rows";

    // Rows changed after the restore points: a rollback puts them back exactly.
    {
        auto c = db();
        c.exec("UPDATE \"AuditLog\" SET \"Who\" = 'changed'");
        c.exec("DELETE FROM audit.events WHERE id > 3");
        c.exec("INSERT INTO \"Ops.Team\".\"Mixed Case\" VALUES ('three', 3)");
        c.exec("SELECT nextval('audit.events_id_seq')");
    }
    ASSERT_NE(contents(), before);
    auto rb = run_installer(args({"rollback", "-y"}));
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_THAT(installed(), HasSubstr("9.0.7"));
    EXPECT_EQ(contents(), before);

    // And back to the restore point `snapshot create` took.
    {
        auto c = db();
        c.exec("DELETE FROM \"quo\"\"te\"");
    }
    auto rb_first = run_installer(args({"rollback", first, "-y"}));
    ASSERT_EQ(rb_first.exit_code, 0) << rb_first.out << rb_first.err;
    EXPECT_EQ(contents(), before);
}

// ---- 2. links in the configuration ----

TEST_F(RestorePoints, RelativeLinksSurviveUpgradeAndRollbackAsTheSameLinks) {
    const auto etc = root / "home/leo/etc";
    const std::string conf = leo::fs::read_file(etc / "broker.conf");
    stdfs::create_symlink("broker.conf", etc / "current.conf");
    stdfs::create_directories(etc / "conf.d");
    stdfs::create_symlink("../broker.conf", etc / "conf.d/main.conf");
    stdfs::create_symlink("/etc/leostream/database.conf", etc / "database.conf");  // into another saved directory
    stdfs::create_symlink("not-yet.conf", etc / "dangling.conf");                   // dangling, inside
    stdfs::create_symlink("self.conf", etc / "self.conf");                          // points at itself

    auto up = run_installer(args({"upgrade", "-y"}));
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    // The administrator changes them after the upgrade; the rollback must put the links back.
    stdfs::remove(etc / "current.conf");
    std::ofstream(etc / "current.conf") << "a file now\n";
    stdfs::remove(etc / "conf.d/main.conf");
    stdfs::create_symlink("../elsewhere.conf", etc / "conf.d/main.conf");
    stdfs::remove(etc / "database.conf");

    auto rb = run_installer(args({"rollback", "-y"}));
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_THAT(installed(), HasSubstr("9.0.7"));
    for (const auto& [link, target] : std::vector<std::pair<std::string, std::string>>{
             {"current.conf", "broker.conf"},
             {"conf.d/main.conf", "../broker.conf"},
             {"database.conf", "/etc/leostream/database.conf"},
             {"dangling.conf", "not-yet.conf"},
             {"self.conf", "self.conf"}}) {
        ASSERT_TRUE(stdfs::is_symlink(etc / link)) << link << " is not a link after the rollback";
        EXPECT_EQ(stdfs::read_symlink(etc / link).string(), target) << link;
    }
    EXPECT_EQ(leo::fs::read_file(etc / "current.conf"), conf) << "current.conf does not lead to broker.conf";
    EXPECT_EQ(leo::fs::read_file(etc / "conf.d/main.conf"), conf);
    EXPECT_EQ(leo::fs::read_file(etc / "broker.conf"), conf);
}

TEST_F(RestorePoints, AFifoOrSocketInTheConfigurationNeitherBlocksNorSpoilsTheRestorePoint) {
    // The leo account owns /home/leo/etc: a FIFO there (nobody writes to it) must not hang
    // the archive, nor be archived and then refused at rollback (making the restore point,
    // and recover, unusable). Special files are left out, with a warning in the log.
    const auto etc = root / "home/leo/etc";
    ASSERT_EQ(::mkfifo((etc / "trap.fifo").c_str(), 0644), 0);
    const int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(sock, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const auto sock_path = (etc / "trap.sock").string();
    ASSERT_LT(sock_path.size(), sizeof addr.sun_path);
    std::copy(sock_path.begin(), sock_path.end(), addr.sun_path);
    ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    auto up = run_installer(args({"upgrade", "-y"}));
    ::close(sock);
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    auto rb = run_installer(args({"rollback", "-y"}));
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_THAT(installed(), HasSubstr("9.0.7"));
    EXPECT_THAT(leo::fs::read_file(root / "var/log/leo-installer/installer.log"),
                HasSubstr("trap.fifo is not a file, a directory or a link"));
}

TEST_F(RestorePoints, LinksLeadingOutOfTheSavedDirectoriesRefuseSnapshotAndUpgradeChangingNothing) {
    struct Case {
        stdfs::path link;      // inside the root
        std::string target;    // its text
        std::string resolved;  // where it leads, as the message says
        std::vector<std::pair<stdfs::path, std::string>> also;  // other links it needs
    };
    const std::vector<Case> cases{
        {"home/leo/etc/passwd.conf", "../../../etc/passwd", "/etc/passwd", {}},
        {"etc/leostream/ca.pem", "/etc/pki/tls/cert.pem", "/etc/pki/tls/cert.pem", {}},
        // Lexically inside (/home/leo/etc/passwd), but `sub` leads to /etc first.
        {"home/leo/etc/sneaky.conf", "sub/../passwd", "/etc/passwd", {{"home/leo/etc/sub", "/etc/leostream"}}},
    };
    stdfs::create_directories(root / "etc/leostream");
    for (const auto& c : cases) {
        SCOPED_TRACE(c.link.string());
        for (const auto& [l, t] : c.also) stdfs::create_symlink(t, root / l);
        stdfs::create_symlink(c.target, root / c.link);
        const std::string message =
            "symbolic link " + (root / c.link).string() + " -> " + c.target + " cannot be saved in a restore point";

        const std::string before = state();
        auto snap = run_installer(args({"snapshot", "create", "-y"}));
        EXPECT_EQ(snap.exit_code, 3) << snap.out << snap.err;
        EXPECT_THAT(snap.err, HasSubstr(message));
        EXPECT_THAT(snap.err, HasSubstr("it points to " + c.resolved));
        EXPECT_THAT(snap.err, HasSubstr("replace the link with a copy of its target"));
        EXPECT_EQ(state(), before) << "snapshot create changed something";
        EXPECT_TRUE(restore_points().empty());

        const std::string before_upgrade = state(false);
        auto up = run_installer(args({"upgrade", "-y"}));
        EXPECT_EQ(up.exit_code, 3) << up.out << up.err;
        EXPECT_THAT(up.err, HasSubstr("cannot take a restore point"));
        EXPECT_THAT(up.err, HasSubstr(message));
        EXPECT_EQ(state(false), before_upgrade) << "the refused upgrade changed something";
        EXPECT_THAT(installed(), HasSubstr("9.0.7"));
        EXPECT_TRUE(restore_points().empty());
        auto status = run_installer(args({"status"}));
        EXPECT_EQ(status.exit_code, 0) << "the refused upgrade left an unfinished run: " << status.out << status.err;

        stdfs::remove(root / c.link);
        for (const auto& [l, t] : c.also) stdfs::remove(root / l);
    }
    // Without them, the same restore point is taken.
    auto snap = run_installer(args({"snapshot", "create", "-y"}));
    EXPECT_EQ(snap.exit_code, 0) << snap.out << snap.err;
}

TEST_F(RestorePoints, TamperedArchiveWithALinkOutIsRefusedByRollbackAndRecoverDoesNotLoop) {
    auto snap = run_installer(args({"snapshot", "create", "-y"}));
    ASSERT_EQ(snap.exit_code, 0) << snap.out << snap.err;
    const auto id = restore_points().front();
    tamper(id, "home/leo/etc/evil.conf", "../../../etc/shadow");

    const std::string before = state();
    auto rb = run_installer(args({"rollback", "-y"}));
    EXPECT_EQ(rb.exit_code, 3) << rb.out << rb.err;
    EXPECT_THAT(rb.err, HasSubstr("cannot roll back to restore point " + id + "; nothing was changed"));
    EXPECT_THAT(rb.err, HasSubstr("the symbolic link home/leo/etc/evil.conf -> ../../../etc/shadow"));
    EXPECT_THAT(rb.err, HasSubstr("points to /etc/shadow"));
    EXPECT_EQ(state(), before) << "the refused rollback changed something (or recorded a run)";
    EXPECT_FALSE(stdfs::is_symlink(root / "home/leo/etc/evil.conf"));
    auto rec = run_installer(args({"recover", "-y"}));
    EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_THAT(rec.out, HasSubstr("nothing to recover"));
    EXPECT_EQ(state(), before);
}

TEST_F(RestorePoints, RecoverGivesUpOnAnInterruptedUpgradeWhoseRestorePointCannotBeUsed) {
    leo::subprocess::Options killed;
    killed.env["LEO_FAULT_INJECT"] = "upgrade.after_restore_point";
    auto up = run_installer(args({"upgrade", "-y"}), killed);
    ASSERT_EQ(up.signal, SIGKILL) << up.out << up.err;
    ASSERT_EQ(restore_points().size(), 1u);
    const auto id = restore_points().front();
    tamper(id, "etc/leostream/evil.conf", "/etc/shadow");

    auto dry = run_installer(args({"recover", "--dry-run"}));
    EXPECT_EQ(dry.exit_code, 0) << dry.out << dry.err;
    EXPECT_THAT(dry.out, HasSubstr("give up:         restore point " + id + " cannot be used"));

    const std::string before = state(false);
    auto rec = run_installer(args({"recover", "-y"}));
    EXPECT_EQ(rec.exit_code, 1) << rec.out << rec.err;
    EXPECT_THAT(rec.err, HasSubstr("recover gave up on the interrupted `upgrade` " + k_old + " -> " + k_new));
    EXPECT_THAT(rec.err, HasSubstr("the symbolic link etc/leostream/evil.conf -> /etc/shadow"));
    EXPECT_THAT(rec.err, HasSubstr("`leo-installer rollback ID --root " + root.string() + "`"));
    EXPECT_EQ(state(false), before) << "giving up changed something besides the journal";
    EXPECT_THAT(installed(), HasSubstr("9.0.7"));

    // The run is ended: the next recover has nothing to do, and the broker can be upgraded.
    auto again = run_installer(args({"recover", "-y"}));
    EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
    EXPECT_THAT(again.out, HasSubstr("nothing to recover"));
    auto status = run_installer(args({"status"}));
    EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
}

// ---- 3. file modes ----

/// The modes of restore point `dir`: the directory 0700, each part 0600, all root's.
void expect_private(const stdfs::path& dir) {
    EXPECT_EQ(mode_of(dir), 0700u) << dir;
    EXPECT_EQ(owner_of(dir), 0u) << dir;
    for (const char* part : {"manifest.json", "package.rpm", "config.tar.gz", "database.dump"}) {
        EXPECT_EQ(mode_of(dir / part), 0600u) << dir / part;
        EXPECT_EQ(owner_of(dir / part), 0u) << dir / part;
    }
    std::size_t n = 0;
    for (const auto& e : stdfs::directory_iterator(dir)) {
        EXPECT_EQ(mode_of(e.path()) & 077, 0u) << e.path();
        ++n;
    }
    EXPECT_EQ(n, 4u) << "a restore point holds exactly its four parts";
}

TEST_F(RestorePoints, PartsAre0600AndDirectories0700WhateverTheUmaskAndTheDirectoryWasBefore) {
    stdfs::create_directories(snapshots());
    for (const std::string umask : {"000", "077", "022"}) {
        SCOPED_TRACE("umask " + umask);
        ASSERT_EQ(::chmod(snapshots().c_str(), 0777), 0);
        const auto before = restore_points();
        auto r = leo::subprocess::run(
            {"sh", "-c", "umask " + umask + "; exec \"$@\"", "sh", LEO_INSTALLER_BIN, "snapshot", "create", "--root",
             root.string(), "-y"});
        ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
        EXPECT_EQ(mode_of(snapshots()), 0700u) << "the snapshots directory is root-only again";
        const auto after = restore_points();
        ASSERT_EQ(after.size(), before.size() + 1);
        expect_private(snapshots() / after.back());
    }
    // The restore point an upgrade takes, under umask 000.
    ASSERT_EQ(::chmod(snapshots().c_str(), 0777), 0);
    auto up = leo::subprocess::run(
        {"sh", "-c", "umask 000; exec \"$@\"", "sh", LEO_INSTALLER_BIN, "upgrade", "--root", root.string(), "-y"});
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_EQ(mode_of(snapshots()), 0700u);
    expect_private(snapshots() / restore_points().back());
    // The kept package a rollback leaves is root's alone too.
    auto rb = leo::subprocess::run(
        {"sh", "-c", "umask 000; exec \"$@\"", "sh", LEO_INSTALLER_BIN, "rollback", "--root", root.string(), "-y"});
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    for (const auto& e : stdfs::directory_iterator(root / "var/lib/leo-installer/packages"))
        EXPECT_EQ(mode_of(e.path()), 0600u) << e.path();
}

} // namespace
