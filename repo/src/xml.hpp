#pragma once
/// libxml2 streaming-reader helpers shared by repomd.cpp, primary.cpp and mirrors.cpp (not installed).

#include "detail.hpp"

#include "leo/common/error.hpp"

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

/// A libxml2 streaming reader with k_xml_options (no network access, no blank nodes) that
/// keeps the first error libxml2 reports: the set-up every parser of repository XML shares
/// (repomd.xml, primary.xml, metalinks). Neither copied nor moved (libxml2 holds its address).
class XmlReader {
public:
    /// Over `xml` in memory, which is not copied and must outlive the reader. Throws
    /// RepoError(`context` + "cannot create an XML reader").
    XmlReader(std::string_view xml, const std::string& context)
        : XmlReader(xmlReaderForMemory(xml.data(), static_cast<int>(xml.size()), nullptr, nullptr, k_xml_options),
                    context) {}
    /// Over libxml2 input callbacks (xmlReaderForIO): `read` and `close` called with `input`.
    /// Throws RepoError(`context` + "cannot create an XML reader").
    XmlReader(xmlInputReadCallback read, xmlInputCloseCallback close, void* input, const std::string& context)
        : XmlReader(xmlReaderForIO(read, close, input, nullptr, nullptr, k_xml_options), context) {}
    XmlReader(const XmlReader&) = delete;
    XmlReader& operator=(const XmlReader&) = delete;

    [[nodiscard]] xmlTextReaderPtr get() const { return m_reader.get(); }

    /// Why the document is not well-formed, given `rc`, the last xmlTextReaderRead result:
    /// "" when it was read to its end (0) with no error reported, else libxml2's first error
    /// with its line ("XML parse error" when libxml2 reported none).
    [[nodiscard]] std::string failure(int rc) const {
        if (rc == 0 && m_errors.first.empty()) {
            return {};
        }
        return m_errors.first.empty() ? std::string("XML parse error") : m_errors.first;
    }

private:
    XmlReader(xmlTextReaderPtr reader, const std::string& context) : m_reader(reader) {
        if (!m_reader) {
            throw RepoError(context + "cannot create an XML reader");
        }
        m_errors.attach(m_reader.get());
    }

    ReaderPtr m_reader;
    XmlErrors m_errors;
};

} // namespace leo::repo::detail
