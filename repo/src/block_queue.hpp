#pragma once
// Blocks of a download handed from libcurl's thread to a second thread: the bounded queue
// (primary, decompressed and scanned on the second thread: stream.cpp).

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

namespace leo::repo::detail {

/// Blocks from the transfer to a consumer thread. The producer waits while more than
/// `limit` bytes are queued; once the consumer is done (or failed) blocks are dropped, so
/// that the download still ends and its checksum can be told.
class BlockQueue {
public:
    explicit BlockQueue(std::size_t limit) : m_limit(limit) {}

    void push(const char* data, std::size_t n) {
        std::unique_lock lock(m_mutex);
        m_space.wait(lock, [&] { return m_bytes < m_limit || m_consumer_done; });
        if (m_consumer_done) {
            return;
        }
        m_blocks.emplace_back(data, n);
        m_bytes += n;
        m_ready.notify_one();
    }
    /// The next block; nullopt at the end (`failed` tells a failed transfer from the end).
    std::optional<std::string> pop(bool& failed) {
        std::unique_lock lock(m_mutex);
        m_ready.wait(lock, [&] { return !m_blocks.empty() || m_closed; });
        failed = m_failed;
        if (m_blocks.empty()) {
            return std::nullopt;
        }
        std::string block = std::move(m_blocks.front());
        m_blocks.pop_front();
        m_bytes -= block.size();
        m_space.notify_one();
        return block;
    }
    void close(bool failed) {
        const std::lock_guard lock(m_mutex);
        m_closed = true;
        m_failed = failed;
        m_ready.notify_all();
    }
    void consumer_done() {
        const std::lock_guard lock(m_mutex);
        m_consumer_done = true;
        m_blocks.clear();
        m_bytes = 0;
        m_space.notify_all();
    }

private:
    std::size_t m_limit;
    std::mutex m_mutex;
    std::condition_variable m_ready;
    std::condition_variable m_space;
    std::deque<std::string> m_blocks;
    std::size_t m_bytes = 0;
    bool m_closed = false;
    bool m_failed = false;
    bool m_consumer_done = false;
};

} // namespace leo::repo::detail
