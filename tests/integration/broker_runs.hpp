#pragma once
// What the integration tests of runs share (test_signals.cpp, test_run_lock.cpp): a sandbox
// root with the broker installed, a run in the background or on a real terminal
// (forkpty: link `util`), a second rpm transaction holding rpm's lock, another user.
#include "test_support.hpp"

#include "leo/migrations/connection.hpp"
#include "leo/migrations/internal_db.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

namespace leo::test::runs {
namespace stdfs = std::filesystem;
using leo::test::run_installer;

inline const std::string k_old = "leostream-broker-9.0.7-1.x86_64";
inline const std::string k_new = "leostream-broker-9.2.0-1.x86_64";

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// A sandbox root with 9.0.7 installed and the test repository configured (9.2.0 newest).
class Broker : public ::testing::Test {
protected:
    void SetUp() override {
        pkgs = leo::test::test_packages_dir();
        root = tmp.path() / "root";
        leo::test::make_sandbox_root(root);
        leo::test::install_test_broker(root, k_old);
        leo::test::write_file_repo(root);
    }
    void TearDown() override {
        if (stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"))
            (void)run_installer({"db", "stop", "--root", root.string()});
    }
    std::vector<std::string> args(std::vector<std::string> a) const {
        a.insert(a.end(), {"--root", root.string()});
        return a;
    }
    std::string installed() const { return leo::test::rpm_query(root, "leostream-broker").out; }
    std::string schema() {
        leo::migrations::InternalDatabase db(root);
        if (db.status().state != leo::migrations::DbState::running) db.start();
        auto conn = leo::migrations::Connection::open(db.conninfo());
        return conn.query("SELECT max(version) FROM leo_schema_history WHERE success").at(0, 0);
    }

    leo::test::TempDir tmp;
    stdfs::path pkgs;
    stdfs::path root;
};

/// A process started in its own session (its own process group, like a job of a shell),
/// output to files.
struct Background {
    pid_t pid = -1;
    stdfs::path out, err;
    int wait_exit() {
        int status = 0;
        ::waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
};

/// Run leo-installer with `argv` in the background (a new session, output in DIR/NAME.out
/// and DIR/NAME.err), with `env` added to its environment.
inline Background start_background(const std::vector<std::string>& argv, const stdfs::path& dir,
                                   const std::map<std::string, std::string>& env = {},
                                   const std::string& name = "bg") {
    Background b;
    b.out = dir / (name + ".out");
    b.err = dir / (name + ".err");
    std::vector<std::string> full{LEO_INSTALLER_BIN};
    full.insert(full.end(), argv.begin(), argv.end());
    std::vector<char*> p;
    for (auto& a : full) p.push_back(a.data());
    p.push_back(nullptr);
    b.pid = ::fork();
    if (b.pid == 0) {
        ::setsid();
        for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
        const int o = ::open(b.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int e = ::open(b.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int n = ::open("/dev/null", O_RDONLY);
        ::dup2(n, 0);
        ::dup2(o, 1);
        ::dup2(e, 2);
        ::execv(p[0], p.data());
        ::_exit(127);
    }
    return b;
}

inline bool wait_for_file(const stdfs::path& f, std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!stdfs::exists(f)) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
}

/// Run leo-installer on a new pseudo-terminal; returns the master side.
struct OnTerminal {
    pid_t pid = -1;
    int master = -1;
    std::string seen;
    /// Read until `text` appears (or `limit` passes).
    bool read_until(const std::string& text, std::chrono::seconds limit = std::chrono::seconds(60)) {
        const auto end = std::chrono::steady_clock::now() + limit;
        char buf[512];
        while (!contains(seen, text)) {
            if (std::chrono::steady_clock::now() > end) return false;
            const ssize_t n = ::read(master, buf, sizeof buf);
            if (n > 0) seen.append(buf, static_cast<size_t>(n));
            else std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return true;
    }
    int wait_exit() {
        int status = 0;
        ::waitpid(pid, &status, 0);
        char buf[512];
        ssize_t n;
        while ((n = ::read(master, buf, sizeof buf)) > 0) seen.append(buf, static_cast<size_t>(n));
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
};

inline OnTerminal start_on_terminal(const std::vector<std::string>& argv) {
    OnTerminal t;
    std::vector<std::string> full{LEO_INSTALLER_BIN};
    full.insert(full.end(), argv.begin(), argv.end());
    std::vector<char*> p;
    for (auto& a : full) p.push_back(a.data());
    p.push_back(nullptr);
    t.pid = ::forkpty(&t.master, nullptr, nullptr, nullptr);
    if (t.pid == 0) {
        ::execv(p[0], p.data());
        ::_exit(127);
    }
    ::fcntl(t.master, F_SETFL, ::fcntl(t.master, F_GETFL) | O_NONBLOCK);
    return t;
}

/// `rpm -i PACKAGE` into `root` in the background: a real second rpm transaction. Returns
/// its pid once it holds rpm's lock (it takes it after reading the package).
inline pid_t rpm_holding_the_lock(const stdfs::path& root, const stdfs::path& package, const stdfs::path& log) {
    const pid_t pid = leo::subprocess::spawn_detached({"/usr/bin/rpm", "--root", root.string(), "--dbpath",
                                                       "/var/lib/rpm", "-i", "--nosignature", "--nodeps",
                                                       package.string()},
                                                      {}, log);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < end) {
        if (contains(leo::test::slurp("/proc/locks"), " POSIX ") &&
            contains(leo::test::slurp("/proc/locks"), " " + std::to_string(pid) + " "))
            return pid;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pid;
}

inline leo::subprocess::Result as_nobody(const std::vector<std::string>& argv) {
    std::vector<std::string> full{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", LEO_INSTALLER_BIN};
    full.insert(full.end(), argv.begin(), argv.end());
    return leo::subprocess::run(full);
}


} // namespace leo::test::runs
