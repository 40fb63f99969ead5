#pragma once
/// The launcher's one GET of repomd.xml, in a module of its own: leo-installer-get.so, beside
/// the full program (../libexec/leo-installer/). libcurl and the 30-odd libraries it needs
/// (GnuTLS through librtmp, Kerberos, LDAP, ...) cost more to map and relocate than the rest of
/// the warm answer (some 13 ms of page faults on a 2-vCPU VM, bench/README.md), so the launcher
/// loads them only when a kept answer needs a GET (past metadata_expire, or --refresh), on a
/// thread of its own while it checks the answer's inputs (warm_answer.cpp: GetLoader).
///
/// The launcher and the module are built together from these declarations (the request is
/// passed as a C++ object: both sides must be of one build); the symbol's name carries a
/// version, so a module of another layout is not found and the full program answers instead.
/// Whoever can write the module can write the full program beside it: it gets no more trust.

#include "leo/repo/config.hpp"
#include "leo/repo/url.hpp"

#include <cstdint>
#include <string>

namespace leo::installer::warm {

/// The module's file name, in the full program's directory.
inline constexpr const char* k_get_module = "leo-installer-get.so";
/// Its two entry points (extern "C"): GetInit, then GetFunction for each GET.
inline constexpr const char* k_get_init_symbol = "leo_installer_get_init_v1";
inline constexpr const char* k_get_symbol = "leo_installer_get_v1";

/// One GET with a repository's transfer settings (repo::set_transfer_options).
struct GetRequest {
    const repo::RepoConfig* repo = nullptr;               ///< timeout, minrate, proxy, TLS files
    const std::string* url = nullptr;                     ///< what to GET
    const repo::TransferProtocols* protocols = nullptr;   ///< repo::transfer_protocols(*url, ...), allowed
    std::uint64_t limit = 0;                              ///< bytes; a longer body fails the GET
    std::string body;                                     ///< out: the body, when the GET succeeded
};

/// curl_global_init: true when it succeeded. Called once, before any GetFunction.
using GetInit = bool (*)();
/// The GET: true when the whole body (at most `limit` bytes) came with no error (HTTP errors
/// included); false otherwise, `body` then meaning nothing. Never throws.
using GetFunction = bool (*)(GetRequest*);

} // namespace leo::installer::warm
