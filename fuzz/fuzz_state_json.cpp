// The installer's own JSON files, chosen by the first byte (its value modulo 3; the seeds
// use '0', '1' and '2'), the rest is the file:
//   0 ROOT/var/lib/leo-installer/journal                 leo::installer::parse_journal
//   1 ROOT/var/lib/leo-installer/snapshots/ID/manifest.json  leo::installer::parse_manifest
//   2 a saved `facts --json` (`preflight --facts FILE`)    leo::preflight::parse_facts_text
// They are written by the installer but read back after crashes, edits and copies between
// hosts, so they are outside input. Facts that are accepted must also survive the trip
// back through to_json (what `facts --json` writes) and parse_facts_text unchanged.
#include "fuzz_input.hpp"

#include "leo/common/error.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/restore_point.hpp"
#include "leo/preflight/facts.hpp"

#include <nlohmann/json.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const std::string text = leo::fuzz::text_of(data + 1, size - 1);
    try {
        switch (data[0] % 3) {
        case 0: {
            const auto run = leo::installer::parse_journal(text, "/var/lib/leo-installer/journal");
            if (run) {
                (void)run->finished();
                for (const auto& step : run->started)
                    (void)run->is_done(step);
            }
            break;
        }
        case 1: {
            const auto rp = leo::installer::parse_manifest(text, "/var/lib/leo-installer/snapshots/fuzz");
            (void)leo::installer::to_json(rp).dump();
            break;
        }
        case 2: {
            const auto facts = leo::preflight::parse_facts_text(text, "facts.json");
            const std::string again = leo::preflight::to_json(facts).dump(2);
            try {
                const auto back = leo::preflight::parse_facts_text(again, "facts.json (written again)");
                if (leo::preflight::to_json(back) != leo::preflight::to_json(facts))
                    leo::fuzz::violated("facts JSON does not read back as written");
            } catch (const leo::Error&) {
                leo::fuzz::violated("facts JSON written by to_json is refused by parse_facts_text");
            }
            break;
        }
        }
    } catch (const leo::Error&) {
    }
    return 0;
}
