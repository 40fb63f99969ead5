// yum's INI files: leo::repo::parse_repo_config (inih with the long-line reader), what
// load_yum_config runs on yum.conf, dnf.conf and every *.repo of each reposdir (parse_repo_config
// is the same reader and section rules, without [main] defaults). The
// same bytes also go to leo::repo::repo_from_path (`--repofrompath ID,URL`).
#include "fuzz_input.hpp"

#include "leo/common/error.hpp"
#include "leo/repo/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text = leo::fuzz::text_of(data, size);
    try {
        const auto configs = leo::repo::parse_repo_config(text, "/etc/yum.repos.d/fuzz.repo");
        for (const auto& c : configs) {
            if (c.enabled && c.baseurls.empty() && c.mirrorlist.empty() && c.metalink.empty())
                leo::fuzz::violated("an enabled repository without baseurl, mirrorlist or metalink");
        }
    } catch (const leo::Error&) {
    }
    try {
        (void)leo::repo::repo_from_path(text);
    } catch (const leo::Error&) {
    }
    return 0;
}
