// The rules of repository URLs: redaction, allowed protocols, safe locations and names.
#include "leo/repo/url.hpp"
#include "leo/repo/config.hpp"

#include "leo/common/redact.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>

namespace leo::repo {
namespace {

bool is_control(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}

} // namespace

std::string redact_url(std::string_view text) { return leo::redact_secrets(text); }

std::string url_scheme(std::string_view url) {
    const auto colon = url.find(':');
    if (colon == std::string_view::npos || colon == 0)
        return {};
    std::string scheme(url.substr(0, colon));
    for (const char c : scheme) {
        if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '+' && c != '-' && c != '.')
            return {};
    }
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return scheme;
}

TransferProtocols transfer_protocols(std::string_view url, bool allow_file) {
    TransferProtocols p;
    const std::string scheme = url_scheme(url);
    if (scheme == "https") {
        p.allowed = true;
        p.protocols = "https";
        p.redirect_protocols = "https";
        p.protocol_mask = CURLPROTO_HTTPS;
        p.redirect_mask = CURLPROTO_HTTPS;
    } else if (scheme == "http") {
        p.allowed = true;
        p.protocols = "http,https";
        p.redirect_protocols = "http,https";
        p.protocol_mask = CURLPROTO_HTTP | CURLPROTO_HTTPS;
        p.redirect_mask = CURLPROTO_HTTP | CURLPROTO_HTTPS;
    } else if (scheme == "file") {
        if (allow_file) {
            p.allowed = true;
            p.protocols = "file";
            p.protocol_mask = CURLPROTO_FILE;
        } else {
            p.why = "a file:// URL is only accepted where the administrator wrote it (baseurl, gpgkey), "
                    "not from a remote repository's metadata";
        }
    } else {
        p.why = scheme.empty() ? "not a URL (expected http://, https:// or file://)"
                               : "the scheme \"" + scheme + "\" is not allowed (use http://, https:// or file://)";
    }
    return p;
}

std::string unsafe_href(std::string_view href) {
    if (href.empty())
        return "it is empty";
    if (std::any_of(href.begin(), href.end(), is_control))
        return "it holds control characters";
    if (href.find('\\') != std::string_view::npos)
        return "it holds a backslash";
    if (!url_scheme(href).empty() || href.find("://") != std::string_view::npos)
        return "it is a URL, not a path inside the repository";
    if (href.front() == '/')
        return "it is an absolute path, not a path inside the repository";
    // ".." segments, also when percent-encoded (%2e%2e, %2f)
    std::string decoded;
    for (std::size_t i = 0; i < href.size(); ++i) {
        if (href[i] == '%' && i + 2 < href.size()) {
            const std::string code{static_cast<char>(std::tolower(static_cast<unsigned char>(href[i + 1]))),
                                   static_cast<char>(std::tolower(static_cast<unsigned char>(href[i + 2])))};
            if (code == "2e") {
                decoded += '.';
                i += 2;
                continue;
            }
            if (code == "2f") {
                decoded += '/';
                i += 2;
                continue;
            }
        }
        decoded += href[i];
    }
    if (decoded.front() == '/')
        return "it is an absolute path, not a path inside the repository";
    std::size_t start = 0;
    while (start <= decoded.size()) {
        auto end = decoded.find('/', start);
        if (end == std::string::npos)
            end = decoded.size();
        if (decoded.substr(start, end - start) == "..")
            return "it climbs out of the repository (\"..\")";
        start = end + 1;
    }
    return {};
}

std::string unsafe_file_name(std::string_view name) {
    if (name.empty())
        return "it is empty";
    if (name == "." || name == "..")
        return "it is \"" + std::string(name) + "\"";
    if (name.find('/') != std::string_view::npos)
        return "it holds a \"/\"";
    if (std::any_of(name.begin(), name.end(), is_control))
        return "it holds control characters";
    if (name.size() > 200)
        return "it is longer than 200 bytes";
    return {};
}

std::string join_url(const std::string& base, const std::string& path) {
    if (base.empty()) {
        return path;
    }
    if (base.back() == '/') {
        return path.starts_with('/') ? base + path.substr(1) : base + path;
    }
    return path.starts_with('/') ? base + path : base + "/" + path;
}

bool is_local(const RepoConfig& repo) {
    return !repo.baseurls.empty() && repo.mirrorlist.empty() && repo.metalink.empty() &&
           std::all_of(repo.baseurls.begin(), repo.baseurls.end(),
                       [](const std::string& u) { return url_scheme(u) == "file"; });
}

} // namespace leo::repo
