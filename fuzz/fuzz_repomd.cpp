// repodata/repomd.xml: leo::repo::parse_repomd (libxml2's streaming reader), what
// load_metadata runs on the fetched file. The input is the whole document.
#include "fuzz_input.hpp"
#include "fuzz_xml.hpp"

#include "leo/common/error.hpp"
#include "leo/repo/metadata.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const auto repomd = leo::repo::parse_repomd(leo::fuzz::text_of(data, size), "fuzz repomd.xml: ");
        (void)repomd;
    } catch (const leo::Error&) {
    }
    return 0;
}
