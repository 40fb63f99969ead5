#pragma once
/// The libcurl options of one GET with a repository's transfer settings: what every fetch of
/// the repo library sets (fetch.cpp) and what check-update's warm answer sets for its one GET
/// of repomd.xml (installer/warm_answer.hpp), so that both ask the server the same way.

#include "leo/repo/config.hpp"
#include "leo/repo/url.hpp"

#include <curl/curl.h>

#include <string>

namespace leo::repo {

/// The stall rule set (for messages): a transfer moving less than `min_rate` bytes/s for
/// `timeout` seconds fails, and so does a connection not made in `timeout` seconds.
struct StallRule {
    long timeout = 30;  ///< seconds
    long min_rate = 1;  ///< bytes per second
};

/// Set on `c` the URL, `error` (CURL_ERROR_SIZE bytes) as its error buffer, no signals,
/// failure on HTTP errors, at most 5 redirects, yum's timeout and minrate (RepoConfig::timeout,
/// ::minrate: timeout 30 s when unset, minrate at least 1 byte/s), the user agent, a 256 KiB
/// buffer, `protocols` (transfer_protocols(url, ...): only these protocols, redirects only as
/// it allows), the proxy (proxy=_none_ disables the environment's too), proxy and HTTP
/// credentials, sslverify, sslcacert, and the client certificate and key (PEM). Callbacks
/// are the caller's. Never throws.
StallRule set_transfer_options(CURL* c, const RepoConfig& repo, const std::string& url,
                               const TransferProtocols& protocols, char* error);

} // namespace leo::repo
