// The Administration Menu's Log and Database > Purge paths (issue 16) in a real terminal:
// tmux runs leo-menu on a sandbox root with the broker 9.0.7 installed. Each path is checked
// through the system, not only on the screen: the log files' bytes, inode, owner and mode
// (`log list --json` says where they are), the support ZIP on disk read back with
// libarchive, the broker database's rows, the restore points (`snapshot list --json`) and
// the components' processes.
#include "menu_support.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/archive.hpp"

#include <chrono>
#include <ctime>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <gmock/gmock.h>

#include <sys/stat.h>
#include <unistd.h>

/// As EXPECT_SCREEN, for what takes longer (a restore point and a purge; the support
/// bundle's rpm -V and preflight), on a loaded machine.
#define EXPECT_SCREEN_WITHIN(session, text, secs)                                                    \
    do {                                                                                              \
        std::string screen_;                                                                          \
        ASSERT_TRUE((session).wait_for((text), std::chrono::seconds(secs), &screen_))                 \
            << "waited " << (secs) << " s for \"" << (text) << "\" on:\n" << screen_;                 \
    } while (0)

namespace {
namespace stdfs = std::filesystem;
using namespace leo::test::maintenance;
using ::testing::HasSubstr;
using ::testing::Not;

/// The rows of the pager on `screen`, one per line, blanks at their ends dropped.
std::string pager_text(const std::string& screen) {
    const std::string bar = "│";
    std::string out;
    std::istringstream in(screen);
    for (std::string line; std::getline(in, line);) {
        const auto first = line.find(bar);
        const auto last = line.rfind(bar);
        if (first == std::string::npos || last <= first + bar.size() + 1) continue;
        const auto row = line.substr(first + bar.size() + 1, last - first - bar.size() - 2);
        const auto end = row.find_last_not_of(' ');
        out += (end == std::string::npos ? std::string() : row.substr(0, end + 1)) + "\n";
    }
    return out;
}

/// `text` without any blank or line end: the pager continues a long line on the next row,
/// at its last blank that fits (text.hpp), so a phrase is compared squeezed on both sides.
std::string squeezed(std::string text) {
    std::erase_if(text, [](char c) { return c == ' ' || c == '\n'; });
    return text;
}

class MenuLog : public leo::test::MenuFixture {
protected:
    void SetUp() override {
        MenuFixture::SetUp();
        if (HasFatalFailure()) return;
        const auto leo = leo::accounts::find_user(root, "leo");
        ASSERT_TRUE(leo.has_value());
        leo_gid = leo->gid;
    }

    /// `log list --json`: each log's name and host path, in its order.
    std::vector<std::pair<std::string, stdfs::path>> logs() const {
        const auto r = run_installer(args({"log", "list", "--json"}));
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        std::vector<std::pair<std::string, stdfs::path>> out;
        for (const auto& e : nlohmann::json::parse(r.out))
            out.emplace_back(e.at("name").get<std::string>(), e.at("path").get<std::string>());
        return out;
    }
    stdfs::path log_path(const std::string& name) const {
        for (const auto& [n, p] : logs())
            if (n == name) return p;
        ADD_FAILURE() << "`log list --json` names no " << name << " log";
        return {};
    }
    /// `text` as the file `p`, written as its daemon would (leo's file in leo's directory)
    /// unless `owner_leo` is false (the installer's own log is root's).
    void plant(const stdfs::path& p, const std::string& text, bool owner_leo = true) const {
        if (!stdfs::exists(p.parent_path())) {
            stdfs::create_directories(p.parent_path());
            if (owner_leo) {
                ASSERT_EQ(::chown(p.parent_path().c_str(), leo_uid, leo_gid), 0);
            }
        }
        std::ofstream(p, std::ios::trunc) << text;
        if (owner_leo) {
            ASSERT_EQ(::chown(p.c_str(), leo_uid, leo_gid), 0);
        }
        ASSERT_EQ(::chmod(p.c_str(), 0640), 0);
    }
    /// `snapshot list --json`: each restore point's id and reason.
    std::map<std::string, std::string> restore_points() const {
        const auto r = run_installer(args({"snapshot", "list", "--json"}));
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        std::map<std::string, std::string> out;
        for (const auto& p : nlohmann::json::parse(r.out))
            out.emplace(p.at("id").get<std::string>(), p.value("reason", std::string()));
        return out;
    }
    std::string query(const std::string& sql) const {
        leo::migrations::InternalDatabase db(root);
        auto conn = leo::migrations::Connection::open(db.conninfo());
        return conn.query(sql).at(0, 0);
    }
    /// The main menu, then Log.
    std::unique_ptr<leo::test::TerminalSession> open_log_menu(int cols = 80, int rows = 25) {
        auto s = open(cols, rows);
        [&] {
            EXPECT_SCREEN(*s, "Administration Menu");
            s->send({"L", "Enter"});
            EXPECT_SCREEN(*s, "Logs: the support bundle");
        }();
        return s;
    }

    gid_t leo_gid = 0;
};

TEST_F(MenuLog, ViewTheBrokerLogShowsItsLastLinesSpaceScrollsEnterReturns) {
    const auto log = log_path("broker");
    ASSERT_FALSE(log.empty());
    EXPECT_EQ(log, root / "home/leo/logs/httpd.log");
    // More lines than the menu reads (its last 5000), one with a terminal escape sequence,
    // and a last line wider than the pager.
    std::string text;
    for (int i = 1; i <= 5098; ++i) text += fmt::format("L{:04d} broker line\n", i);
    text += "L5099 colour \x1b[2J\x1b[31mred\n";
    text += "L5100 " + std::string(100, '-') + " END-OF-THE-WIDE-LINE\n";
    plant(log, text);

    auto s = open_log_menu();
    if (HasFatalFailure()) return;
    s->send({"Enter"});  // View the broker log, the first item
    EXPECT_SCREEN(*s, "of 5000");
    EXPECT_SCREEN(*s, "L0101 broker line");  // the first of the last 5000
    auto screen = s->screen();
    EXPECT_THAT(screen, Not(HasSubstr("L0100 ")));
    EXPECT_THAT(screen, Not(HasSubstr("L0117 ")));
    EXPECT_THAT(screen, HasSubstr("lines 1-"));

    s->send({"Space"});  // the next page: a line not shown before, the first one gone
    EXPECT_SCREEN(*s, "L0117 broker line");
    EXPECT_GONE(*s, "L0101 ");
    EXPECT_SCREEN(*s, "lines 17-");

    s->send({"End"});  // the end of the log: the escape sequence shown, not obeyed; the wide line whole
    EXPECT_SCREEN(*s, "L5100 ");
    EXPECT_SCREEN(*s, "END-OF-THE-WIDE-LINE");  // folded onto the next row, not cut
    screen = s->screen();
    EXPECT_THAT(screen, HasSubstr("L5098 broker line"));
    EXPECT_THAT(screen, HasSubstr("L5099 colour \\x1b[2J\\x1b[31mred"));
    EXPECT_THAT(squeezed(pager_text(screen)), HasSubstr("L5100" + std::string(100, '-') + "END-OF-THE-WIDE-LINE"));

    s->send({"Enter"});  // back to the Log menu
    EXPECT_GONE(*s, "of 5000");
    EXPECT_SCREEN(*s, "Other logs");
    EXPECT_THAT(s->screen(), HasSubstr("Clear the broker log"));
    EXPECT_EQ(slurp(log), text);  // reading changed nothing
    s->send({"Escape"});
    EXPECT_GONE(*s, "Other logs");
    EXPECT_SCREEN(*s, "Advanced");
}

TEST_F(MenuLog, ClearTheBrokerLogAnsweredNoThenYes) {
    const auto log = log_path("broker");
    ASSERT_FALSE(log.empty());
    const std::string text = "one\ntwo\nthree\n";
    plant(log, text);
    struct stat before {};
    ASSERT_EQ(::stat(log.c_str(), &before), 0);

    auto s = open_log_menu();
    if (HasFatalFailure()) return;
    s->send({"C", "Enter"});
    EXPECT_SCREEN(*s, "Clear the broker log?");
    EXPECT_THAT(s->screen(), HasSubstr("Yes, clear the broker log"));
    s->send({"Enter"});  // "<== Back" is the one selected: No
    EXPECT_GONE(*s, "Yes, clear the broker log");
    EXPECT_SCREEN(*s, "Other logs");
    EXPECT_EQ(slurp(log), text);
    s->send({"Enter"});  // Clear again (it stays selected); Escape is No too
    EXPECT_SCREEN(*s, "Clear the broker log?");
    s->send({"Escape"});
    EXPECT_GONE(*s, "Yes, clear the broker log");
    EXPECT_SCREEN(*s, "Other logs");
    EXPECT_EQ(slurp(log), text);

    s->send({"Enter"});  // Clear again (the item stays selected), Yes
    EXPECT_SCREEN(*s, "Clear the broker log?");
    s->send({"Up", "Enter"});
    EXPECT_SCREEN(*s, "Done.");
    EXPECT_THAT(squeezed(pager_text(s->screen())), HasSubstr(squeezed("broker log " + log.string() + " (14 bytes removed)")));
    // Truncated in place, as `log clear` documents: the same inode (the daemon's O_APPEND
    // descriptor goes on writing into it), owner and mode.
    struct stat after {};
    ASSERT_EQ(::stat(log.c_str(), &after), 0);
    EXPECT_EQ(after.st_size, 0);
    EXPECT_EQ(after.st_ino, before.st_ino);
    EXPECT_EQ(after.st_uid, before.st_uid);
    EXPECT_EQ(after.st_uid, static_cast<uid_t>(leo_uid));
    EXPECT_EQ(after.st_mode, before.st_mode);

    s->send({"Enter"});  // leaves the output; the view now shows an empty log
    EXPECT_GONE(*s, "Done.");
    s->send({"V", "Enter"});
    EXPECT_SCREEN(*s, "(nothing)");
    s->send({"Enter"});
    EXPECT_GONE(*s, "(nothing)");
}

TEST_F(MenuLog, ABrokerLogThatDoesNotExistIsSaidSoAndNotMade) {
    const auto log = log_path("broker");
    ASSERT_FALSE(log.empty());
    stdfs::remove(log);
    const auto tree = leo::test::snapshot_tree(root / "home/leo", {"pgsql"});

    auto s = open_log_menu();
    if (HasFatalFailure()) return;
    s->send({"Enter"});  // View
    EXPECT_SCREEN(*s, "does not exist yet");
    EXPECT_THAT(squeezed(pager_text(s->screen())), HasSubstr(squeezed("the broker log " + log.string() + " does not exist yet")));
    s->send({"Enter"});
    EXPECT_GONE(*s, "does not exist yet");
    s->send({"C", "Enter"});
    EXPECT_SCREEN(*s, "Clear the broker log?");
    s->send({"Up", "Enter"});
    EXPECT_SCREEN(*s, "Done.");
    EXPECT_THAT(squeezed(pager_text(s->screen())),
                HasSubstr(squeezed("the broker log " + log.string() + " does not exist: nothing to clear")));
    EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(log)));
    EXPECT_EQ(leo::test::snapshot_tree(root / "home/leo", {"pgsql"}), tree);
}

TEST_F(MenuLog, OtherLogsListsTheLogsOpensOneAndGoesBack) {
    plant(root / "home/leo/logs/queue.log", "queue: QUEUE-MARKER-7\n");
    const auto installer_log = log_path("installer");
    ASSERT_FALSE(installer_log.empty());
    {
        stdfs::create_directories(installer_log.parent_path());
        std::ofstream(installer_log, std::ios::app) << "INSTALLER-MARKER-9 planted by the test\n";
    }
    const auto listed = logs();
    std::vector<std::string> names;
    for (const auto& [n, p] : listed) names.push_back(n);
    // The menu lists the logs `log list` names that its sudo rule allows to view.
    const std::vector<std::string> expected{"broker", "queue", "database", "installer"};
    ASSERT_EQ(names, expected);

    auto s = open_log_menu();
    if (HasFatalFailure()) return;
    s->send({"O", "Enter"});
    EXPECT_SCREEN(*s, "┤ Other logs ├");
    EXPECT_SCREEN(*s, "│ installer ");
    // The list's rows, in `log list`'s order, then Back.
    const auto rows = [&] {
        std::vector<std::string> out;
        std::istringstream in(s->screen());
        const std::regex row(R"(│ (\S+( \S+)*)\s+│)");
        std::smatch m;
        for (std::string line; std::getline(in, line);)
            if (std::regex_search(line, m, row)) out.push_back(m[1]);
        return out;
    }();
    std::vector<std::string> want = expected;
    want.emplace_back("<== Back");
    EXPECT_EQ(rows, want) << s->screen();

    s->send({"Down", "Enter"});  // queue
    EXPECT_SCREEN(*s, "Log: queue");
    EXPECT_SCREEN(*s, "QUEUE-MARKER-7");
    s->send({"Enter"});
    EXPECT_GONE(*s, "Log: queue");
    EXPECT_SCREEN(*s, "┤ Other logs ├");
    s->send({"Down", "Down", "Enter"});  // installer
    EXPECT_SCREEN(*s, "Log: installer");
    s->send({"End"});
    EXPECT_SCREEN(*s, "INSTALLER-MARKER-9");
    s->send({"Enter"});
    EXPECT_GONE(*s, "Log: installer");
    s->send({"End", "Enter"});  // <== Back: the Log menu
    EXPECT_GONE(*s, "┤ Other logs ├");
    EXPECT_SCREEN(*s, "Logs: the support bundle");
}

TEST_F(MenuLog, LogsMakesTheSupportBundleInHomeLeo) {
    plant(log_path("broker"), "BROKER-MARKER-3 in the bundle\n");
    const auto zips = [&] {
        std::set<stdfs::path> out;
        for (const auto& e : stdfs::directory_iterator(root / "home/leo"))
            if (e.path().extension() == ".zip") out.insert(e.path());
        return out;
    };
    ASSERT_TRUE(zips().empty());
    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    const auto before = std::chrono::system_clock::now();

    auto s = open_log_menu();
    if (HasFatalFailure()) return;
    s->send({"L", "Enter"});
    // The output's pager once the bundle is made: the command and the path first, the
    // verdict last (End, when notes on what was not collected make it longer than a page).
    EXPECT_SCREEN_WITHIN(*s, "<Space> next page", 240);
    const auto screen = s->screen();
    const auto text = pager_text(screen);
    EXPECT_THAT(squeezed(text), HasSubstr(squeezed("leo-installer support-bundle --root " + root.string())));

    const auto made = zips();
    ASSERT_EQ(made.size(), 1u) << screen;
    const auto file = *made.begin();
    EXPECT_THAT(squeezed(text), HasSubstr(squeezed(file.string()))) << screen;
    const auto name = file.filename().string();
    std::smatch m;
    ASSERT_TRUE(std::regex_match(name, m, std::regex(R"(leostream-support-(.+)-(\d{8}T\d{6}Z)\.zip)"))) << name;
    EXPECT_EQ(m[1], std::string(host));
    const auto stamp = [](std::chrono::system_clock::time_point t) {
        const std::time_t tt = std::chrono::system_clock::to_time_t(t);
        std::tm tm{};
        ::gmtime_r(&tt, &tm);
        char buf[32];
        return std::string(buf, std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm));
    };
    EXPECT_GE(m[2].str(), stamp(before));
    EXPECT_LE(m[2].str(), stamp(std::chrono::system_clock::now()));
    EXPECT_EQ(leo::test::mode_of(file), 0600u);
    EXPECT_EQ(leo::test::owner_of(file), static_cast<uid_t>(leo_uid));

    const auto entries = leo::archive::regular_file_contents(file, std::size_t{256} << 20);
    for (const char* e : {"MANIFEST.txt", "logs/broker.log", "logs/installer.log", "status.json", "preflight.json",
                          "facts.json", "rpm/rpm-qa.txt", "rpm/rpm-V.txt", "journal.txt", "schema-history.json",
                          "config/home/leo/etc/broker.conf"})
        EXPECT_TRUE(entries.count(e)) << "no " << e << " in " << file;
    if (entries.count("logs/broker.log")) {
        EXPECT_THAT(entries.at("logs/broker.log"), HasSubstr("BROKER-MARKER-3"));
    }
    if (entries.count("rpm/rpm-qa.txt")) {
        EXPECT_THAT(entries.at("rpm/rpm-qa.txt"), HasSubstr("leostream-broker-9.0.7-1.x86_64"));
    }

    s->send({"End"});
    EXPECT_SCREEN(*s, "Done.");
    s->send({"Enter"});
    EXPECT_GONE(*s, "Done.");
    EXPECT_SCREEN(*s, "Other logs");
}

TEST_F(MenuLog, PurgeTheInternalDatabaseAnsweredNoThenYes) {
    start_components();
    exec("INSERT INTO work_queue (site_id, job_type) VALUES (1, 'provision'), (1, 'rebuild')");
    exec("CREATE TABLE menu_notes (note text); INSERT INTO menu_notes VALUES ('planted by the menu test')");
    const auto checksums = leo::test::table_checksums(root);
    const auto points = restore_points();
    const pid_t httpd = pid_of("httpd");

    auto s = open();
    EXPECT_SCREEN(*s, "Administration Menu");
    s->send({"D", "Enter"});
    EXPECT_SCREEN(*s, "Purge the internal database");
    s->send({"Enter"});
    EXPECT_SCREEN(*s, "Yes, purge the internal database");
    EXPECT_THAT(s->screen(), HasSubstr("point is made first"));
    s->send({"Enter"});  // "<== Back" selected: No
    EXPECT_GONE(*s, "Yes, purge the internal database");
    EXPECT_SCREEN(*s, "Purge the internal database");
    EXPECT_EQ(leo::test::table_checksums(root), checksums);
    EXPECT_EQ(query("SELECT count(*) FROM menu_notes"), "1");
    EXPECT_EQ(restore_points(), points);
    EXPECT_EQ(pid_of("httpd"), httpd);

    s->send({"Enter"});
    EXPECT_SCREEN(*s, "Yes, purge the internal database");
    s->send({"Up", "Enter"});
    // The output's pager once the purge ended; its verdict is on the first and the last page.
    EXPECT_SCREEN_WITHIN(*s, "<Space> next page", 300);
    {
        // The verdict is on the first page too, without paging through the output.
        EXPECT_THAT(s->screen(), HasSubstr("Done."));
        const auto steps = squeezed(pager_text(s->screen()));
        const auto rp = steps.find("takingarestorepoint");
        ASSERT_NE(rp, std::string::npos) << steps;
        EXPECT_LT(rp, steps.find("emptyingthebrokerdatabase")) << steps;  // the restore point first
    }
    s->send({"End"});
    EXPECT_SCREEN(*s, "Done.");
    EXPECT_THAT(squeezed(pager_text(s->screen())), HasSubstr(squeezed("purged the internal database: schema")));

    // A new restore point, taken before the purge; the planted rows gone; the broker runs.
    const auto after = restore_points();
    std::vector<std::string> added;
    for (const auto& [id, reason] : after)
        if (!points.count(id)) added.push_back(id + " (" + reason + ")");
    ASSERT_EQ(added.size(), 1u) << testing::PrintToString(after);
    EXPECT_THAT(added.front(), HasSubstr("(before db purge)"));
    EXPECT_EQ(query("SELECT count(*) FROM work_queue"), "0");
    EXPECT_EQ(query("SELECT count(*) FROM pg_class WHERE relname = 'menu_notes'"), "0");
    EXPECT_TRUE(components_run());
    EXPECT_NE(pid_of("httpd"), httpd);  // stopped for the purge, started again
    expect_component_runs("httpd");
    expect_component_runs("queue");

    s->send({"Enter"});
    EXPECT_GONE(*s, "Done.");
    EXPECT_SCREEN(*s, "Purge the internal database");
}

} // namespace
