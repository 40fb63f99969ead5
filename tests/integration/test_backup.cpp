// `leo-installer backup create|list|verify|prune` against a real broker install: the real
// binary on a sandbox root with 9.0.7 installed, its internal PostgreSQL, real pg_dump and
// pg_restore. A backup is restored by hand (pg_restore into a new database) and compared
// row by row; a corrupted dump fails verify; verify leaves no scratch database; retention
// keeps the newest; bad input says what is wrong and changes nothing.
#include "broker_runs.hpp"
#include "db_support.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/fault.hpp"
#include "leo/common/fs.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/migrations/internal_db.hpp"

#include <csignal>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using ::testing::HasSubstr;
using leo::test::mode_of;
using leo::test::owner_of;
using leo::test::run_installer;
using leo::test::runs::k_old;

class Backups : public leo::test::runs::Broker {
protected:
    leo::migrations::InternalDatabase instance() {
        leo::migrations::InternalDatabase d(root);
        if (d.status().state != leo::migrations::DbState::running) d.start();
        return d;
    }
    leo::migrations::Connection db(const std::string& name = "leo") {
        return leo::migrations::Connection::open(instance().conninfo(name));
    }
    stdfs::path backups() const { return root / "var/lib/leo-installer/backups"; }
    /// Backup ids on disk (directories not starting with '.'), sorted.
    std::vector<std::string> ids() const {
        std::vector<std::string> out;
        std::error_code ec;
        for (const auto& e : stdfs::directory_iterator(backups(), ec))
            if (e.path().filename().string()[0] != '.') out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }
    /// The databases of the instance (what a verify must leave as it was).
    std::string databases() {
        auto c = db("postgres");
        const auto r = c.query("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database");
        return r.at(0, 0);
    }
    /// What a refusal must leave as it was: the files (without the log, the server's own
    /// files and the lock's holder line), the databases and the broker's tables.
    std::string state() {
        return leo::test::snapshot_tree(root, {"var/log", "home/leo/pgsql", "var/lib/leo-installer/lock"}) +
               "\ndatabases: " + databases() + "\ntables:\n" + leo::test::table_checksums(root);
    }
    void write_conf(const std::string& text) {
        stdfs::create_directories(root / "etc/leo-installer");
        std::ofstream(root / "etc/leo-installer/installer.conf", std::ios::trunc) << text;
        stdfs::permissions(root / "etc/leo-installer/installer.conf", stdfs::perms(0644));
    }
    nlohmann::json manifest(const std::string& id) const {
        return nlohmann::json::parse(leo::fs::read_file(backups() / id / "manifest.json"));
    }
    leo::subprocess::Result backup(std::vector<std::string> a) { return run_installer(args(std::move(a))); }
};

TEST_F(Backups, CreateListVerifyAndARestoreByHandEqualsTheDatabaseAtBackupTime) {
    {
        auto c = db();
        leo::test::create_odd_tables(c);
    }
    std::string before;
    {
        auto c = db();
        before = leo::test::odd_table_contents(c);
    }
    const std::string dbs_before = databases();

    auto made = backup({"backup", "create", "-y"});
    ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
    EXPECT_THAT(made.out, HasSubstr("taken: internal database leo"));
    ASSERT_EQ(ids().size(), 1u);
    const auto id = ids().front();

    // Modes: directory 0700, files 0600, root's; no partial directory left.
    EXPECT_EQ(mode_of(backups()), 0700u);
    EXPECT_EQ(mode_of(backups() / id), 0700u);
    for (const char* f : {"database.dump", "manifest.json"}) {
        EXPECT_EQ(mode_of(backups() / id / f), 0600u) << f;
        EXPECT_EQ(owner_of(backups() / id / f), 0u) << f;
    }
    EXPECT_EQ(stdfs::directory_iterator(backups())->path().filename(), id);

    // The manifest records what the issue asks for, and the digest is the file's.
    const auto m = manifest(id);
    EXPECT_EQ(m["id"], id);
    EXPECT_EQ(m["broker"], k_old);
    EXPECT_EQ(m["schema_version"], schema());
    EXPECT_EQ(m["database"]["location"], "internal");
    EXPECT_EQ(m["database"]["name"], "leo");
    EXPECT_EQ(m["dump"]["sha256"], leo::crypto::file_digest_hex("sha256", backups() / id / "database.dump"));
    EXPECT_EQ(m["dump"]["size_bytes"].get<std::uint64_t>(), stdfs::file_size(backups() / id / "database.dump"));
    EXPECT_FALSE(m["schema_history"].empty());
    EXPECT_TRUE(m["tables"].contains("work_queue")) << m["tables"].dump();
    EXPECT_THAT(m["tables"]["\"a\".\"b\""].get<std::string>(), ::testing::StartsWith("2:"));

    auto listed = backup({"backup", "list", "--json"});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    const auto l = nlohmann::json::parse(listed.out);
    ASSERT_EQ(l["backups"].size(), 1u);
    EXPECT_EQ(l["backups"][0]["id"], id);
    EXPECT_EQ(l["keep"], 7);
    auto text = backup({"backup", "list"});
    EXPECT_THAT(text.out, HasSubstr(id));
    EXPECT_THAT(text.out, HasSubstr(k_old));

    // The broker goes on writing after the backup: the backup holds the state before.
    {
        auto c = db();
        c.exec("UPDATE \"AuditLog\" SET \"Who\" = 'changed after the backup'");
        c.exec("DELETE FROM audit.events");
    }

    auto verified = backup({"backup", "verify"});
    EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
    EXPECT_THAT(verified.out, HasSubstr("backup " + id + " restores"));
    EXPECT_EQ(databases(), dbs_before) << "verify left a scratch database";

    // Restored by hand, with PostgreSQL's own pg_restore, into a new database: exactly the
    // rows of backup time.
    {
        auto admin = db("postgres");
        admin.exec("CREATE DATABASE restored_by_hand OWNER leo");
    }
    const auto bin = leo::migrations::find_pg_bindir();
    leo::test::run_ok({(bin / "pg_restore").string(), "--exit-on-error", "--no-owner",
                       "--dbname=" + instance().conninfo("restored_by_hand"),
                       (backups() / id / "database.dump").string()});
    {
        auto restored = db("restored_by_hand");
        EXPECT_EQ(leo::test::odd_table_contents(restored), before);
        auto live = db();
        EXPECT_NE(leo::test::odd_table_contents(live), before) << "the live database was meant to change";
        EXPECT_EQ(restored.query("SELECT max(version) FROM leo_schema_history WHERE success").at(0, 0), schema());
    }
}

TEST_F(Backups, ACorruptedDumpFailsVerifyPlainlyAndLeavesNoScratchDatabase) {
    auto made = backup({"backup", "create", "-y"});
    ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
    const auto id = ids().front();
    const auto dump = backups() / id / "database.dump";
    const std::string dbs_before = databases();

    // A flipped byte in the middle: the SHA-256 gives it away.
    std::string bytes = leo::fs::read_file(dump);
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5a);
    std::ofstream(dump, std::ios::binary | std::ios::trunc) << bytes;
    auto v = backup({"backup", "verify", id});
    EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
    EXPECT_THAT(v.out, HasSubstr("backup " + id + " does NOT restore as recorded"));
    EXPECT_THAT(v.out, HasSubstr("is damaged: SHA-256"));
    EXPECT_EQ(databases(), dbs_before);

    // Damage the manifest agrees with (a dump truncated before its digest was taken): the
    // restore itself fails, and the scratch database is dropped all the same.
    bytes.resize(bytes.size() * 2 / 3);
    std::ofstream(dump, std::ios::binary | std::ios::trunc) << bytes;
    auto m = manifest(id);
    m["dump"]["sha256"] = leo::crypto::file_digest_hex("sha256", dump);
    m["dump"]["size_bytes"] = stdfs::file_size(dump);
    std::ofstream(backups() / id / "manifest.json", std::ios::trunc) << m.dump(2);
    auto v2 = backup({"backup", "verify", id, "--json"});
    EXPECT_EQ(v2.exit_code, 1) << v2.out << v2.err;
    const auto j = nlohmann::json::parse(v2.out);
    EXPECT_FALSE(j["restores"].get<bool>());
    ASSERT_FALSE(j["problems"].empty()) << j.dump();
    EXPECT_THAT(j["problems"][0].get<std::string>(),
                ::testing::AnyOf(HasSubstr("it does not restore: pg_restore of"), HasSubstr("differ from the manifest")))
        << j.dump();
    EXPECT_THAT(j["scratch_database"].get<std::string>(), ::testing::StartsWith("leo_backup_verify_"));
    EXPECT_EQ(databases(), dbs_before) << "verify left a scratch database";
}

TEST_F(Backups, ARestoreThatDiffersFromTheManifestFailsVerify) {
    auto made = backup({"backup", "create", "-y"});
    ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
    const auto id = ids().front();
    // The manifest says one more row than the dump holds.
    auto m = manifest(id);
    m["tables"]["work_queue"] = "999:0";
    std::ofstream(backups() / id / "manifest.json", std::ios::trunc) << m.dump(2);
    auto v = backup({"backup", "verify"});
    EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
    EXPECT_THAT(v.out, HasSubstr("differ from the manifest in: work_queue"));
}

TEST_F(Backups, PruneKeepsTheNewestAndAsksFirst) {
    write_conf("[backup]\nkeep = 2\n");
    for (int i = 0; i < 3; ++i) {
        auto made = backup({"backup", "create", "-y"});
        ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
    }
    const auto all = ids();
    ASSERT_EQ(all.size(), 3u);
    // A killed run's partial directory: never listed, removed by prune.
    stdfs::create_directory(backups() / ".20990101T000000Z.partial");

    const auto before = state();
    auto asked = backup({"backup", "prune"});  // no terminal, no -y: refused
    EXPECT_NE(asked.exit_code, 0);
    EXPECT_EQ(state(), before) << "a refused prune changed something";

    auto pruned = backup({"backup", "prune", "-y"});
    ASSERT_EQ(pruned.exit_code, 0) << pruned.out << pruned.err;
    EXPECT_THAT(pruned.out, HasSubstr("deleted backup " + all[0]));
    EXPECT_EQ(ids(), (std::vector<std::string>{all[1], all[2]}));
    EXPECT_FALSE(stdfs::exists(backups() / ".20990101T000000Z.partial"));
    auto again = backup({"backup", "prune", "-y"});
    EXPECT_EQ(again.exit_code, 0);
    EXPECT_THAT(again.out, HasSubstr("nothing to prune: 2 backup(s), keeping the newest 2"));
}

TEST_F(Backups, ConfiguredDirectoryIsMadePrivate) {
    write_conf("[backup]\ndirectory = /srv/broker-backups\n");
    auto made = backup({"backup", "create", "-y", "--json"});
    ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
    const auto id = nlohmann::json::parse(made.out)["id"].get<std::string>();
    EXPECT_EQ(mode_of(root / "srv/broker-backups"), 0700u);
    EXPECT_TRUE(stdfs::exists(root / "srv/broker-backups" / id / "database.dump"));
    EXPECT_FALSE(stdfs::exists(backups()));
    auto v = backup({"backup", "verify", id});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

TEST_F(Backups, BadInputSaysWhatIsWrongAndChangesNothing) {
    auto made = backup({"backup", "create", "-y"});
    ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
    const auto before = state();

    auto unknown = backup({"backup", "verify", "20200101T000000Z"});
    EXPECT_EQ(unknown.exit_code, 2) << unknown.out << unknown.err;
    EXPECT_THAT(unknown.err, HasSubstr("there is no backup '20200101T000000Z' in " + backups().string() +
                                       "; `leo-installer backup list` shows them"));
    auto id_on_create = backup({"backup", "create", "-y", "someid"});
    EXPECT_EQ(id_on_create.exit_code, 2);
    EXPECT_THAT(id_on_create.err, HasSubstr("backup create takes no backup id (got 'someid')"));
    EXPECT_EQ(state(), before);

    const auto conf = root / "etc/leo-installer/installer.conf";
    for (const char* bad : {"keep = 0", "keep = seven"}) {
        write_conf(std::string("[backup]\n") + bad + "\n");
        const auto with_conf = state();
        for (const char* action : {"create", "prune", "list"}) {
            auto r = backup({"backup", action, "-y"});
            EXPECT_EQ(r.exit_code, 2) << action << ": " << r.out << r.err;
            EXPECT_THAT(r.err, HasSubstr(conf.string() + ":2: [backup] " + bad +
                                         ": expected a whole number from 1 to 2147483647"))
                << action;
            EXPECT_EQ(state(), with_conf) << action << " with " << bad << " changed something";
        }
    }
}

TEST_F(Backups, AKilledCreateLeavesNoBackupListed) {
    leo::subprocess::Options o;
    o.env[leo::fault::k_env] = "backup.after_dump";
    auto killed = run_installer(args({"backup", "create", "-y"}), o);
    EXPECT_EQ(killed.signal, SIGKILL) << killed.out << killed.err;
    EXPECT_TRUE(ids().empty());
    auto listed = backup({"backup", "list", "--json"});
    const auto l = nlohmann::json::parse(listed.out);
    EXPECT_TRUE(l["backups"].empty());
    EXPECT_EQ(l["partial"].size(), 1u) << l.dump();
    // The next create takes a whole one and clears the partial directory.
    auto made = backup({"backup", "create", "-y"});
    ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
    EXPECT_EQ(ids().size(), 1u);
    std::size_t entries = 0;
    for ([[maybe_unused]] const auto& e : stdfs::directory_iterator(backups())) ++entries;
    EXPECT_EQ(entries, 1u);
}

TEST_F(Backups, AnExternalDatabaseIsDumpedWithoutItsPasswordShowingAndVerifiedOnItsServer) {
    const std::string password = "ext-backup-s3cret";
    leo::test::ExternalPostgres ext;
    ext.create_role("broker", password, true);
    ext.create_database("leo_ext", "broker");
    {
        auto c = leo::migrations::Connection::open(ext.conninfo("leo_ext", "broker", password));
        c.exec("CREATE TABLE sites (id int PRIMARY KEY, name text)");
        c.exec("INSERT INTO sites VALUES (1, 'north'), (2, 'south')");
    }
    leo::installer::DatabaseConfig cfg;
    cfg.mode = leo::installer::DatabaseMode::external;
    cfg.external.host = "127.0.0.1";
    cfg.external.port = ext.port();
    cfg.external.dbname = "leo_ext";
    cfg.external.username = "broker";
    cfg.external.password = password;
    leo::installer::save_database_config(root, cfg);

    auto made = backup({"backup", "create", "-y", "--json"});
    ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
    const auto m = nlohmann::json::parse(made.out);
    EXPECT_EQ(m["database"]["location"], "external");
    EXPECT_EQ(m["database"]["name"], "broker@127.0.0.1:" + std::to_string(ext.port()) + "/leo_ext");
    EXPECT_THAT(m["tables"]["sites"].get<std::string>(), ::testing::StartsWith("2:"));
    const auto id = m["id"].get<std::string>();
    auto v = backup({"backup", "verify", id});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    {
        auto admin = ext.admin();
        EXPECT_EQ(admin.query("SELECT count(*) FROM pg_database WHERE datname LIKE 'leo_backup_verify%'").at(0, 0),
                  "0");
    }
    // The password reached pg_dump and pg_restore in their environment only: not the
    // output, the manifest or the log.
    for (const auto& text : {made.out + made.err, v.out + v.err, leo::test::slurp(backups() / id / "manifest.json"),
                             leo::test::slurp(root / "var/log/leo-installer/installer.log")})
        EXPECT_EQ(text.find(password), std::string::npos) << text;
}

} // namespace
