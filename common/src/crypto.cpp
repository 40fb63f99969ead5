#include "leo/common/crypto.hpp"

#include "leo/common/error.hpp"

#include <cerrno>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <utility>

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace leo::crypto {
namespace {
struct CtxDeleter {
    void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<EVP_MD_CTX, CtxDeleter>;
struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

CtxPtr start(std::string_view algorithm) {
    const std::string name(algorithm);
    // The digests we use by their own functions: a lookup by name first makes OpenSSL
    // register every algorithm it has (a millisecond, the most of a warm answer's digests).
    const EVP_MD* md = name == "sha256" ? EVP_sha256()
                       : name == "sha1" ? EVP_sha1()
                       : name == "sha512" ? EVP_sha512()
                                          : EVP_get_digestbyname(name.c_str());
    if (md == nullptr) throw Error("unknown digest algorithm '" + name + "'");
    CtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1)
        throw Error("cannot initialise digest " + name);
    return ctx;
}

std::string finish(EVP_MD_CTX* ctx) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, md, &len) != 1) throw Error("digest failed");
    static const char* hex = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 0xf];
    }
    return out;
}
} // namespace

std::string digest_hex(std::string_view algorithm, std::string_view data) {
    auto ctx = start(algorithm);
    EVP_DigestUpdate(ctx.get(), data.data(), data.size());
    return finish(ctx.get());
}

Digest::Digest(std::string_view algorithm) : m_ctx(start(algorithm).release()) {}
Digest::~Digest() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(m_ctx)); }
Digest::Digest(Digest&& other) noexcept : m_ctx(std::exchange(other.m_ctx, nullptr)) {}
Digest& Digest::operator=(Digest&& other) noexcept {
    if (this != &other) {
        EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(m_ctx));
        m_ctx = std::exchange(other.m_ctx, nullptr);
    }
    return *this;
}
void Digest::update(const void* data, std::size_t size) {
    if (m_ctx == nullptr || EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(m_ctx), data, size) != 1)
        throw Error("digest update failed");
}
std::string Digest::hex() {
    if (m_ctx == nullptr) throw Error("digest already finished");
    CtxPtr ctx(static_cast<EVP_MD_CTX*>(std::exchange(m_ctx, nullptr)));
    return finish(ctx.get());
}

std::string file_digest_hex(std::string_view algorithm, const std::filesystem::path& path) {
    auto ctx = start(algorithm);
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rbe"));
    if (!f) throw system_error("cannot read " + path.string(), errno);
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) EVP_DigestUpdate(ctx.get(), buf, n);
    if (std::ferror(f.get())) throw system_error("cannot read " + path.string(), errno);
    return finish(ctx.get());
}

namespace {
struct CipherCtxDeleter {
    void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

void check_key(std::string_view key) {
    if (key.size() != k_aes256_key_size)
        throw Error("AES-256-GCM key has " + std::to_string(key.size()) + " bytes; it must have " +
                    std::to_string(k_aes256_key_size));
}
} // namespace

std::string random_bytes(std::size_t n) {
    std::string out(n, '\0');
    if (n > 0 && RAND_bytes(bytes(out), static_cast<int>(n)) != 1) throw Error("the random number generator failed");
    return out;
}

std::string aes256gcm_encrypt(std::string_view key, std::string_view plaintext, std::string_view aad) {
    check_key(key);
    const std::string nonce = random_bytes(k_gcm_nonce_size);
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    std::string out(k_gcm_nonce_size + plaintext.size() + k_gcm_tag_size, '\0');
    std::copy(nonce.begin(), nonce.end(), out.begin());
    unsigned char* ct = bytes(out) + k_gcm_nonce_size;
    if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(k_gcm_nonce_size), nullptr) != 1 ||
        EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(nonce)) != 1 ||
        (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1) ||
        EVP_EncryptUpdate(ctx.get(), ct, &len, bytes(plaintext), static_cast<int>(plaintext.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), ct + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(k_gcm_tag_size),
                            ct + plaintext.size()) != 1)
        throw Error("AES-256-GCM encryption failed");
    return out;
}

std::string aes256gcm_decrypt(std::string_view key, std::string_view sealed, std::string_view aad) {
    check_key(key);
    if (sealed.size() < k_gcm_nonce_size + k_gcm_tag_size)
        throw Error("the encrypted value is too short to be AES-256-GCM output (" + std::to_string(sealed.size()) +
                    " bytes)");
    const std::string_view nonce = sealed.substr(0, k_gcm_nonce_size);
    const std::string_view ct = sealed.substr(k_gcm_nonce_size, sealed.size() - k_gcm_nonce_size - k_gcm_tag_size);
    std::string tag(sealed.substr(sealed.size() - k_gcm_tag_size));
    std::string out(ct.size(), '\0');
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(k_gcm_nonce_size), nullptr) != 1 ||
        EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(nonce)) != 1 ||
        (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1) ||
        EVP_DecryptUpdate(ctx.get(), bytes(out), &len, bytes(ct), static_cast<int>(ct.size())) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(k_gcm_tag_size), tag.data()) != 1)
        throw Error("AES-256-GCM decryption failed");
    if (EVP_DecryptFinal_ex(ctx.get(), bytes(out) + len, &len) != 1)
        throw Error("AES-256-GCM authentication failed: wrong key, or the encrypted value was changed");
    return out;
}

std::string base64_encode(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(bytes(out), bytes(in), static_cast<int>(in.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string base64_decode(std::string_view text) {
    // EVP_DecodeBlock ignores neither padding nor stray characters consistently: check the
    // alphabet and length first, then take the padding off its output.
    // The text may be key material: the message gives its length only.
    const auto invalid = [&] { return Error("not valid base64 (" + std::to_string(text.size()) + " characters)"); };
    if (text.size() % 4 != 0) throw invalid();
    size_t pad = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                           c == '/';
        if (c == '=' && i + 2 >= text.size()) {
            ++pad;
            continue;
        }
        if (!alpha || pad > 0) throw invalid();
    }
    std::string out(3 * text.size() / 4, '\0');
    const int n = EVP_DecodeBlock(bytes(out), bytes(text), static_cast<int>(text.size()));
    if (n < 0) throw invalid();
    out.resize(static_cast<size_t>(n) - pad);
    return out;
}

} // namespace leo::crypto
