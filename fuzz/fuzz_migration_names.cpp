// The migration engine's parsers of file names and file text (migrations/src/engine/),
// chosen by the first byte (its value modulo 4; the seeds use '0'..'3'), the rest is the input:
//   0 a file name            parse_migration_name (V<version>__<description>.sql), then
//                            compare_versions with itself (0) and broker_part
//   1 two versions, NUL      compare_versions(a, b), which must be antisymmetric
//   2 a migration's text     has_no_transaction_marker, migration_checksum, split_statements,
//                            find_transaction_control (every line found is within the text)
//   3 a version              broker_part
#include "fuzz_input.hpp"

#include "leo/common/error.hpp"
#include "leo/migrations/engine.hpp"

#include <algorithm>

namespace mig = leo::migrations;

namespace {
int sign(int v) { return (v > 0) - (v < 0); }
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const std::string text = leo::fuzz::text_of(data + 1, size - 1);
    try {
        switch (data[0] % 4) {
        case 0: {
            const auto m = mig::parse_migration_name(text, "/home/leo/share/migrations");
            if (m) {
                if (mig::compare_versions(m->version, m->version) != 0)
                    leo::fuzz::violated("a version differs from itself");
                (void)mig::broker_part(m->version);
            }
            break;
        }
        case 1: {
            const auto nul = text.find('\0');
            const std::string a = text.substr(0, nul);
            const std::string b = nul == std::string::npos ? std::string() : text.substr(nul + 1);
            const int ab = mig::compare_versions(a, b);
            if (sign(ab) != -sign(mig::compare_versions(b, a)))
                leo::fuzz::violated("compare_versions is not antisymmetric");
            break;
        }
        case 2: {
            (void)mig::has_no_transaction_marker(text);
            (void)mig::migration_checksum(text);
            (void)mig::split_statements(text);
            const long lines = 1 + static_cast<long>(std::count(text.begin(), text.end(), '\n') +
                                                     std::count(text.begin(), text.end(), '\r'));
            for (const auto& t : mig::find_transaction_control(text))
                if (t.line < 1 || t.line > lines)
                    leo::fuzz::violated("a transaction control statement outside the text's lines");
            break;
        }
        case 3: (void)mig::broker_part(text); break;
        }
    } catch (const leo::Error&) {
    }
    return 0;
}
