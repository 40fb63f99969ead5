#pragma once
/// The launcher's one GET of repomd.xml, in a module of its own: leo-installer-get.so, beside
/// the full program (../libexec/leo-installer/). libcurl and the 30-odd libraries it needs
/// (GnuTLS through librtmp, Kerberos, LDAP, ...) cost more to map and relocate than the rest of
/// the warm answer (some 13 ms of page faults on a 2-vCPU VM, bench/README.md), so the launcher
/// loads them only when a kept answer needs a GET (past metadata_expire, or --refresh), on a
/// thread of its own while it checks the answer's inputs (warm_answer.cpp: GetLoader).
///
/// The interface is C: plain fields and a callback, no C++ object crosses it, and the request
/// begins with its own size. rpm writes a package's files one after the other, so while
/// leo-installer itself is upgraded a launcher of one build may meet the module of another:
/// the symbol's name carries the interface's version (a module of another version is not
/// found) and the module refuses a request whose size is not the one it was built with. In
/// both cases the full program answers instead. Whoever can write the module can write the
/// full program beside it: it gets no more trust.

#include <cstddef>
#include <cstdint>

namespace leo::installer::warm {

/// The module's file name, in the full program's directory.
inline constexpr const char* k_get_module = "leo-installer-get.so";
/// Its two entry points (extern "C"): GetInit, then GetFunction for each GET.
inline constexpr const char* k_get_init_symbol = "leo_installer_get_init_v2";
inline constexpr const char* k_get_symbol = "leo_installer_get_v2";

extern "C" {

/// One GET with a repository's transfer settings (as repo::set_transfer_options sets them).
/// Strings are NUL-terminated, "" when unset; nothing here is a secret (a repository with
/// credentials keeps no answer, warm_answer.hpp).
struct GetRequest {
    std::size_t size;                       ///< sizeof(GetRequest) of the caller's build
    const char* url;                        ///< what to GET
    const char* protocols;                  ///< repo::TransferProtocols::protocols ("http,https")
    const char* redirect_protocols;         ///< ::redirect_protocols ("" when redirects are not followed)
    long protocol_mask;                     ///< ::protocol_mask (libcurl older than 7.85)
    long redirect_mask;                     ///< ::redirect_mask
    long timeout;                           ///< RepoConfig::timeout, seconds
    std::uint64_t minrate;                  ///< RepoConfig::minrate, bytes per second
    const char* proxy;                      ///< RepoConfig::proxy
    int no_proxy;                           ///< RepoConfig::no_proxy (proxy=_none_)
    const char* sslcacert;                  ///< RepoConfig::sslcacert
    const char* sslclientcert;              ///< RepoConfig::sslclientcert
    const char* sslclientkey;               ///< RepoConfig::sslclientkey
    std::uint64_t limit;                    ///< bytes: a longer body (or a longer Content-Length) fails the GET
    /// Receives the body, block by block: returns false to stop (the GET then fails).
    bool (*sink)(void* context, const char* data, std::size_t size);
    void* context;                          ///< given to `sink`
};

/// curl_global_init: true when it succeeded. Called once, before any GetFunction.
using GetInit = bool (*)();
/// The GET: true when the whole body (at most `limit` bytes) came with no error (HTTP errors
/// included); false otherwise, or when `request->size` is not this build's. Never throws.
using GetFunction = bool (*)(const GetRequest* request);

} // extern "C"

} // namespace leo::installer::warm
