#pragma once
/// A small HTTP/1.1 file server on 127.0.0.1 for tests, with fault injection.
///
/// Serves GET and HEAD for the files under a docroot from a background thread, one
/// request per connection (`Connection: close`), on an ephemeral loopback port. Faults
/// are chosen per path suffix ("repomd.xml", "-primary.xml.gz", ...): answer with a
/// status code, send only the first N bytes of the body (with the full Content-Length)
/// and close, corrupt one byte of the body, or redirect. The thread stops at destruction.

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace leo::test {

class HttpServer {
public:
    /// Listens on 127.0.0.1 (an ephemeral port) and serves `docroot`. Throws std::runtime_error.
    explicit HttpServer(std::filesystem::path docroot);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    /// "http://127.0.0.1:PORT" (no trailing slash).
    [[nodiscard]] std::string url() const;
    [[nodiscard]] int port() const { return m_port; }

    /// Requests whose path ends with `path_suffix` get `status` with a short text body.
    void fail(std::string path_suffix, int status);
    /// Requests whose path ends with `path_suffix` get the full Content-Length header but
    /// only the first `bytes` bytes of the body, then the connection is closed.
    void truncate(std::string path_suffix, std::size_t bytes);
    /// Requests whose path ends with `path_suffix` get the body with the byte at `offset`
    /// (clamped to the last byte) inverted.
    void corrupt(std::string path_suffix, std::size_t offset = 0);
    /// Requests whose path ends with `path_suffix` get "302 Found" to `location`.
    void redirect(std::string path_suffix, std::string location);
    /// Remove every fault.
    void clear_faults();

    /// Requests so far whose path ends with `path_suffix` ("" counts all).
    [[nodiscard]] std::size_t request_count(std::string path_suffix = {}) const;

private:
    struct Fault {
        std::optional<int> status;
        std::optional<std::size_t> truncate_at;
        std::optional<std::size_t> corrupt_at;
        std::string location;
    };

    void run();
    void serve(int client);
    [[nodiscard]] std::optional<Fault> fault_for(const std::string& path) const;

    std::filesystem::path m_docroot;
    int m_listen_fd = -1;
    int m_wake_pipe[2] = {-1, -1};
    int m_port = 0;
    std::atomic<bool> m_stop{false};
    mutable std::mutex m_mutex;
    std::map<std::string, Fault> m_faults;   ///< by path suffix
    std::vector<std::string> m_requests;     ///< paths requested, in order
    std::thread m_thread;
};

} // namespace leo::test
