// The installer's INI files, chosen by the first byte (its value modulo 2; the seeds use
// '0' and '1'), the rest is the file:
//   0 ROOT/etc/leo-installer/installer.conf   leo::installer::parse_config
//   1 ROOT/etc/leostream/database.conf        leo::installer::parse_database_config
// database.conf's sealed password is opened with the key file of a scratch root made once
// at start-up (32 bytes 0x00..0x1f, base64), so a seed sealed with that key reaches the
// decryption (fuzz/corpus/installer_conf/ has one; fuzz/README.md says how it was made).
#include "fuzz_input.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/database_config.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace {
namespace stdfs = std::filesystem;

stdfs::path g_root;

void remove_root() {
    std::error_code ignored;
    stdfs::remove_all(g_root, ignored);
}
} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    std::string dir = (stdfs::temp_directory_path() / "leo-fuzz-root.XXXXXX").string();
    if (::mkdtemp(dir.data()) == nullptr) {
        std::perror("mkdtemp");
        std::abort();
    }
    g_root = dir;
    std::atexit(remove_root);
    std::string key;
    for (int i = 0; i < 32; ++i)
        key += static_cast<char>(i);
    stdfs::create_directories(g_root / "etc/leostream");
    leo::fs::write_file_atomic(g_root / "etc/leostream/database.key", leo::crypto::base64_encode(key) + "\n", 0600);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const std::string text = leo::fuzz::text_of(data + 1, size - 1);
    try {
        if (data[0] % 2 == 0) {
            const auto config = leo::installer::parse_config(text, "/etc/leo-installer/installer.conf");
            if (config.keep_restore_points < 1 || config.vm_snapshot_timeout.count() < 1 ||
                config.services_timeout.count() < 1)
                leo::fuzz::violated("installer.conf accepted a count or timeout below 1");
            // The hooks run with a timeout in milliseconds: the seconds must convert without overflow.
            constexpr auto k_max_seconds = std::chrono::milliseconds::max().count() / 1000;
            if (config.vm_snapshot_timeout.count() > k_max_seconds || config.services_timeout.count() > k_max_seconds)
                leo::fuzz::violated("installer.conf accepted a timeout that overflows milliseconds");
        } else {
            const auto config = leo::installer::parse_database_config(text, "/etc/leostream/database.conf", g_root);
            (void)leo::installer::masked_text(config);
        }
    } catch (const leo::Error&) {
    }
    return 0;
}
