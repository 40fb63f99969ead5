// Primary metadata: libarchive decompression, the scan, libxml2's streaming reader for the packages kept.
#include "leo/repo/metadata.hpp"

#include "detail.hpp"
#include "scan.hpp"
#include "xml.hpp"

#include "leo/common/error.hpp"

#include <archive.h>
#include <fmt/format.h>
#include <libxml/xmlreader.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace leo::repo::detail {
namespace {

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

/// One package being read by the streaming reader, and the first thing wrong with it.
struct PackageInProgress {
    PackageEntry entry;
    std::string problem;
};

/// The packages of a reader positioned before the document: bad entries of packages the
/// filter does not want are skipped and counted in `into`; a bad wanted one throws.
/// Returns whether a <metadata> root was seen; `rc` is the reader's last return code.
bool read_packages(xmlTextReaderPtr reader, const std::string& base_url, const PackageFilter& filter,
                   const std::string& context, std::size_t index_base, PrimaryScan& into, int& rc) {
    std::optional<PackageInProgress> current;
    std::size_t package_index = index_base;
    bool seen_root = false;
    const auto problem = [&](const std::string& what) {
        if (current->problem.empty()) {
            current->problem = what;
        }
    };
    const auto finish_package = [&] {
        PackageEntry& e = current->entry;
        if (e.name.empty()) {
            problem("no <name>");
        }
        if (e.version.empty()) {
            problem("no <version ver=...>");
        }
        if (e.location_href.empty()) {
            problem("no <location href=...>");
        }
        if (e.checksum.empty() || digest_name(e.checksum_type).empty()) {
            problem(fmt::format("no usable <checksum> (type \"{}\")", e.checksum_type));
        }
        const bool wanted = !filter || (!e.name.empty() && filter(e.name));
        const std::string who = e.name.empty() ? fmt::format("#{}", package_index)
                                               : fmt::format("{} (#{})", e.name, package_index);
        if (!wanted) {
            if (!current->problem.empty()) {
                ++into.skipped;  // one bad entry about another package does not reject the repository
                if (into.first_skipped.empty()) {
                    into.first_skipped = fmt::format("package {}: {}", who, current->problem);
                }
            }
            current.reset();
            return;
        }
        if (current->problem.empty()) {
            if (auto why = unsafe_location(e); !why.empty()) {
                problem(why);
            }
        }
        if (!current->problem.empty()) {
            throw RepoError(context + fmt::format("package {}: {}", who, current->problem));
        }
        if (filter && into.packages.size() >= k_max_wanted_entries) {
            throw RepoError(context + fmt::format("more than {} entries of the packages looked for ({} is #{}): a "
                                                  "broken or hostile repository",
                                                  k_max_wanted_entries, e.name, package_index));
        }
        into.packages.push_back(std::move(e));
        current.reset();
    };
    // `skipped`: xmlTextReaderNext already moved past a subtree to the node to look at next.
    bool skipped = false;
    while (true) {
        rc = skipped ? 1 : xmlTextReaderRead(reader);
        skipped = false;
        if (rc != 1) {
            break;
        }
        const int type = xmlTextReaderNodeType(reader);
        const int depth = xmlTextReaderDepth(reader);
        if (type == XML_READER_TYPE_ELEMENT) {
            const auto name = local_name(reader);
            if (depth == 0) {
                if (name != "metadata") {
                    throw RepoError(context + fmt::format("is not primary metadata: the root element is <{}>", name));
                }
                seen_root = true;
            } else if (depth == 1 && name == "package") {
                ++package_index;
                if (attribute(reader, "type") == "rpm") {
                    current.emplace();
                    current->entry.base_url = base_url;
                    if (xmlTextReaderIsEmptyElement(reader) == 1) {
                        finish_package();  // <package type="rpm"/>: it has no name
                    }
                } else {
                    current.reset();
                    rc = xmlTextReaderNext(reader);  // not an rpm: skip it whole
                    skipped = true;
                }
            } else if (depth == 2 && current) {
                PackageEntry& e = current->entry;
                if (name == "name") {
                    e.name = trim(take_xml_string(xmlTextReaderReadString(reader)));
                } else if (name == "arch") {
                    e.arch = trim(take_xml_string(xmlTextReaderReadString(reader)));
                } else if (name == "version") {
                    const std::string epoch = attribute(reader, "epoch");
                    if (!epoch.empty()) {
                        bool ok = false;
                        const auto value = to_u64(epoch, ok);
                        if (!ok || value > 0xffffffffULL) {
                            problem(fmt::format("bad epoch \"{}\"", epoch));
                        }
                        e.epoch = static_cast<std::uint32_t>(value);
                    }
                    e.version = attribute(reader, "ver");
                    e.release = attribute(reader, "rel");
                } else if (name == "checksum") {
                    e.checksum_type = attribute(reader, "type");
                    e.checksum = trim(take_xml_string(xmlTextReaderReadString(reader)));
                } else if (name == "size") {
                    const std::string size = attribute(reader, "package");
                    bool ok = false;
                    e.size = to_u64(size, ok);
                    if (!ok) {
                        problem(fmt::format("bad <size package=\"{}\">", size));
                    }
                } else if (name == "location") {
                    e.location_href = attribute(reader, "href");
                    e.location_base = xml_base(reader);
                } else if (name == "format") {
                    rc = xmlTextReaderNext(reader);  // dependencies and files: not needed here
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
    return seen_root;
}

/// libxml2 input callbacks over a libarchive reader, after the bytes the scan already saw.
struct ReplayInput {
    ArchiveInput* input = nullptr;
    std::string prefix;
    std::size_t offset = 0;

    static int read(void* context, char* buffer, int len) {
        auto& self = *static_cast<ReplayInput*>(context);
        if (self.offset < self.prefix.size()) {
            const std::size_t n = std::min(self.prefix.size() - self.offset, static_cast<std::size_t>(len));
            std::memcpy(buffer, self.prefix.data() + self.offset, n);
            self.offset += n;
            return static_cast<int>(n);
        }
        return ArchiveInput::read(self.input, buffer, len);
    }
    static int close(void*) { return 0; }
};

/// Decompress the opened archive and scan it (the fallback: libxml2 over the whole of it).
PrimaryScan scan_opened_primary(struct archive* archive, const Limit& open_limit, const std::string& base_url,
                                const PackageFilter& filter, const std::string& context) {
    struct archive_entry* entry = nullptr;
    const int header = archive_read_next_header(archive, &entry);
    if (header == ARCHIVE_EOF) {
        throw RepoError(context + "is empty");
    }
    if (header != ARCHIVE_OK && header != ARCHIVE_WARN) {
        throw RepoError(context + "is truncated or corrupt: " + archive_error_of(archive));
    }
    ArchiveInput input{archive, {}, open_limit};
    const auto check_input = [&] {
        if (input.over_limit) {
            throw RepoError(context + fmt::format("decompresses to more than the {} bytes {}; stopped (a "
                                                  "decompression bomb, or metadata that does not match repomd.xml)",
                                                  input.limit.bytes, input.limit.source));
        }
        if (!input.error.empty()) {
            throw RepoError(context + "is truncated or corrupt: " + input.error);
        }
    };
    PrimaryScanner scanner(base_url, filter, context);
    std::vector<char> buffer(256 * 1024);
    while (true) {
        const int n = ArchiveInput::read(&input, buffer.data(), static_cast<int>(buffer.size()));
        check_input();
        if (n <= 0) {
            return scanner.finish();
        }
        if (!scanner.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)))) {
            break;  // a document type declaration: libxml2 reads the whole document
        }
    }
    ReplayInput replay{&input, scanner.prefix(), 0};
    const XmlReader reader(&ReplayInput::read, &ReplayInput::close, &replay, context);
    PrimaryScan result;
    int rc = 0;
    const bool seen_root = read_packages(reader.get(), base_url, filter, context, 0, result, rc);
    check_input();
    if (const auto why = reader.failure(rc); !why.empty()) {
        throw RepoError(context + "is truncated or not valid XML: " + why);
    }
    if (!seen_root) {
        throw RepoError(context + "is empty");
    }
    return result;
}

} // namespace

void parse_primary_xml(std::string_view xml, const std::string& base_url, const PackageFilter& filter,
                       const std::string& context, std::size_t index_base, PrimaryScan& into) {
    const XmlReader reader(xml, context);
    int rc = 0;
    (void)read_packages(reader.get(), base_url, filter, context, index_base, into, rc);
    if (const auto why = reader.failure(rc); !why.empty()) {
        throw RepoError(context + fmt::format("package #{}: not valid XML: {}", index_base + 1, why));
    }
}

PrimaryScan scan_primary_archive(struct archive* archive, const Limit& open_limit, const std::string& base_url,
                                 const PackageFilter& filter, const std::string& context) {
    return scan_opened_primary(archive, open_limit, base_url, filter, context);
}

void ArchiveDeleter::operator()(struct archive* a) const noexcept { archive_read_free(a); }

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

} // namespace leo::repo::detail

namespace leo::repo {

using detail::archive_error_of;
using detail::ArchivePtr;
using detail::Limit;
using detail::primary_reader;

PrimaryResult parse_primary_counted(std::string_view data, const std::string& base_url, const PackageFilter& filter,
                                    const std::string& context) {
    ArchivePtr archive = primary_reader(context);
    if (archive_read_open_memory(archive.get(), data.data(), data.size()) != ARCHIVE_OK) {
        throw RepoError(context + "is truncated or corrupt: " + archive_error_of(archive.get()));
    }
    auto scan = detail::scan_primary_archive(archive.get(), Limit{k_metadata_open_limit, "of the cap for primary"},
                                             base_url, filter, context);
    return PrimaryResult{std::move(scan.packages), scan.skipped, std::move(scan.first_skipped)};
}

std::vector<PackageEntry> parse_primary(std::string_view data, const std::string& base_url,
                                        const PackageFilter& filter, const std::string& context) {
    return parse_primary_counted(data, base_url, filter, context).packages;
}

} // namespace leo::repo
