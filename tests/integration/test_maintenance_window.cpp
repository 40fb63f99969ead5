// The maintenance-window upgrade end to end: the broker's components (the example
// package's web server and work-queue worker, started by the supervisor as the root's leo
// user) are started, stopped during the upgrade and started again; the gates refuse with
// nothing changed; a failing spot-check rolls back; a killed upgrade is recovered with the
// components running again. Real PostgreSQL, real rpm transactions, the real binary.
//
// Every root gets a free health_port of its own (the tests run in parallel) and its
// components and database are stopped at the end (`service stop`).
#include "broker_runs.hpp"
#include "test_support.hpp"

#include "leo/common/fs.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace {
namespace stdfs = std::filesystem;
using namespace std::chrono_literals;
using leo::test::run_installer;
using leo::test::slurp;
using namespace leo::test::runs;

// ---- processes, ports, the health endpoint ------------------------------------------

using leo::test::free_port;

/// What GET /health on 127.0.0.1:PORT gave: the connect's errno (ECONNREFUSED: nothing
/// listens), or the HTTP status and body.
struct HealthAnswer {
    int connect_errno = 0;
    int status = 0;
    std::string body;
    nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
    std::string version() const {
        const auto j = json();
        return j.is_object() && j.contains("version") && j["version"].is_string() ? j["version"].get<std::string>()
                                                                                  : std::string();
    }
};

std::ostream& operator<<(std::ostream& os, const HealthAnswer& h) {
    if (h.connect_errno != 0)
        return os << "connect: " << std::strerror(h.connect_errno);
    return os << "HTTP " << h.status << " " << h.body;
}

/// One plain HTTP/1.0 request, independent of the product's own client.
HealthAnswer get_health(int port) {
    HealthAnswer h;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        h.connect_errno = errno;
        ::close(fd);
        return h;
    }
    const std::string req = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    (void)!::write(fd, req.data(), req.size());
    std::string all;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0)
        all.append(buf, static_cast<size_t>(n));
    ::close(fd);
    if (all.rfind("HTTP/1.", 0) == 0 && all.size() > 12)
        h.status = std::atoi(all.c_str() + 9);
    if (const auto end = all.find("\r\n\r\n"); end != std::string::npos)
        h.body = all.substr(end + 4);
    return h;
}

/// Whether `pid` runs (not a zombie: the daemons' parent is whoever adopted them).
bool running(pid_t pid) {
    if (pid <= 0)
        return false;
    const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    if (stat.empty())
        return false;
    const auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

/// Wait until `pid` has ended (bounded).
bool ended_within(pid_t pid, std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (running(pid)) {
        if (std::chrono::steady_clock::now() > end)
            return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

/// The real uid of `pid` (from /proc/PID/status), -1 when it cannot be read.
long uid_of(pid_t pid) {
    std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("Uid:", 0) == 0)
            return std::stol(line.substr(4));
    return -1;
}

/// The start time of `pid` in seconds since the epoch: the boot time (btime of
/// /proc/stat) plus field 22 of /proc/PID/stat (clock ticks after boot).
std::string start_time_of(pid_t pid) {
    const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    std::istringstream in(stat.substr(stat.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 22 && in >> field; ++i) {
    }
    std::istringstream sys(slurp("/proc/stat"));
    std::string line;
    long long btime = 0;
    while (std::getline(sys, line))
        if (line.rfind("btime ", 0) == 0)
            btime = std::stoll(line.substr(6));
    return std::to_string(btime + std::stoll(field) / ::sysconf(_SC_CLK_TCK));
}

/// The command line of `pid`, its arguments joined by blanks.
std::string cmdline_of(pid_t pid) {
    std::string c = slurp("/proc/" + std::to_string(pid) + "/cmdline");
    std::replace(c.begin(), c.end(), '\0', ' ');
    return c;
}

/// leo-installer in the background with extra environment, in its own session, output to
/// DIR/NAME.out and DIR/NAME.err.
struct Child {
    pid_t pid = -1;
    stdfs::path out, err;
    /// Wait until the child is stopped by a signal (true), or has exited (false), bounded.
    bool wait_stopped(std::chrono::seconds limit) {
        const auto end = std::chrono::steady_clock::now() + limit;
        for (;;) {
            int status = 0;
            const pid_t r = ::waitpid(pid, &status, WUNTRACED | WNOHANG);
            if (r == pid && WIFSTOPPED(status))
                return true;
            if (r == pid) {
                exited = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                pid = -1;
                return false;
            }
            if (std::chrono::steady_clock::now() > end)
                return false;
            std::this_thread::sleep_for(20ms);
        }
    }
    int wait_exit() {
        if (pid < 0)
            return exited;
        int status = 0;
        ::waitpid(pid, &status, 0);
        pid = -1;
        exited = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exited;
    }
    int exited = -1;
};

Child start_child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                  const stdfs::path& dir, const std::string& name) {
    const auto bg = leo::test::runs::start_background(argv, dir, env, name);
    Child c;
    c.pid = bg.pid;
    c.out = bg.out;
    c.err = bg.err;
    return c;
}

// ---- the fixture ----------------------------------------------------------------------

/// A sandbox root with 9.0.7 installed (broker_runs.hpp's Broker), a health_port of its
/// own, its components and database stopped at the end.
class Maintenance : public Broker {
  protected:
    void SetUp() override {
        Broker::SetUp();
        if (HasFatalFailure())
            return;
        port = free_port();
        const auto conf = root / "home/leo/etc/broker.conf";
        std::string text = slurp(conf);
        const std::string line = "health_port = 8080";
        ASSERT_NE(text.find(line), std::string::npos) << text;
        text.replace(text.find(line), line.size(), "health_port = " + std::to_string(port));
        std::ofstream(conf, std::ios::trunc) << text; // the same file: leo's, 0640
        leo_uid = read_leo_uid();
        ASSERT_GT(leo_uid, 0);
    }
    void TearDown() override {
        if (child.pid > 0) { // a run left stopped by a failed assertion
            ::kill(child.pid, SIGKILL);
            ::kill(child.pid, SIGCONT);
            (void)child.wait_exit();
        }
        if (stdfs::exists(root / "home/leo/bin/leostream-broker")) { // (a SetUp that failed installs none)
            const auto stop = run_installer(args({"service", "stop"}));
            EXPECT_EQ(stop.exit_code, 0) << stop.out << stop.err;
        }
        Broker::TearDown();
    }

    long read_leo_uid() const {
        std::istringstream in(slurp(root / "etc/passwd"));
        std::string line;
        while (std::getline(in, line))
            if (line.rfind("leo:", 0) == 0) {
                // leo:x:UID:GID:...
                const auto a = line.find(':', 4);
                return std::stol(line.substr(a + 1));
            }
        return -1;
    }

    stdfs::path pid_file(const std::string& c) const { return root / "run/leostream" / (c + ".pid"); }
    stdfs::path marker() const { return root / "run/leostream/stopped-for-change"; }
    /// The pid a supervisor pid file names (0 when there is none).
    pid_t pid_of(const std::string& c) const {
        std::istringstream in(slurp(pid_file(c)));
        pid_t pid = 0;
        in >> pid;
        return pid;
    }
    HealthAnswer health() const { return get_health(port); }

    /// `service start`, asserting both broker components run.
    void start_components() {
        const auto r = run_installer(args({"service", "start"}));
        ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
        ASSERT_TRUE(running(pid_of("httpd")) && running(pid_of("queue"))) << r.out;
    }

    /// The component `c` runs as the leo user, the pid file's process.
    void expect_component_runs(const std::string& c) const {
        const pid_t pid = pid_of(c);
        EXPECT_GT(pid, 1) << c << ": " << slurp(pid_file(c));
        EXPECT_TRUE(running(pid)) << c << " (pid " << pid << ") does not run";
        EXPECT_EQ(uid_of(pid), leo_uid) << c << " does not run as leo";
        EXPECT_TRUE(contains(cmdline_of(pid), "/home/leo/bin/leostream-broker " + c)) << cmdline_of(pid);
    }
    /// Neither broker component runs: no pid file, the processes `pids` ended, nothing
    /// listens on the health port.
    void expect_components_stopped(const std::vector<pid_t>& pids) const {
        EXPECT_FALSE(stdfs::exists(pid_file("httpd")));
        EXPECT_FALSE(stdfs::exists(pid_file("queue")));
        for (pid_t p : pids)
            EXPECT_TRUE(ended_within(p, 10s)) << "pid " << p << " still runs: " << cmdline_of(p);
        const auto h = health();
        EXPECT_EQ(h.connect_errno, ECONNREFUSED) << h;
    }

    /// installer.conf with `text` (root's, 0644, in a directory only root writes).
    void write_installer_conf(const std::string& text) {
        const auto dir = root / "etc/leo-installer";
        stdfs::create_directories(dir);
        ::chmod(dir.c_str(), 0755);
        std::ofstream(dir / "installer.conf", std::ios::trunc) << text;
        ::chmod((dir / "installer.conf").c_str(), 0644);
    }
    void exec(const std::string& text) {
        leo::migrations::InternalDatabase db(root);
        auto conn = leo::migrations::Connection::open(db.conninfo());
        conn.exec(text);
    }
    /// Build the example broker `version` with extra build environment (unsigned).
    stdfs::path build_package(const std::string& version, const std::map<std::string, std::string>& env,
                              const std::string& dir) {
        leo::subprocess::Options o;
        for (const auto& [k, v] : env)
            o.env[k] = v;
        auto built = leo::subprocess::run(
            {(leo::test::source_dir() / "scripts/build-broker-rpm.sh").string(), version, (tmp.path() / dir).string()},
            o);
        if (built.exit_code != 0)
            throw std::runtime_error("build-broker-rpm.sh: " + built.err);
        return leo::subprocess::last_line(built.out);
    }

    int port = 0;
    long leo_uid = -1;
    Child child;
};

// ---- 1. service start / status / stop ---------------------------------------------------

TEST_F(Maintenance, ServiceStartStatusStop) {
    auto before = run_installer(args({"service", "status"}));
    EXPECT_EQ(before.exit_code, 3) << before.out << before.err;
    EXPECT_TRUE(contains(before.out, "httpd  stopped")) << before.out;
    EXPECT_TRUE(contains(before.out, "queue  stopped")) << before.out;
    EXPECT_TRUE(contains(before.out, "(supervisor)")) << before.out;
    EXPECT_EQ(health().connect_errno, ECONNREFUSED);

    auto start = run_installer(args({"service", "start"}));
    ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
    EXPECT_TRUE(contains(start.out, "started the web server")) << start.out;
    EXPECT_TRUE(contains(start.out, "started the work-queue worker")) << start.out;

    // Pid files (root's, 0644): "PID STARTTIME" of live processes run by leo.
    for (const std::string c : {"httpd", "queue"}) {
        ASSERT_TRUE(stdfs::exists(pid_file(c))) << c;
        EXPECT_EQ(leo::test::owner_of(pid_file(c)), 0u);
        EXPECT_EQ(leo::test::mode_of(pid_file(c)), 0644u);
        expect_component_runs(c);
        std::istringstream in(slurp(pid_file(c)));
        std::string pid, start_time;
        in >> pid >> start_time;
        EXPECT_EQ(start_time, start_time_of(pid_of(c))) << c << ": the pid file's start time is the process's";
        EXPECT_TRUE(contains(slurp(root / "home/leo/logs" / (c + ".log")), "version 9.0.7"))
            << slurp(root / "home/leo/logs" / (c + ".log"));
    }
    EXPECT_TRUE(contains(slurp(root / "home/leo/logs/httpd.log"), "listening on 127.0.0.1:" + std::to_string(port)));
    // The health endpoint answers the installed version and the schema.
    const auto h = health();
    ASSERT_EQ(h.status, 200) << h;
    EXPECT_EQ(h.version(), "9.0.7");
    EXPECT_EQ(h.json()["database"], "leo") << h;
    EXPECT_EQ(h.json()["schema_version"], "9.0.0.2") << h;
    // The worker's heartbeat is fresh, written by leo.
    const auto beat = root / "home/leo/run/queue.heartbeat";
    ASSERT_TRUE(wait_for_file(beat, 5s));
    EXPECT_EQ(leo::test::owner_of(beat), static_cast<uid_t>(leo_uid));
    struct stat st {};
    ASSERT_EQ(::stat(beat.c_str(), &st), 0);
    EXPECT_LT(std::difftime(std::time(nullptr), st.st_mtime), 5.0);

    auto status = run_installer(args({"service", "status"}));
    EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
    EXPECT_TRUE(contains(status.out, "httpd  running (pid " + std::to_string(pid_of("httpd")) + " since "))
        << status.out;
    EXPECT_TRUE(contains(status.out, "queue  running (pid " + std::to_string(pid_of("queue")) + " since "))
        << status.out;
    EXPECT_TRUE(contains(status.out, "db     running")) << status.out;
    auto js = run_installer(args({"service", "status", "--json"}));
    EXPECT_EQ(js.exit_code, 0) << js.err;
    const auto j = nlohmann::json::parse(js.out);
    EXPECT_EQ(j["manager"], "supervisor");
    ASSERT_EQ(j["components"].size(), 3u) << j.dump(2);
    EXPECT_EQ(j["components"][0]["component"], "db");
    EXPECT_EQ(j["components"][1]["component"], "httpd");
    EXPECT_EQ(j["components"][2]["component"], "queue");
    for (const auto& c : j["components"])
        EXPECT_EQ(c["state"], "running") << j.dump(2);
    EXPECT_TRUE(contains(j["components"][1]["detail"].get<std::string>(), "pid " + std::to_string(pid_of("httpd"))));

    // A second start changes nothing.
    const pid_t httpd = pid_of("httpd");
    const pid_t queue = pid_of("queue");
    auto again = run_installer(args({"service", "start"}));
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_TRUE(contains(again.out, "already running: the web server")) << again.out;
    EXPECT_TRUE(contains(again.out, "already running: the work-queue worker")) << again.out;
    EXPECT_EQ(pid_of("httpd"), httpd);
    EXPECT_EQ(pid_of("queue"), queue);

    // One component: the web server stops, the worker goes on.
    auto stop_httpd = run_installer(args({"service", "stop", "httpd"}));
    EXPECT_EQ(stop_httpd.exit_code, 0) << stop_httpd.err;
    EXPECT_TRUE(contains(stop_httpd.out, "stopped the web server")) << stop_httpd.out;
    EXPECT_FALSE(stdfs::exists(pid_file("httpd")));
    EXPECT_TRUE(ended_within(httpd, 10s));
    EXPECT_EQ(health().connect_errno, ECONNREFUSED) << health();
    EXPECT_TRUE(running(queue));
    EXPECT_EQ(run_installer(args({"service", "status", "httpd"})).exit_code, 3);
    EXPECT_EQ(run_installer(args({"service", "status", "queue"})).exit_code, 0);
    auto partial = run_installer(args({"service", "status", "--json"}));
    EXPECT_EQ(partial.exit_code, 3);
    EXPECT_EQ(nlohmann::json::parse(partial.out)["components"][1]["state"], "stopped") << partial.out;

    // restart: a new worker process.
    auto restart = run_installer(args({"service", "restart", "queue"}));
    EXPECT_EQ(restart.exit_code, 0) << restart.out << restart.err;
    EXPECT_TRUE(contains(restart.out, "stopped the work-queue worker")) << restart.out;
    EXPECT_TRUE(contains(restart.out, "started the work-queue worker")) << restart.out;
    EXPECT_TRUE(ended_within(queue, 10s));
    EXPECT_NE(pid_of("queue"), queue);
    expect_component_runs("queue");

    // Everything stops: pid files gone, processes ended, the database too.
    const pid_t queue2 = pid_of("queue");
    auto stop = run_installer(args({"service", "stop"}));
    EXPECT_EQ(stop.exit_code, 0) << stop.out << stop.err;
    EXPECT_TRUE(contains(stop.out, "stopped the work-queue worker")) << stop.out;
    EXPECT_TRUE(contains(stop.out, "not running: the web server")) << stop.out;
    EXPECT_TRUE(contains(stop.out, "stopped the database")) << stop.out;
    expect_components_stopped({httpd, queue, queue2});
    EXPECT_FALSE(stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"));
    auto after = run_installer(args({"service", "status"}));
    EXPECT_EQ(after.exit_code, 3) << after.out;
    EXPECT_TRUE(contains(after.out, "db     stopped")) << after.out;
    auto after_json = run_installer(args({"service", "status", "--json"}));
    EXPECT_EQ(after_json.exit_code, 3);
    for (const auto& c : nlohmann::json::parse(after_json.out)["components"])
        EXPECT_EQ(c["state"], "stopped");
}

// ---- 2. the components are really stopped during the upgrade ---------------------------

TEST_F(Maintenance, ComponentsAreStoppedDuringTheUpgradeAndRunTheNewVersionAfter) {
    start_components();
    const pid_t httpd = pid_of("httpd");
    const pid_t queue = pid_of("queue");
    ASSERT_EQ(health().version(), "9.0.7") << health();

    // The run stops itself (SIGSTOP) right after stopping the components.
    child = start_child(args({"upgrade", "-y", "--json"}),
                        {{"LEO_FAULT_INJECT", "upgrade.after_stop"}, {"LEO_FAULT_SIGNAL", std::to_string(SIGSTOP)}},
                        tmp.path(), "upgrade");
    ASSERT_TRUE(child.wait_stopped(120s))
        << "the run did not reach upgrade.after_stop (exit " << child.exited << "): " << slurp(child.err);
    const auto held_since = std::chrono::steady_clock::now();
    expect_components_stopped({httpd, queue});
    EXPECT_EQ(slurp(marker()), "httpd\nqueue\n") << "what a recover would start again";
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(run_installer(args({"service", "status", "httpd"})).exit_code, 3);
    std::this_thread::sleep_for(500ms); // a downtime the report must include
    const double held = std::chrono::duration<double>(std::chrono::steady_clock::now() - held_since).count();

    ASSERT_EQ(::kill(child.pid, SIGCONT), 0);
    ASSERT_EQ(child.wait_exit(), 0) << slurp(child.out) << slurp(child.err);
    const std::string err = slurp(child.err);
    EXPECT_TRUE(contains(err, "==> stopped the web server (supervisor)")) << err;
    EXPECT_TRUE(contains(err, "==> stopped the work-queue worker (supervisor)")) << err;
    EXPECT_TRUE(contains(err, "==> started the web server (supervisor)")) << err;
    EXPECT_TRUE(contains(err, "==> spot-check: the health endpoint answers version 9.2.0")) << err;
    EXPECT_TRUE(contains(err, "==> spot-check: the work-queue worker is alive")) << err;

    // The report: stdout holds the JSON alone.
    const auto j = nlohmann::json::parse(slurp(child.out));
    EXPECT_EQ(j["outcome"], "upgraded");
    EXPECT_EQ(j["from"], k_old);
    EXPECT_EQ(j["to"], k_new);
    EXPECT_EQ(j["service_manager"], "supervisor");
    EXPECT_EQ(j["components_stopped"], nlohmann::json::array({"httpd", "queue"})) << j.dump(2);
    ASSERT_TRUE(j["downtime_seconds"].is_number()) << j.dump(2);
    EXPECT_GT(j["downtime_seconds"].get<double>(), 0.0);
    EXPECT_GE(j["downtime_seconds"].get<double>(), held) << "the time the run was held stopped is downtime";
    std::vector<std::string> steps;
    double total = 0;
    for (const auto& s : j["steps"]) {
        steps.push_back(s["step"]);
        EXPECT_GE(s["seconds"].get<double>(), 0.0) << s;
        total += s["seconds"].get<double>();
    }
    EXPECT_EQ(steps,
              (std::vector<std::string>{"stop", "restore_point", "transaction", "migrate", "start", "spot_check"}));
    EXPECT_GE(total, held);
    ASSERT_EQ(j["gates"].size(), 5u) << j.dump(2);
    for (const auto& g : j["gates"])
        EXPECT_EQ(g["state"], "passed") << g;

    // The new version runs: new processes, the health endpoint answers 9.2.0.
    EXPECT_EQ(installed(), k_new + "\n");
    expect_component_runs("httpd");
    expect_component_runs("queue");
    EXPECT_NE(pid_of("httpd"), httpd);
    EXPECT_NE(pid_of("queue"), queue);
    const auto h = health();
    ASSERT_EQ(h.status, 200) << h;
    EXPECT_EQ(h.version(), "9.2.0");
    EXPECT_EQ(h.json()["schema_version"], "9.1.0.2") << h;
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());
    EXPECT_EQ(run_installer(args({"service", "status"})).exit_code, 0);

    // `rollback` stops them too, and starts the old version's.
    const pid_t httpd_new = pid_of("httpd");
    auto rb = run_installer(args({"rollback", "-y"}));
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_TRUE(contains(rb.out, "stopped the web server (supervisor)")) << rb.out;
    EXPECT_TRUE(contains(rb.out, "started the web server (supervisor)")) << rb.out;
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_TRUE(ended_within(httpd_new, 10s));
    expect_component_runs("httpd");
    expect_component_runs("queue");
    EXPECT_EQ(health().version(), "9.0.7") << health();
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());
}

// ---- 3. the gates: exit 3, nothing changed ------------------------------------------------

class Gates : public Maintenance {
  protected:
    /// Run `argv`: exit 3, `message` (and "nothing was changed") on stderr, and nothing
    /// changed: files, tables, the installed package, restore points, the running
    /// components. Returns stderr.
    // Left out: the log, the database's own files, and what the running components
    // write (the worker's heartbeat every second, their logs).
    // And what every run touches without changing anything: the repository metadata
    // cache, the run lock's file, the shared-memory index of rpm's SQLite database.
    inline static const std::vector<std::string> k_unchanged_ignore{"var/log",
                                                                    "var/cache",
                                                                    "home/leo/pgsql",
                                                                    "home/leo/run",
                                                                    "home/leo/logs",
                                                                    "var/lib/leo-installer/lock",
                                                                    "var/lib/rpm/rpmdb.sqlite-shm"};
    std::string expect_refused(const std::vector<std::string>& argv, const std::string& message,
                               const std::string& installed_nevra = k_old) {
        const auto& ignore = k_unchanged_ignore;
        const std::string files = leo::test::snapshot_tree(root, ignore);
        const std::string tables = leo::test::table_checksums(root);
        const pid_t httpd = pid_of("httpd");
        const pid_t queue = pid_of("queue");
        auto r = run_installer(argv);
        EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
        EXPECT_TRUE(contains(r.err, "the upgrade's gates refused it: ")) << r.err;
        EXPECT_TRUE(contains(r.err, message)) << "expected: " << message << "\nstderr: " << r.err;
        EXPECT_TRUE(contains(r.err, "; nothing was changed")) << r.err;
        EXPECT_EQ(leo::test::snapshot_tree(root, ignore), files) << "the root changed";
        EXPECT_EQ(leo::test::table_checksums(root), tables) << "the database changed";
        EXPECT_EQ(installed(), installed_nevra + "\n");
        if (installed_nevra == k_old) {  // (after an upgrade, its restore point is there)
            EXPECT_FALSE(stdfs::exists(root / "var/lib/leo-installer/snapshots") &&
                         !stdfs::is_empty(root / "var/lib/leo-installer/snapshots"))
                << "a restore point was left behind";
            const auto list = run_installer(args({"snapshot", "list", "--json"}));
            EXPECT_EQ(nlohmann::json::parse(list.out, nullptr, false), nlohmann::json::array()) << list.out << list.err;
        }
        // The components were not stopped for a refused upgrade.
        EXPECT_EQ(pid_of("httpd"), httpd);
        EXPECT_EQ(pid_of("queue"), queue);
        EXPECT_TRUE(running(httpd) && running(queue));
        EXPECT_EQ(health().version(), installed_nevra == k_old ? "9.0.7" : "9.2.0") << health();
        EXPECT_FALSE(stdfs::exists(marker()));
        return r.err;
    }
    static void expect_only(const std::string& err, const std::string& gate) {
        for (const char* g :
             {"upgrades_enabled: ", "support_licence: ", "maintenance_window: ", "replication: ", "upgrade_path: "})
            if (gate != g) {
                EXPECT_FALSE(contains(err, g)) << g << " refused too: " << err;
            }
    }
};

TEST_F(Gates, EachGateRefusesAndNothingChanges) {
    start_components();
    const auto upgrade = args({"upgrade", "-y"});

    // upgrades disabled by the administration setting
    exec("UPDATE settings SET value = 'false' WHERE name = 'upgrades_enabled'");
    auto err = expect_refused(upgrade, "upgrades_enabled: broker upgrades are disabled by the administration "
                                       "setting \"disable broker upgrade\" (settings.upgrades_enabled = 'false')");
    expect_only(err, "upgrades_enabled: ");
    exec("UPDATE settings SET value = 'true' WHERE name = 'upgrades_enabled'");

    // an expired support licence: the refusal gives the date
    exec("INSERT INTO support_licence (licence_key, customer, expires_on) VALUES ('K-1', 'Acme', '2021-03-31')");
    err = expect_refused(upgrade, "support_licence: the support licence expired on 2021-03-31 (today is ");
    EXPECT_TRUE(contains(err, "renew it before upgrading")) << err;
    expect_only(err, "support_licence: ");
    exec("UPDATE support_licence SET expires_on = current_date + 365");

    // replication: a publication and a physical replication slot
    exec("CREATE PUBLICATION leo_pub FOR ALL TABLES");
    exec("SELECT pg_create_physical_replication_slot('standby_1')");
    err = expect_refused(upgrade, "replication: the broker database is replicated (replication slot standby_1 "
                                  "(physical), publication leo_pub); the update procedure forbids upgrading while "
                                  "it is: stop the replication first");
    expect_only(err, "replication: ");
    exec("DROP PUBLICATION leo_pub");
    exec("SELECT pg_drop_replication_slot('standby_1')");

    // the upgrade path: a package that must be installed over 9.2.0 or later
    const auto path_rpm = build_package("9.3.0", {{"UPGRADE_REQUIRES", "9.2.0"}}, "path");
    auto q = leo::subprocess::run({"rpm", "-qp", "--provides", path_rpm.string()});
    ASSERT_TRUE(contains(q.out, "leostream-broker(upgrade-requires) = 9.2.0")) << q.out << q.err;
    err = expect_refused(args({"upgrade", "--rpm", path_rpm.string(), "--nogpgcheck", "-y"}),
                         "upgrade_path: leostream-broker-9.3.0-1.x86_64 can only be installed over version 9.2.0 or "
                         "later, and 9.0.7 is installed: upgrade to 9.2.0 first (`leo-installer upgrade --version "
                         "9.2.0`), then to 9.3.0");
    expect_only(err, "upgrade_path: ");

    // Two at once: both are listed.
    exec("UPDATE settings SET value = 'false' WHERE name = 'upgrades_enabled'");
    exec("CREATE PUBLICATION leo_pub FOR ALL TABLES");
    err = expect_refused(upgrade, "upgrades_enabled: broker upgrades are disabled");
    EXPECT_TRUE(contains(err, "; replication: the broker database is replicated (publication leo_pub)")) << err;
    exec("DROP PUBLICATION leo_pub");
    exec("UPDATE settings SET value = 'true' WHERE name = 'upgrades_enabled'");

    // With the components and the database stopped, a refusal leaves the database stopped.
    ASSERT_EQ(run_installer(args({"service", "stop"})).exit_code, 0);
    ASSERT_FALSE(stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"));
    {
        leo::migrations::InternalDatabase db(root);
        db.start();
        leo::migrations::Connection::open(db.conninfo())
            .exec("UPDATE settings SET value = 'false' WHERE name = 'upgrades_enabled'");
        db.stop();
    }
    auto stopped_db = run_installer(upgrade);
    EXPECT_EQ(stopped_db.exit_code, 3) << stopped_db.out << stopped_db.err;
    EXPECT_TRUE(contains(stopped_db.err, "upgrades_enabled: broker upgrades are disabled")) << stopped_db.err;
    EXPECT_FALSE(stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"))
        << "the refused upgrade left the database running: " << stopped_db.out;
    start_components();
    exec("UPDATE settings SET value = 'true' WHERE name = 'upgrades_enabled'");

    // With every gate open again the dry run passes them all (and changes nothing).
    auto dry = run_installer(args({"upgrade", "--dry-run", "-y"}));
    EXPECT_EQ(dry.exit_code, 0) << dry.out << dry.err;
    EXPECT_TRUE(
        std::regex_search(dry.out, std::regex("gate support_licence +passed +the support licence is valid until ")))
        << dry.out;
    EXPECT_TRUE(
        std::regex_search(dry.out, std::regex("gate replication +passed +the broker database is not replicated")))
        << dry.out;
    EXPECT_TRUE(contains(dry.out, "dry run: " + k_old + " -> " + k_new + " is possible; nothing was changed"))
        << dry.out;
    EXPECT_EQ(installed(), k_old + "\n");
}

/// A maintenance window that excludes now: one hour, twelve hours from now (UTC).
std::string window_twelve_hours_from_now() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    const int minute_of_week = ((tm.tm_wday + 6) % 7) * 1440 + tm.tm_hour * 60 + tm.tm_min;
    const int start = (minute_of_week + 12 * 60) % (7 * 1440);
    const int end = (start + 60) % 1440;
    static const char* const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s %02d:%02d-%02d:%02d", days[start / 1440], (start % 1440) / 60, start % 60,
                  end / 60, end % 60);
    return buf;
}

TEST_F(Gates, OutsideTheMaintenanceWindowUnlessNowWithAReason) {
    start_components();
    const std::string windows = window_twelve_hours_from_now();
    write_installer_conf("[maintenance_window]\ntime_zone = UTC\nwindows = " + windows + "\n");
    const auto err = expect_refused(args({"upgrade", "-y"}), "maintenance_window: ");
    EXPECT_TRUE(std::regex_search(err, std::regex("maintenance_window: [A-Z][a-z][a-z] [0-9]{4}-[0-9]{2}-[0-9]{2} "
                                                  "[0-9]{2}:[0-9]{2} UTC is outside the maintenance window \\(" +
                                                  windows +
                                                  "\\); it opens in 1[12] h [0-9]{2} min: run it then, or "
                                                  "now with --now --reason TEXT \\(logged\\)")))
        << err;
    expect_only(err, "maintenance_window: ");

    // --now needs --reason (and the reverse): a usage error, nothing run.
    auto no_reason = run_installer(args({"upgrade", "-y", "--now"}));
    EXPECT_EQ(no_reason.exit_code, 2) << no_reason.out << no_reason.err;
    EXPECT_TRUE(contains(no_reason.err, "--reason")) << no_reason.err;
    auto empty_reason = run_installer(args({"upgrade", "-y", "--now", "--reason", ""}));
    EXPECT_NE(empty_reason.exit_code, 0);
    EXPECT_TRUE(contains(empty_reason.err, "--reason: empty")) << empty_reason.err;
    EXPECT_EQ(installed(), k_old + "\n");

    // --now --reason: overridden, logged with its reason, and the upgrade runs.
    auto now = run_installer(args({"upgrade", "-y", "--json", "--now", "--reason", "emergency fix"}));
    ASSERT_EQ(now.exit_code, 0) << now.out << now.err;
    const auto j = nlohmann::json::parse(now.out);
    EXPECT_EQ(j["outcome"], "upgraded");
    bool seen = false;
    for (const auto& g : j["gates"]) {
        if (g["id"] != "maintenance_window") {
            EXPECT_EQ(g["state"], "passed") << g;
            continue;
        }
        seen = true;
        EXPECT_EQ(g["state"], "overridden") << g;
        EXPECT_TRUE(contains(g["detail"].get<std::string>(), "is outside the maintenance window (" + windows +
                                                                 "), overridden with --now: emergency fix"))
            << g;
    }
    EXPECT_TRUE(seen) << j.dump(2);
    EXPECT_TRUE(contains(now.err, "overridden")) << now.err;
    const std::string log = slurp(root / "var/log/leo-installer/installer.log");
    EXPECT_TRUE(contains(log, "maintenance window overridden with --now --reason \"emergency fix\"")) << log;
    EXPECT_EQ(installed(), k_new + "\n");
    EXPECT_EQ(health().version(), "9.2.0") << health();
}

// ---- 4. a failing probe rolls back ------------------------------------------------------

TEST_F(Maintenance, AFailingSpotCheckRollsBackAndTheOldVersionRunsAgain) {
    // A broken 9.2.0: its health endpoint says 9.1.99.
    const auto broken = build_package("9.2.0", {{"HEALTH_VERSION", "9.1.99"}}, "broken");
    write_installer_conf("[spot_check]\ntimeout = 3\n");
    start_components();
    const std::string tables = leo::test::table_checksums(root);

    const auto began = std::chrono::steady_clock::now();
    auto up = run_installer(args({"upgrade", "--rpm", broken.string(), "--nogpgcheck", "-y"}));
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    EXPECT_EQ(up.exit_code, 1) << up.out << up.err;
    EXPECT_TRUE(
        contains(up.err, "upgrade " + k_old + " -> " + k_new +
                             " failed: spot-check: the health endpoint "
                             "http://127.0.0.1:" +
                             std::to_string(port) +
                             "/health: it answers version 9.1.99, expected 9.2.0 (for 3 s, [spot_check] timeout)"))
        << up.err;
    EXPECT_TRUE(contains(up.err, "rolled back to " + k_old)) << up.err;
    EXPECT_TRUE(contains(up.out, "rolling back to restore point")) << up.out;
    EXPECT_LT(took, 60.0) << "[spot_check] timeout = 3 was not used";

    // The old version is back, and runs.
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(schema(), "9.0.0.2");
    EXPECT_EQ(leo::test::table_checksums(root), tables);
    expect_component_runs("httpd");
    expect_component_runs("queue");
    const auto h = health();
    ASSERT_EQ(h.status, 200) << h;
    EXPECT_EQ(h.version(), "9.0.7");
    EXPECT_EQ(h.json()["schema_version"], "9.0.0.2") << h;
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());
    EXPECT_EQ(run_installer(args({"service", "status"})).exit_code, 0);
    EXPECT_EQ(run_installer(args({"status"})).exit_code, 0) << "no unfinished run";
}

// ---- 5. --components-stopped ------------------------------------------------------------

TEST_F(Maintenance, ComponentsStoppedLeavesThemStoppedAndReportsNoDowntime) {
    ASSERT_EQ(run_installer(args({"service", "status", "httpd"})).exit_code, 3);
    ASSERT_EQ(run_installer(args({"service", "status", "queue"})).exit_code, 3);
    auto up = run_installer(args({"upgrade", "-y", "--json", "--components-stopped"}));
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_TRUE(contains(up.err, "==> the broker components were stopped by the administrator (--components-stopped)"))
        << up.err;
    EXPECT_TRUE(contains(up.err, "spot-check: the components were stopped by the administrator")) << up.err;
    EXPECT_FALSE(contains(up.err, "started the")) << up.err;
    const auto j = nlohmann::json::parse(up.out);
    EXPECT_EQ(j["outcome"], "upgraded");
    EXPECT_EQ(j["components_stopped"], nlohmann::json::array()) << j.dump(2);
    EXPECT_TRUE(j["downtime_seconds"].is_null()) << j.dump(2);
    EXPECT_EQ(installed(), k_new + "\n");
    // Still stopped: no pid file, nothing listens, no heartbeat.
    expect_components_stopped({});
    EXPECT_FALSE(stdfs::exists(root / "home/leo/run/queue.heartbeat"));
    EXPECT_FALSE(stdfs::exists(marker()));
    auto status = run_installer(args({"service", "status"}));
    EXPECT_EQ(status.exit_code, 3) << status.out;
    EXPECT_TRUE(contains(status.out, "httpd  stopped")) << status.out;
    EXPECT_TRUE(contains(status.out, "queue  stopped")) << status.out;
}

// ---- 6. killed after the stop: recover starts them again --------------------------------

TEST_F(Maintenance, KilledAfterTheStopThenRecoverStartsTheComponents) {
    start_components();
    const pid_t httpd = pid_of("httpd");
    const pid_t queue = pid_of("queue");
    leo::subprocess::Options killed;
    killed.env["LEO_FAULT_INJECT"] = "upgrade.after_stop";
    auto up = run_installer(args({"upgrade", "-y"}), killed);
    ASSERT_EQ(up.signal, SIGKILL) << "the fault point was not reached: " << up.out << up.err;
    expect_components_stopped({httpd, queue});
    EXPECT_EQ(slurp(marker()), "httpd\nqueue\n");

    auto rec = run_installer(args({"recover", "-y"}));
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_TRUE(contains(rec.out, "stopped before its restore point was complete: nothing had changed")) << rec.out;
    EXPECT_TRUE(contains(rec.out, "started the web server (supervisor)")) << rec.out;
    EXPECT_TRUE(contains(rec.out, "started the work-queue worker (supervisor)")) << rec.out;
    EXPECT_EQ(installed(), k_old + "\n");
    expect_component_runs("httpd");
    expect_component_runs("queue");
    const auto h = health();
    ASSERT_EQ(h.status, 200) << h;
    EXPECT_EQ(h.version(), "9.0.7");
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());
    EXPECT_EQ(run_installer(args({"service", "status"})).exit_code, 0);
    auto again = run_installer(args({"recover", "-y"}));
    EXPECT_EQ(again.exit_code, 0);
    EXPECT_TRUE(contains(again.out, "nothing to recover")) << again.out;
}

// Killed later in the run: recover returns to the old version (or, after the spot-check,
// keeps the new one) and the components run afterwards, as processes started for the
// version recover left, never the new version's processes under the old version's files.
struct KillCase {
    std::string point;
    std::string expected; ///< the NEVRA after recover
    std::string version;  ///< what the health endpoint answers then
};
std::ostream& operator<<(std::ostream& os, const KillCase& c) { return os << c.point; }

class KilledThenRecovered : public Maintenance, public ::testing::WithParamInterface<KillCase> {};

TEST_P(KilledThenRecovered, TheComponentsRunTheVersionRecoverLeft) {
    const KillCase& c = GetParam();
    start_components();
    leo::subprocess::Options killed;
    killed.env["LEO_FAULT_INJECT"] = c.point;
    auto up = run_installer(args({"upgrade", "-y"}), killed);
    ASSERT_EQ(up.signal, SIGKILL) << "the fault point was not reached: " << up.out << up.err;
    // What ran when the run died (the new version's components after upgrade.after_start).
    const pid_t httpd_before = pid_of("httpd");
    const pid_t queue_before = pid_of("queue");
    const bool were_running = running(httpd_before) && running(queue_before);

    auto rec = run_installer(args({"recover", "-y"}));
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_EQ(installed(), c.expected + "\n") << rec.out;
    if (were_running && c.expected == k_old) {
        EXPECT_TRUE(contains(rec.out, "==> stopped the web server (supervisor)")) << rec.out;
        EXPECT_TRUE(contains(rec.out, "==> stopped the work-queue worker (supervisor)")) << rec.out;
    }
    if (c.expected == k_old) {
        EXPECT_TRUE(contains(rec.out, "==> started the web server (supervisor)")) << rec.out;
        EXPECT_TRUE(contains(rec.out, "==> started the work-queue worker (supervisor)")) << rec.out;
    }
    expect_component_runs("httpd");
    expect_component_runs("queue");
    const auto h = health();
    ASSERT_EQ(h.status, 200) << h;
    EXPECT_EQ(h.version(), c.version);
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());
    if (c.expected == k_old) {
        // Processes of the new version do not go on under the old version's files.
        if (httpd_before > 0) {
            EXPECT_NE(pid_of("httpd"), httpd_before)
                << "the web server started by the killed upgrade still runs: " << rec.out;
            EXPECT_TRUE(ended_within(httpd_before, 10s));
        }
        if (queue_before > 0) {
            EXPECT_NE(pid_of("queue"), queue_before)
                << "the worker started by the killed upgrade still runs: " << rec.out;
            EXPECT_TRUE(ended_within(queue_before, 10s));
        }
        EXPECT_EQ(h.json()["schema_version"], "9.0.0.2") << h;
    } else {
        EXPECT_EQ(h.json()["schema_version"], "9.1.0.2") << h;
    }
    EXPECT_EQ(run_installer(args({"service", "status"})).exit_code, 0);
}

INSTANTIATE_TEST_SUITE_P(AtSteps, KilledThenRecovered,
                         ::testing::Values(KillCase{"upgrade.after_restore_point", k_old, "9.0.7"},
                                           KillCase{"upgrade.after_transaction", k_old, "9.0.7"},
                                           KillCase{"upgrade.after_start", k_old, "9.0.7"},
                                           KillCase{"upgrade.after_spot_check", k_new, "9.2.0"}),
                         [](const ::testing::TestParamInfo<KillCase>& i) {
                             std::string n = i.param.point.substr(i.param.point.find('.') + 1);
                             return n;
                         });


// ---- 7. service with [services] commands, the stopped-for-change record, a start that
// times out, the pid file's identity, a broken [maintenance_window], a refused dry run ----

/// A process of the test (sleep 300) running with real and effective uid `uid` (and gid);
/// reaped by kill_child().
pid_t spawn_sleeper(uid_t uid) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::setpgid(0, 0);
        if (::setgid(uid) != 0 || ::setuid(uid) != 0)
            ::_exit(127);
        ::execl("/bin/sleep", "sleep", "300", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    // Until it has exec'd, its start time is already final; wait for the uid change.
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (uid_of(pid) != static_cast<long>(uid) && std::chrono::steady_clock::now() < end)
        std::this_thread::sleep_for(10ms);
    return pid;
}
void kill_child(pid_t pid) {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
}

TEST_F(Maintenance, ServiceStartStopRunTheConfiguredCommands) {
    // The supervisor's processes run first; with [services] commands configured, `service`
    // runs those commands and leaves the supervisor's processes alone.
    start_components();
    const pid_t httpd = pid_of("httpd");
    const pid_t queue = pid_of("queue");
    const std::string httpd_file = slurp(pid_file("httpd"));
    const auto evidence = tmp.path() / "evidence";
    write_installer_conf("[services]\nstop_command = echo \"stop $LEO_ROOT\" >> " + evidence.string() +
                         "\nstart_command = echo \"start $LEO_ROOT\" >> " + evidence.string() + "\ntimeout = 30\n");

    auto status = run_installer(args({"service", "status"}));
    EXPECT_TRUE(contains(status.out, "httpd  not managed here")) << status.out;
    EXPECT_TRUE(contains(status.out, "([services] commands)")) << status.out;
    EXPECT_FALSE(stdfs::exists(evidence)) << "status ran a command";

    auto stop = run_installer(args({"service", "stop"}));
    ASSERT_EQ(stop.exit_code, 0) << stop.out << stop.err;
    EXPECT_TRUE(contains(stop.out, "stopped the broker components (`echo \"stop $LEO_ROOT\" >> " +
                                       evidence.string() + "`)"))
        << stop.out;
    EXPECT_TRUE(contains(stop.out, "stopped the database")) << stop.out;
    EXPECT_EQ(slurp(evidence), "stop " + root.string() + "\n");
    // Nothing else: the supervisor's processes and their pid files are as they were, and
    // no stopped-for-change record is written for an administrator's stop.
    EXPECT_TRUE(running(httpd) && running(queue));
    EXPECT_EQ(slurp(pid_file("httpd")), httpd_file);
    EXPECT_FALSE(stdfs::exists(marker()));

    auto start = run_installer(args({"service", "start"}));
    ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
    EXPECT_TRUE(contains(start.out, "started the database")) << start.out;
    EXPECT_TRUE(contains(start.out, "started the broker components (`echo \"start $LEO_ROOT\" >> " +
                                        evidence.string() + "`)"))
        << start.out;
    EXPECT_EQ(slurp(evidence), "stop " + root.string() + "\nstart " + root.string() + "\n");

    auto restart = run_installer(args({"service", "restart"}));
    ASSERT_EQ(restart.exit_code, 0) << restart.out << restart.err;
    EXPECT_EQ(slurp(evidence), "stop " + root.string() + "\nstart " + root.string() + "\nstop " + root.string() +
                                   "\nstart " + root.string() + "\n");

    // One component alone: refused, nothing run.
    auto one = run_installer(args({"service", "stop", "httpd"}));
    EXPECT_EQ(one.exit_code, 1) << one.out << one.err;
    EXPECT_TRUE(contains(one.err, "stop httpd alone is not supported with installer.conf [services] commands"))
        << one.err;
    const std::string ran = slurp(evidence);
    EXPECT_EQ(std::count(ran.begin(), ran.end(), '\n'), 4) << ran;

    // A failing command: its exit and last line in the error, exit 1.
    write_installer_conf("[services]\nstop_command = echo no way >&2; exit 7\nstart_command = true\n");
    auto failing = run_installer(args({"service", "stop"}));
    EXPECT_EQ(failing.exit_code, 1) << failing.out << failing.err;
    EXPECT_TRUE(contains(failing.err, "`echo no way >&2; exit 7` failed (exit 7): no way")) << failing.err;

    write_installer_conf("");  // the supervisor again, for TearDown's stop
    EXPECT_EQ(pid_of("httpd"), httpd);
    EXPECT_TRUE(running(httpd) && running(queue));
}

TEST_F(Maintenance, AManualStartClearsTheStoppedForChangeRecord) {
    // What a change that could not start the components again leaves (its start failed).
    stdfs::create_directories(root / "run/leostream");
    std::ofstream(marker()) << "httpd\nqueue\n";
    ASSERT_EQ(run_installer(args({"service", "start", "db"})).exit_code, 0);
    EXPECT_EQ(slurp(marker()), "httpd\nqueue\n") << "the database is not in the record";
    auto one = run_installer(args({"service", "start", "httpd"}));
    ASSERT_EQ(one.exit_code, 0) << one.out << one.err;
    EXPECT_EQ(slurp(marker()), "queue\n") << "the web server runs: only the worker is left to start";
    auto all = run_installer(args({"service", "restart"}));
    ASSERT_EQ(all.exit_code, 0) << all.out << all.err;
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());

    // The administrator stops them; an upgrade killed after its stop step stopped nothing,
    // and recover must not start what the stale record named.
    auto stop = run_installer(args({"service", "stop"}));
    ASSERT_EQ(stop.exit_code, 0) << stop.out << stop.err;
    leo::subprocess::Options killed;
    killed.env["LEO_FAULT_INJECT"] = "upgrade.after_stop";
    auto up = run_installer(args({"upgrade", "-y"}), killed);
    ASSERT_EQ(up.signal, SIGKILL) << "the fault point was not reached: " << up.out << up.err;
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());
    auto rec = run_installer(args({"recover", "-y"}));
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_FALSE(contains(rec.out, "started the web server")) << rec.out;
    EXPECT_FALSE(contains(rec.out, "started the work-queue worker")) << rec.out;
    expect_components_stopped({});
    EXPECT_EQ(installed(), k_old + "\n");
}

TEST_F(Maintenance, AStartThatIsNeverReadyStopsWhatItStarted) {
    // The web server answers 503 while its database is down: never ready.
    write_installer_conf("[services]\nready_timeout = 5\ntimeout = 10\n");
    ASSERT_EQ(run_installer(args({"service", "stop"})).exit_code, 0);
    ASSERT_FALSE(stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"));
    auto start = run_installer(args({"service", "start", "httpd"}));
    EXPECT_EQ(start.exit_code, 1) << start.out << start.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(start.err, m,
                                  std::regex("the web server \\(pid ([0-9]+)\\) was not ready within 5 s "
                                             "\\(\\[services\\] ready_timeout\\): the health endpoint .*HTTP 503.*; "
                                             "stopped it \\(SIGTERM\\)")))
        << start.err;
    const pid_t spawned = static_cast<pid_t>(std::stol(m[1]));
    EXPECT_TRUE(ended_within(spawned, 10s)) << "the half-started web server still runs: " << cmdline_of(spawned);
    // Nothing else changed: no pid file, nothing listens, the database and the worker stay
    // stopped, no stopped-for-change record.
    expect_components_stopped({spawned});
    EXPECT_FALSE(stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"));
    EXPECT_FALSE(stdfs::exists(marker()));
    EXPECT_TRUE(contains(slurp(root / "home/leo/logs/httpd.log"), "listening on")) << "it did start";
}

TEST_F(Maintenance, APidFileNamingAnotherProcessIsNeverSignalled) {
    stdfs::create_directories(root / "run/leostream");
    const auto plant = [&](pid_t pid, const std::string& start, long uid) {
        std::ofstream(pid_file("httpd"), std::ios::trunc) << pid << " " << start << " " << uid << "\n";
    };
    // A process of another user (nobody), with its true start time: even a file that
    // claims leo's uid for it does not make it the web server.
    const uid_t nobody = 65534;
    const pid_t other = spawn_sleeper(nobody);
    ASSERT_EQ(uid_of(other), static_cast<long>(nobody));
    for (long claimed : {leo_uid, static_cast<long>(nobody)}) {
        plant(other, start_time_of(other), claimed);
        auto status = run_installer(args({"service", "status", "httpd"}));
        EXPECT_EQ(status.exit_code, 3) << status.out;
        EXPECT_TRUE(contains(status.out, "httpd  stopped")) << status.out;
        auto stop = run_installer(args({"service", "stop", "httpd"}));
        EXPECT_EQ(stop.exit_code, 0) << stop.out << stop.err;
        EXPECT_TRUE(contains(stop.out, "not running: the web server")) << stop.out;
        EXPECT_TRUE(running(other)) << "a process of uid " << nobody << " was signalled (file claimed " << claimed << ")";
        EXPECT_FALSE(stdfs::exists(pid_file("httpd"))) << "the stale file stays";
    }
    kill_child(other);

    // leo's process, but not started when the file says: another process on that pid.
    const pid_t leos = spawn_sleeper(static_cast<uid_t>(leo_uid));
    plant(leos, std::to_string(std::stoll(start_time_of(leos)) - 100), leo_uid);
    auto stale = run_installer(args({"service", "stop", "httpd"}));
    EXPECT_EQ(stale.exit_code, 0) << stale.out << stale.err;
    EXPECT_TRUE(contains(stale.out, "not running: the web server")) << stale.out;
    EXPECT_TRUE(running(leos)) << "a process with another start time was signalled";
    // A file without its start time proves nothing either.
    plant(leos, "0", leo_uid);
    EXPECT_TRUE(contains(run_installer(args({"service", "stop", "httpd"})).out, "not running: the web server"));
    EXPECT_TRUE(running(leos));

    // The control: the same process with its true start time and uid is the one the file
    // means, and is stopped (SIGTERM through its pidfd).
    plant(leos, start_time_of(leos), leo_uid);
    auto status = run_installer(args({"service", "status", "httpd"}));
    EXPECT_TRUE(contains(status.out, "httpd  running (pid " + std::to_string(leos))) << status.out;
    auto stop = run_installer(args({"service", "stop", "httpd"}));
    EXPECT_EQ(stop.exit_code, 0) << stop.out << stop.err;
    EXPECT_TRUE(contains(stop.out, "stopped the web server")) << stop.out;
    int wstatus = 0;
    EXPECT_EQ(::waitpid(leos, &wstatus, 0), leos);
    EXPECT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGTERM) << wstatus;
}

TEST_F(Gates, ABrokenMaintenanceWindowRefusesOnlyTheUpgrade) {
    start_components();
    const std::string file = (root / "etc/leo-installer/installer.conf").string();
    for (const std::string& conf :
         {std::string("[maintenance_window]\ntime_zone = UTC+3\nwindows = Sat 22:00-Sun 04:00\n"),
          std::string("[maintenance_window]\ntime_zone = EST5EDT,M3.2.0,M11.1.0\n"),
          std::string("[restore_points]\nkeep = 4\n[maintenance_window]\nwindows Sat\n")}) {
        write_installer_conf(conf);
        auto status = run_installer(args({"service", "status"}));
        EXPECT_EQ(status.exit_code, 0) << conf << status.out << status.err;
        EXPECT_TRUE(contains(status.out, "httpd  running")) << status.out;
        EXPECT_TRUE(contains(status.err, "warning: " + file + ":")) << status.err;
        EXPECT_TRUE(contains(status.err, "an upgrade refuses until it is fixed")) << status.err;
    }
    EXPECT_EQ(run_installer(args({"service", "restart", "queue"})).exit_code, 0) << "service acts with it too";

    // The upgrade's gate refuses, naming the key and the line; nothing changes.
    write_installer_conf("[maintenance_window]\ntime_zone = UTC+3\nwindows = Sat 22:00-Sun 04:00\n");
    const std::string why = file + ":2: [maintenance_window] time_zone = UTC+3: not a zone of the zoneinfo database";
    auto err = expect_refused(args({"upgrade", "-y"}), "maintenance_window: the maintenance window cannot be read: " + why);
    expect_only(err, "maintenance_window: ");
    auto dry = run_installer(args({"upgrade", "--dry-run", "-y"}));
    EXPECT_EQ(dry.exit_code, 3) << dry.out << dry.err;
    EXPECT_TRUE(contains(dry.out, "plan: " + k_old + " -> " + k_new)) << dry.out;
    EXPECT_TRUE(contains(dry.out, "  maintenance_window: the maintenance window cannot be read: " + why)) << dry.out;

    // An upgrade with a readable window, then rollback with the window broken again: it
    // does not use the window, and goes on (warning).
    write_installer_conf("");
    auto up = run_installer(args({"upgrade", "-y"}));
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    write_installer_conf("[maintenance_window]\nwindows = Sat 22:00-Sun 04:00\ntime_zone = ../../etc/passwd\n");
    auto rb = run_installer(args({"rollback", "-y"}));
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_TRUE(contains(rb.err, file + ":3: [maintenance_window] time_zone = ../../etc/passwd: expected an IANA "
                                        "time zone name"))
        << rb.err;
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(health().version(), "9.0.7") << health();
}

TEST_F(Gates, ADryRunOutsideTheWindowPrintsThePlanThenTheRefusal) {
    start_components();
    const std::string windows = window_twelve_hours_from_now();
    write_installer_conf("[maintenance_window]\ntime_zone = UTC\nwindows = " + windows + "\n");
    const std::string files = leo::test::snapshot_tree(root, k_unchanged_ignore);
    auto dry = run_installer(args({"upgrade", "--dry-run", "-y"}));
    EXPECT_EQ(dry.exit_code, 3) << dry.out << dry.err;
    EXPECT_TRUE(contains(dry.out, "plan: " + k_old + " -> " + k_new)) << dry.out;
    EXPECT_TRUE(contains(dry.out, "  components to stop and start again: httpd, queue (supervisor)")) << dry.out;
    EXPECT_TRUE(contains(dry.out, "  migrations")) << dry.out;
    EXPECT_TRUE(contains(dry.out, "  restore point: ")) << dry.out;
    EXPECT_TRUE(contains(dry.out, "dry run: a real run of " + k_old + " -> " + k_new + " would be refused:\n"
                                  "  maintenance_window: "))
        << dry.out;
    EXPECT_TRUE(contains(dry.out, "is outside the maintenance window (" + windows + ")")) << dry.out;
    EXPECT_TRUE(contains(dry.out, "\nnothing was changed\n")) << dry.out;
    EXPECT_FALSE(contains(dry.out, "is possible")) << dry.out;
    auto js = run_installer(args({"upgrade", "--dry-run", "-y", "--json"}));
    EXPECT_EQ(js.exit_code, 3) << js.out << js.err;
    const auto j = nlohmann::json::parse(js.out);
    EXPECT_EQ(j["outcome"], "dry-run");
    ASSERT_EQ(j["would_refuse"].size(), 1u) << j.dump(2);
    EXPECT_TRUE(contains(j["would_refuse"][0].get<std::string>(), "maintenance_window: ")) << j.dump(2);
    EXPECT_EQ(leo::test::snapshot_tree(root, k_unchanged_ignore), files) << "the root changed";
    EXPECT_EQ(installed(), k_old + "\n");
    auto help = run_installer({"upgrade", "--help"});
    EXPECT_TRUE(contains(help.out, "exit 3 when one would")) << help.out;

    // The preflight is a gate too: its inhibitor is listed after the plan; a real run
    // refuses on it as before.
    const auto os = root / "etc/os-release";
    const std::string os_before = slurp(os);
    ASSERT_FALSE(os_before.empty());
    std::ofstream(os, std::ios::trunc) << "ID=debian\nVERSION_ID=12\n";
    const std::string files_debian = leo::test::snapshot_tree(root, k_unchanged_ignore);
    auto pre = run_installer(args({"upgrade", "--dry-run", "-y"}));
    EXPECT_EQ(pre.exit_code, 3) << pre.out << pre.err;
    EXPECT_TRUE(contains(pre.out, "plan: " + k_old + " -> " + k_new)) << pre.out;
    EXPECT_TRUE(contains(pre.out, "\n  preflight: os (")) << pre.out;
    EXPECT_TRUE(contains(pre.out, "\n  maintenance_window: ")) << pre.out;
    auto real = run_installer(args({"upgrade", "-y"}));
    EXPECT_EQ(real.exit_code, 3) << real.out << real.err;
    EXPECT_TRUE(contains(real.err, "preflight refused the upgrade: os (")) << real.err;
    EXPECT_EQ(leo::test::snapshot_tree(root, k_unchanged_ignore), files_debian) << "the root changed";
    EXPECT_EQ(installed(), k_old + "\n");
    std::ofstream(os, std::ios::trunc) << os_before;
}

} // namespace
