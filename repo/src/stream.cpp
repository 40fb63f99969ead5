// Primary downloaded, hashed, decompressed and scanned at once: libcurl on one thread, libarchive and the scan on another.
#include "block_queue.hpp"
#include "fetch.hpp"
#include "scan.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"

#include <archive.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

namespace leo::repo::detail {
namespace {

constexpr std::size_t k_queue_limit = std::size_t{8} << 20;  // compressed bytes waiting for the scan


/// libarchive's client: reads blocks from the queue.
struct QueueClient {
    BlockQueue* queue = nullptr;
    std::string current;

    static la_ssize_t read(struct archive* a, void* user, const void** buffer) {
        auto& self = *static_cast<QueueClient*>(user);
        bool failed = false;
        auto block = self.queue->pop(failed);
        if (!block) {
            if (failed) {
                archive_set_error(a, EIO, "the transfer failed");
                return -1;
            }
            *buffer = nullptr;
            return 0;
        }
        self.current = std::move(*block);
        *buffer = self.current.data();
        return static_cast<la_ssize_t>(self.current.size());
    }
    static int close(struct archive*, void*) { return ARCHIVE_OK; }
};

} // namespace

PrimaryScan stream_primary(Transfer& transfer, const std::string& checksum_type, const std::string& checksum,
                           const Limit& open_limit, const std::string& base_url, const PackageFilter& filter,
                           const std::string& what, const std::string& context, const std::string& hint) {
    const std::string algorithm = digest_name(checksum_type);
    if (algorithm.empty()) {
        throw RepoError(context + fmt::format("unsupported checksum type \"{}\"", checksum_type));
    }
    crypto::Digest digest(algorithm);
    BlockQueue queue(k_queue_limit);
    PrimaryScan result;
    std::exception_ptr scan_error;
    std::thread scanner([&] {
        try {
            QueueClient client{&queue, {}};
            ArchivePtr archive = primary_reader(context);
            if (archive_read_open(archive.get(), &client, nullptr, &QueueClient::read, &QueueClient::close) !=
                ARCHIVE_OK) {
                throw RepoError(context + "is truncated or corrupt: " + archive_error_of(archive.get()));
            }
            result = scan_primary_archive(archive.get(), open_limit, base_url, filter, context);
        } catch (...) {
            scan_error = std::current_exception();
        }
        queue.consumer_done();
    });
    transfer.sink = [&](const char* data, std::size_t n) {
        digest.update(data, n);
        queue.push(data, n);
        return true;
    };
    try {
        transfer.run(what, "try again", "the repository may be changing under us; try again");
    } catch (...) {
        queue.close(true);
        scanner.join();
        throw;
    }
    queue.close(false);
    scanner.join();
    const std::string actual = digest.hex();
    std::string want = checksum;
    std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return std::tolower(c); });
    if (actual != want) {
        throw RepoError(context + fmt::format("checksum mismatch: expected {}:{}, got {}:{}{}", checksum_type, checksum,
                                              checksum_type, actual, hint.empty() ? "" : " (" + hint + ")"));
    }
    if (scan_error) {
        std::rethrow_exception(scan_error);
    }
    return result;
}

} // namespace leo::repo::detail
