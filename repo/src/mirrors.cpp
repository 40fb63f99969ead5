// Mirrors: yum's mirrorlist and metalink formats (parsed; metalink with libxml2's reader),
// the check of a repomd.xml against a metalink, and the retry rules of one URL.
#include "leo/repo/mirrors.hpp"

#include "detail.hpp"
#include "xml.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/repo/url.hpp"

#include <fmt/format.h>
#include <libxml/xmlreader.h>

#include <algorithm>
#include <cctype>

namespace leo::repo {

using detail::attribute;
using detail::digest_name;
using detail::local_name;
using detail::lower;
using detail::take_xml_string;
using detail::to_u64;
using detail::trim;
using detail::XmlReader;

namespace {

/// yum's $var / ${var} substitution of one line (names are case-sensitive, as yum's).
std::string substitute(std::string text, const std::vector<std::pair<std::string, std::string>>& vars) {
    for (std::size_t pos = 0; (pos = text.find('$', pos)) != std::string::npos;) {
        bool done = false;
        for (const auto& [name, value] : vars) {
            for (const std::string& form : {"${" + name + "}", "$" + name}) {
                if (text.compare(pos, form.size(), form) == 0) {
                    text.replace(pos, form.size(), value);
                    pos += value.size();
                    done = true;
                    break;
                }
            }
            if (done) {
                break;
            }
        }
        if (!done) {
            ++pos;
        }
    }
    return text;
}

/// Why `url` may not be a mirror ("" when it may); `skip_quietly` for the protocols real
/// mirror lists carry beside http(s) (ftp, rsync), which are simply not ours.
std::string unusable_mirror(const std::string& url, FileUrls file_urls, bool& skip_quietly) {
    const std::string scheme = url_scheme(url);
    skip_quietly = scheme == "ftp" || scheme == "rsync";
    if (scheme == "http" || scheme == "https") {
        return {};
    }
    if (scheme == "file") {
        return file_urls == FileUrls::allowed
                   ? std::string()
                   : "a file:// mirror from a remote list is refused: a server may not make root read local files";
    }
    return scheme.empty() ? "not a URL"
                          : fmt::format("the scheme \"{}\" is not used (http:// or https:// only)", scheme);
}

/// The strongest hash of `version` we can verify (librepo checks the strongest one), or null.
const std::pair<std::string, std::string>* strongest(const MetalinkRepomd& version) {
    for (const char* type : {"sha512", "sha384", "sha256", "sha224", "sha1"}) {
        for (const auto& hash : version.hashes) {
            if (hash.first == type) {
                return &hash;
            }
        }
    }
    return nullptr;
}

} // namespace

MirrorList parse_mirrorlist(std::string_view text, FileUrls file_urls,
                            const std::vector<std::pair<std::string, std::string>>& vars) {
    MirrorList out;
    auto with_arch = vars;
    for (const auto& [name, value] : vars) {
        if (name == "basearch") {
            with_arch.emplace_back("ARCH", value); // yum: $ARCH is $basearch in a mirrorlist
        }
    }
    std::size_t start = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        std::string line = trim(std::string(text.substr(start, end - start)));
        start = end + 1;
        if (line.empty() || line.front() == '#') {
            continue;
        }
        line = substitute(line, with_arch);
        bool quiet = false;
        if (auto why = unusable_mirror(line, file_urls, quiet); !why.empty()) {
            if (!quiet) {
                out.refused.push_back(fmt::format("{}: {}", redact_url(line), why));
            }
            continue;
        }
        if (std::find(out.urls.begin(), out.urls.end(), line) == out.urls.end()) {
            out.urls.push_back(std::move(line));
        }
    }
    return out;
}

Metalink parse_metalink(std::string_view xml, FileUrls file_urls, const std::string& context) {
    if (trim(std::string(xml)).empty()) {
        throw RepoError(context + "the metalink is empty");
    }
    const XmlReader reader(xml, context);
    Metalink metalink;
    struct Url {
        std::string url;
        long preference = 0;
    };
    std::vector<Url> urls;
    std::vector<std::string> stack; // local names of the open elements
    bool in_repomd = false;         // inside <file name="repomd.xml">
    bool found = false;
    int rc = 0;
    while ((rc = xmlTextReaderRead(reader.get())) == 1) {
        if (xmlTextReaderNodeType(reader.get()) != XML_READER_TYPE_ELEMENT) {
            continue;
        }
        const auto depth = static_cast<std::size_t>(xmlTextReaderDepth(reader.get()));
        const std::string name(local_name(reader.get()));
        stack.resize(depth);
        stack.push_back(name);
        if (depth == 0 && name != "metalink") {
            throw RepoError(context + fmt::format("the root element is <{}>, expected <metalink>", name));
        }
        const std::string parent = depth > 0 ? stack[depth - 1] : std::string();
        if (name == "file" && parent == "files") {
            in_repomd = attribute(reader.get(), "name") == "repomd.xml" && !found;
            if (in_repomd) {
                found = true;
                metalink.repomd.emplace_back();
            }
            continue;
        }
        const bool inside = in_repomd && depth > 2 && stack[2] == "file";
        if (!inside) {
            continue;
        }
        if (name == "alternate") {
            metalink.repomd.emplace_back();
        } else if (name == "size" && (parent == "file" || parent == "alternate")) {
            bool ok = false;
            const auto size = to_u64(take_xml_string(xmlTextReaderReadString(reader.get())), ok);
            (parent == "file" ? metalink.repomd.front() : metalink.repomd.back()).size = ok ? size : 0;
        } else if (name == "hash" && parent == "verification" && depth >= 2) {
            const std::string owner = stack[depth - 2];
            const std::string type = lower(attribute(reader.get(), "type"));
            const std::string value = lower(trim(take_xml_string(xmlTextReaderReadString(reader.get()))));
            if (!digest_name(type).empty() && type != "sha" && !value.empty()) {
                (owner == "file" ? metalink.repomd.front() : metalink.repomd.back()).hashes.emplace_back(type, value);
            }
        } else if (name == "url" && parent == "resources") {
            bool ok = false;
            const auto preference = to_u64(attribute(reader.get(), "preference"), ok);
            urls.push_back({trim(take_xml_string(xmlTextReaderReadString(reader.get()))),
                            ok ? static_cast<long>(std::min<std::uint64_t>(preference, 1000000)) : 0});
        }
    }
    if (const auto why = reader.failure(rc); !why.empty()) {
        throw RepoError(context + why);
    }
    if (stack.empty()) {
        throw RepoError(context + "the metalink is empty");
    }
    if (!found) {
        throw RepoError(context + "the metalink has no <file name=\"repomd.xml\">");
    }
    if (strongest(metalink.repomd.front()) == nullptr) {
        throw RepoError(context + "the metalink lists no hash of repomd.xml that can be verified (sha1, sha224, "
                                  "sha256, sha384 or sha512)");
    }
    metalink.repomd.erase(std::remove_if(metalink.repomd.begin() + 1, metalink.repomd.end(),
                                         [](const MetalinkRepomd& v) { return strongest(v) == nullptr; }),
                          metalink.repomd.end());
    std::stable_sort(urls.begin(), urls.end(), [](const Url& a, const Url& b) { return a.preference > b.preference; });
    constexpr std::string_view k_suffix = "repodata/repomd.xml";
    for (auto& [url, preference] : urls) {
        bool quiet = false;
        std::string why = unusable_mirror(url, file_urls, quiet);
        if (why.empty() && !std::string_view(url).ends_with(k_suffix)) {
            why = "it does not end in repodata/repomd.xml";
        }
        if (!why.empty()) {
            if (!quiet) {
                metalink.mirrors.refused.push_back(fmt::format("{}: {}", redact_url(url), why));
            }
            continue;
        }
        std::string base = url.substr(0, url.size() - k_suffix.size());
        if (std::find(metalink.mirrors.urls.begin(), metalink.mirrors.urls.end(), base) ==
            metalink.mirrors.urls.end()) {
            metalink.mirrors.urls.push_back(std::move(base));
        }
    }
    return metalink;
}

std::string metalink_mismatch(const Metalink& metalink, std::string_view repomd_xml) {
    std::string first_why;
    for (const auto& version : metalink.repomd) {
        const auto* hash = strongest(version);
        if (hash == nullptr) {
            continue;
        }
        std::string why;
        if (version.size != 0 && version.size != repomd_xml.size()) {
            why = fmt::format("it is {} bytes, the metalink says {}", repomd_xml.size(), version.size);
        } else {
            const std::string actual = crypto::digest_hex(hash->first, repomd_xml);
            if (actual == hash->second) {
                return {};
            }
            why = fmt::format("its {} is {}, the metalink says {}", hash->first, actual, hash->second);
        }
        if (first_why.empty()) {
            first_why = why;
        }
    }
    if (metalink.repomd.size() > 1) {
        first_why +=
            fmt::format(" (nor does it match the {} older versions the metalink accepts)", metalink.repomd.size() - 1);
    }
    return first_why.empty() ? "the metalink lists no hash to check it against" : first_why;
}

RetryPolicy retry_policy(unsigned retries, long timeout_s) {
    RetryPolicy policy;
    policy.attempts = retries == 0 ? 10 : retries;
    const long window_s = timeout_s <= 0 ? 3 : std::min(timeout_s, 3L);
    policy.window = std::chrono::milliseconds(window_s * 1000);
    return policy;
}

std::chrono::milliseconds retry_backoff(unsigned attempt) {
    if (attempt <= 2) {
        return std::chrono::milliseconds(250);
    }
    return attempt == 3 ? std::chrono::milliseconds(500) : std::chrono::milliseconds(1000);
}

} // namespace leo::repo
