#pragma once
// What the maintenance-window tests share (test_maintenance_window.cpp, test_gates_window.cpp):
// the health endpoint as a client sees it, process facts from /proc, a spawned child, and
// the Maintenance fixture (a root on 9.0.7 with a free health port, its components and
// database stopped at the end).
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

namespace leo::test::maintenance {
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

inline std::ostream& operator<<(std::ostream& os, const HealthAnswer& h) {
    if (h.connect_errno != 0)
        return os << "connect: " << std::strerror(h.connect_errno);
    return os << "HTTP " << h.status << " " << h.body;
}

/// One plain HTTP/1.0 request, independent of the product's own client.
inline HealthAnswer get_health(int port) {
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
inline bool running(pid_t pid) {
    if (pid <= 0)
        return false;
    const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    if (stat.empty())
        return false;
    const auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

/// Wait until `pid` has ended (bounded).
inline bool ended_within(pid_t pid, std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (running(pid)) {
        if (std::chrono::steady_clock::now() > end)
            return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

/// The real uid of `pid` (from /proc/PID/status), -1 when it cannot be read.
inline long uid_of(pid_t pid) {
    std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("Uid:", 0) == 0)
            return std::stol(line.substr(4));
    return -1;
}

/// The start time of `pid` in seconds since the epoch: the boot time (btime of
/// /proc/stat) plus field 22 of /proc/PID/stat (clock ticks after boot).
inline std::string start_time_of(pid_t pid) {
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
inline std::string cmdline_of(pid_t pid) {
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


} // namespace leo::test::maintenance
