#pragma once
/// The fast path through primary (not installed): a byte scan that finds each <package>
/// and its <name>, and hands only the packages the filter wants to libxml2 (scan.cpp).

#include "detail.hpp"

#include "leo/repo/metadata.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct archive;

namespace leo::repo::detail {

struct Transfer;

/// What a pass over primary found: the packages kept, and the entries about other
/// packages that were skipped because they were bad (missing version, bad epoch, ...).
struct PrimaryScan {
    std::vector<PackageEntry> packages;
    std::size_t skipped = 0;     ///< bad entries about packages the filter does not want
    std::string first_skipped;   ///< why the first of them was skipped ("" when none)
};

/// The biggest single <package> element the scan holds in memory (a package's primary
/// entry is a few KiB; its file list is limited to /etc, /usr/bin... in primary).
inline constexpr std::size_t k_package_element_limit = std::size_t{16} << 20;  ///< 16 MiB

/// Finds <package> boundaries in decompressed primary XML with memchr, one '<' at a time,
/// skipping comments, CDATA sections and processing instructions; reads each package's
/// <name> text without decoding it. A package whose name the filter wants (or whose name
/// holds an entity, CDATA or a comment) is parsed by libxml2 (parse_package_element);
/// others are never parsed. A document type declaration (which may define entities) stops
/// the scan: feed() returns false and the caller parses the whole document with libxml2,
/// starting with prefix(). Throws leo::RepoError(`context` + cause): not primary (root
/// element), a package element above k_package_element_limit, markup the scan does not
/// know after the root element, a wanted package that is bad (parse_package_element),
/// and, in finish(), a document that ends early.
class PrimaryScanner {
public:
    PrimaryScanner(std::string base_url, PackageFilter filter, std::string context);

    /// The next decompressed bytes, in order. False: the scan gave up (a DOCTYPE); call
    /// prefix() and parse in full.
    bool feed(std::string_view bytes);
    /// Every byte fed so far, when feed() returned false (the prolog, before the root element).
    [[nodiscard]] const std::string& prefix() const { return m_buf; }
    /// The end of the input. Throws when the document is empty or ends inside it.
    PrimaryScan finish();

private:
    bool step();   // one piece of markup at m_pos; false: needs more bytes
    void end_package(std::size_t end);
    [[nodiscard]] std::size_t tag_end(std::size_t from) const;  // '>' of the tag at `from`, npos: more bytes
    std::string m_base_url;
    PackageFilter m_filter;
    std::string m_context;
    std::string m_buf;            // unprocessed bytes (and, before the root, all of them)
    std::size_t m_pos = 0;        // next '<' search position in m_buf
    enum class State { prolog, root, package, done } m_state = State::prolog;
    bool m_gave_up = false;
    std::string m_root_tag;       // "<metadata xmlns=...>", to parse a package on its own
    std::string m_root_name;      // its qualified name, to close it
    std::size_t m_package_start = 0;
    std::size_t m_package_index = 0;
    bool m_seen_name = false;
    bool m_name_plain = false;    // the name is plain text (no entity, CDATA, comment)
    std::string m_name;
    PrimaryScan m_result;
};

/// Parse `xml` (a whole primary document, or <metadata ...> around one package) with
/// libxml2's streaming reader, as parse_primary does: bad entries of packages the filter
/// does not want are skipped and counted in `into`, a bad wanted one throws
/// leo::RepoError(`context` + "package NAME (#index): cause"). `index_base` numbers the
/// packages of a snippet as in the whole document.
void parse_primary_xml(std::string_view xml, const std::string& base_url, const PackageFilter& filter,
                       const std::string& context, std::size_t index_base, PrimaryScan& into);

struct ArchiveDeleter {
    void operator()(struct archive* a) const noexcept;
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveDeleter>;

/// A libarchive reader for primary: every compression filter, the raw (single stream) and
/// empty formats, not opened yet. Throws leo::RepoError.
ArchivePtr primary_reader(const std::string& context);
std::string archive_error_of(struct archive* archive);

/// Decompress the opened `archive` (at most `open_limit` bytes) and scan it: the
/// PrimaryScanner, or libxml2 over the whole document when the scan gives up. Throws
/// leo::RepoError(`context` + cause): empty, truncated, corrupt, over the limit, not XML,
/// not <metadata>, a bad wanted package.
PrimaryScan scan_primary_archive(struct archive* archive, const Limit& open_limit, const std::string& base_url,
                                 const PackageFilter& filter, const std::string& context);

/// Download primary with `transfer` and scan it as it arrives: libcurl on this thread
/// hashes each block (`checksum_type`) and queues it (at most 8 MiB waiting); a second
/// thread decompresses and scans (scan_primary_archive). Nothing is written to disk.
/// Throws leo::RepoError: the transfer's error; then `context` + "checksum mismatch:
/// expected T:X, got T:Y (`hint`)"; then the scan's error (a complete download whose
/// checksum matches but does not parse).
PrimaryScan stream_primary(Transfer& transfer, const std::string& checksum_type, const std::string& checksum,
                           const Limit& open_limit, const std::string& base_url, const PackageFilter& filter,
                           const std::string& what, const std::string& context, const std::string& hint);

} // namespace leo::repo::detail
