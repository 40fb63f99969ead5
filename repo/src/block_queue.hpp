#pragma once
// Blocks of a download handed from libcurl's thread to a second thread: the bounded queue,
// and a digest computed on that second thread while the transfer goes on.

#include "leo/common/crypto.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

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

/// A digest (crypto::Digest's algorithms: "sha256", ...) of a download, computed on a
/// second thread from copies of the blocks as they arrive, so that on two cores the hash
/// hides behind the transfer instead of adding to it (bench/repo.sh, "200 MB package").
/// At most 8 MiB wait in the queue. hex() waits for the queued blocks; it rethrows what
/// the hashing thread threw.
class BackgroundDigest {
public:
    explicit BackgroundDigest(const std::string& algorithm)
        : m_digest(algorithm), m_thread([this] { run(); }) {}
    ~BackgroundDigest() { finish(); }
    BackgroundDigest(const BackgroundDigest&) = delete;
    BackgroundDigest& operator=(const BackgroundDigest&) = delete;

    void update(const char* data, std::size_t n) { m_queue.push(data, n); }
    [[nodiscard]] std::string hex() {
        finish();
        if (m_error) {
            std::rethrow_exception(m_error);
        }
        return m_digest.hex();
    }

private:
    void run() noexcept {
        bool failed = false;
        try {
            while (auto block = m_queue.pop(failed)) {
                m_digest.update(block->data(), block->size());
            }
        } catch (...) {
            m_error = std::current_exception();
            m_queue.consumer_done();
        }
    }
    void finish() noexcept {
        if (m_thread.joinable()) {
            m_queue.close(false);
            m_thread.join();
        }
    }

    crypto::Digest m_digest;
    BlockQueue m_queue{std::size_t{8} << 20};
    std::exception_ptr m_error;
    std::thread m_thread;  // last: starts once the members it uses exist
};

} // namespace leo::repo::detail
