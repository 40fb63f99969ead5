#include "leo/installer/progress.hpp"

#include <gtest/gtest.h>

namespace {
using leo::installer::human_bytes;
using leo::installer::progress_line;

TEST(HumanBytes, SmallPackagesAreNotRoundedToZero) {
    EXPECT_EQ(human_bytes(0), "0 B");
    EXPECT_EQ(human_bytes(700), "700 B");
    EXPECT_EQ(human_bytes(1536), "1.5 KiB");
    EXPECT_EQ(human_bytes(std::uint64_t{27} << 20), "27.0 MiB");
    EXPECT_EQ(human_bytes(std::uint64_t{3} << 30), "3.0 GiB");
}

TEST(ProgressLine, KnownTotalShowsBarPercentBytesRateAndTimeLeft) {
    const std::string line = progress_line("download", 512 * 1024, 1024 * 1024, 1.0, 100);
    EXPECT_NE(line.find("  download ["), std::string::npos) << line;
    EXPECT_NE(line.find(" 50%"), std::string::npos) << line;
    EXPECT_NE(line.find("512.0 KiB/1.0 MiB"), std::string::npos) << line;
    EXPECT_NE(line.find("512.0 KiB/s"), std::string::npos) << line;
    EXPECT_NE(line.find("00:01 left"), std::string::npos) << line;
    EXPECT_LE(line.size(), 100u);
}

TEST(ProgressLine, TinyPayloadReadsInBytesNotZeroKiB) {
    const std::string line = progress_line("install", 300, 700, 0.0, 100);
    EXPECT_NE(line.find("300 B/700 B"), std::string::npos) << line;
    EXPECT_EQ(line.find("0/0"), std::string::npos) << line;
    EXPECT_NE(line.find("--:-- left"), std::string::npos) << line;  // no rate yet
}

TEST(ProgressLine, FinishedShowsTotalTime) {
    const std::string line = progress_line("install", 700, 700, 65.0, 100);
    EXPECT_NE(line.find("100%"), std::string::npos) << line;
    EXPECT_NE(line.find("01:05 total"), std::string::npos) << line;
}

TEST(ProgressLine, UnknownTotalAndNarrowTerminal) {
    EXPECT_EQ(progress_line("metadata", 2048, 0, 0.0, 100), "  metadata  2.0 KiB");
    EXPECT_LE(progress_line("download", 10, 100, 1.0, 40).size(), 40u);
}

} // namespace
