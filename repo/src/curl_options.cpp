// The libcurl options of a GET with a repository's transfer settings (curl_options.hpp).
#include "leo/repo/curl_options.hpp"

#include <algorithm>
#include <cstdint>

namespace leo::repo {

StallRule set_transfer_options(CURL* c, const RepoConfig& repo, const std::string& url,
                               const TransferProtocols& protocols, char* error) {
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    // yum's timeout and minrate: a transfer that moves less than max(minrate, 1) bytes/s for
    // `timeout` seconds (a stalled mirror), or connects in no less, fails.
    StallRule rule;
    rule.timeout = repo.timeout > 0 ? repo.timeout : 30L;
    rule.min_rate = static_cast<long>(std::clamp<std::uint64_t>(repo.minrate, 1, 1U << 30));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, rule.timeout);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, rule.min_rate);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, rule.timeout);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "leo-installer/" LEO_VERSION);
    // Bigger reads and writes than the 16 KiB default (the curl tool uses 100 KiB): fewer
    // system calls and callbacks on big packages and primary files.
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);
    // Only the protocols this URL may use; redirects to http(s) only, and from https to https only.
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, protocols.redirect_protocols.empty() ? 0L : 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols.protocols.c_str());
    if (!protocols.redirect_protocols.empty()) {
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protocols.redirect_protocols.c_str());
    }
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, protocols.protocol_mask);
    if (!protocols.redirect_protocols.empty()) {
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, protocols.redirect_mask);
    }
#endif
    if (repo.no_proxy) {
        curl_easy_setopt(c, CURLOPT_PROXY, "");  // "" disables every proxy, the environment's too
    } else if (!repo.proxy.empty()) {
        curl_easy_setopt(c, CURLOPT_PROXY, repo.proxy.c_str());
    }
    if (!repo.proxy_username.empty()) {
        curl_easy_setopt(c, CURLOPT_PROXYUSERNAME, repo.proxy_username.c_str());
    }
    if (!repo.proxy_password.empty()) {
        curl_easy_setopt(c, CURLOPT_PROXYPASSWORD, repo.proxy_password.c_str());
    }
    if (!repo.username.empty()) {
        curl_easy_setopt(c, CURLOPT_USERNAME, repo.username.c_str());
    }
    if (!repo.password.empty()) {
        curl_easy_setopt(c, CURLOPT_PASSWORD, repo.password.c_str());
    }
    if (!repo.sslverify) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!repo.sslcacert.empty()) {
        curl_easy_setopt(c, CURLOPT_CAINFO, repo.sslcacert.c_str());
    }
    if (!repo.sslclientcert.empty()) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, repo.sslclientcert.c_str());
        curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (!repo.sslclientkey.empty()) {
        curl_easy_setopt(c, CURLOPT_SSLKEY, repo.sslclientkey.c_str());
        curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    }
    return rule;
}

} // namespace leo::repo
