#pragma once
/// A small HTTP/1.1 file server on 127.0.0.1 for tests, with fault injection.
///
/// Serves GET and HEAD for the files under a docroot from a background thread, one
/// request per connection (`Connection: close`), on an ephemeral loopback port. Faults
/// are chosen per path suffix ("repomd.xml", "-primary.xml.gz", ...): answer with a
/// status code, send only the first N bytes of the body (with the full Content-Length)
/// and close, corrupt one byte of the body, redirect, or stall (accept the request and send
/// nothing, or only the headers, until the client gives up). With TlsOptions it speaks
/// HTTPS (OpenSSL), and can require a client certificate signed by a given CA. The thread
/// stops at destruction.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace leo::test {

/// HTTPS: the server's certificate chain and key (PEM files); with `client_ca`, a client
/// certificate signed by that CA is required (the handshake fails without one).
struct TlsOptions {
    std::filesystem::path cert;
    std::filesystem::path key;
    std::filesystem::path client_ca;
};

class HttpServer {
public:
    /// Listens on 127.0.0.1 (an ephemeral port) and serves `docroot`. Throws std::runtime_error.
    explicit HttpServer(std::filesystem::path docroot);
    /// The same over TLS ("https://127.0.0.1:PORT"). Throws std::runtime_error.
    HttpServer(std::filesystem::path docroot, const TlsOptions& tls);
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
    /// Requests whose path ends with `path_suffix` get nothing at all (`after_headers`:
    /// the status line and headers with the full Content-Length, then nothing): the
    /// connection stays open until the client closes it or the server stops.
    void stall(std::string path_suffix, bool after_headers = false);
    /// Requests whose path ends with `path_suffix` get the status line and headers with
    /// `Content-Length: bytes`, then nothing (as stall(..., true)): a server announcing more
    /// than it will send.
    void announce(std::string path_suffix, std::uint64_t bytes);
    /// Remove every fault.
    void clear_faults();

    /// Requests so far whose path ends with `path_suffix` ("" counts all).
    [[nodiscard]] std::size_t request_count(std::string path_suffix = {}) const;
    struct Connection;  ///< one accepted connection (http_server.cpp)

    /// TLS handshakes that failed so far (no or a wrong client certificate, an untrusted server).
    [[nodiscard]] std::size_t failed_handshakes() const { return m_failed_handshakes; }

private:
    struct Fault {
        std::optional<int> status;
        std::optional<std::size_t> truncate_at;
        std::optional<std::size_t> corrupt_at;
        std::string location;
        int stall = 0;  ///< 1: nothing, 2: headers then nothing
        std::optional<std::uint64_t> announced;  ///< Content-Length sent instead of the body's size
    };

    void start();
    void run();
    void serve(Connection& client);
    void wait_for_close(int client) const;
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
    void* m_tls = nullptr;  ///< SSL_CTX*, when serving HTTPS
    std::atomic<std::size_t> m_failed_handshakes{0};
};

} // namespace leo::test
