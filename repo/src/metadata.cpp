// Repository metadata: repomd.xml and primary over libcurl, decompressed with libarchive,
// parsed with libxml2's streaming reader (never a whole-document tree).
#include "leo/repo/metadata.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"

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

struct FileDeleter {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileDeleter>;

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

/// One GET with the repository's settings. The body goes to `sink` (bytes, size);
/// `sink` returns false to abort (a write error).
struct Transfer {
    const RepoConfig& repo;
    std::string url;
    std::function<bool(const char*, std::size_t)> sink;
    Progress progress;
    std::exception_ptr callback_error;
    std::uint64_t expected_total = 0;
    std::uint64_t last_reported = ~std::uint64_t{0};

    static std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) {
        auto& self = *static_cast<Transfer*>(user);
        const std::size_t n = size * count;
        try {
            return self.sink(data, n) ? n : 0;
        } catch (...) {
            self.callback_error = std::current_exception();
            return 0;
        }
    }

    static int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
        auto& self = *static_cast<Transfer*>(user);
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

    /// Runs the transfer; throws leo::RepoError naming the repository and the URL.
    /// `what` names the thing fetched ("repodata/repomd.xml", "package X"); `hint` says
    /// what to do when the server cannot be reached, `http_hint` when it answers an error.
    void run(const std::string& what, const std::string& hint, const std::string& http_hint) {
        curl_global();
        CurlPtr curl(curl_easy_init());
        if (!curl) {
            throw RepoError(fmt::format("repository {}: cannot fetch {}: curl_easy_init failed", repo.id, url));
        }
        std::array<char, CURL_ERROR_SIZE> error{};
        CURL* c = curl.get();
        curl_easy_setopt(c, CURLOPT_URL, url.c_str());
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error.data());
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "leo-installer/" LEO_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(c, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS | CURLPROTO_FILE));
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        if (!repo.proxy.empty()) {
            curl_easy_setopt(c, CURLOPT_PROXY, repo.proxy.c_str());
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
        if (progress) {
            curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
#if LIBCURL_VERSION_NUM >= 0x072000
            curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Transfer::on_progress);
            curl_easy_setopt(c, CURLOPT_XFERINFODATA, this);
#else
            curl_easy_setopt(c, CURLOPT_PROGRESSFUNCTION, &Transfer::on_progress_old);
            curl_easy_setopt(c, CURLOPT_PROGRESSDATA, this);
#endif
        }
        const CURLcode rc = curl_easy_perform(c);
        if (callback_error) {
            std::rethrow_exception(callback_error);
        }
        if (rc == CURLE_OK) {
            return;
        }
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        const auto suffix = [](const std::string& text) { return text.empty() ? "" : fmt::format(" ({})", text); };
        if (rc == CURLE_HTTP_RETURNED_ERROR && status >= 400) {
            throw RepoError(
                fmt::format("repository {}: {}: HTTP {} for {}{}", repo.id, what, status, url, suffix(http_hint)));
        }
        const std::string detail = error[0] != '\0' ? trim(error.data()) : curl_easy_strerror(rc);
        throw RepoError(
            fmt::format("repository {}: {}: cannot fetch {}: {}{}", repo.id, what, url, detail, suffix(hint)));
    }
};

std::string fetch_to_string(const RepoConfig& repo, const std::string& url, const std::string& what,
                            const std::string& hint, const std::string& http_hint) {
    std::string body;
    Transfer transfer{repo, url, [&](const char* data, std::size_t n) {
                          body.append(data, n);
                          return true;
                      }, nullptr, nullptr};
    transfer.run(what, hint, http_hint);
    return body;
}

/// Download into `path` (truncated first). The file is removed when the transfer fails.
void fetch_to_file(Transfer& transfer, const std::filesystem::path& path, const std::string& what,
                   const std::string& hint, const std::string& http_hint) {
    FilePtr file(std::fopen(path.c_str(), "wb"));
    if (!file) {
        throw system_error(fmt::format("cannot create {}", path.string()), errno);
    }
    int write_errno = 0;
    transfer.sink = [&](const char* data, std::size_t n) {
        if (std::fwrite(data, 1, n, file.get()) != n) {
            write_errno = errno;
            return false;
        }
        return true;
    };
    std::error_code ignored;
    try {
        transfer.run(what, hint, http_hint);
        if (write_errno == 0 && (std::fflush(file.get()) != 0 || ::fsync(fileno(file.get())) != 0)) {
            write_errno = errno;
        }
        if (write_errno != 0) {
            throw system_error(fmt::format("cannot write {}", path.string()), write_errno);
        }
        if (std::fclose(file.release()) != 0) {
            throw system_error(fmt::format("cannot write {}", path.string()), errno);
        }
    } catch (...) {
        file.reset();
        std::filesystem::remove(path, ignored);
        if (write_errno != 0) {
            throw system_error(fmt::format("cannot write {}", path.string()), write_errno);
        }
        throw;
    }
}

void make_directories(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        throw SystemError(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
    }
}

// ---- repomd.xml ---------------------------------------------------------------------------

std::uint64_t to_u64(const std::string& text, bool& ok) {
    std::uint64_t value = 0;
    const std::string t = trim(text);
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
    ok = !t.empty() && ec == std::errc() && end == t.data() + t.size();
    return value;
}

} // namespace

Repomd parse_repomd(const std::string& xml, const std::string& invalid) {
    xmlInitParser();
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

    static int read(void* context, char* buffer, int len) {
        auto& self = *static_cast<ArchiveInput*>(context);
        const la_ssize_t n = archive_read_data(self.archive, buffer, static_cast<std::size_t>(len));
        if (n < 0) {
            const char* message = archive_error_string(self.archive);
            self.error = message != nullptr ? message : "decompression failed";
            return -1;
        }
        return static_cast<int>(n);
    }
    static int close(void*) { return 0; }
};

/// A libarchive reader for primary: every compression filter, the raw (single stream) and
/// empty formats. Open it, then hand it to parse_opened_primary().
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

std::string archive_error(struct archive* archive) {
    const char* message = archive_error_string(archive);
    return std::string(message != nullptr ? message : "unknown libarchive error");
}

/// Stream-parse the (compressed) primary that `archive` was opened on. `context` prefixes every error.
std::vector<PackageEntry> parse_opened_primary(struct archive* archive, const std::string& base_url,
                                               const PackageFilter& filter, const std::string& context) {
    struct archive_entry* entry = nullptr;
    const int header = archive_read_next_header(archive, &entry);
    if (header == ARCHIVE_EOF) {
        throw RepoError(context + "is empty");
    }
    if (header != ARCHIVE_OK && header != ARCHIVE_WARN) {
        throw RepoError(context + "is truncated or corrupt: " + archive_error(archive));
    }

    ArchiveInput input{archive, {}};
    ReaderPtr reader(xmlReaderForIO(&ArchiveInput::read, &ArchiveInput::close, &input, nullptr, nullptr,
                                    k_xml_options));
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

/// Stream-parse the (compressed) primary file at `path`. `context` prefixes every error.
std::vector<PackageEntry> parse_primary_file(const std::filesystem::path& path, const std::string& base_url,
                                             const PackageFilter& filter, const std::string& context) {
    const ArchivePtr archive = primary_reader(context);
    if (archive_read_open_filename(archive.get(), path.c_str(), 64 * 1024) != ARCHIVE_OK) {
        throw RepoError(context + "is truncated or corrupt: " + archive_error(archive.get()));
    }
    return parse_opened_primary(archive.get(), base_url, filter, context);
}

/// Verify `path` against `type`:`expected`; on mismatch remove it and throw RepoError(`context` + ...).
void verify_checksum(const std::filesystem::path& path, const std::string& type, const std::string& expected,
                     const std::string& context, const std::string& hint) {
    const std::string algorithm = digest_name(type);
    std::error_code ignored;
    if (algorithm.empty()) {
        std::filesystem::remove(path, ignored);
        throw RepoError(context + fmt::format("unsupported checksum type \"{}\"", type));
    }
    const std::string actual = crypto::file_digest_hex(algorithm, path);
    std::string want = expected;
    std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return std::tolower(c); });
    if (actual != want) {
        std::filesystem::remove(path, ignored);
        throw RepoError(context + fmt::format("checksum mismatch: expected {}:{}, got {}:{}{}", type, expected,
                                              type, actual, hint.empty() ? "" : " (" + hint + ")"));
    }
}

Metadata load_from(const RepoConfig& repo, const std::string& baseurl, const std::filesystem::path& cache,
                   const PackageFilter& filter) {
    const std::string repomd_url = join_url(baseurl, "repodata/repomd.xml");
    const std::string repomd_xml = fetch_to_string(
        repo, repomd_url, "repodata/repomd.xml",
        fmt::format("check baseurl in {}, the network and the proxy", where_defined(repo)),
        fmt::format("check baseurl in {}: it must be the directory that holds repodata/", where_defined(repo)));
    const Repomd repomd = parse_repomd(
        repomd_xml, fmt::format("repository {}: repodata/repomd.xml from {} is not valid repomd XML: ", repo.id,
                                repomd_url));
    if (!repomd.primary || repomd.primary->href.empty()) {
        throw RepoError(fmt::format("repository {}: repodata/repomd.xml from {} lists no primary metadata "
                                    "(<data type=\"primary\"> with a <location href=...>)",
                                    repo.id, repomd_url));
    }
    const PrimaryRef& primary = *repomd.primary;
    if (primary.checksum.empty()) {
        throw RepoError(fmt::format("repository {}: repodata/repomd.xml from {}: primary metadata has no <checksum>",
                                    repo.id, repomd_url));
    }
    if (digest_name(primary.checksum_type).empty()) {
        throw RepoError(fmt::format("repository {}: repodata/repomd.xml from {}: unsupported checksum type \"{}\"",
                                    repo.id, repomd_url, primary.checksum_type));
    }
    const std::string file_name = basename_of(primary.href);
    if (file_name.empty() || file_name == "." || file_name == "..") {
        throw RepoError(fmt::format("repository {}: repodata/repomd.xml from {}: bad primary location \"{}\"",
                                    repo.id, repomd_url, primary.href));
    }
    const std::string primary_url = join_url(primary.base.empty() ? baseurl : primary.base, primary.href);

    make_directories(cache);
    leo::fs::write_file_atomic(cache / "repomd.xml", repomd_xml);
    const auto final_path = cache / file_name;
    const auto part = cache / (file_name + ".part");
    const std::string what = fmt::format("primary metadata {}", file_name);
    Transfer transfer{repo, primary_url, nullptr, nullptr, nullptr};
    fetch_to_file(transfer, part, what, "try again", "the repository may be changing under us; try again");
    const std::string context = fmt::format("repository {}: {} from {}: ", repo.id, what, primary_url);
    verify_checksum(part, primary.checksum_type, primary.checksum, context,
                    "the repository may be changing under us or a proxy altered it; try again");
    std::error_code ec;
    std::filesystem::rename(part, final_path, ec);
    if (ec) {
        std::filesystem::remove(part, ec);
        throw SystemError(fmt::format("cannot rename {} to {}: {}", part.string(), final_path.string(), ec.message()));
    }

    Metadata metadata;
    metadata.repo_id = repo.id;
    metadata.revision = repomd.revision;
    metadata.packages = parse_primary_file(final_path, baseurl, filter, context);
    return metadata;
}

} // namespace

std::vector<PackageEntry> parse_primary(std::string_view data, const std::string& base_url,
                                        const PackageFilter& filter, const std::string& context) {
    xmlInitParser();
    const ArchivePtr archive = primary_reader(context);
    if (archive_read_open_memory(archive.get(), data.data(), data.size()) != ARCHIVE_OK) {
        throw RepoError(context + "is truncated or corrupt: " + archive_error(archive.get()));
    }
    return parse_opened_primary(archive.get(), base_url, filter, context);
}

std::string PackageEntry::url() const {
    return join_url(location_base.empty() ? base_url : location_base, location_href);
}

std::string PackageEntry::nevra() const {
    if (epoch != 0) {
        return fmt::format("{}-{}:{}-{}.{}", name, epoch, version, release, arch);
    }
    return fmt::format("{}-{}-{}.{}", name, version, release, arch);
}

Metadata load_metadata(const RepoConfig& repo, const std::filesystem::path& cache_dir, const PackageFilter& filter) {
    if (repo.id.empty() || repo.id.find('/') != std::string::npos || repo.id == "." || repo.id == "..") {
        throw RepoError(fmt::format("repository \"{}\": not a usable repository id", repo.id));
    }
    if (repo.baseurls.empty()) {
        throw RepoError(fmt::format("repository {}: no baseurl (set one in {})", repo.id, where_defined(repo)));
    }
    xmlInitParser();
    const auto cache = cache_dir / repo.id;
    std::vector<std::string> failures;
    for (const auto& baseurl : repo.baseurls) {
        try {
            return load_from(repo, baseurl, cache, filter);
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
    throw RepoError(fmt::format("repository {}: every baseurl failed: {}", repo.id, fmt::join(failures, "; ")));
}

std::filesystem::path download_package(const RepoConfig& repo, const PackageEntry& entry,
                                       const std::filesystem::path& dest_dir, const Progress& progress) {
    const std::string url = entry.url();
    const std::string file_name = basename_of(entry.location_href);
    if (file_name.empty() || file_name == "." || file_name == "..") {
        throw RepoError(fmt::format("repository {}: package {}: bad location \"{}\"", repo.id, entry.nevra(),
                                    entry.location_href));
    }
    make_directories(dest_dir);
    const auto final_path = dest_dir / file_name;
    const auto part = dest_dir / (file_name + ".part");
    const std::string what = fmt::format("package {}", entry.nevra());
    Transfer transfer{repo, url, nullptr, progress, nullptr};
    transfer.expected_total = entry.size;
    fetch_to_file(transfer, part, what, "try again", "the repository metadata may be stale; try again");

    const std::string context = fmt::format("repository {}: package {} from {}: ", repo.id, entry.nevra(), url);
    std::error_code ec;
    const auto size = std::filesystem::file_size(part, ec);
    if (ec) {
        std::filesystem::remove(part, ec);
        throw RepoError(context + "downloaded file vanished");
    }
    if (entry.size != 0 && size != entry.size) {
        std::filesystem::remove(part, ec);
        throw RepoError(context + fmt::format("size mismatch: expected {} bytes, got {}", entry.size, size));
    }
    verify_checksum(part, entry.checksum_type, entry.checksum, context,
                    "the file on the server differs from its metadata; try again later");
    std::filesystem::rename(part, final_path, ec);
    if (ec) {
        std::filesystem::remove(part, ec);
        throw SystemError(fmt::format("cannot rename {} to {}: {}", part.string(), final_path.string(), ec.message()));
    }
    return final_path;
}

std::string fetch_url(const RepoConfig& repo, const std::string& url) {
    const std::string hint = fmt::format("check gpgkey in {}", where_defined(repo));
    return fetch_to_string(repo, url, "key", hint, hint);
}

} // namespace leo::repo
