// Fetching: bounded libcurl transfers (limits, protocols, redirects), the cache directories and `.part` files.
#include "fetch.hpp"
#include "write_behind.hpp"

#include "leo/common/error.hpp"
#include "leo/repo/curl_options.hpp"
#include "leo/repo/url.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

namespace leo::repo::detail {
namespace {

struct CurlDeleter {
    void operator()(CURL* curl) const noexcept { curl_easy_cleanup(curl); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;

void curl_global() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// ---- libcurl callbacks (`user` is the Transfer) --------------------------------------------

std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) {
    auto& self = *static_cast<Transfer*>(user);
    const std::size_t n = size * count;
    if (self.received + n > self.limit.bytes) {
        self.over_limit = true;
        self.received += n;
        return 0;  // libcurl stops the transfer
    }
    self.received += n;
    try {
        return self.sink(data, n) ? n : 0;
    } catch (...) {
        self.callback_error = std::current_exception();
        return 0;
    }
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto& self = *static_cast<Transfer*>(user);
    const std::size_t n = size * count;
    const std::string_view line(data, n);
    constexpr std::string_view k_location = "location:";
    if (line.size() > k_location.size() &&
        std::equal(k_location.begin(), k_location.end(), line.begin(),
                   [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); })) {
        self.location = trim(std::string(line.substr(k_location.size())));
    }
    return n;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
    auto& self = *static_cast<Transfer*>(user);
    if (total > 0 && static_cast<std::uint64_t>(total) > self.limit.bytes) {
        self.over_limit = true;   // the announced Content-Length is already too big
        self.announced = static_cast<std::uint64_t>(total);
        return 1;
    }
    const auto done = static_cast<std::uint64_t>(now);
    if (!self.progress || done == self.last_reported) {
        return 0;
    }
    self.last_reported = done;
    try {
        self.progress(done, total > 0 ? static_cast<std::uint64_t>(total) : self.expected_total);
    } catch (...) {
        self.callback_error = std::current_exception();
        return 1;
    }
    return 0;
}

#if LIBCURL_VERSION_NUM < 0x072000
int on_progress_old(void* user, double total, double now, double, double) {
    return on_progress(user, static_cast<curl_off_t>(total), static_cast<curl_off_t>(now), 0, 0);
}
#endif

} // namespace

void check_transfer_settings(const RepoConfig& repo) {
    const std::string where = repo.source.empty() ? "the repository configuration" : repo.source;
    for (const auto& [option, path] : {std::pair<const char*, const std::string*>{"sslclientcert", &repo.sslclientcert},
                                       {"sslclientkey", &repo.sslclientkey},
                                       {"sslcacert", &repo.sslcacert}}) {
        if (path->empty()) {
            continue;
        }
        // host paths the administrator wrote (as yum reads them), only checked here: libcurl reads them
        struct stat st {};
        if (::stat(path->c_str(), &st) != 0 || ::access(path->c_str(), R_OK) != 0) {
            throw RepoError(fmt::format("repository {}: {} {} cannot be read ({}); fix {} in {}", repo.id, option,
                                        *path, std::strerror(errno), option, where));
        }
        if (!S_ISREG(st.st_mode)) {
            throw RepoError(fmt::format("repository {}: {} {} is not a file; fix {} in {}", repo.id, option, *path,
                                        option, where));
        }
    }
}

Limit limit_of(std::uint64_t declared, const std::string& declarer, std::uint64_t cap, const std::string& cap_name,
               const std::string& context) {
    if (declared == 0) {
        return {cap, fmt::format("of the cap for {}", cap_name)};
    }
    if (declared > cap) {
        throw RepoError(context + fmt::format("{} declares {} bytes, more than the cap of {} bytes for {}; refused",
                                              declarer, declared, cap, cap_name));
    }
    return {declared, fmt::format("that {} declares", declarer)};
}

void Transfer::run(const std::string& what, const std::string& hint, const std::string& http_hint) {
    const std::string shown = redact_url(url);
    const TransferProtocols protocols = transfer_protocols(url, allow_file);
    if (!protocols.allowed) {
        throw RepoError(fmt::format("repository {}: {}: refusing {}: {}", repo.id, what, shown, protocols.why));
    }
    curl_global();
    CurlPtr curl(curl_easy_init());
    if (!curl) {
        throw RepoError(fmt::format("repository {}: cannot fetch {}: curl_easy_init failed", repo.id, shown));
    }
    std::array<char, CURL_ERROR_SIZE> error{};
    CURL* c = curl.get();
    const StallRule stall = set_transfer_options(c, repo, url, protocols, error.data());
    const long timeout = stall.timeout;
    const long min_rate = stall.min_rate;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, this);
    // The progress callback also stops a transfer whose Content-Length is over the limit.
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
#if LIBCURL_VERSION_NUM >= 0x072000
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, this);
#else
    curl_easy_setopt(c, CURLOPT_PROGRESSFUNCTION, &on_progress_old);
    curl_easy_setopt(c, CURLOPT_PROGRESSDATA, this);
#endif
    const CURLcode rc = curl_easy_perform(c);
    if (callback_error) {
        std::rethrow_exception(callback_error);
    }
    const std::string removed = to_file ? "; the partial file was removed" : "";
    if (over_limit && announced != 0) {
        throw RepoError(fmt::format("repository {}: {} from {}: the server announces {} bytes, more than the {} "
                                    "bytes {}; not downloaded{}",
                                    repo.id, what, shown, announced, limit.bytes, limit.source, removed));
    }
    if (over_limit) {
        throw RepoError(fmt::format("repository {}: {} from {}: the server sent more than the {} bytes {} (at "
                                    "least {} bytes); the transfer was stopped{}",
                                    repo.id, what, shown, limit.bytes, limit.source, received, removed));
    }
    if (rc == CURLE_OK) {
        return;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    const auto suffix = [](const std::string& text) { return text.empty() ? "" : fmt::format(" ({})", text); };
    if (rc == CURLE_UNSUPPORTED_PROTOCOL && !location.empty()) {
        throw RepoError(fmt::format("repository {}: {}: refusing the redirect from {} to {}: a repository may "
                                    "redirect only to http:// or https://, and an https:// one only to https://",
                                    repo.id, what, shown, redact_url(location)));
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR && (status == 404 || status == 410)) {
        throw NotFoundError(
            fmt::format("repository {}: {}: HTTP {} for {}{}", repo.id, what, status, shown, suffix(http_hint)));
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR && status >= 400) {
        const std::string where = repo.source.empty() ? "the repository configuration" : repo.source;
        std::string message;
        if (status == 407) {
            message = fmt::format("repository {}: {}: HTTP 407 for {}: the proxy requires other credentials (check "
                                  "proxy, proxy_username and proxy_password in {})",
                                  repo.id, what, shown, where);
        } else if (status == 401) {
            // a proxy may answer 401 too (tinyproxy does, for wrong credentials)
            message = fmt::format("repository {}: {}: HTTP 401 for {}: credentials refused (check username and "
                                  "password{} in {})",
                                  repo.id, what, shown,
                                  repo.proxy.empty() ? "" : ", and proxy_username and proxy_password for the proxy",
                                  where);
        } else {
            message =
                fmt::format("repository {}: {}: HTTP {} for {}{}", repo.id, what, status, shown, suffix(http_hint));
        }
        if (status >= 500 || status == 408 || status == 429) {
            throw TransientError(message);
        }
        throw RepoError(message);
    }
    std::string detail = redact_url(error[0] != '\0' ? trim(error.data()) : curl_easy_strerror(rc));
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        detail += fmt::format(" (stalled: less than {} bytes/s for {} s; see timeout and minrate in {})", min_rate,
                              timeout, repo.source.empty() ? "the repository configuration" : repo.source);
    }
    std::string message =
        fmt::format("repository {}: {}: cannot fetch {}: {}{}", repo.id, what, shown, detail, suffix(hint));
    switch (rc) {
    case CURLE_FILE_COULDNT_READ_FILE:
        throw NotFoundError(message);
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        throw TransientError(message);
    default:
        throw RepoError(message);
    }
}

std::string fetch_to_string(const RepoConfig& repo, const std::string& url, const Limit& limit, bool allow_file,
                            const std::string& what, const std::string& hint, const std::string& http_hint) {
    std::string body;
    Transfer transfer{repo, url, limit};
    transfer.allow_file = allow_file;
    transfer.sink = [&](const char* data, std::size_t n) {
        body.append(data, n);
        return true;
    };
    transfer.run(what, hint, http_hint);
    return body;
}

void discard(const leo::fs::SystemRoot& root, const std::filesystem::path& inside) noexcept {
    try {
        (void)root.remove(inside);
    } catch (...) {
    }
}

Downloaded fetch_to_cache(Transfer& transfer, const leo::fs::SystemRoot& root, const std::filesystem::path& dir,
                          const std::string& name, const std::string& what, const std::string& hint,
                          const std::string& http_hint) {
    Downloaded out;
    out.part = dir / (name + ".part");
    (void)root.remove(out.part);
    out.fd = root.create_exclusive(out.part, 0644);
    const int fd = out.fd.get();
    std::optional<WriteBehind> writer;
    int write_errno = 0;
    transfer.to_file = true;
    transfer.sink = [&](const char* data, std::size_t n) { return writer->write(data, n); };
    try {
        writer.emplace(fd, transfer.digest_algorithm);  // in the try: a thread that cannot start removes the .part too
        transfer.run(what, hint, http_hint);
        write_errno = writer->finish();
        if (write_errno == 0 && transfer.durable && ::fsync(fd) != 0) {
            write_errno = errno;
        }
        if (write_errno != 0) {
            throw system_error(fmt::format("cannot write {}", root.host(out.part).string()), write_errno);
        }
        out.digest_hex = writer->hex();
    } catch (...) {
        if (write_errno == 0 && writer) {
            write_errno = writer->finish();  // a failed write is what stopped the transfer
        }
        discard(root, out.part);
        if (write_errno != 0) {
            throw system_error(fmt::format("cannot write {}", root.host(out.part).string()), write_errno);
        }
        throw;
    }
    return out;
}

} // namespace leo::repo::detail

namespace leo::repo {

void ensure_cache_dir(const leo::fs::SystemRoot& root, const std::filesystem::path& dir) {
    const leo::fs::Owner owner{::geteuid(), ::getegid()};
    const std::filesystem::path cache(leo::fs::SystemRoot::k_cache);
    std::filesystem::path current;
    bool ours = false;
    for (const auto& part : dir) {
        if (part.empty()) {
            continue;
        }
        current /= part;
        ours = ours || current == cache;
        if (ours) {
            root.make_dirs(current, 0755, owner, leo::fs::ExistingDir::enforce);
        }
    }
    if (!ours) {
        root.make_dirs(dir, 0755, owner, leo::fs::ExistingDir::enforce);
    }
}

} // namespace leo::repo
