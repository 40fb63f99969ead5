// Primary metadata: libarchive decompression into libxml2's streaming reader (parse_primary, parse_primary_fd).
#include "leo/repo/metadata.hpp"

#include "detail.hpp"
#include "xml.hpp"

#include "leo/common/error.hpp"

#include <archive.h>
#include <fmt/format.h>
#include <libxml/xmlreader.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <unistd.h>

namespace leo::repo::detail {
namespace {

struct ArchiveDeleter {
    void operator()(struct archive* a) const noexcept { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveDeleter>;

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

} // namespace

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

} // namespace leo::repo::detail

namespace leo::repo {

using detail::archive_error_of;
using detail::ArchivePtr;
using detail::Limit;
using detail::parse_opened_primary;
using detail::primary_reader;

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
