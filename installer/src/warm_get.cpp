// leo-installer-get.so: the launcher's GET of repomd.xml (warm_get.hpp), the only part of the
// launcher that needs libcurl. Built as a module with repo/src/curl_options.cpp, so that the
// GET is made with the options every fetch of the full program sets.
#include "warm_get.hpp"

#include "leo/repo/curl_options.hpp"

#include <array>

#include <curl/curl.h>

namespace {

struct Sink {
    std::string* body;
    std::uint64_t limit;
    bool over = false;
};

/// libcurl's write callback: nothing may be thrown through libcurl (a C library), so a body
/// over the limit or out of memory ends the transfer by returning 0.
std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    auto& sink = *static_cast<Sink*>(user);
    const std::size_t n = size * count;
    if (sink.body->size() + n > sink.limit) {
        sink.over = true;
        return 0;
    }
    try {
        sink.body->append(data, n);
    } catch (...) {
        sink.over = true;
        return 0;
    }
    return n;
}

} // namespace

extern "C" __attribute__((visibility("default"))) bool leo_installer_get_init_v1() {
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

extern "C" __attribute__((visibility("default"))) bool leo_installer_get_v1(leo::installer::warm::GetRequest* r) {
    try {
        if (r == nullptr || r->repo == nullptr || r->url == nullptr || r->protocols == nullptr ||
            !r->protocols->allowed)
            return false;
        CURL* c = curl_easy_init();
        if (c == nullptr) return false;
        std::array<char, CURL_ERROR_SIZE> error{};
        Sink sink{&r->body, r->limit};
        (void)leo::repo::set_transfer_options(c, *r->repo, *r->url, *r->protocols, error.data());
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
        const CURLcode rc = curl_easy_perform(c);
        curl_easy_cleanup(c);
        return rc == CURLE_OK && !sink.over;
    } catch (...) {  // nothing is thrown across the module's C entry points
        return false;
    }
}
