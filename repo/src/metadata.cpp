// Repository metadata: repomd.xml and primary over libcurl, decompressed with libarchive,
// parsed with libxml2's streaming reader (never a whole-document tree).
#include "leo/repo/metadata.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/repo/url.hpp"

#include <archive.h>
#include <curl/curl.h>
#include <fmt/format.h>
#include <libxml/xmlreader.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace leo::repo {
namespace {

// ---- C handles ---------------------------------------------------------------------------

struct CurlDeleter {
    void operator()(CURL* curl) const noexcept { curl_easy_cleanup(curl); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;

struct ArchiveDeleter {
    void operator()(struct archive* a) const noexcept { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveDeleter>;

struct ReaderDeleter {
    void operator()(xmlTextReaderPtr reader) const noexcept { xmlFreeTextReader(reader); }
};
using ReaderPtr = std::unique_ptr<xmlTextReader, ReaderDeleter>;

/// An xmlChar* owned by libxml2's allocator, as a std::string ("" for null).
std::string take_xml_string(xmlChar* s) {
    if (s == nullptr) {
        return {};
    }
    std::string out(reinterpret_cast<const char*>(s));
    xmlFree(s);
    return out;
}

std::string attribute(xmlTextReaderPtr reader, const char* name) {
    return take_xml_string(xmlTextReaderGetAttribute(reader, reinterpret_cast<const xmlChar*>(name)));
}

std::string xml_base(xmlTextReaderPtr reader) {
    return take_xml_string(xmlTextReaderGetAttributeNs(reader, reinterpret_cast<const xmlChar*>("base"),
                                                       XML_XML_NAMESPACE));
}

std::string_view local_name(xmlTextReaderPtr reader) {
    const xmlChar* name = xmlTextReaderConstLocalName(reader);
    return name == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(name));
}

std::string trim(std::string s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) {
        return {};
    }
    const auto last = s.find_last_not_of(" \t\r\n");
    return s.substr(first, last - first + 1);
}

/// The first error libxml2 reports for one reader, with its line.
struct XmlErrors {
    std::string first;

    static void on_error(void* arg, const char* msg, xmlParserSeverities severity,
                         xmlTextReaderLocatorPtr locator) {
        auto& self = *static_cast<XmlErrors*>(arg);
        if (severity == XML_PARSER_SEVERITY_WARNING || severity == XML_PARSER_SEVERITY_VALIDITY_WARNING ||
            !self.first.empty()) {
            return;
        }
        self.first = trim(msg != nullptr ? msg : "unknown error");
        if (locator != nullptr) {
            self.first += fmt::format(" (line {})", xmlTextReaderLocatorLineNumber(locator));
        }
    }

    void attach(xmlTextReaderPtr reader) { xmlTextReaderSetErrorHandler(reader, &XmlErrors::on_error, this); }
};

constexpr int k_xml_options = XML_PARSE_NONET | XML_PARSE_NOBLANKS;

// ---- URLs and hints -----------------------------------------------------------------------

std::string join_url(const std::string& base, const std::string& path) {
    if (base.empty()) {
        return path;
    }
    if (base.back() == '/') {
        return path.starts_with('/') ? base + path.substr(1) : base + path;
    }
    return path.starts_with('/') ? base + path : base + "/" + path;
}

/// Where to fix a bad baseurl.
std::string where_defined(const RepoConfig& repo) {
    if (repo.source.empty()) {
        return "the repository configuration";
    }
    if (repo.source == "--repofrompath") {
        return "the --repofrompath URL";
    }
    return repo.source;
}

std::string basename_of(const std::string& href) {
    const auto slash = href.find_last_of('/');
    return slash == std::string::npos ? href : href.substr(slash + 1);
}

/// "sha" is sha1 in old metadata; anything else must be a digest we know.
std::string digest_name(const std::string& type) {
    const std::string t = type == "sha" ? "sha1" : type;
    for (const char* known : {"sha1", "sha224", "sha256", "sha384", "sha512"}) {
        if (t == known) {
            return t;
        }
    }
    return {};
}

// ---- libcurl ------------------------------------------------------------------------------

void curl_global() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

/// The most bytes one transfer (or one decompression) may produce, and where that bound
/// comes from, for the message ("that primary declares", "the cap for repomd.xml").
struct Limit {
    std::uint64_t bytes = 0;
    std::string source;
};

/// The declared size when there is one (refused when it is above the cap), else the cap.
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

/// One GET with the repository's settings, bounded by `limit`. The body goes to `sink`
/// (bytes, size); `sink` returns false to abort (a write error).
struct Transfer {
    Transfer(const RepoConfig& r, std::string u, Limit l) : repo(r), url(std::move(u)), limit(std::move(l)) {}

    const RepoConfig& repo;
    std::string url;
    Limit limit;
    bool allow_file = false;   ///< file:// only for URLs the administrator wrote
    bool to_file = false;      ///< for the message: a partial file is removed
    std::function<bool(const char*, std::size_t)> sink;
    Progress progress;
    std::uint64_t expected_total = 0;

    std::exception_ptr callback_error;
    std::uint64_t received = 0;
    std::uint64_t announced = 0;    ///< a Content-Length above the limit
    bool over_limit = false;
    std::string location;           ///< the last Location header (a redirect)
    std::uint64_t last_reported = ~std::uint64_t{0};

    static std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) {
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

    static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
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

    static int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
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
    static int on_progress_old(void* user, double total, double now, double, double) {
        return on_progress(user, static_cast<curl_off_t>(total), static_cast<curl_off_t>(now), 0, 0);
    }
#endif

    /// Runs the transfer; throws leo::RepoError naming the repository and the URL (its
    /// password redacted). `what` names the thing fetched ("repodata/repomd.xml", "package
    /// X"); `hint` says what to do when the server cannot be reached, `http_hint` when it
    /// answers an error.
    void run(const std::string& what, const std::string& hint, const std::string& http_hint) {
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
        curl_easy_setopt(c, CURLOPT_URL, url.c_str());
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error.data());
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "leo-installer/" LEO_VERSION);
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
        if (!repo.proxy.empty()) {
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
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Transfer::on_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, this);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, this);
        // The progress callback also stops a transfer whose Content-Length is over the limit.
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
#if LIBCURL_VERSION_NUM >= 0x072000
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Transfer::on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, this);
#else
        curl_easy_setopt(c, CURLOPT_PROGRESSFUNCTION, &Transfer::on_progress_old);
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
        if (rc == CURLE_HTTP_RETURNED_ERROR && status >= 400) {
            throw RepoError(
                fmt::format("repository {}: {}: HTTP {} for {}{}", repo.id, what, status, shown, suffix(http_hint)));
        }
        const std::string detail = redact_url(error[0] != '\0' ? trim(error.data()) : curl_easy_strerror(rc));
        throw RepoError(
            fmt::format("repository {}: {}: cannot fetch {}: {}{}", repo.id, what, shown, detail, suffix(hint)));
    }
};

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

/// Remove `inside` (never following a link), ignoring errors: cleaning up after a failure.
void discard(const leo::fs::SystemRoot& root, const std::filesystem::path& inside) noexcept {
    try {
        (void)root.remove(inside);
    } catch (...) {
    }
}

/// A file downloaded into the cache under its temporary name, still open.
struct Downloaded {
    leo::fs::UniqueFd fd;
    std::filesystem::path part;  ///< inside the root
};

/// Download into `dir/name.part` (inside `root`): whatever is at that name (a planted file
/// or link) is removed, never opened, and the file is created anew (O_EXCL|O_NOFOLLOW,
/// 0644). The partial file is removed when the transfer fails.
Downloaded fetch_to_cache(Transfer& transfer, const leo::fs::SystemRoot& root, const std::filesystem::path& dir,
                          const std::string& name, const std::string& what, const std::string& hint,
                          const std::string& http_hint) {
    Downloaded out;
    out.part = dir / (name + ".part");
    (void)root.remove(out.part);
    out.fd = root.create_exclusive(out.part, 0644);
    const int fd = out.fd.get();
    int write_errno = 0;
    transfer.to_file = true;
    transfer.sink = [&](const char* data, std::size_t n) {
        while (n > 0) {
            const ssize_t w = ::write(fd, data, n);
            if (w < 0) {
                if (errno == EINTR) {
                    continue;
                }
                write_errno = errno;
                return false;
            }
            data += w;
            n -= static_cast<std::size_t>(w);
        }
        return true;
    };
    try {
        transfer.run(what, hint, http_hint);
        if (write_errno == 0 && ::fsync(fd) != 0) {
            write_errno = errno;
        }
        if (write_errno != 0) {
            throw system_error(fmt::format("cannot write {}", root.host(out.part).string()), write_errno);
        }
    } catch (...) {
        discard(root, out.part);
        if (write_errno != 0) {
            throw system_error(fmt::format("cannot write {}", root.host(out.part).string()), write_errno);
        }
        throw;
    }
    return out;
}

} // namespace

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

namespace {

// ---- repomd.xml ---------------------------------------------------------------------------

std::uint64_t to_u64(const std::string& text, bool& ok) {
    std::uint64_t value = 0;
    const std::string t = trim(text);
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
    ok = !t.empty() && ec == std::errc() && end == t.data() + t.size();
    return value;
}

} // namespace

/// Parse repomd.xml with the streaming reader. Throws RepoError(`invalid` + cause) when
/// it is not well-formed repomd XML.
Repomd parse_repomd(const std::string& xml, const std::string& invalid) {
    if (trim(xml).empty()) {
        throw RepoError(invalid + "the document is empty");
    }
    ReaderPtr reader(xmlReaderForMemory(xml.data(), static_cast<int>(xml.size()), nullptr, nullptr, k_xml_options));
    if (!reader) {
        throw RepoError(invalid + "cannot create an XML reader");
    }
    XmlErrors errors;
    errors.attach(reader.get());
    Repomd repomd;
    bool seen_root = false;
    std::string data_type;   // of the <data> being read
    PrimaryRef current;
    int rc = 0;
    while ((rc = xmlTextReaderRead(reader.get())) == 1) {
        const int type = xmlTextReaderNodeType(reader.get());
        const int depth = xmlTextReaderDepth(reader.get());
        const auto name = local_name(reader.get());
        if (type == XML_READER_TYPE_ELEMENT) {
            if (depth == 0) {
                if (name != "repomd") {
                    throw RepoError(invalid + fmt::format("the root element is <{}>, expected <repomd>", name));
                }
                seen_root = true;
            } else if (depth == 1 && name == "revision") {
                repomd.revision = trim(take_xml_string(xmlTextReaderReadString(reader.get())));
            } else if (depth == 1 && name == "data") {
                data_type = attribute(reader.get(), "type");
                current = PrimaryRef{};
                if (data_type == "primary" && xmlTextReaderIsEmptyElement(reader.get()) == 1) {
                    repomd.primary = current;
                }
            } else if (depth == 2 && data_type == "primary") {
                if (name == "checksum") {
                    current.checksum_type = attribute(reader.get(), "type");
                    current.checksum = trim(take_xml_string(xmlTextReaderReadString(reader.get())));
                } else if (name == "location") {
                    current.href = attribute(reader.get(), "href");
                    current.base = xml_base(reader.get());
                } else if (name == "size") {
                    bool ok = false;
                    current.size = to_u64(take_xml_string(xmlTextReaderReadString(reader.get())), ok);
                    if (!ok) {
                        current.size = 0;
                    }
                } else if (name == "open-size") {
                    bool ok = false;
                    current.open_size = to_u64(take_xml_string(xmlTextReaderReadString(reader.get())), ok);
                    if (!ok) {
                        current.open_size = 0;
                    }
                }
            }
        } else if (type == XML_READER_TYPE_END_ELEMENT && depth == 1 && name == "data") {
            if (data_type == "primary" && !repomd.primary) {
                repomd.primary = current;
            }
            data_type.clear();
        }
    }
    if (rc != 0 || !errors.first.empty()) {
        throw RepoError(invalid + (errors.first.empty() ? std::string("XML parse error") : errors.first));
    }
    if (!seen_root) {
        throw RepoError(invalid + "the document is empty");
    }
    return repomd;
}

namespace {

// ---- primary ------------------------------------------------------------------------------

/// libxml2 input callbacks that pull decompressed bytes out of libarchive.
struct ArchiveInput {
    struct archive* archive = nullptr;
    std::string error;
    Limit limit;                 ///< of the decompressed bytes (a gzip bomb stops here)
    std::uint64_t total = 0;
    bool over_limit = false;

    static int read(void* context, char* buffer, int len) {
        auto& self = *static_cast<ArchiveInput*>(context);
        if (self.over_limit) {
            return -1;
        }
        const la_ssize_t n = archive_read_data(self.archive, buffer, static_cast<std::size_t>(len));
        if (n < 0) {
            const char* message = archive_error_string(self.archive);
            self.error = message != nullptr ? message : "decompression failed";
            return -1;
        }
        self.total += static_cast<std::uint64_t>(n);
        if (self.total > self.limit.bytes) {
            self.over_limit = true;
            self.error = "decompressed past its limit";
            return -1;
        }
        return static_cast<int>(n);
    }
    static int close(void*) { return 0; }
};

/// Why the package's location may not be fetched ("" when it may): its href must be a
/// relative path inside the repository with a usable file name, and an xml:base must be
/// http(s) (file only in a file:// repository) and not downgrade an https repository.
std::string unsafe_location(const PackageEntry& entry) {
    if (auto why = unsafe_href(entry.location_href); !why.empty()) {
        return fmt::format("location href \"{}\" is refused: {}", redact_url(entry.location_href), why);
    }
    const std::string name = basename_of(entry.location_href);
    if (auto why = unsafe_file_name(name); !why.empty()) {
        return fmt::format("location href \"{}\" is refused: its file name {}", redact_url(entry.location_href), why);
    }
    if (!entry.location_base.empty()) {
        const std::string repo_scheme = url_scheme(entry.base_url);
        const auto protocols = transfer_protocols(entry.location_base, repo_scheme == "file");
        if (!protocols.allowed) {
            return fmt::format("xml:base \"{}\" is refused: {}", redact_url(entry.location_base), protocols.why);
        }
        if (repo_scheme == "https" && url_scheme(entry.location_base) != "https") {
            return fmt::format("xml:base \"{}\" is refused: the repository is https://, its packages must be too",
                               redact_url(entry.location_base));
        }
    }
    return {};
}

/// A libarchive reader for primary: every compression filter, the raw (single stream) and
/// empty formats, not opened yet.
ArchivePtr primary_reader(const std::string& context) {
    ArchivePtr archive(archive_read_new());
    if (!archive) {
        throw RepoError(context + "cannot create a libarchive reader");
    }
    archive_read_support_filter_all(archive.get());
    archive_read_support_format_raw(archive.get());
    archive_read_support_format_empty(archive.get());
    return archive;
}

std::string archive_error_of(struct archive* archive) {
    const char* message = archive_error_string(archive);
    return std::string(message != nullptr ? message : "unknown libarchive error");
}

std::vector<PackageEntry> parse_opened_primary(ArchivePtr archive, const Limit& open_limit,
                                               const std::string& base_url, const PackageFilter& filter,
                                               const std::string& context);

/// Stream-parse the (compressed) primary file open at `fd`, decompressing at most
/// `open_limit` bytes. `context` prefixes every error.
std::vector<PackageEntry> parse_primary_fd(int fd, const Limit& open_limit, const std::string& base_url,
                                           const PackageFilter& filter, const std::string& context) {
    ArchivePtr archive = primary_reader(context);
    if (::lseek(fd, 0, SEEK_SET) != 0) {
        throw system_error(context + "cannot read it back", errno);
    }
    if (archive_read_open_fd(archive.get(), fd, 64 * 1024) != ARCHIVE_OK) {
        throw RepoError(context + "is truncated or corrupt: " + archive_error_of(archive.get()));
    }
    return parse_opened_primary(std::move(archive), open_limit, base_url, filter, context);
}

/// The parse proper, on a reader opened on the primary data.
std::vector<PackageEntry> parse_opened_primary(ArchivePtr archive, const Limit& open_limit,
                                               const std::string& base_url, const PackageFilter& filter,
                                               const std::string& context) {
    const auto archive_error = [&] { return archive_error_of(archive.get()); };
    struct archive_entry* entry = nullptr;
    const int header = archive_read_next_header(archive.get(), &entry);
    if (header == ARCHIVE_EOF) {
        throw RepoError(context + "is empty");
    }
    if (header != ARCHIVE_OK && header != ARCHIVE_WARN) {
        throw RepoError(context + "is truncated or corrupt: " + archive_error());
    }

    ArchiveInput input{archive.get(), {}, open_limit};
    const auto check_bomb = [&] {
        if (input.over_limit) {
            throw RepoError(context + fmt::format("decompresses to more than the {} bytes {}; stopped (a "
                                                  "decompression bomb, or metadata that does not match repomd.xml)",
                                                  input.limit.bytes, input.limit.source));
        }
    };
    ReaderPtr reader(xmlReaderForIO(&ArchiveInput::read, &ArchiveInput::close, &input, nullptr, nullptr,
                                    k_xml_options));
    check_bomb();
    if (!reader) {
        throw RepoError(context + (input.error.empty() ? "cannot create an XML reader"
                                                       : "is truncated or corrupt: " + input.error));
    }
    XmlErrors errors;
    errors.attach(reader.get());

    std::vector<PackageEntry> packages;
    std::optional<PackageEntry> current;
    std::size_t package_index = 0;
    bool seen_root = false;
    int rc = 0;
    const auto fail_package = [&](const std::string& what) {
        const std::string who = current && !current->name.empty() ? current->name
                                                                  : fmt::format("#{}", package_index);
        const int line = xmlTextReaderGetParserLineNumber(reader.get());
        throw RepoError(context + fmt::format("package {} (line {}): {}", who, line, what));
    };
    const auto finish_package = [&] {
        if (current->name.empty()) {
            fail_package("no <name>");
        }
        if (current->version.empty()) {
            fail_package("no <version ver=...>");
        }
        if (current->location_href.empty()) {
            fail_package("no <location href=...>");
        }
        if (current->checksum.empty() || digest_name(current->checksum_type).empty()) {
            fail_package(fmt::format("no usable <checksum> (type \"{}\")", current->checksum_type));
        }
        if (!filter || filter(current->name)) {
            if (auto why = unsafe_location(*current); !why.empty()) {
                fail_package(why);
            }
            packages.push_back(std::move(*current));
        }
        current.reset();
    };
    // `skipped`: xmlTextReaderNext already moved past a subtree to the node to look at next.
    bool skipped = false;
    while (true) {
        rc = skipped ? 1 : xmlTextReaderRead(reader.get());
        skipped = false;
        if (rc != 1) {
            break;
        }
        const int type = xmlTextReaderNodeType(reader.get());
        const int depth = xmlTextReaderDepth(reader.get());
        if (type == XML_READER_TYPE_ELEMENT) {
            const auto name = local_name(reader.get());
            if (depth == 0) {
                if (name != "metadata") {
                    throw RepoError(context + fmt::format("is not primary metadata: the root element is <{}>", name));
                }
                seen_root = true;
            } else if (depth == 1 && name == "package") {
                ++package_index;
                if (attribute(reader.get(), "type") == "rpm") {
                    current.emplace();
                    current->base_url = base_url;
                    if (xmlTextReaderIsEmptyElement(reader.get()) == 1) {
                        finish_package();  // <package type="rpm"/>: fails, it has no name
                    }
                } else {
                    current.reset();
                    rc = xmlTextReaderNext(reader.get());  // not an rpm: skip it whole
                    skipped = true;
                }
            } else if (depth == 2 && current) {
                if (name == "name") {
                    current->name = trim(take_xml_string(xmlTextReaderReadString(reader.get())));
                } else if (name == "arch") {
                    current->arch = trim(take_xml_string(xmlTextReaderReadString(reader.get())));
                } else if (name == "version") {
                    const std::string epoch = attribute(reader.get(), "epoch");
                    if (!epoch.empty()) {
                        bool ok = false;
                        const auto value = to_u64(epoch, ok);
                        if (!ok || value > 0xffffffffULL) {
                            fail_package(fmt::format("bad epoch \"{}\"", epoch));
                        }
                        current->epoch = static_cast<std::uint32_t>(value);
                    }
                    current->version = attribute(reader.get(), "ver");
                    current->release = attribute(reader.get(), "rel");
                } else if (name == "checksum") {
                    current->checksum_type = attribute(reader.get(), "type");
                    current->checksum = trim(take_xml_string(xmlTextReaderReadString(reader.get())));
                } else if (name == "size") {
                    const std::string size = attribute(reader.get(), "package");
                    bool ok = false;
                    current->size = to_u64(size, ok);
                    if (!ok) {
                        fail_package(fmt::format("bad <size package=\"{}\">", size));
                    }
                } else if (name == "location") {
                    current->location_href = attribute(reader.get(), "href");
                    current->location_base = xml_base(reader.get());
                } else if (name == "format") {
                    rc = xmlTextReaderNext(reader.get());  // dependencies and files: not needed here
                    skipped = true;
                }
            }
        } else if (type == XML_READER_TYPE_END_ELEMENT && depth == 1 && current) {
            finish_package();
        }
        if (skipped && rc != 1) {
            break;
        }
    }
    check_bomb();
    if (!input.error.empty()) {
        throw RepoError(context + "is truncated or corrupt: " + input.error);
    }
    if (rc != 0 || !errors.first.empty()) {
        throw RepoError(context + "is truncated or not valid XML: " +
                        (errors.first.empty() ? std::string("XML parse error") : errors.first));
    }
    if (!seen_root) {
        throw RepoError(context + "is empty");
    }
    return packages;
}

/// Verify the file open at `fd` against `type`:`expected`; throw RepoError(`context` + ...)
/// on mismatch (the caller removes the file).
void verify_checksum(int fd, const std::string& type, const std::string& expected, const std::string& context,
                     const std::string& hint) {
    const std::string algorithm = digest_name(type);
    if (algorithm.empty()) {
        throw RepoError(context + fmt::format("unsupported checksum type \"{}\"", type));
    }
    // the very file written (its descriptor), not whatever a name points to now
    const std::string actual = crypto::file_digest_hex(algorithm, fmt::format("/proc/self/fd/{}", fd));
    std::string want = expected;
    std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return std::tolower(c); });
    if (actual != want) {
        throw RepoError(context + fmt::format("checksum mismatch: expected {}:{}, got {}:{}{}", type, expected,
                                              type, actual, hint.empty() ? "" : " (" + hint + ")"));
    }
}

Metadata load_from(const RepoConfig& repo, const std::string& baseurl, const leo::fs::SystemRoot& root,
                   const std::filesystem::path& cache, const PackageFilter& filter) {
    const std::string repomd_url = join_url(baseurl, "repodata/repomd.xml");
    const std::string shown_repomd = redact_url(repomd_url);
    const std::string repomd_xml = fetch_to_string(
        repo, repomd_url, Limit{k_repomd_limit, "of the cap for repomd.xml"}, true, "repodata/repomd.xml",
        fmt::format("check baseurl in {}, the network and the proxy", where_defined(repo)),
        fmt::format("check baseurl in {}: it must be the directory that holds repodata/", where_defined(repo)));
    const Repomd repomd = parse_repomd(
        repomd_xml, fmt::format("repository {}: repodata/repomd.xml from {} is not valid repomd XML: ", repo.id,
                                shown_repomd));
    if (!repomd.primary || repomd.primary->href.empty()) {
        throw RepoError(fmt::format("repository {}: repodata/repomd.xml from {} lists no primary metadata "
                                    "(<data type=\"primary\"> with a <location href=...>)",
                                    repo.id, shown_repomd));
    }
    const PrimaryRef& primary = *repomd.primary;
    const std::string in_repomd = fmt::format("repository {}: repodata/repomd.xml from {}: ", repo.id, shown_repomd);
    if (primary.checksum.empty()) {
        throw RepoError(in_repomd + "primary metadata has no <checksum>");
    }
    if (digest_name(primary.checksum_type).empty()) {
        throw RepoError(in_repomd + fmt::format("unsupported checksum type \"{}\"", primary.checksum_type));
    }
    PackageEntry where;  // the primary's location, checked by the rules of a package's
    where.location_href = primary.href;
    where.location_base = primary.base;
    where.base_url = baseurl;
    if (auto why = unsafe_location(where); !why.empty()) {
        throw RepoError(in_repomd + "primary metadata " + why);
    }
    const std::string file_name = basename_of(primary.href);
    const std::string primary_url = where.url();
    const bool allow_file = url_scheme(baseurl) == "file";
    const std::string what = fmt::format("primary metadata {}", file_name);
    const std::string context = fmt::format("repository {}: {} from {}: ", repo.id, what, redact_url(primary_url));
    const Limit download_limit = limit_of(primary.size, "repomd.xml's <size>", k_metadata_limit, "metadata", context);
    const Limit open_limit = limit_of(primary.open_size, "repomd.xml's <open-size>", k_metadata_open_limit,
                                      "decompressed metadata", context);

    ensure_cache_dir(root, cache.parent_path());
    ensure_cache_dir(root, cache);
    root.write_atomic(cache / "repomd.xml", repomd_xml, 0644);
    Transfer transfer{repo, primary_url, download_limit};
    transfer.allow_file = allow_file;
    Downloaded file = fetch_to_cache(transfer, root, cache, file_name, what, "try again",
                                     "the repository may be changing under us; try again");
    try {
        verify_checksum(file.fd.get(), primary.checksum_type, primary.checksum, context,
                        "the repository may be changing under us or a proxy altered it; try again");
        root.rename(file.part, cache / file_name);
    } catch (...) {
        discard(root, file.part);
        throw;
    }

    Metadata metadata;
    metadata.repo_id = repo.id;
    metadata.revision = repomd.revision;
    metadata.packages = parse_primary_fd(file.fd.get(), open_limit, baseurl, filter, context);
    return metadata;
}

/// Every secret of `repo` out of `message`: URL passwords (redact_url), and the
/// password and proxy_password values should libcurl ever echo them.
std::string scrub(std::string message, const RepoConfig& repo) {
    message = redact_url(message);
    for (const std::string* secret : {&repo.password, &repo.proxy_password}) {
        if (secret->size() < 3) {
            continue;  // too short to tell from ordinary text
        }
        std::size_t pos = 0;
        while ((pos = message.find(*secret, pos)) != std::string::npos) {
            message.replace(pos, secret->size(), "***");
            pos += 3;
        }
    }
    return message;
}

/// Run `f`, its RepoError messages scrubbed of the repository's secrets.
template <class F>
auto scrubbed(const RepoConfig& repo, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const RepoError& e) {
        throw RepoError(scrub(e.what(), repo));
    }
}

} // namespace

std::string PackageEntry::url() const {
    return join_url(location_base.empty() ? base_url : location_base, location_href);
}

std::string PackageEntry::nevra() const {
    if (epoch != 0) {
        return fmt::format("{}-{}:{}-{}.{}", name, epoch, version, release, arch);
    }
    return fmt::format("{}-{}-{}.{}", name, version, release, arch);
}

Metadata load_metadata(const RepoConfig& repo, const leo::fs::SystemRoot& root,
                       const std::filesystem::path& cache_dir, const PackageFilter& filter) {
    if (auto why = unsafe_file_name(repo.id); !why.empty()) {
        throw RepoError(fmt::format("repository \"{}\": not a usable repository id ({})", repo.id, why));
    }
    if (repo.baseurls.empty()) {
        throw RepoError(fmt::format("repository {}: no baseurl (set one in {})", repo.id, where_defined(repo)));
    }
    xmlInitParser();
    const auto cache = cache_dir / repo.id;
    return scrubbed(repo, [&] {
        std::vector<std::string> failures;
        for (const auto& baseurl : repo.baseurls) {
            try {
                return load_from(repo, baseurl, root, cache, filter);
            } catch (const RepoError& e) {
                if (repo.baseurls.size() == 1) {
                    throw;
                }
                // each message starts "repository ID: ": say it once
                const std::string prefix = fmt::format("repository {}: ", repo.id);
                std::string message = e.what();
                failures.push_back(message.starts_with(prefix) ? message.substr(prefix.size()) : message);
            }
        }
        throw RepoError(
            fmt::format("repository {}: every baseurl failed: {}", repo.id, fmt::join(failures, "; ")));
    });
}

std::filesystem::path download_package(const RepoConfig& repo, const PackageEntry& entry,
                                       const leo::fs::SystemRoot& root, const std::filesystem::path& dest_dir,
                                       const Progress& progress) {
    return scrubbed(repo, [&] {
        const std::string url = entry.url();
        const std::string shown = redact_url(url);
        if (auto why = unsafe_location(entry); !why.empty()) {
            throw RepoError(fmt::format("repository {}: package {}: {}", repo.id, entry.nevra(), why));
        }
        const std::string file_name = basename_of(entry.location_href);
        const std::string context = fmt::format("repository {}: package {} from {}: ", repo.id, entry.nevra(), shown);
        const Limit limit = limit_of(entry.size, "primary's <size package>", k_package_limit, "a package", context);
        ensure_cache_dir(root, dest_dir);
        const std::string what = fmt::format("package {}", entry.nevra());
        Transfer transfer{repo, url, limit};
        transfer.allow_file = url_scheme(entry.base_url) == "file";
        transfer.progress = progress;
        transfer.expected_total = entry.size;
        Downloaded file = fetch_to_cache(transfer, root, dest_dir, file_name, what, "try again",
                                         "the repository metadata may be stale; try again");
        try {
            struct stat st {};
            if (::fstat(file.fd.get(), &st) != 0) {
                throw system_error("cannot stat " + root.host(file.part).string(), errno);
            }
            const auto size = static_cast<std::uint64_t>(st.st_size);
            if (entry.size != 0 && size != entry.size) {
                throw RepoError(context + fmt::format("size mismatch: expected {} bytes, got {}", entry.size, size));
            }
            verify_checksum(file.fd.get(), entry.checksum_type, entry.checksum, context,
                            "the file on the server differs from its metadata; try again later");
            root.rename(file.part, dest_dir / file_name);
        } catch (...) {
            discard(root, file.part);
            throw;
        }
        return root.host(dest_dir / file_name);
    });
}

std::string fetch_url(const RepoConfig& repo, const std::string& url) {
    return scrubbed(repo, [&] {
        const std::string hint = fmt::format("check gpgkey in {}", where_defined(repo));
        return fetch_to_string(repo, url, Limit{k_key_limit, "of the cap for a key"}, true, "key", hint, hint);
    });
}

std::vector<PackageEntry> parse_primary(std::string_view data, const std::string& base_url,
                                        const PackageFilter& filter, const std::string& context) {
    ArchivePtr archive = primary_reader(context);
    if (archive_read_open_memory(archive.get(), data.data(), data.size()) != ARCHIVE_OK) {
        throw RepoError(context + "is truncated or corrupt: " + archive_error_of(archive.get()));
    }
    return parse_opened_primary(std::move(archive), Limit{k_metadata_open_limit, "of the cap for primary"},
                                base_url, filter, context);
}

} // namespace leo::repo
