// `log list|view|clear` and `support-bundle` on a sandbox root with the broker installed:
// the archive's entries, mode, owner, name and size bound, the redaction of secrets planted
// in every collected source, links planted by leo never followed, bad input refused.
#include "sandbox_root.hpp"
#include "test_support.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/archive.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/support_bundle.hpp"

#include <chrono>
#include <fstream>
#include <regex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;
using leo::test::slurp;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

void write(const stdfs::path& p, const std::string& text, bool append = false) {
    stdfs::create_directories(p.parent_path());
    std::ofstream out(p, append ? std::ios::app : std::ios::trunc);
    out << text;
}

class SupportBundle : public leo::test::SandboxRootTest {
protected:
    void SetUp() override {
        SandboxRootTest::SetUp();
        leo::test::install_test_broker(root, "leostream-broker-9.0.7-1.x86_64");
        const auto leo = leo::accounts::find_user(root, "leo");
        ASSERT_TRUE(leo.has_value());
        leo_uid = leo->uid;
        leo_gid = leo->gid;
        logs = root / "home/leo/logs";
        stdfs::create_directories(logs);
        ASSERT_EQ(::chown(logs.c_str(), leo_uid, leo_gid), 0);
    }
    std::vector<std::string> args(std::vector<std::string> a) const {
        a.insert(a.end(), {"--root", root.string()});
        return a;
    }
    /// A log written by leo (owned by leo, in leo's directory).
    void leo_file(const stdfs::path& p, const std::string& text) {
        write(p, text);
        ASSERT_EQ(::chown(p.c_str(), leo_uid, leo_gid), 0);
    }
    /// The bundle's path from `support-bundle --json`, the entries read back with libarchive.
    std::map<std::string, std::string> bundle(const std::vector<std::string>& extra, stdfs::path& file,
                                              nlohmann::json& report) {
        std::vector<std::string> a{"support-bundle", "--json"};
        a.insert(a.end(), extra.begin(), extra.end());
        const auto r = run_installer(args(a));
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        report = nlohmann::json::parse(r.out);
        file = report.at("file").get<std::string>();
        return leo::archive::regular_file_contents(file, std::size_t{256} << 20);
    }

    uid_t leo_uid = 0;
    gid_t leo_gid = 0;
    stdfs::path logs;
};

TEST_F(SupportBundle, EntriesModeOwnerNameSizeBoundAndSchemaHistory) {
    // A 6 MiB broker log: only its last 5 MiB are kept, and the MANIFEST says so.
    std::string big;
    for (int i = 0; big.size() < (std::size_t{6} << 20); ++i) big += "line " + std::to_string(i) + " of the broker log\n";
    big += "THE-LAST-LINE\n";
    leo_file(logs / "httpd.log", big);
    leo_file(logs / "queue.log", "queue: started\n");
    write(root / "etc/yum.repos.d/CentOS-Base.repo", "[base]\nname=CentOS-7 - Base\nbaseurl=http://mirror/7/os/x86_64/\n");
    const auto before = std::chrono::system_clock::now();
    stdfs::path file;
    nlohmann::json report;
    const auto entries = bundle({}, file, report);

    // Name, place, mode, owner.
    EXPECT_EQ(file.parent_path(), root / "home/leo");
    EXPECT_TRUE(std::regex_match(file.filename().string(),
                                 std::regex(R"(leostream-support-[A-Za-z0-9.-]+-\d{8}T\d{6}Z\.zip)")))
        << file;
    {
        // Its time is this run's, in UTC.
        const auto stamp = file.filename().string().substr(file.filename().string().size() - 20, 16);
        const auto earliest = leo::installer::support_bundle_name("h", before);
        const auto latest = leo::installer::support_bundle_name("h", std::chrono::system_clock::now());
        EXPECT_GE(stamp, earliest.substr(earliest.size() - 20, 16));
        EXPECT_LE(stamp, latest.substr(latest.size() - 20, 16));
    }
    EXPECT_EQ(leo::test::mode_of(file), 0600u);
    EXPECT_EQ(leo::test::owner_of(file), leo_uid);

    for (const char* e : {"MANIFEST.txt", "logs/broker.log", "logs/queue.log", "logs/installer.log", "status.json",
                          "preflight.json", "facts.json", "rpm/rpm-qa.txt", "rpm/rpm-V.txt", "journal.txt",
                          "config/home/leo/etc/broker.conf", "config/etc/yum.repos.d/CentOS-Base.repo",
                          "schema-history.json"})
        EXPECT_TRUE(entries.count(e)) << "no " << e << " in " << file << "; report " << report.dump(2);

    // The size bound: the end of the log is there, its start is not.
    const auto& log = entries.at("logs/broker.log");
    EXPECT_LE(log.size(), (std::size_t{5} << 20) + 200);
    EXPECT_TRUE(contains(log, "THE-LAST-LINE"));
    EXPECT_FALSE(contains(log, "line 0 of the broker log\n"));
    EXPECT_TRUE(contains(log, "[leo-installer support-bundle: cut: the last"));
    EXPECT_TRUE(contains(entries.at("MANIFEST.txt"), "logs/broker.log"));
    EXPECT_TRUE(contains(entries.at("MANIFEST.txt"), "cut: the last"));

    // The state is the commands' own JSON; the rpmdb is read in the root.
    EXPECT_EQ(nlohmann::json::parse(entries.at("status.json")).at("installed").at(0).at("evr"), "9.0.7-1");
    EXPECT_TRUE(contains(entries.at("facts.json"), "\"mem_total_kib\""));
    EXPECT_TRUE(contains(entries.at("rpm/rpm-qa.txt"), "leostream-broker-9.0.7-1.x86_64"));
    EXPECT_TRUE(contains(entries.at("rpm/rpm-V.txt"), "exit status"));
    const auto history = nlohmann::json::parse(entries.at("schema-history.json"));
    EXPECT_TRUE(history.at("has_history").get<bool>());
    EXPECT_FALSE(history.at("applied").empty());
    EXPECT_EQ(report.at("size").get<std::uint64_t>(), stdfs::file_size(file));
}

TEST_F(SupportBundle, NoPlantedSecretReachesTheArchive) {
    std::vector<std::string> secrets;
    const auto plant = [&](const std::string& s) {
        secrets.push_back(s);
        return s;
    };
    // database.conf: an external database, its password sealed (the sealed text and the
    // password itself are both secrets); nothing listens on its port.
    leo::installer::DatabaseConfig db;
    db.mode = leo::installer::DatabaseMode::external;
    db.external.host = "127.0.0.1";
    db.external.port = leo::test::free_port();
    db.external.dbname = "leo";
    db.external.username = "broker";
    db.external.password = plant("DbPass-Planted-01");
    leo::installer::save_database_config(root, db);
    const std::string conf = slurp(root / "etc/leostream/database.conf");
    const auto sealed_at = conf.find("aes256gcm:v1:");
    ASSERT_NE(sealed_at, std::string::npos) << conf;
    secrets.push_back(conf.substr(sealed_at + 13, 24));  // a part of the sealed value
    const std::string key = slurp(root / "etc/leostream/database.key");
    ASSERT_GE(key.size(), 20u);
    secrets.push_back(key.substr(0, 20));

    write(root / "etc/leo-installer/installer.conf",
          "[support_bundle]\nsecret_keys = license_blob\n[vm_snapshot]\ncreate_command = /usr/local/bin/snap --api-token " +
              plant("CmdTok-Planted-02") + "\n");
    write(root / "home/leo/etc/broker.conf",
          "ldap_password = " + plant("Ldap-Planted-03") + "\napi_token=" + plant("Tok-Planted-04") +
              "\nlicense_blob = " + plant("Lic-Planted-05") + "\n",
          true);
    write(root / "home/leo/etc/ssl.pem", "-----BEGIN CERTIFICATE-----\nMIIpublic\n-----END CERTIFICATE-----\n"
                                         "-----BEGIN PRIVATE KEY-----\n" +
                                             plant("PemBody-Planted-06") + "\n-----END PRIVATE KEY-----\n");
    write(root / "home/leo/etc/server.key", plant("KeyFile-Planted-07") + "\n");
    write(root / "etc/yum.repos.d/secret.repo",
          "[secret]\nname=s\nbaseurl=https://repouser:" + plant("RepoUrl-Planted-08") +
              "@mirror.example.com/x\nproxy_password=" + plant("Proxy-Planted-09") + "\npassword = " +
              plant("RepoPw-Planted-10") + "\n");
    write(root / "etc/leostream/broker.env", "PGPASSWORD=" + plant("PgEnv-Planted-11") + "\nPGUSER=broker\n");
    leo_file(logs / "httpd.log",
             "connect postgresql://broker:" + plant("UrlPass-Planted-12") +
                 "@db/leo\nlogin failed for password DbPass-Planted-01 (sent in plain text)\nsecret=" +
                 plant("Sec-Planted-13") + " done\n-----BEGIN RSA PRIVATE KEY-----\n" + plant("PemLog-Planted-14") +
                 "\n-----END RSA PRIVATE KEY-----\n");
    write(root / "var/log/leo-installer/installer.log", "token: " + plant("Tok-Planted-15") + "\n", true);
    write(root / "var/lib/leo-installer/journal", "{\"v\":1,\"note\":\"password=" + plant("Journal-Planted-16") + "\"}\n",
          true);
    write(root / "var/lib/leo-installer/snapshots/20261201-planted/manifest.json",
          "{\"conninfo\": \"host=h password=" + plant("Manifest-Planted-17") + "\",\n \"db_password\": \"" +
              plant("Manifest-Planted-18") + "\"}\n");

    stdfs::path file;
    nlohmann::json report;
    const auto entries = bundle({}, file, report);
    // Every planted source made it into the bundle (so the absence below means redacted).
    for (const char* e : {"config/etc/leostream/database.conf", "config/etc/leo-installer/installer.conf",
                          "config/home/leo/etc/broker.conf", "config/home/leo/etc/ssl.pem",
                          "config/etc/yum.repos.d/secret.repo", "config/etc/leostream/broker.env", "logs/broker.log",
                          "logs/installer.log", "journal.txt", "restore-points/20261201-planted.json"})
        EXPECT_TRUE(entries.count(e)) << "no " << e << "; report " << report.dump(2);
    EXPECT_FALSE(entries.count("config/home/leo/etc/server.key"));
    EXPECT_FALSE(entries.count("config/etc/leostream/database.key"));
    // Not one planted secret in any entry, nor in the file's own bytes.
    const std::string raw = slurp(file);
    for (const auto& s : secrets) {
        EXPECT_FALSE(contains(raw, s)) << s << " is in the file " << file;
        for (const auto& [name, content] : entries) EXPECT_FALSE(contains(content, s)) << s << " is in " << name;
    }
    // What stays readable: the masks, the certificate, the user names.
    EXPECT_TRUE(contains(entries.at("config/etc/leostream/database.conf"), "password = ***"));
    EXPECT_TRUE(contains(entries.at("config/home/leo/etc/ssl.pem"), "MIIpublic"));
    EXPECT_TRUE(contains(entries.at("config/etc/yum.repos.d/secret.repo"), "https://repouser:***@mirror"));
    // The unreachable database is said in the MANIFEST, with the key file left out.
    const auto& manifest = entries.at("MANIFEST.txt");
    EXPECT_TRUE(contains(manifest, "the database's schema history:")) << manifest;
    EXPECT_TRUE(contains(manifest, "/home/leo/etc/server.key: a key file: never collected")) << manifest;
    EXPECT_FALSE(entries.count("schema-history.json"));
}

TEST_F(SupportBundle, LinksPlantedByLeoAreNeverFollowed) {
    const auto target = root / "etc/planted-target";
    write(target, "TARGET-CONTENT-THAT-MUST-STAY\n");
    const auto target_before = leo::test::snapshot_tree(root / "etc", {});
    stdfs::create_symlink(target, logs / "httpd.log");
    ASSERT_EQ(::lchown((logs / "httpd.log").c_str(), leo_uid, leo_gid), 0);

    const auto view = run_installer(args({"log", "view", "broker"}));
    EXPECT_NE(view.exit_code, 0);
    EXPECT_TRUE(contains(view.err, "symbolic link")) << view.err;
    EXPECT_FALSE(contains(view.out, "TARGET-CONTENT"));
    const auto clear = run_installer(args({"log", "clear", "broker", "-y"}));
    EXPECT_NE(clear.exit_code, 0);
    EXPECT_TRUE(contains(clear.err, "symbolic link")) << clear.err;
    EXPECT_EQ(slurp(target), "TARGET-CONTENT-THAT-MUST-STAY\n");

    // Bundle names planted as links for the next seconds: the bundle takes another name.
    const auto now = std::chrono::system_clock::now();
    char h[256] = {};
    ::gethostname(h, 255);
    for (int s = 0; s < 20; ++s) {
        const auto link = root / "home/leo" / leo::installer::support_bundle_name(h, now + std::chrono::seconds(s));
        stdfs::create_symlink(target, link);
        ASSERT_EQ(::lchown(link.c_str(), leo_uid, leo_gid), 0);
    }
    stdfs::path file;
    nlohmann::json report;
    const auto entries = bundle({}, file, report);
    EXPECT_TRUE(contains(file.filename().string(), "Z-2.zip")) << file;
    EXPECT_FALSE(stdfs::is_symlink(file));
    EXPECT_EQ(leo::test::snapshot_tree(root / "etc", {}), target_before);
    EXPECT_EQ(slurp(target), "TARGET-CONTENT-THAT-MUST-STAY\n");
    EXPECT_FALSE(entries.count("logs/broker.log"));
    EXPECT_TRUE(contains(entries.at("MANIFEST.txt"), "log broker (/home/leo/logs/httpd.log): a symbolic link"))
        << entries.at("MANIFEST.txt");
    for (const auto& [name, content] : entries) EXPECT_FALSE(contains(content, "TARGET-CONTENT")) << name;
}

TEST_F(SupportBundle, LogListViewClear) {
    leo_file(logs / "httpd.log", "one\ntwo\nthree\n");
    leo_file(logs / "extra.log", "x\n");
    const auto list = run_installer(args({"log", "list", "--json"}));
    ASSERT_EQ(list.exit_code, 0) << list.err;
    const auto j = nlohmann::json::parse(list.out);
    std::map<std::string, nlohmann::json> by_name;
    for (const auto& e : j) by_name[e.at("name").get<std::string>()] = e;
    for (const char* n : {"broker", "queue", "database", "installer", "extra"}) EXPECT_TRUE(by_name.count(n)) << n;
    EXPECT_EQ(by_name["broker"].at("size"), 14);
    EXPECT_EQ(by_name["broker"].at("path"), (logs / "httpd.log").string());
    EXPECT_TRUE(by_name["broker"].at("modified").is_string());

    const auto tail = run_installer(args({"log", "view", "broker", "--lines", "2"}));
    EXPECT_EQ(tail.exit_code, 0) << tail.err;
    EXPECT_EQ(tail.out, "two\nthree\n");
    EXPECT_EQ(run_installer(args({"log", "view", "broker"})).out, "one\ntwo\nthree\n");

    // No terminal and no -y: refused, nothing changed.
    const auto ino = leo::test::snapshot_tree(logs);
    const auto no_tty = run_installer(args({"log", "clear", "broker"}));
    EXPECT_EQ(no_tty.exit_code, 3) << no_tty.err;
    EXPECT_TRUE(contains(no_tty.err, "no terminal")) << no_tty.err;
    EXPECT_EQ(leo::test::snapshot_tree(logs), ino);

    struct stat before {};
    ASSERT_EQ(::stat((logs / "httpd.log").c_str(), &before), 0);
    const auto clear = run_installer(args({"log", "clear", "broker", "-y"}));
    EXPECT_EQ(clear.exit_code, 0) << clear.err;
    EXPECT_TRUE(contains(clear.out, "14 bytes removed")) << clear.out;
    struct stat after {};
    ASSERT_EQ(::stat((logs / "httpd.log").c_str(), &after), 0);
    EXPECT_EQ(after.st_size, 0);
    EXPECT_EQ(after.st_ino, before.st_ino);  // in place: the daemon's O_APPEND descriptor still writes into it
    EXPECT_EQ(after.st_uid, leo_uid);
    EXPECT_EQ(after.st_mode, before.st_mode);
}

TEST_F(SupportBundle, BadInputIsRefusedAndChangesNothing) {
    leo_file(logs / "httpd.log", "one\n");
    // The running database's files and the installer's log change on their own.
    const std::vector<std::string> moving{"var/log", "home/leo/pgsql"};
    const auto tree = leo::test::snapshot_tree(root, moving);
    const auto unknown = run_installer(args({"log", "view", "nosuch"}));
    EXPECT_EQ(unknown.exit_code, 2);
    EXPECT_TRUE(contains(unknown.err, "unknown log 'nosuch': the logs are broker, queue, database, installer"))
        << unknown.err;
    const auto unknown_clear = run_installer(args({"log", "clear", "nosuch", "-y"}));
    EXPECT_EQ(unknown_clear.exit_code, 2);
    const auto no_name = run_installer(args({"log", "view"}));
    EXPECT_EQ(no_name.exit_code, 2);
    EXPECT_TRUE(contains(no_name.err, "log view needs the log's name")) << no_name.err;

    const auto missing = run_installer(args({"support-bundle", "--output", (tmp.path() / "nowhere").string()}));
    EXPECT_EQ(missing.exit_code, 2);
    EXPECT_TRUE(contains(missing.err, "--output " + (tmp.path() / "nowhere").string() + ": No such file or directory"))
        << missing.err;
    write(tmp.path() / "a-file", "x");
    const auto not_dir = run_installer(args({"support-bundle", "--output", (tmp.path() / "a-file").string()}));
    EXPECT_EQ(not_dir.exit_code, 2);
    EXPECT_TRUE(contains(not_dir.err, "a-file: not a directory")) << not_dir.err;
    EXPECT_EQ(slurp(tmp.path() / "a-file"), "x");
    EXPECT_EQ(leo::test::snapshot_tree(root, moving), tree);

    // --output DIR: the bundle there, root's.
    const auto out_dir = tmp.path() / "out";
    stdfs::create_directories(out_dir);
    const auto ok = run_installer(args({"support-bundle", "--output", out_dir.string()}));
    ASSERT_EQ(ok.exit_code, 0) << ok.err;
    const stdfs::path file = ok.out.substr(0, ok.out.find('\n'));
    EXPECT_EQ(file.parent_path(), out_dir);
    EXPECT_EQ(leo::test::mode_of(file), 0600u);
    EXPECT_EQ(leo::test::owner_of(file), 0u);
    EXPECT_FALSE(leo::archive::list_entries(file).empty());
}

} // namespace

namespace {
// leo can make any number of *.log files: the bundle's logs stop at k_bundle_log_budget,
// and the MANIFEST names the ones left out.
TEST_F(SupportBundle, LogsTogetherStayWithinTheBudget) {
    const auto per_log = leo::installer::k_bundle_log_tail_bytes;
    const auto count = leo::installer::k_bundle_log_budget / per_log + 3;
    for (std::uint64_t i = 0; i < count; ++i) {
        const auto p = logs / ("many" + std::to_string(100 + i) + ".log");
        leo_file(p, "");
        stdfs::resize_file(p, per_log + 4096);  // sparse: cheap to make, still read in full
    }
    stdfs::path file;
    nlohmann::json report;
    const auto entries = bundle({}, file, report);
    std::uint64_t log_bytes = 0;
    std::size_t logs_in = 0;
    for (const auto& [name, content] : entries)
        if (name.rfind("logs/", 0) == 0) {
            log_bytes += content.size();
            if (name.rfind("logs/many", 0) == 0) ++logs_in;
        }
    EXPECT_LE(log_bytes, leo::installer::k_bundle_log_budget + per_log + 4096);
    EXPECT_GT(logs_in, 0u);
    EXPECT_LT(logs_in, count) << "every one of the " << count << " logs is in the bundle";
    EXPECT_TRUE(contains(entries.at("MANIFEST.txt"), "the bundle's logs already hold")) << entries.at("MANIFEST.txt");
}
} // namespace
