// repomd.xml: parse_repomd, with libxml2's streaming reader.
#include "leo/repo/metadata.hpp"

#include "detail.hpp"
#include "xml.hpp"

#include "leo/common/error.hpp"

#include <fmt/format.h>
#include <libxml/xmlreader.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace leo::repo {

using detail::attribute;
using detail::local_name;
using detail::take_xml_string;
using detail::to_u64;
using detail::trim;
using detail::xml_base;
using detail::XmlReader;

namespace {

/// A <timestamp> as yum reads it (Python's float(): "1700000000", "1.7e9", "+17e8",
/// "1700000000.25"), in whole seconds, at most k_max_timestamp; 0 for text that is not a
/// positive finite number (yum would fail on it; here that <data> has no timestamp).
std::int64_t timestamp_of(const std::string& raw) {
    constexpr double k_max_timestamp = 253402300799.0;  // 9999-12-31T23:59:59Z
    const std::string text = trim(raw);
    if (text.empty() || std::isspace(static_cast<unsigned char>(text.front())) != 0) {
        return 0;
    }
    char* end = nullptr;
    errno = 0;
    const double value = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(value) || value <= 0) {
        return 0;
    }
    return static_cast<std::int64_t>(std::min(value, k_max_timestamp));
}

} // namespace

/// Parse repomd.xml with the streaming reader. Throws RepoError(`invalid` + cause) when
/// it is not well-formed repomd XML.
Repomd parse_repomd(const std::string& xml, const std::string& invalid) {
    if (trim(xml).empty()) {
        throw RepoError(invalid + "the document is empty");
    }
    const XmlReader reader(xml, invalid);
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
            } else if (depth == 2 && name == "timestamp") {
                // yum's repoMDObject: the repository's timestamp is the newest of its <data>'s
                const auto seconds = timestamp_of(take_xml_string(xmlTextReaderReadString(reader.get())));
                if (seconds > repomd.timestamp) {
                    repomd.timestamp = seconds;
                }
            }
            if (depth == 2 && data_type == "primary") {
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
    if (const auto why = reader.failure(rc); !why.empty()) {
        throw RepoError(invalid + why);
    }
    if (!seen_root) {
        throw RepoError(invalid + "the document is empty");
    }
    return repomd;
}

} // namespace leo::repo
