// primary metadata: leo::repo::parse_primary, the libarchive decompression (gz, xz, bz2,
// zst or none) and the libxml2 streaming reader, what load_metadata runs on the verified
// primary file. The input is the (compressed or plain) file; each package found is also
// turned into its URL and NEVRA, as the upgrade plan does.
#include "fuzz_input.hpp"
#include "fuzz_xml.hpp"

#include "leo/common/error.hpp"
#include "leo/repo/metadata.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const auto packages = leo::repo::parse_primary(std::string_view(reinterpret_cast<const char*>(data), size),
                                                       "http://repo.example.com/el7/", nullptr, "fuzz primary.xml: ");
        for (const auto& p : packages) {
            (void)p.url();
            (void)p.nevra();
        }
    } catch (const leo::Error&) {
    }
    return 0;
}
