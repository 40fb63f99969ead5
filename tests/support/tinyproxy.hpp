#pragma once
/// A real HTTP proxy on loopback for tests: Debian's tinyproxy (LEO_PACKAGES in scripts/lib.sh).

#include <filesystem>
#include <string>
#include <sys/types.h>

namespace leo::test {

/// tinyproxy in the foreground (-d) on 127.0.0.1 (a free_port()), with a configuration it
/// writes to DIR/tinyproxy.conf (Allow 127.0.0.1, MaxClients 20, Timeout 30 s) and its log
/// in DIR/tinyproxy.log; with `basic_auth` ("USER PASSWORD") it requires those credentials
/// (tinyproxy 1.11 answers none with 407, wrong ones with 401). The constructor waits up to
/// 5 s for "Accepting connections" in the log; throws std::runtime_error when tinyproxy
/// cannot be started. Stopped (SIGTERM, reaped) at destruction.
class Tinyproxy {
public:
    Tinyproxy(const std::filesystem::path& dir, const std::string& basic_auth = {});
    ~Tinyproxy();
    Tinyproxy(const Tinyproxy&) = delete;
    Tinyproxy& operator=(const Tinyproxy&) = delete;

    /// "http://127.0.0.1:PORT".
    [[nodiscard]] std::string url() const;
    /// Its log so far (one "GET URL" line a request it forwarded, at LogLevel Info).
    [[nodiscard]] std::string log() const;

private:
    std::filesystem::path m_log;
    int m_port = 0;
    pid_t m_pid = -1;
};

} // namespace leo::test
