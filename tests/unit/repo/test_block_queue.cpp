// BackgroundDigest (repo/src/block_queue.hpp): the digest of bytes given in blocks of any
// size, through its ring of fixed chunks on a second thread, equals the digest of the
// whole; blocks straddling, filling and exceeding chunks; nothing given.
#include "../../../repo/src/block_queue.hpp"
#include "leo/common/crypto.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using leo::repo::detail::BackgroundDigest;

std::string bytes(std::size_t n) {
    std::string s(n, '\0');
    std::uint32_t x = 2463534242u;  // xorshift: not a repeating pattern a wrong offset would hide
    for (auto& c : s) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x);
    }
    return s;
}

std::string whole(const std::string& data) {
    leo::crypto::Digest d("sha256");
    d.update(data.data(), data.size());
    return d.hex();
}

std::string in_blocks(const std::string& data, const std::vector<std::size_t>& sizes) {
    BackgroundDigest digest("sha256");
    std::size_t at = 0;
    for (std::size_t i = 0; at < data.size(); ++i) {
        const std::size_t n = std::min(sizes[i % sizes.size()], data.size() - at);
        digest.update(data.data() + at, n);
        at += n;
    }
    return digest.hex();
}

constexpr std::size_t k_chunk = BackgroundDigest::k_chunk;

TEST(BackgroundDigest, BlocksOfEverySizeGiveTheDigestOfTheWhole) {
    // more than the ring holds (k_chunks chunks), so chunks are reused while hashing goes on
    const std::string data = bytes(BackgroundDigest::k_chunks * k_chunk * 2 + 12345);
    const std::string want = whole(data);
    EXPECT_EQ(in_blocks(data, {16384}), want);              // libcurl's usual blocks
    EXPECT_EQ(in_blocks(data, {k_chunk}), want);            // exactly one chunk each
    EXPECT_EQ(in_blocks(data, {k_chunk + 1, 7}), want);     // straddling chunk boundaries
    EXPECT_EQ(in_blocks(data, {3 * k_chunk + 17}), want);   // one block over several chunks
    EXPECT_EQ(in_blocks(data, {1, 262144, 999}), want);     // mixed
}

TEST(BackgroundDigest, ExactMultipleOfTheChunkAndSmallerThanOne) {
    const std::string exact = bytes(2 * k_chunk);
    EXPECT_EQ(in_blocks(exact, {4096}), whole(exact));
    const std::string small = bytes(100);
    EXPECT_EQ(in_blocks(small, {100}), whole(small));
}

TEST(BackgroundDigest, NothingGivenIsTheDigestOfNothing) {
    BackgroundDigest digest("sha256");
    EXPECT_EQ(digest.hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

} // namespace
