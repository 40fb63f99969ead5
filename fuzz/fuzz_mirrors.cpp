// Mirror lists: leo::repo::parse_metalink (libxml2's streaming reader) and
// parse_mirrorlist, what load_metadata runs on a fetched metalink= or mirrorlist= document,
// then metalink_mismatch against a fixed repomd.xml. The input is the whole document.
#include "fuzz_input.hpp"
#include "fuzz_xml.hpp"

#include "leo/common/error.hpp"
#include "leo/repo/mirrors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text = leo::fuzz::text_of(data, size);
    (void)leo::repo::parse_mirrorlist(text, leo::repo::FileUrls::refused, {{"basearch", "x86_64"}});
    try {
        const auto metalink = leo::repo::parse_metalink(text, leo::repo::FileUrls::refused, "fuzz metalink: ");
        (void)leo::repo::metalink_mismatch(metalink, "<repomd/>");
    } catch (const leo::Error&) {
    }
    return 0;
}
