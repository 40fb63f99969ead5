#include "tinyproxy.hpp"

#include "test_support.hpp"

#include "leo/common/fs.hpp"

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <vector>

extern char** environ;

namespace leo::test {

Tinyproxy::Tinyproxy(const std::filesystem::path& dir, const std::string& basic_auth) : m_log(dir / "tinyproxy.log") {
    m_port = free_port();
    const auto conf = dir / "tinyproxy.conf";
    leo::fs::write_file_atomic(conf, "Port " + std::to_string(m_port) + "\nListen 127.0.0.1\nTimeout 30\n" +
                                         "LogFile \"" + m_log.string() + "\"\nLogLevel Info\nMaxClients 20\n" +
                                         "Allow 127.0.0.1\n" +
                                         (basic_auth.empty() ? "" : "BasicAuth " + basic_auth + "\n"));
    std::vector<std::string> args{"tinyproxy", "-d", "-c", conf.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawnp(&m_pid, "tinyproxy", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start tinyproxy (apt-get install tinyproxy)");
    for (int i = 0; i < 100 && slurp(m_log).find("Accepting connections") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

Tinyproxy::~Tinyproxy() {
    ::kill(m_pid, SIGTERM);
    int status = 0;
    ::waitpid(m_pid, &status, 0);
}

std::string Tinyproxy::url() const { return "http://127.0.0.1:" + std::to_string(m_port); }

std::string Tinyproxy::log() const { return slurp(m_log); }

} // namespace leo::test
