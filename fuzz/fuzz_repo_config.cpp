// yum's INI files: leo::repo::parse_repo_config (inih with the long-line reader), what
// load_repo_configs runs on every ROOT/etc/yum.repos.d/*.repo. yum.conf is the same format
// (its [main] is ignored, as in a .repo file); there is no separate yum.conf parser. The
// same bytes also go to leo::repo::repo_from_path (`--repofrompath ID,URL`).
#include "fuzz_input.hpp"

#include "leo/common/error.hpp"
#include "leo/repo/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text = leo::fuzz::text_of(data, size);
    try {
        const auto configs = leo::repo::parse_repo_config(text, "/etc/yum.repos.d/fuzz.repo");
        for (const auto& c : configs) {
            if (c.enabled && c.baseurls.empty())
                leo::fuzz::violated("an enabled repository without baseurl");
        }
    } catch (const leo::Error&) {
    }
    try {
        (void)leo::repo::repo_from_path(text);
    } catch (const leo::Error&) {
    }
    return 0;
}
