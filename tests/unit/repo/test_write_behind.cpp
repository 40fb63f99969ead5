// WriteBehind (repo/src/write_behind.hpp): a download's blocks, of any size, copied into
// its ring and written and hashed on a second thread, give the file and the digest of the
// whole; a failed write stops the writer and is reported with its errno, nothing after it
// written.
#include "../../../repo/src/write_behind.hpp"
#include "leo/common/crypto.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

using leo::repo::detail::WriteBehind;

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

/// An unnamed temporary file, read back whole.
struct TempFile {
    TempFile() : fd(::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) {}
    ~TempFile() { ::close(fd); }
    std::string contents() const {
        struct stat st {};
        ::fstat(fd, &st);
        std::string s(static_cast<std::size_t>(st.st_size), '\0');
        std::size_t at = 0;
        while (at < s.size()) {
            const ssize_t r = ::pread(fd, s.data() + at, s.size() - at, static_cast<off_t>(at));
            if (r <= 0) {
                break;
            }
            at += static_cast<std::size_t>(r);
        }
        s.resize(at);
        return s;
    }
    int fd;
};

/// `data` given in blocks of `sizes` (cycled); the digest, and the file checked to equal `data`.
std::string in_blocks(const std::string& data, const std::vector<std::size_t>& sizes) {
    TempFile file;
    EXPECT_GE(file.fd, 0);
    WriteBehind writer(file.fd, "sha256");
    std::size_t at = 0;
    for (std::size_t i = 0; at < data.size(); ++i) {
        const std::size_t n = std::min(sizes[i % sizes.size()], data.size() - at);
        EXPECT_TRUE(writer.write(data.data() + at, n));
        at += n;
    }
    EXPECT_EQ(writer.finish(), 0);
    EXPECT_TRUE(file.contents() == data) << "the file differs from what was given";
    return writer.hex();
}

constexpr std::size_t k_chunk = WriteBehind::k_chunk;

TEST(WriteBehind, BlocksOfEverySizeGiveTheFileAndTheDigestOfTheWhole) {
    // more than the ring holds (k_chunks chunks), so chunks are reused while writing goes on
    const std::string data = bytes(WriteBehind::k_chunks * k_chunk * 2 + 12345);
    const std::string want = whole(data);
    EXPECT_EQ(in_blocks(data, {16384}), want);              // libcurl's usual blocks
    EXPECT_EQ(in_blocks(data, {k_chunk}), want);            // exactly one chunk each
    EXPECT_EQ(in_blocks(data, {k_chunk + 1, 7}), want);     // straddling chunk boundaries
    EXPECT_EQ(in_blocks(data, {3 * k_chunk + 17}), want);   // one block over several chunks
    EXPECT_EQ(in_blocks(data, {1, 262144, 999}), want);     // mixed
}

TEST(WriteBehind, ExactMultipleOfTheChunkAndSmallerThanOne) {
    const std::string exact = bytes(2 * k_chunk);
    EXPECT_EQ(in_blocks(exact, {4096}), whole(exact));
    const std::string small = bytes(100);
    EXPECT_EQ(in_blocks(small, {100}), whole(small));
}

TEST(WriteBehind, NothingGivenIsAnEmptyFileAndTheDigestOfNothing) {
    TempFile file;
    WriteBehind writer(file.fd, "sha256");
    EXPECT_EQ(writer.finish(), 0);
    EXPECT_EQ(file.contents(), "");
    EXPECT_EQ(writer.hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(WriteBehind, WithoutAnAlgorithmItOnlyWrites) {
    const std::string data = bytes(3 * k_chunk + 5);
    TempFile file;
    WriteBehind writer(file.fd, "");
    EXPECT_TRUE(writer.write(data.data(), data.size()));
    EXPECT_EQ(writer.finish(), 0);
    EXPECT_EQ(writer.hex(), "");
    EXPECT_TRUE(file.contents() == data);
}

TEST(WriteBehind, AFullDiskStopsTheWriterAndGivesItsErrno) {
    // /dev/full: every write() fails with ENOSPC, as on a full file system
    const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const std::string block = bytes(16384);
    {
        WriteBehind writer(fd, "sha256");
        bool refused = false;
        // more than the ring holds: once the first chunk failed, write() must say so
        for (std::size_t given = 0; given < 4 * WriteBehind::k_chunks * k_chunk && !refused; given += block.size()) {
            refused = !writer.write(block.data(), block.size());
        }
        EXPECT_TRUE(refused) << "write() went on accepting bytes after the file could not be written";
        EXPECT_EQ(writer.finish(), ENOSPC);
        EXPECT_EQ(writer.finish(), ENOSPC);  // idempotent
    }
    ::close(fd);
}

TEST(WriteBehind, AFailureInTheLastPartialChunkIsReportedByFinish) {
    const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    {
        WriteBehind writer(fd, "sha256");
        EXPECT_TRUE(writer.write("abc", 3));  // queued only: nothing written yet
        EXPECT_EQ(writer.finish(), ENOSPC);
    }
    ::close(fd);
}

TEST(WriteBehind, AnUnknownAlgorithmIsRefusedAtOnce) {
    TempFile file;
    EXPECT_ANY_THROW(WriteBehind(file.fd, "no-such-digest"));
}

} // namespace
