#pragma once
/// libxml2 streaming-reader helpers shared by repomd.cpp and primary.cpp (not installed).

#include "detail.hpp"

#include <fmt/format.h>
#include <libxml/xmlreader.h>

#include <memory>
#include <string>
#include <string_view>

namespace leo::repo::detail {

struct ReaderDeleter {
    void operator()(xmlTextReaderPtr reader) const noexcept { xmlFreeTextReader(reader); }
};
using ReaderPtr = std::unique_ptr<xmlTextReader, ReaderDeleter>;

/// An xmlChar* owned by libxml2's allocator, as a std::string ("" for null).
inline std::string take_xml_string(xmlChar* s) {
    if (s == nullptr) {
        return {};
    }
    std::string out(reinterpret_cast<const char*>(s));
    xmlFree(s);
    return out;
}

inline std::string attribute(xmlTextReaderPtr reader, const char* name) {
    return take_xml_string(xmlTextReaderGetAttribute(reader, reinterpret_cast<const xmlChar*>(name)));
}

inline std::string xml_base(xmlTextReaderPtr reader) {
    return take_xml_string(xmlTextReaderGetAttributeNs(reader, reinterpret_cast<const xmlChar*>("base"),
                                                       XML_XML_NAMESPACE));
}

inline std::string_view local_name(xmlTextReaderPtr reader) {
    const xmlChar* name = xmlTextReaderConstLocalName(reader);
    return name == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(name));
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

inline constexpr int k_xml_options = XML_PARSE_NONET | XML_PARSE_NOBLANKS;

} // namespace leo::repo::detail
