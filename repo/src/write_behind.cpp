// WriteBehind: a download's chunks written and hashed on a second thread.
#include "write_behind.hpp"

#include "leo/common/error.hpp"

#include <cerrno>
#include <cstring>
#include <system_error>
#include <unistd.h>

namespace leo::repo::detail {
namespace {

struct WriteFailed {
    int error;
};

} // namespace

WriteBehind::WriteBehind(int fd, const std::string& algorithm) : m_fd(fd) {
    if (!algorithm.empty()) {
        m_digest.emplace(algorithm);
    }
    try {
        m_thread = std::thread([this] { run(); });
    } catch (const std::system_error& e) {
        throw leo::system_error("cannot start the thread that writes the download", e.code().value());
    }
}

WriteBehind::~WriteBehind() { (void)finish(); }

bool WriteBehind::write(const char* data, std::size_t n) {
    while (n > 0) {
        if (m_filling == nullptr && !take_free()) {
            return false;
        }
        const std::size_t room = k_chunk - m_filled;
        const std::size_t take = n < room ? n : room;
        std::memcpy(m_filling->get() + m_filled, data, take);
        m_filled += take;
        data += take;
        n -= take;
        if (m_filled == k_chunk) {
            hand_over();
        }
    }
    return true;
}

/// A chunk to fill into m_filling: a free one, a new one while fewer than k_chunks exist,
/// or the first one the thread gives back. False once writing failed.
bool WriteBehind::take_free() {
    std::unique_lock lock(m_mutex);
    if (m_free.empty() && m_allocated < k_chunks && !m_failed) {
        m_chunks[m_allocated] = Chunk(new char[k_chunk]);  // uninitialised: filled before use
        m_free.push_back(&m_chunks[m_allocated++]);
    }
    m_space.wait(lock, [&] { return !m_free.empty() || m_failed; });
    if (m_failed) {
        return false;
    }
    m_filling = m_free.back();
    m_free.pop_back();
    m_filled = 0;
    return true;
}

void WriteBehind::hand_over() {
    const std::lock_guard lock(m_mutex);
    m_ready.push_back({m_filling, m_filled});
    m_filling = nullptr;
    m_filled = 0;
    m_wake.notify_one();
}

void WriteBehind::write_out(const char* data, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(m_fd, data, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw WriteFailed{errno};
        }
        data += w;
        n -= static_cast<std::size_t>(w);
    }
}

void WriteBehind::run() noexcept {
    for (;;) {
        Ready next{};
        {
            std::unique_lock lock(m_mutex);
            m_wake.wait(lock, [&] { return !m_ready.empty() || m_closed; });
            if (m_ready.empty()) {
                return;  // closed, and everything written
            }
            next = m_ready.front();
            m_ready.pop_front();
        }
        try {
            write_out(next.chunk->get(), next.size);
            if (m_digest) {
                m_digest->update(next.chunk->get(), next.size);  // still in cache from the write
            }
        } catch (const WriteFailed& failed) {
            const std::lock_guard lock(m_mutex);
            m_errno = failed.error;
            m_failed = true;
            m_space.notify_all();
            return;
        } catch (...) {
            const std::lock_guard lock(m_mutex);
            m_error = std::current_exception();
            m_failed = true;
            m_space.notify_all();
            return;
        }
        const std::lock_guard lock(m_mutex);
        m_free.push_back(next.chunk);
        m_space.notify_one();
    }
}

int WriteBehind::finish() noexcept {
    if (m_thread.joinable()) {
        if (m_filling != nullptr && m_filled > 0) {
            hand_over();
        }
        {
            const std::lock_guard lock(m_mutex);
            m_closed = true;
            m_wake.notify_all();
        }
        m_thread.join();
    }
    return m_errno;
}

std::string WriteBehind::hex() {
    if (m_error) {
        std::rethrow_exception(m_error);
    }
    return m_digest ? m_digest->hex() : std::string();
}

} // namespace leo::repo::detail
