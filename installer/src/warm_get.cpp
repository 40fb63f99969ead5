// leo-installer-get.so: the launcher's GET of repomd.xml (warm_get.hpp), the only part of the
// launcher that needs libcurl. Built as a module with repo/src/curl_options.cpp, so that the
// GET is made with the options every fetch of the full program sets.
#include "warm_get.hpp"

#include "leo/repo/curl_options.hpp"

#include <array>

#include <curl/curl.h>

namespace {

using leo::installer::warm::GetRequest;

struct Sink {
    const GetRequest* request;
    std::uint64_t received = 0;
};

/// libcurl's write callback: nothing may be thrown through libcurl (a C library); a body over
/// the limit, or one the caller refuses, ends the transfer by returning 0.
std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    auto& sink = *static_cast<Sink*>(user);
    const std::size_t n = size * count;
    if (sink.received + n > sink.request->limit) return 0;
    sink.received += n;
    return sink.request->sink(sink.request->context, data, n) ? n : 0;
}

} // namespace

extern "C" __attribute__((visibility("default"))) bool leo_installer_get_init_v2() {
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

extern "C" __attribute__((visibility("default"))) bool leo_installer_get_v2(const GetRequest* r) {
    try {
        if (r == nullptr || r->size != sizeof(GetRequest) || r->url == nullptr || r->protocols == nullptr ||
            r->redirect_protocols == nullptr || r->proxy == nullptr || r->sslcacert == nullptr ||
            r->sslclientcert == nullptr || r->sslclientkey == nullptr || r->sink == nullptr)
            return false;
        leo::repo::RepoConfig repo;
        repo.timeout = r->timeout;
        repo.minrate = r->minrate;
        repo.proxy = r->proxy;
        repo.no_proxy = r->no_proxy != 0;
        repo.sslcacert = r->sslcacert;
        repo.sslclientcert = r->sslclientcert;
        repo.sslclientkey = r->sslclientkey;
        leo::repo::TransferProtocols protocols;
        protocols.allowed = true;
        protocols.protocols = r->protocols;
        protocols.redirect_protocols = r->redirect_protocols;
        protocols.protocol_mask = r->protocol_mask;
        protocols.redirect_mask = r->redirect_mask;
        const std::string url = r->url;
        CURL* c = curl_easy_init();
        if (c == nullptr) return false;
        std::array<char, CURL_ERROR_SIZE> error{};
        Sink sink{r};
        (void)leo::repo::set_transfer_options(c, repo, url, protocols, error.data());
        // A Content-Length over the limit is refused before the body (a server dripping a
        // huge announced body must not hold the answer for as long as it likes).
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(r->limit));
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
        const CURLcode rc = curl_easy_perform(c);
        curl_easy_cleanup(c);
        return rc == CURLE_OK;
    } catch (...) {  // nothing is thrown across the module's C entry points (std::bad_alloc)
        return false;
    }
}
