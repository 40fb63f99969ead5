// Random bytes, AES-256-GCM sealing (round trips, fresh nonces, every tamper refused) and base64 (RFC 4648).
#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace {
namespace crypto = leo::crypto;
using namespace std::string_literals;

constexpr std::size_t k_overhead = crypto::k_gcm_nonce_size + crypto::k_gcm_tag_size;
const std::string k_aad = "unit test aad";

std::string test_key() { return crypto::random_bytes(crypto::k_aes256_key_size); }

/// The message (whole chain) of the leo::Error `f` throws; a test failure when it throws none.
template <class F> std::string error_of(F&& f) {
    try {
        std::forward<F>(f)();
    } catch (const leo::Error& e) {
        return leo::describe(e);
    }
    ADD_FAILURE() << "expected a leo::Error";
    return {};
}

TEST(Crypto, SizeConstants) {
    EXPECT_EQ(crypto::k_aes256_key_size, 32u);
    EXPECT_EQ(crypto::k_gcm_nonce_size, 12u);
    EXPECT_EQ(crypto::k_gcm_tag_size, 16u);
}

TEST(Crypto, RandomBytesLength) {
    EXPECT_EQ(crypto::random_bytes(0).size(), 0u);
    EXPECT_EQ(crypto::random_bytes(1).size(), 1u);
    EXPECT_EQ(crypto::random_bytes(32).size(), 32u);
    EXPECT_EQ(crypto::random_bytes(4096).size(), 4096u);
}

TEST(Crypto, RandomBytesDifferBetweenCalls) {
    const auto a = crypto::random_bytes(32);
    const auto b = crypto::random_bytes(32);
    EXPECT_NE(a, b);
    // 4 KiB from a CSPRNG is not all one byte value
    const auto big = crypto::random_bytes(4096);
    EXPECT_NE(big, std::string(4096, big[0]));
}

TEST(Crypto, GcmRoundTrip) {
    const auto key = test_key();
    const std::string plain = "the database password";
    const auto sealed = crypto::aes256gcm_encrypt(key, plain, k_aad);
    EXPECT_EQ(crypto::aes256gcm_decrypt(key, sealed, k_aad), plain);
    // the plaintext does not appear in the output
    EXPECT_EQ(sealed.find(plain), std::string::npos);
}

TEST(Crypto, GcmRoundTripEmptyPlaintext) {
    const auto key = test_key();
    const auto sealed = crypto::aes256gcm_encrypt(key, "", k_aad);
    EXPECT_EQ(sealed.size(), k_overhead);
    EXPECT_EQ(crypto::aes256gcm_decrypt(key, sealed, k_aad), "");
}

TEST(Crypto, GcmRoundTripBinaryWithNuls) {
    const auto key = test_key();
    const std::string plain = "\0a\0\xff\x80\n\0"s + std::string(1000, '\0') + "end\0"s;
    ASSERT_EQ(plain.size(), 1011u);
    const auto sealed = crypto::aes256gcm_encrypt(key, plain, k_aad);
    const auto opened = crypto::aes256gcm_decrypt(key, sealed, k_aad);
    EXPECT_EQ(opened.size(), plain.size());
    EXPECT_EQ(opened, plain);
    // every byte value
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    EXPECT_EQ(crypto::aes256gcm_decrypt(key, crypto::aes256gcm_encrypt(key, all, k_aad), k_aad), all);
}

TEST(Crypto, GcmRoundTripEmptyAad) {
    const auto key = test_key();
    const auto sealed = crypto::aes256gcm_encrypt(key, "secret", "");
    EXPECT_EQ(crypto::aes256gcm_decrypt(key, sealed, ""), "secret");
    EXPECT_THROW((void)crypto::aes256gcm_decrypt(key, sealed, "x"), leo::Error);
}

TEST(Crypto, GcmOutputSize) {
    const auto key = test_key();
    for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 100u, 4096u}) {
        const auto sealed = crypto::aes256gcm_encrypt(key, std::string(n, 'x'), k_aad);
        EXPECT_EQ(sealed.size(), 12 + n + 16) << "plaintext of " << n << " bytes";
    }
}

TEST(Crypto, GcmFreshNonceEachTime) {
    const auto key = test_key();
    const auto a = crypto::aes256gcm_encrypt(key, "same plaintext", k_aad);
    const auto b = crypto::aes256gcm_encrypt(key, "same plaintext", k_aad);
    EXPECT_NE(a, b);
    EXPECT_NE(a.substr(0, crypto::k_gcm_nonce_size), b.substr(0, crypto::k_gcm_nonce_size));
    EXPECT_EQ(crypto::aes256gcm_decrypt(key, a, k_aad), "same plaintext");
    EXPECT_EQ(crypto::aes256gcm_decrypt(key, b, k_aad), "same plaintext");
}

TEST(Crypto, GcmWrongKeyFails) {
    const auto key = test_key();
    auto other = key;
    other[0] = static_cast<char>(other[0] ^ 0x01);
    const auto sealed = crypto::aes256gcm_encrypt(key, "secret", k_aad);
    EXPECT_THROW((void)crypto::aes256gcm_decrypt(other, sealed, k_aad), leo::Error);
    EXPECT_THROW((void)crypto::aes256gcm_decrypt(test_key(), sealed, k_aad), leo::Error);
    const auto msg = error_of([&] { (void)crypto::aes256gcm_decrypt(other, sealed, k_aad); });
    EXPECT_NE(msg.find("authentication failed"), std::string::npos) << msg;
}

TEST(Crypto, GcmWrongAadFails) {
    const auto key = test_key();
    const auto sealed = crypto::aes256gcm_encrypt(key, "secret", k_aad);
    EXPECT_THROW((void)crypto::aes256gcm_decrypt(key, sealed, "another purpose"), leo::Error);
    EXPECT_THROW((void)crypto::aes256gcm_decrypt(key, sealed, ""), leo::Error);
    EXPECT_THROW((void)crypto::aes256gcm_decrypt(key, sealed, k_aad + "x"), leo::Error);
}

TEST(Crypto, GcmFlippedBitAnywhereFails) {
    const auto key = test_key();
    const std::string plain = "a secret of some length";
    const auto sealed = crypto::aes256gcm_encrypt(key, plain, k_aad);
    ASSERT_EQ(sealed.size(), k_overhead + plain.size());
    const std::vector<std::pair<const char*, std::size_t>> positions{
        {"nonce first byte", 0},
        {"nonce last byte", crypto::k_gcm_nonce_size - 1},
        {"ciphertext first byte", crypto::k_gcm_nonce_size},
        {"ciphertext last byte", crypto::k_gcm_nonce_size + plain.size() - 1},
        {"tag first byte", crypto::k_gcm_nonce_size + plain.size()},
        {"tag last byte", sealed.size() - 1},
    };
    for (const auto& [what, pos] : positions) {
        for (int bit : {0, 7}) {
            auto bad = sealed;
            bad[pos] = static_cast<char>(bad[pos] ^ (1 << bit));
            EXPECT_THROW((void)crypto::aes256gcm_decrypt(key, bad, k_aad), leo::Error) << what << " bit " << bit;
        }
    }
    // and the untouched value still opens
    EXPECT_EQ(crypto::aes256gcm_decrypt(key, sealed, k_aad), plain);
}

TEST(Crypto, GcmFlippedTagOfEmptyPlaintextFails) {
    const auto key = test_key();
    auto sealed = crypto::aes256gcm_encrypt(key, "", k_aad);
    sealed.back() = static_cast<char>(sealed.back() ^ 0x10);
    EXPECT_THROW((void)crypto::aes256gcm_decrypt(key, sealed, k_aad), leo::Error);
}

TEST(Crypto, GcmTruncatedOrExtendedFails) {
    const auto key = test_key();
    const auto sealed = crypto::aes256gcm_encrypt(key, "secret", k_aad);
    // shorter than nonce + tag: refused as too short
    for (std::size_t n : {0u, 1u, 12u, 27u}) {
        const auto msg = error_of([&] { (void)crypto::aes256gcm_decrypt(key, sealed.substr(0, n), k_aad); });
        EXPECT_NE(msg.find("too short"), std::string::npos) << n << ": " << msg;
    }
    // 28 bytes or more but cut: authentication fails
    EXPECT_THROW((void)crypto::aes256gcm_decrypt(key, sealed.substr(0, 28), k_aad), leo::Error);
    EXPECT_THROW((void)crypto::aes256gcm_decrypt(key, sealed.substr(0, sealed.size() - 1), k_aad), leo::Error);
    EXPECT_THROW((void)crypto::aes256gcm_decrypt(key, sealed + "x", k_aad), leo::Error);
}

TEST(Crypto, GcmKeyOfWrongSizeThrows) {
    const auto good = test_key();
    const auto sealed = crypto::aes256gcm_encrypt(good, "secret", k_aad);
    for (std::size_t n : {0u, 16u, 31u, 33u, 64u}) {
        const std::string key(n, 'k');
        const auto enc = error_of([&] { (void)crypto::aes256gcm_encrypt(key, "secret", k_aad); });
        EXPECT_NE(enc.find(std::to_string(n) + " bytes"), std::string::npos) << enc;
        const auto dec = error_of([&] { (void)crypto::aes256gcm_decrypt(key, sealed, k_aad); });
        EXPECT_NE(dec.find(std::to_string(n) + " bytes"), std::string::npos) << dec;
    }
}

TEST(Crypto, Base64Rfc4648Vectors) {
    const std::vector<std::pair<std::string, std::string>> vectors{
        {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},     {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        EXPECT_EQ(crypto::base64_encode(plain), encoded) << "'" << plain << "'";
        EXPECT_EQ(crypto::base64_decode(encoded), plain) << "'" << encoded << "'";
    }
}

TEST(Crypto, Base64BinaryRoundTrip) {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    for (std::size_t n = 0; n <= all.size(); n += 37) {
        const auto bytes = all.substr(0, n);
        const auto text = crypto::base64_encode(bytes);
        EXPECT_EQ(text.size() % 4, 0u);
        EXPECT_EQ(text.find('\n'), std::string::npos);
        EXPECT_EQ(crypto::base64_decode(text), bytes) << n << " bytes";
    }
    const auto nuls = "\0\0\0\0\0"s;
    EXPECT_EQ(crypto::base64_encode(nuls), "AAAAAAA=");
    EXPECT_EQ(crypto::base64_decode("AAAAAAA="), nuls);
    const auto random = crypto::random_bytes(1000);
    EXPECT_EQ(crypto::base64_decode(crypto::base64_encode(random)), random);
}

TEST(Crypto, Base64DecodeRejectsInvalidText) {
    for (const char* bad : {"abc", "ab=c", "a*cd", "====", "a===", "=abc", "Zg==Zg==", "Zm9v\n", " Zm9v", "Zm 9"}) {
        const auto msg = error_of([&] { (void)crypto::base64_decode(bad); });
        EXPECT_NE(msg.find("not valid base64"), std::string::npos) << "'" << bad << "': " << msg;
    }
}

} // namespace
