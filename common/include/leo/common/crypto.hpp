#pragma once
/// Digests through OpenSSL's EVP interface (the only place common/ calls OpenSSL).

#include <filesystem>
#include <string>
#include <string_view>

namespace leo::crypto {

/// Lowercase hex digest of `data`. `algorithm` is an OpenSSL digest name ("sha256",
/// "sha1", "sha512", ...). Throws leo::Error for an unknown algorithm.
[[nodiscard]] std::string digest_hex(std::string_view algorithm, std::string_view data);

/// Lowercase hex digest of the file at `path`, read in 64 KiB blocks.
/// Throws leo::SystemError when it cannot be read, leo::Error for an unknown algorithm.
[[nodiscard]] std::string file_digest_hex(std::string_view algorithm, const std::filesystem::path& path);

} // namespace leo::crypto
