// The Administration Menu's Advanced items driven in a real terminal (tmux) on a sandbox
// root with the broker 9.0.7 installed: Debug on and off, Upgrade disable and enable (and
// the upgrade gate that reads the row), the admin login's confirmation answered both ways,
// the REST API refused below 8 GB with the preflight's reason on the screen (leo-menu
// --facts) and enabled at 8 GB, the SSL certificate uninstalled without a question and the
// web server restarted, the cipher suite back to its default. Every effect is read back
// through `leo-installer setting show --json`, the files and the component pids. Last, the
// sudoers drop-in checked by the real sudo in a private mount namespace: the menu's commands
// are allowed to an unprivileged user, and nothing else.
#include "menu_support.hpp"

#include "leo/installer/settings.hpp"

#include <cstring>
#include <fstream>
#include <sstream>
#include <variant>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using namespace leo::test::maintenance;
using leo::test::TerminalSession;
using ::testing::HasSubstr;
using ::testing::Not;

class MenuAdvanced : public leo::test::MenuFixture {
protected:
    /// The pager's text on `screen`: the lines inside its frame joined by blanks, so a
    /// phrase the pager continued on the next line (at a blank) reads as one.
    static std::string pager_text(const std::string& screen) {
        std::istringstream in(screen);
        std::string out;
        const std::string bar = "│";
        for (std::string line; std::getline(in, line);) {
            const auto open = line.find(bar + " ");
            const auto close = line.rfind(" " + bar);
            if (open == std::string::npos || close == std::string::npos || close <= open) continue;
            auto inner = line.substr(open + bar.size() + 1, close - open - bar.size() - 1);
            while (!inner.empty() && inner.back() == ' ') inner.pop_back();
            if (!inner.empty()) out += (out.empty() ? "" : " ") + inner;
        }
        return out;
    }
    /// `setting show --json` of the root.
    nlohmann::json show() {
        const auto r = run_installer(args({"setting", "show", "--json"}));
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        return nlohmann::json::parse(r.out, nullptr, false);
    }
    /// Wait for the pager's "Done." (the command ended with 0) and return its text.
    static std::string done(const TerminalSession& s) {
        std::string screen;
        EXPECT_TRUE(s.wait_for("Done.", std::chrono::seconds(60), &screen)) << screen;
        return pager_text(screen);
    }
    /// The upgrades_enabled gate of `upgrade --dry-run --json`: {"id", "state", "detail"}.
    nlohmann::json upgrade_gate() {
        const auto r = run_installer(args({"upgrade", "--dry-run", "--json"}));
        const auto j = nlohmann::json::parse(r.out, nullptr, false);
        EXPECT_TRUE(j.is_object() && j.contains("gates")) << r.out << r.err;
        if (j.is_object() && j.contains("gates"))
            for (const auto& g : j["gates"])
                if (g["id"] == "upgrades_enabled") return g;
        ADD_FAILURE() << "no upgrades_enabled gate in: " << r.out << r.err;
        return {};
    }
    /// One row of it: {"value", "stored", "enabled"}.
    nlohmann::json setting(const std::string& name) { return show()["settings"][name]; }

    /// The menu opened and Advanced chosen.
    std::unique_ptr<TerminalSession> open_advanced(const std::vector<std::string>& extra = {}) {
        auto s = open(80, 25, extra);
        EXPECT_TRUE(s->wait_for("Administration Menu", std::chrono::seconds(60))) << s->screen();
        s->send({"A", "Enter"});
        EXPECT_TRUE(s->wait_for("Cipher suite: revert to the default", std::chrono::seconds(60))) << s->screen();
        return s;
    }

    /// A saved `facts --json` of this host with MemTotal `kib` and the installed memory
    /// unknown, so MemTotal alone decides (as test_settings.cpp makes it).
    stdfs::path facts_with_memory(std::uint64_t kib) { return leo::test::facts_with_memory(root, tmp.path(), kib); }
    stdfs::path cert() const { return root / "home/leo/etc/ssl/broker.crt"; }
    stdfs::path key() const { return root / "home/leo/etc/ssl/broker.key"; }
    void plant_certificate() {
        stdfs::create_directories(cert().parent_path());
        std::ofstream(cert()) << "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        std::ofstream(key()) << "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
    }
};

TEST_F(MenuAdvanced, DebugOnThenOff) {
    ASSERT_EQ(setting("debug")["stored"], false) << "the 9.0.7 schema has no debug row";
    auto s = open_advanced();
    s->send({"D", "Enter"});
    EXPECT_SCREEN(*s, "┤ Debug ├");
    s->send({"Enter"});  // On: no question (the menu's own choice is the confirmation)
    const auto on = done(*s);
    EXPECT_THAT(on, HasSubstr("setting debug on -y --root " + root.string()));
    EXPECT_THAT(on, HasSubstr("debug mode: on"));
    EXPECT_EQ(setting("debug")["value"], "true");
    EXPECT_EQ(setting("debug")["stored"], true);
    s->send({"Enter"});
    EXPECT_SCREEN(*s, "┤ Debug ├");  // drawn again: keys typed before are dropped (newt)
    s->send({"O", "Enter"});  // O from On is the next O: Off
    EXPECT_THAT(done(*s), HasSubstr("setting debug off -y --root"));
    EXPECT_EQ(setting("debug")["value"], "false");
    s->send({"Enter"});
    EXPECT_SCREEN(*s, "┤ Debug ├");
    s->send({"Escape"});
    EXPECT_SCREEN(*s, "┤ Advanced ├");
    EXPECT_EQ(setting("debug")["value"], "false");
}

TEST_F(MenuAdvanced, UpgradeDisableThenEnableIsWhatTheGateReads) {
    ASSERT_EQ(setting("upgrades_enabled")["value"], "true");
    auto s = open_advanced();
    s->send({"U", "Enter"});
    EXPECT_SCREEN(*s, "┤ Upgrade ├");
    s->send({"Enter"});  // Disable
    EXPECT_THAT(done(*s), HasSubstr("setting upgrades disable -y --root"));
    EXPECT_EQ(setting("upgrades_enabled")["value"], "false");
    // The upgrade gate reads that row: the upgrade is refused, naming the setting and the
    // menu item that lifts it.
    const auto refused = run_installer(args({"upgrade", "-y"}));
    EXPECT_EQ(refused.exit_code, 3) << refused.out << refused.err;
    EXPECT_THAT(refused.err, HasSubstr("broker upgrades are disabled by the administration setting"));
    EXPECT_THAT(refused.err, HasSubstr("settings.upgrades_enabled = 'false'"));
    EXPECT_THAT(refused.err, HasSubstr("Advanced > Upgrade enable"));
    EXPECT_EQ(installed(), leo::test::runs::k_old + "\n");
    // The dry run's gate report says the same.
    const auto gate = upgrade_gate();
    EXPECT_EQ(gate["state"], "refused");
    EXPECT_THAT(gate["detail"].get<std::string>(), HasSubstr("settings.upgrades_enabled = 'false'"));

    s->send({"Enter"});
    EXPECT_SCREEN(*s, "┤ Upgrade ├");
    s->send({"E", "Enter"});  // Enable
    EXPECT_THAT(done(*s), HasSubstr("setting upgrades enable -y --root"));
    EXPECT_EQ(setting("upgrades_enabled")["value"], "true");
    EXPECT_EQ(upgrade_gate()["state"], "passed");
    EXPECT_EQ(installed(), leo::test::runs::k_old + "\n");
}

TEST_F(MenuAdvanced, AdminLoginDisableAnsweredNoThenYes) {
    ASSERT_EQ(setting("admin_login_enabled")["enabled"], true);
    const auto before = show();
    auto s = open_advanced();
    // The menu offers disabling only (the issue: "disable the default admin login").
    EXPECT_THAT(s->screen(), Not(HasSubstr("Admin login: enable")));
    s->send({"A", "Enter"});
    EXPECT_SCREEN(*s, "Disable the default admin login of the web");
    EXPECT_THAT(s->screen(), HasSubstr("Yes, disable the admin login"));
    s->send({"Enter"});  // "<== Back" is the one selected
    EXPECT_GONE(*s, "Yes, disable the admin login");
    EXPECT_SCREEN(*s, "┤ Advanced ├");
    EXPECT_EQ(show(), before);
    s->send({"Enter"});
    EXPECT_SCREEN(*s, "Disable the default admin login of the web");
    s->send({"Escape"});  // Escape is No too
    EXPECT_GONE(*s, "Yes, disable the admin login");
    EXPECT_SCREEN(*s, "┤ Advanced ├");
    EXPECT_EQ(show(), before);
    s->send({"Enter"});
    EXPECT_SCREEN(*s, "Disable the default admin login of the web");
    s->send({"Up", "Enter"});
    EXPECT_THAT(done(*s), HasSubstr("setting admin-login disable -y --root"));
    EXPECT_EQ(setting("admin_login_enabled")["value"], "false");
    EXPECT_EQ(setting("admin_login_enabled")["enabled"], false);
}

TEST_F(MenuAdvanced, RestApiRefusedBelowEightGigabytesAndEnabledAtEight) {
    const auto before = show();
    ASSERT_EQ(before["settings"]["rest_api_enabled"]["enabled"], false);
    {
        auto s = open_advanced({"--facts", facts_with_memory(4ULL * 1024 * 1024).string()});
        s->send({"R", "Enter"});
        EXPECT_SCREEN(*s, "┤ REST API ├");
        s->send({"Enter"});  // Enable
        EXPECT_SCREEN(*s, "It failed (exit code 3)");
        const auto screen = pager_text(s->screen());
        EXPECT_THAT(screen, HasSubstr("setting rest-api enable -y --root"));
        EXPECT_THAT(screen, HasSubstr("--facts"));
        // Why, as the rest-api preflight profile says it.
        EXPECT_THAT(screen, HasSubstr("the REST API cannot be enabled on this host"));
        EXPECT_THAT(screen, HasSubstr("4.0 GiB MemTotal"));
        EXPECT_THAT(screen, HasSubstr("the REST API needs >= 8 GB RAM"));
        EXPECT_THAT(screen, HasSubstr("nothing was changed"));
        EXPECT_EQ(show(), before);
    }
    auto s = open_advanced({"--facts", facts_with_memory(8ULL * 1024 * 1024).string()});
    s->send({"R", "Enter"});
    EXPECT_SCREEN(*s, "┤ REST API ├");
    s->send({"Enter"});
    EXPECT_THAT(done(*s), HasSubstr("setting rest-api enable -y --root"));
    EXPECT_EQ(setting("rest_api_enabled")["value"], "true");
    s->send({"Enter"});
    EXPECT_SCREEN(*s, "┤ REST API ├");
    s->send({"D", "Enter"});  // Disable
    EXPECT_THAT(done(*s), HasSubstr("setting rest-api disable -y --root"));
    EXPECT_EQ(setting("rest_api_enabled")["value"], "false");
}

TEST_F(MenuAdvanced, UninstallTheCertificateWithoutAQuestionRestartsTheWebServer) {
    plant_certificate();
    start_components();
    const pid_t httpd = pid_of("httpd");
    const pid_t queue = pid_of("queue");
    auto s = open_advanced();
    EXPECT_THAT(s->screen(), HasSubstr("Uninstall the SSL certificate"));
    s->send({"U", "U", "Enter"});  // Upgrade, then Uninstall
    // No confirmation, as documented: the command runs at once.
    const auto screen = done(*s);
    EXPECT_THAT(screen, HasSubstr("setting ssl-certificate uninstall -y --root"));
    EXPECT_THAT(screen, HasSubstr("removed " + cert().string()));
    EXPECT_THAT(screen, HasSubstr("started the web server"));
    EXPECT_THAT(screen, Not(HasSubstr("?")));
    EXPECT_FALSE(stdfs::exists(cert()));
    EXPECT_FALSE(stdfs::exists(key()));
    EXPECT_EQ(show()["ssl_certificate"]["installed"], false);
    EXPECT_NE(pid_of("httpd"), httpd) << "the web server was not restarted";
    EXPECT_TRUE(running(pid_of("httpd")));
    EXPECT_FALSE(running(httpd));
    EXPECT_EQ(pid_of("queue"), queue) << "only the web server restarts";
    // Back in Advanced, the item is gone with the certificate.
    s->send({"Enter"});
    EXPECT_SCREEN(*s, "Cipher suite: revert to the default");
    EXPECT_THAT(s->screen(), Not(HasSubstr("Uninstall the SSL certificate")));
}

TEST_F(MenuAdvanced, CipherSuiteBackToTheDefault) {
    exec("INSERT INTO settings (name, value) VALUES ('cipher_suite', 'RC4-MD5')");
    ASSERT_EQ(setting("cipher_suite")["value"], "RC4-MD5");
    auto s = open_advanced();
    s->send({"C", "Enter"});
    EXPECT_THAT(done(*s), HasSubstr("setting cipher-suite default -y --root"));
    EXPECT_EQ(setting("cipher_suite")["value"], leo::installer::k_default_cipher_suite);
    EXPECT_EQ(setting("cipher_suite")["stored"], true);
}

// ---- the sudoers drop-in, through the real sudo ------------------------------------------

/// What one `sudo` run gave, as the child in the namespace saw it.
struct SudoRun {
    std::vector<std::string> argv;
    int exit_code = -1;
    std::string out, err;
};

/// In a forked child: a private mount namespace where /etc/passwd, group, shadow and
/// gshadow are copies that know `user`, /etc/sudoers.d is `dropins`, and /usr/bin shows
/// `bin` over the host's (an overlay: /usr/bin/leo-installer exists for sudo to resolve);
/// then each argv run as uid:gid. Nothing of the host's /etc changes: the mounts die with
/// the child. Returns the runs, or the reason the namespace could not be made.
std::variant<std::string, std::vector<SudoRun>> sudo_in_namespace(const stdfs::path& etc, const stdfs::path& dropins,
                                                                  const stdfs::path& bin, uid_t uid, gid_t gid,
                                                                  const std::vector<std::vector<std::string>>& runs,
                                                                  const stdfs::path& report) {
    const pid_t pid = ::fork();
    if (pid < 0) return std::string("fork: ") + std::strerror(errno);
    if (pid == 0) {
        nlohmann::json j;
        const auto fail = [&](const std::string& what) {
            j["skip"] = what + ": " + std::strerror(errno);
            std::ofstream(report) << j.dump();
            ::_exit(0);
        };
        if (::unshare(CLONE_NEWNS) != 0) fail("unshare(CLONE_NEWNS)");
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail("mount --make-rprivate /");
        for (const char* f : {"passwd", "group", "shadow", "gshadow"})
            if (::mount((etc / f).c_str(), (stdfs::path("/etc") / f).c_str(), nullptr, MS_BIND, nullptr) != 0)
                fail(std::string("bind mount over /etc/") + f);
        if (::mount(dropins.c_str(), "/etc/sudoers.d", nullptr, MS_BIND, nullptr) != 0)
            fail("bind mount over /etc/sudoers.d");
        const std::string lower = "lowerdir=" + bin.string() + ":/usr/bin";
        if (::mount("overlay", "/usr/bin", "overlay", MS_RDONLY, lower.c_str()) != 0) fail("overlay on /usr/bin");
        leo::subprocess::Options as_user;
        as_user.uid = uid;
        as_user.gid = gid;
        as_user.timeout = std::chrono::seconds(60);
        for (const auto& argv : runs) {
            const auto r = leo::subprocess::run(argv, as_user);
            j["runs"].push_back({{"argv", argv}, {"exit_code", r.exit_code}, {"out", r.out}, {"err", r.err}});
        }
        std::ofstream(report) << j.dump();
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::string("the namespace's child ended abnormally");
    const auto j = nlohmann::json::parse(slurp(report), nullptr, false);
    if (j.is_discarded()) return std::string("the namespace's child wrote no report");
    if (j.contains("skip")) return j["skip"].get<std::string>();
    std::vector<SudoRun> out;
    for (const auto& r : j["runs"])
        out.push_back({r["argv"].get<std::vector<std::string>>(), r["exit_code"], r["out"], r["err"]});
    return out;
}

TEST(MenuSudoersBySudo, AllowsTheMenusCommandsAndNothingElse) {
    if (::access("/usr/bin/sudo", X_OK) != 0) GTEST_SKIP() << "sudo is not installed (/usr/bin/sudo)";
    if (slurp("/etc/sudoers").find("includedir /etc/sudoers.d") == std::string::npos)
        GTEST_SKIP() << "/etc/sudoers does not include /etc/sudoers.d (Debian's and EL7's do)";
    leo::test::TempDir dir;
    const auto etc = dir.path() / "root/etc";
    stdfs::create_directories(etc);
    for (const char* f : {"passwd", "group", "shadow", "gshadow"}) stdfs::copy_file(stdfs::path("/etc") / f, etc / f);
    // A real unprivileged user, known only inside the namespace (copies of the host's files).
    const std::string user = "leomenuprobe";
    leo::test::run_ok({"groupadd", "--root", (dir.path() / "root").string(), "--system", user});
    leo::test::run_ok({"useradd", "--root", (dir.path() / "root").string(), "--system", "-g", user, "-M", "-d",
                       "/nonexistent", "-s", "/bin/false", user});
    uid_t uid = 0;
    gid_t gid = 0;
    {
        std::istringstream in(slurp(etc / "passwd"));
        for (std::string line; std::getline(in, line);)
            if (line.rfind(user + ":", 0) == 0) {
                std::istringstream fields(line);
                std::string name, x, u, g;
                std::getline(fields, name, ':');
                std::getline(fields, x, ':');
                std::getline(fields, u, ':');
                std::getline(fields, g, ':');
                uid = static_cast<uid_t>(std::stoul(u));
                gid = static_cast<gid_t>(std::stoul(g));
            }
    }
    ASSERT_GT(uid, 0u) << slurp(etc / "passwd");

    // The drop-in as the packaging installs it (root's, 0440).
    const auto dropins = dir.path() / "sudoers.d";
    stdfs::create_directories(dropins);
    const auto printed = leo::subprocess::run({LEO_MENU_BIN, "--print-sudoers", "--user", user});
    ASSERT_EQ(printed.exit_code, 0) << printed.err;
    std::ofstream(dropins / "leo-menu") << printed.out;
    ASSERT_EQ(::chmod((dropins / "leo-menu").c_str(), 0440), 0);
    // /usr/bin/leo-installer for sudo to resolve: the built one, through the overlay.
    const auto bin = dir.path() / "bin";
    stdfs::create_directories(bin);
    stdfs::create_symlink(stdfs::path(LEO_MENU_BIN).parent_path() / "leo-installer", bin / "leo-installer");
    ASSERT_TRUE(stdfs::exists(bin / "leo-installer"));

    const std::string li = "/usr/bin/leo-installer";
    const std::vector<std::vector<std::string>> allowed{
        {"sudo", "-n", "-l", li, "service", "restart"},
        {"sudo", "-n", "-l", li, "setting", "rest-api", "enable", "-y"},
        {"sudo", "-n", "-l", li, "log", "view", "broker", "--lines", "5000"},
    };
    const std::vector<std::vector<std::string>> refused{
        {"sudo", "-n", "-l", li, "install"},
        {"sudo", "-n", "-l", li, "service", "restart", "httpd", "extra"},              // one argument more
        {"sudo", "-n", "-l", li, "setting", "debug", "on", "-y", "--root", "/tmp"},    // another root
        {"sudo", "-n", "-l", li, "setting", "debug", "on"},                            // one argument less
        {"sudo", "-n", "-l", li, "log", "view", "/etc/shadow", "--lines", "5000"},
        {"sudo", "-n", "-l", "/bin/sh"},
        {"sudo", "-n", li, "install"},  // not listed: run for real, refused before anything runs
    };
    std::vector<std::vector<std::string>> all = allowed;
    all.insert(all.end(), refused.begin(), refused.end());
    const auto result = sudo_in_namespace(etc, dropins, bin, uid, gid, all, dir.path() / "report.json");
    if (const auto* why = std::get_if<std::string>(&result))
        GTEST_SKIP() << "no private mount namespace for the sudo check (needs CAP_SYS_ADMIN): " << *why;
    const auto& runs = std::get<std::vector<SudoRun>>(result);
    ASSERT_EQ(runs.size(), all.size());
    for (size_t i = 0; i < runs.size(); ++i) {
        const auto& r = runs[i];
        std::string cmd;
        for (size_t a = 3; a < r.argv.size(); ++a) cmd += (cmd.empty() ? "" : " ") + r.argv[a];
        SCOPED_TRACE(leo::subprocess::command_line(r.argv));
        if (i < allowed.size()) {
            EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
            EXPECT_EQ(r.out, cmd + "\n") << r.err;  // sudo -l COMMAND prints the allowed command
        } else {
            EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
            EXPECT_EQ(r.out, "");
            // Refused by the policy, not for a missing command.
            EXPECT_THAT(r.err, Not(HasSubstr("command not found")));
        }
    }
    EXPECT_THAT(runs.back().err, HasSubstr("a password is required"));
    // The host's /etc was not touched.
    EXPECT_THAT(slurp("/etc/passwd"), Not(HasSubstr(user + ":")));
    EXPECT_FALSE(stdfs::exists("/etc/sudoers.d/leo-menu"));
}

} // namespace
