// A small HTTP/1.1 test server on loopback (plain POSIX sockets, one thread).
#include "http_server.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace leo::test {
namespace {

constexpr std::size_t k_max_request = 64 * 1024;

[[noreturn]] void fail_errno(const std::string& what) {
    throw std::runtime_error("HttpServer: " + what + ": " + std::strerror(errno));
}

} // namespace

/// One accepted connection, plain or TLS.
struct HttpServer::Connection {
    int fd = -1;
    SSL* ssl = nullptr;

    ssize_t recv(char* buffer, std::size_t size) const {
        if (ssl != nullptr) {
            const int n = SSL_read(ssl, buffer, static_cast<int>(size));
            return n > 0 ? n : (SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN ? 0 : -1);
        }
        return ::recv(fd, buffer, size, 0);
    }
    ssize_t send(const char* data, std::size_t size) const {
        if (ssl != nullptr) {
            const int n = SSL_write(ssl, data, static_cast<int>(size));
            return n > 0 ? n : -1;
        }
        return ::send(fd, data, size, MSG_NOSIGNAL);
    }
};

namespace {

void send_all(const HttpServer::Connection& conn, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = conn.send(data, size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;  // the client went away: nothing more to do
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

std::string reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 302: return "Found";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

std::string percent_decode(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

HttpServer::HttpServer(std::filesystem::path docroot) : m_docroot(std::move(docroot)) { start(); }

HttpServer::HttpServer(std::filesystem::path docroot, const TlsOptions& tls) : m_docroot(std::move(docroot)) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) {
        throw std::runtime_error("HttpServer: SSL_CTX_new failed");
    }
    m_tls = ctx;
    const auto fail_tls = [&](const std::string& what) {
        SSL_CTX_free(ctx);
        m_tls = nullptr;
        char buffer[256];
        ERR_error_string_n(ERR_get_error(), buffer, sizeof buffer);
        throw std::runtime_error("HttpServer: " + what + ": " + buffer);
    };
    if (SSL_CTX_use_certificate_chain_file(ctx, tls.cert.c_str()) != 1) {
        fail_tls("cannot use the certificate " + tls.cert.string());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, tls.key.c_str(), SSL_FILETYPE_PEM) != 1) {
        fail_tls("cannot use the key " + tls.key.string());
    }
    if (!tls.client_ca.empty()) {
        if (SSL_CTX_load_verify_locations(ctx, tls.client_ca.c_str(), nullptr) != 1) {
            fail_tls("cannot load the client CA " + tls.client_ca.string());
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    try {
        start();
    } catch (...) {
        SSL_CTX_free(ctx);
        m_tls = nullptr;
        throw;
    }
}

void HttpServer::start() {
    m_listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m_listen_fd < 0) {
        fail_errno("socket");
    }
    const int one = 1;
    ::setsockopt(m_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        const int saved = errno;
        ::close(m_listen_fd);
        errno = saved;
        fail_errno("bind 127.0.0.1");
    }
    socklen_t length = sizeof address;
    if (::getsockname(m_listen_fd, reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
        ::listen(m_listen_fd, 16) != 0 || ::pipe2(m_wake_pipe, O_CLOEXEC) != 0) {
        const int saved = errno;
        ::close(m_listen_fd);
        errno = saved;
        fail_errno("listen");
    }
    m_port = ntohs(address.sin_port);
    m_thread = std::thread([this] { run(); });
}

HttpServer::~HttpServer() {
    m_stop = true;
    const char byte = 'x';
    [[maybe_unused]] const ssize_t n = ::write(m_wake_pipe[1], &byte, 1);
    if (m_thread.joinable()) {
        m_thread.join();
    }
    ::close(m_listen_fd);
    ::close(m_wake_pipe[0]);
    ::close(m_wake_pipe[1]);
    if (m_tls != nullptr) {
        SSL_CTX_free(static_cast<SSL_CTX*>(m_tls));
    }
}

std::string HttpServer::url() const {
    return (m_tls != nullptr ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(m_port);
}

void HttpServer::stall(std::string path_suffix, bool after_headers) {
    std::lock_guard lock(m_mutex);
    Fault fault;
    fault.stall = after_headers ? 2 : 1;
    m_faults[std::move(path_suffix)] = fault;
}

void HttpServer::announce(std::string path_suffix, std::uint64_t bytes) {
    std::lock_guard lock(m_mutex);
    Fault fault;
    fault.stall = 2;
    fault.announced = bytes;
    m_faults[std::move(path_suffix)] = fault;
}

void HttpServer::wait_for_close(int client) const {
    char buffer[512];
    while (!m_stop) {
        pollfd fds[2] = {{client, POLLIN, 0}, {m_wake_pipe[0], POLLIN, 0}};
        if (::poll(fds, 2, 200) < 0 && errno != EINTR) {
            return;
        }
        if ((fds[1].revents & POLLIN) != 0) {
            return;
        }
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
            ::recv(client, buffer, sizeof buffer, MSG_DONTWAIT) <= 0) {
            return;  // the client gave up
        }
    }
}

void HttpServer::fail(std::string path_suffix, int status) {
    std::lock_guard lock(m_mutex);
    m_faults[std::move(path_suffix)] = Fault{status, std::nullopt, std::nullopt, {}, 0, std::nullopt};
}

void HttpServer::truncate(std::string path_suffix, std::size_t bytes) {
    std::lock_guard lock(m_mutex);
    m_faults[std::move(path_suffix)] = Fault{std::nullopt, bytes, std::nullopt, {}, 0, std::nullopt};
}

void HttpServer::corrupt(std::string path_suffix, std::size_t offset) {
    std::lock_guard lock(m_mutex);
    m_faults[std::move(path_suffix)] = Fault{std::nullopt, std::nullopt, offset, {}, 0, std::nullopt};
}

void HttpServer::redirect(std::string path_suffix, std::string location) {
    std::lock_guard lock(m_mutex);
    m_faults[std::move(path_suffix)] = Fault{302, std::nullopt, std::nullopt, std::move(location), 0, std::nullopt};
}

void HttpServer::clear_faults() {
    std::lock_guard lock(m_mutex);
    m_faults.clear();
}

std::size_t HttpServer::request_count(std::string path_suffix) const {
    std::lock_guard lock(m_mutex);
    std::size_t count = 0;
    for (const auto& path : m_requests) {
        if (ends_with(path, path_suffix)) {
            ++count;
        }
    }
    return count;
}

std::optional<HttpServer::Fault> HttpServer::fault_for(const std::string& path) const {
    std::lock_guard lock(m_mutex);
    for (const auto& [suffix, fault] : m_faults) {
        if (ends_with(path, suffix)) {
            return fault;
        }
    }
    return std::nullopt;
}

void HttpServer::run() {
    while (!m_stop) {
        pollfd fds[2] = {{m_listen_fd, POLLIN, 0}, {m_wake_pipe[0], POLLIN, 0}};
        const int ready = ::poll(fds, 2, 1000);
        if (ready < 0 && errno != EINTR) {
            return;
        }
        if (m_stop || (fds[1].revents & POLLIN) != 0) {
            return;
        }
        if ((fds[0].revents & POLLIN) == 0) {
            continue;
        }
        const int client = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) {
            continue;
        }
        timeval timeout{5, 0};  // a client that sends nothing cannot hold the server
        ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        ::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        Connection conn{client, nullptr};
        if (m_tls != nullptr) {
            conn.ssl = SSL_new(static_cast<SSL_CTX*>(m_tls));
            SSL_set_fd(conn.ssl, client);
            if (SSL_accept(conn.ssl) != 1) {
                ++m_failed_handshakes;
                ERR_clear_error();
                SSL_free(conn.ssl);
                ::shutdown(client, SHUT_RDWR);
                ::close(client);
                continue;
            }
        }
        try {
            serve(conn);
        } catch (...) {
            // a test server: a bad request or an unreadable file only ends this connection
        }
        if (conn.ssl != nullptr) {
            SSL_shutdown(conn.ssl);
            SSL_free(conn.ssl);
        }
        ::shutdown(client, SHUT_RDWR);
        ::close(client);
    }
}

void HttpServer::serve(Connection& client) {
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = client.recv(buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0 || request.size() > k_max_request) {
            return;
        }
        request.append(buffer, static_cast<std::size_t>(n));
    }
    const auto respond = [&](int status, const std::string& body, const std::string& extra = {}) {
        const std::string head = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) +
                                 "\r\nContent-Length: " + std::to_string(body.size()) +
                                 "\r\nContent-Type: text/plain\r\nConnection: close\r\n" + extra + "\r\n";
        send_all(client, head.data(), head.size());
        send_all(client, body.data(), body.size());
    };

    std::istringstream line(request.substr(0, request.find("\r\n")));
    std::string method;
    std::string target;
    line >> method >> target;
    if (target.empty() || target[0] != '/') {
        respond(400, "bad request\n");
        return;
    }
    const std::string path = percent_decode(target.substr(0, target.find_first_of("?#")));
    {
        std::lock_guard lock(m_mutex);
        m_requests.push_back(path);
    }
    if (method != "GET" && method != "HEAD") {
        respond(405, "only GET and HEAD\n", "Allow: GET, HEAD\r\n");
        return;
    }
    const bool head_only = method == "HEAD";
    const auto fault = fault_for(path);
    if (fault && fault->status) {
        const std::string body = std::to_string(*fault->status) + " " + reason(*fault->status) + "\n";
        respond(*fault->status, head_only ? std::string() : body,
                fault->location.empty() ? std::string() : "Location: " + fault->location + "\r\n");
        return;
    }
    if (path.find("/../") != std::string::npos || ends_with(path, "/..")) {
        respond(403, "forbidden\n");
        return;
    }
    const auto file = m_docroot / std::filesystem::path(path).relative_path();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) {
        respond(404, "not found\n");
        return;
    }
    std::ifstream in(file, std::ios::binary);
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
        respond(500, "cannot read\n");
        return;
    }
    if (fault && fault->corrupt_at && !body.empty()) {
        const std::size_t at = std::min(*fault->corrupt_at, body.size() - 1);
        body[at] = static_cast<char>(~static_cast<unsigned char>(body[at]));
    }
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " +
                             std::to_string(fault && fault->announced ? *fault->announced : body.size()) +
                             "\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n";
    if (fault && fault->stall != 0) {
        if (fault->stall == 2) {
            send_all(client, head.data(), head.size());
        }
        wait_for_close(client.fd);
        return;
    }
    send_all(client, head.data(), head.size());
    if (head_only) {
        return;
    }
    const std::size_t send_size = fault && fault->truncate_at ? std::min(*fault->truncate_at, body.size()) : body.size();
    send_all(client, body.data(), send_size);
}

} // namespace leo::test
