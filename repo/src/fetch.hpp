#pragma once
/// Fetching for repo/src (not installed): bounded libcurl transfers, `.part` files in the cache.

#include "detail.hpp"

#include "leo/common/error.hpp"
#include "leo/common/system_root.hpp"
#include "leo/repo/config.hpp"
#include "leo/repo/metadata.hpp"
#include "leo/repo/mirrors.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <utility>

namespace leo::repo::detail {

/// A transfer failure worth another attempt on the same URL (RetryPolicy): a stall or
/// timeout, a connection reset, an empty or cut reply, HTTP 408, 429 or 5xx.
class TransientError : public RepoError {
public:
    using RepoError::RepoError;
};

/// The transfer settings of `repo` that name files (sslclientcert, sslclientkey,
/// sslcacert) must be readable files: otherwise leo::RepoError naming the option, the path
/// and where it is set. Run once before the first transfer of a repository.
void check_transfer_settings(const RepoConfig& repo);

/// `attempt()` under the repository's RetryPolicy (retry_policy(repo.retries,
/// repo.timeout)): a TransientError is retried after retry_backoff(); the last one is
/// thrown with "(N attempts)" added when there was more than one. Other errors pass through.
template <class F>
auto with_retries(const RepoConfig& repo, F&& attempt) -> decltype(attempt()) {
    const RetryPolicy policy = retry_policy(repo.retries, repo.timeout);
    const auto start = std::chrono::steady_clock::now();
    for (unsigned n = 1;; ++n) {
        try {
            return attempt();
        } catch (const TransientError& e) {
            const auto next = std::chrono::steady_clock::now() + retry_backoff(n + 1);
            if (n >= policy.attempts || next - start >= policy.window) {
                if (n == 1) {
                    throw;
                }
                throw TransientError(std::string(e.what()) + " (" + std::to_string(n) + " attempts)");
            }
            std::this_thread::sleep_until(next);
        }
    }
}

/// The declared size when there is one (refused when it is above the cap), else the cap.
Limit limit_of(std::uint64_t declared, const std::string& declarer, std::uint64_t cap, const std::string& cap_name,
               const std::string& context);

/// One GET with the repository's settings, bounded by `limit`. The body goes to `sink`
/// (bytes, size); `sink` returns false to abort (a write error).
struct Transfer {
    Transfer(const RepoConfig& r, std::string u, Limit l) : repo(r), url(std::move(u)), limit(std::move(l)) {}

    const RepoConfig& repo;
    std::string url;
    Limit limit;
    bool allow_file = false;   ///< file:// only for URLs the administrator wrote
    bool to_file = false;      ///< for the message: a partial file is removed
    /// fetch_to_cache fsyncs the file (a package is checksummed before any reuse instead).
    bool durable = true;
    std::function<bool(const char*, std::size_t)> sink;
    /// fetch_to_cache: the digest ("sha256", ...) of the file, computed as it is written
    /// (WriteBehind, on a second thread), given back in Downloaded::digest_hex; "" for none.
    std::string digest_algorithm;
    Progress progress;
    std::uint64_t expected_total = 0;

    // Set by libcurl's callbacks during run() (fetch.cpp).
    std::exception_ptr callback_error;
    std::uint64_t received = 0;
    std::uint64_t announced = 0;    ///< a Content-Length above the limit
    bool over_limit = false;
    std::string location;           ///< the last Location header (a redirect)
    std::uint64_t last_reported = ~std::uint64_t{0};

    /// Runs the transfer; throws leo::RepoError naming the repository and the URL (its
    /// password redacted). `what` names the thing fetched ("repodata/repomd.xml", "package
    /// X"); `hint` says what to do when the server cannot be reached, `http_hint` when it
    /// answers an error.
    void run(const std::string& what, const std::string& hint, const std::string& http_hint);
};

/// One bounded transfer of `url` into memory (Transfer::run for the arguments).
std::string fetch_to_string(const RepoConfig& repo, const std::string& url, const Limit& limit, bool allow_file,
                            const std::string& what, const std::string& hint, const std::string& http_hint);

/// Remove `inside` (never following a link), ignoring errors: cleaning up after a failure.
void discard(const leo::fs::SystemRoot& root, const std::filesystem::path& inside) noexcept;

/// A file downloaded into the cache under its temporary name, still open.
struct Downloaded {
    leo::fs::UniqueFd fd;
    std::filesystem::path part;  ///< inside the root
    std::string digest_hex;      ///< of the whole file, when Transfer::digest_algorithm was set
};

/// Download into `dir/name.part` (inside `root`): whatever is at that name (a planted file
/// or link) is removed, never opened, and the file is created anew (O_EXCL|O_NOFOLLOW,
/// 0644). The body is written and hashed behind the transfer (WriteBehind). The partial
/// file is removed when the transfer fails; a failed write throws leo::SystemError
/// "cannot write PATH".
Downloaded fetch_to_cache(Transfer& transfer, const leo::fs::SystemRoot& root, const std::filesystem::path& dir,
                          const std::string& name, const std::string& what, const std::string& hint,
                          const std::string& http_hint);

} // namespace leo::repo::detail
