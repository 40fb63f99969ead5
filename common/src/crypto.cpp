#include "leo/common/crypto.hpp"

#include "leo/common/error.hpp"

#include <cerrno>
#include <cstdio>
#include <memory>

#include <openssl/evp.h>

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
    const EVP_MD* md = EVP_get_digestbyname(name.c_str());
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

} // namespace leo::crypto
