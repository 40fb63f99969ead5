#pragma once
// A download written to its file and hashed on a second thread, behind the transfer.

#include "leo/common/crypto.hpp"

#include <array>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace leo::repo::detail {

/// Write-behind for a download: the transfer thread (libcurl's write callback) only copies
/// each block into a ring of k_chunks chunks of k_chunk bytes (8 MiB, allocated on first
/// use and reused); a second thread writes each full chunk to the file with one write()
/// and hashes it from the same memory. The transfer thread then does less than curl -o's
/// work (a user-space copy instead of a write() per 16 KiB block, libcurl's
/// CURL_MAX_WRITE_SIZE), and the file's page-cache writes and the hash run on the other
/// core: bench/repo.sh, "200 MB package", measured 1.2-1.6x curl's throughput where hashing
/// behind a write() per block (with a copy for the hash, or a pread of the page cache)
/// measured 0.83-0.97x.
///
/// `fd` is the caller's new file, open for writing at offset 0; it must stay open until
/// finish() returns, and nothing else may write it meanwhile. Memory: at most 8 MiB.
class WriteBehind {
public:
    static constexpr std::size_t k_chunk = std::size_t{1} << 20;
    static constexpr std::size_t k_chunks = 8;

    /// `algorithm`: crypto::Digest's names ("sha256", ...), or "" to write without hashing.
    /// Throws leo::Error for an algorithm OpenSSL does not know, leo::SystemError when the
    /// thread cannot start (a task limit: EAGAIN).
    WriteBehind(int fd, const std::string& algorithm);
    /// finish(), its result dropped: the caller is already failing.
    ~WriteBehind();
    WriteBehind(const WriteBehind&) = delete;
    WriteBehind& operator=(const WriteBehind&) = delete;

    /// Queue `n` bytes for the file (copied: `data` may be reused on return). Waits while
    /// every chunk is queued. Returns false once a write failed: stop the transfer, and
    /// finish() tells why.
    [[nodiscard]] bool write(const char* data, std::size_t n);
    /// Waits until everything queued is written and hashed, and stops the thread. Returns
    /// 0, or the errno of the first write() that failed (nothing after it was written).
    /// Idempotent.
    int finish() noexcept;
    /// Lowercase hex digest of everything written ("" without an algorithm); call once,
    /// after finish() returned 0. Rethrows what hashing threw.
    [[nodiscard]] std::string hex();

private:
    using Chunk = std::unique_ptr<char[]>;
    struct Ready {
        Chunk* chunk;
        std::size_t size;
    };

    bool take_free();
    void hand_over();
    void run() noexcept;
    void write_out(const char* data, std::size_t n);

    int m_fd;
    std::optional<crypto::Digest> m_digest;
    std::mutex m_mutex;
    std::condition_variable m_wake;   // the thread: a chunk is ready, or the end
    std::condition_variable m_space;  // write(): a chunk is free again, or writing failed
    std::array<Chunk, k_chunks> m_chunks;
    std::size_t m_allocated = 0;
    std::vector<Chunk*> m_free;
    std::deque<Ready> m_ready;
    Chunk* m_filling = nullptr;  // owned by the caller's thread while set
    std::size_t m_filled = 0;
    bool m_closed = false;
    bool m_failed = false;
    int m_errno = 0;
    std::exception_ptr m_error;  // what hashing threw
    std::thread m_thread;        // last: starts once the members it uses exist
};

} // namespace leo::repo::detail
