#pragma once
/// Digests, random bytes, AES-256-GCM and base64 through OpenSSL's EVP interface (the only
/// place common/ calls OpenSSL).

#include <cstddef>
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

/// A digest computed piece by piece (hashing a download as it arrives, instead of reading
/// the file again). Move-only. Throws leo::Error for an unknown algorithm.
class Digest {
public:
    explicit Digest(std::string_view algorithm);
    ~Digest();
    Digest(Digest&& other) noexcept;
    Digest& operator=(Digest&& other) noexcept;
    Digest(const Digest&) = delete;
    Digest& operator=(const Digest&) = delete;
    void update(const void* data, std::size_t size);
    /// Lowercase hex digest of everything given to update(); the object is spent.
    [[nodiscard]] std::string hex();

private:
    void* m_ctx = nullptr;  // EVP_MD_CTX
};

/// `n` bytes from OpenSSL's CSPRNG (RAND_bytes). Throws leo::Error when it fails.
[[nodiscard]] std::string random_bytes(std::size_t n);

/// AES-256-GCM key size (bytes) and the sizes this module uses for nonce and tag.
inline constexpr std::size_t k_aes256_key_size = 32;
inline constexpr std::size_t k_gcm_nonce_size = 12; ///< 96-bit nonce, NIST SP 800-38D's recommended size
inline constexpr std::size_t k_gcm_tag_size = 16;   ///< 128-bit authentication tag

/// Encrypt `plaintext` with AES-256-GCM under `key` (k_aes256_key_size bytes), a fresh
/// random nonce, and `aad` authenticated but not encrypted. Returns
/// nonce (12) || ciphertext (len(plaintext)) || tag (16), as bytes.
/// Throws leo::Error for a key of the wrong size or when OpenSSL fails.
[[nodiscard]] std::string aes256gcm_encrypt(std::string_view key, std::string_view plaintext, std::string_view aad);

/// Decrypt what aes256gcm_encrypt returned. Throws leo::Error when `sealed` is too short,
/// the key has the wrong size, or authentication fails (wrong key, wrong `aad`, or the
/// bytes were changed): the message says which of these could not be told apart.
[[nodiscard]] std::string aes256gcm_decrypt(std::string_view key, std::string_view sealed, std::string_view aad);

/// Standard base64 (RFC 4648, with padding, no line breaks) via EVP_EncodeBlock.
[[nodiscard]] std::string base64_encode(std::string_view bytes);
/// Inverse of base64_encode. Throws leo::Error for text that is not valid base64.
[[nodiscard]] std::string base64_decode(std::string_view text);

} // namespace leo::crypto
