#pragma once
// Blocks of a download handed from libcurl's thread to a second thread: the bounded queue,
// and a digest computed on that second thread while the transfer goes on.

#include "leo/common/crypto.hpp"

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

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
/// second thread while the transfer goes on, so that on two cores the hash hides behind
/// the transfer instead of adding to it (bench/repo.sh, "200 MB package").
///
/// The bytes go through a ring of `k_chunks` fixed chunks of `k_chunk` bytes (8 MiB in
/// all, allocated on first use and reused): update() copies into the chunk being filled
/// and hands it over only when it is full, so a download costs one copy, one hand-over per
/// MiB and no allocation per block (a std::string per libcurl block, as before, cost a
/// malloc and fresh pages each time: the bench measured 0.84 of curl's throughput with it).
/// update() waits while every chunk is queued. hex() hands over the last partial chunk,
/// waits for the hash of everything given, and rethrows what the hashing thread threw.
class BackgroundDigest {
public:
    static constexpr std::size_t k_chunk = std::size_t{1} << 20;
    static constexpr std::size_t k_chunks = 8;

    explicit BackgroundDigest(const std::string& algorithm)
        : m_digest(algorithm), m_thread([this] { run(); }) {}
    ~BackgroundDigest() { finish(); }
    BackgroundDigest(const BackgroundDigest&) = delete;
    BackgroundDigest& operator=(const BackgroundDigest&) = delete;

    void update(const char* data, std::size_t n) {
        while (n > 0) {
            if (m_filling == nullptr && !take_free()) {
                return;  // the hashing thread failed: hex() says so
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
    }
    [[nodiscard]] std::string hex() {
        finish();
        if (m_error) {
            std::rethrow_exception(m_error);
        }
        return m_digest.hex();
    }

private:
    using Chunk = std::unique_ptr<char[]>;
    struct Ready {
        Chunk* chunk;
        std::size_t size;
    };

    /// A chunk to fill into m_filling: a free one, a new one while fewer than k_chunks
    /// exist, or the first one the hashing thread gives back. False once it failed.
    bool take_free() {
        std::unique_lock lock(m_mutex);
        if (m_free.empty() && m_allocated < k_chunks) {
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
    void hand_over() {
        const std::lock_guard lock(m_mutex);
        m_ready.push_back({m_filling, m_filled});
        m_filling = nullptr;
        m_filled = 0;
        m_wake.notify_one();
    }
    void run() noexcept {
        for (;;) {
            Ready next{};
            {
                std::unique_lock lock(m_mutex);
                m_wake.wait(lock, [&] { return !m_ready.empty() || m_closed; });
                if (m_ready.empty()) {
                    return;  // closed and everything hashed
                }
                next = m_ready.front();
                m_ready.pop_front();
            }
            try {
                m_digest.update(next.chunk->get(), next.size);
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
    void finish() noexcept {
        if (!m_thread.joinable()) {
            return;
        }
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

    crypto::Digest m_digest;
    std::mutex m_mutex;
    std::condition_variable m_wake;   // the hashing thread: a chunk is ready, or the end
    std::condition_variable m_space;  // update(): a chunk is free again, or hashing failed
    std::array<Chunk, k_chunks> m_chunks;
    std::size_t m_allocated = 0;
    std::vector<Chunk*> m_free;
    std::deque<Ready> m_ready;
    Chunk* m_filling = nullptr;  // owned by update()'s thread while set
    std::size_t m_filled = 0;
    bool m_closed = false;
    bool m_failed = false;
    std::exception_ptr m_error;
    std::thread m_thread;  // last: starts once the members it uses exist
};

} // namespace leo::repo::detail
