#pragma once
/// One small HTTP GET for health probes (a service on this machine's loopback): no proxy,
/// no redirects, bounded in time and size. Repository downloads use metadata.hpp instead.

#include <chrono>
#include <cstddef>
#include <string>

namespace leo::repo {

struct HttpResponse {
    long status = 0;     ///< the HTTP status code
    std::string body;    ///< at most the limit given to http_get
};

/// GET `url` (http or https) within `timeout` (connect and transfer together), reading at
/// most `limit` bytes of body. Proxies from the environment are ignored (the probe is of
/// this machine). Throws leo::RepoError "URL: REASON" when no answer comes (refused,
/// timed out, a body above `limit`); any HTTP status is an answer, returned.
[[nodiscard]] HttpResponse http_get(const std::string& url, std::chrono::milliseconds timeout,
                                    std::size_t limit = 64 * 1024);

} // namespace leo::repo
