#include "leo/common/error.hpp"
#include "leo/rpm/evr.hpp"

#include <gtest/gtest.h>

namespace {
using leo::rpm::compare_evr;
using leo::rpm::parse_evr;

int cmp(const std::string& a, const std::string& b) { return compare_evr(parse_evr(a), parse_evr(b)); }

TEST(Evr, NumericSegmentsCompareAsNumbers) {
    EXPECT_LT(cmp("9.1.2-1", "9.1.10-1"), 0);
    EXPECT_GT(cmp("9.1.10-1", "9.1.2-1"), 0);
    EXPECT_EQ(cmp("9.1.2-1", "9.1.2-1"), 0);
}

TEST(Evr, EpochWinsOverVersion) {
    EXPECT_GT(cmp("1:9.0.1-1", "9.9.9-1"), 0);
    EXPECT_EQ(cmp("0:9.0-1", "9.0-1"), 0);
}

TEST(Evr, TildeSortsBeforeAndCaretAfter) {
    EXPECT_LT(cmp("9.2.0~rc1-1", "9.2.0-1"), 0);
    EXPECT_GT(cmp("9.2.0^git1-1", "9.2.0-1"), 0);
    EXPECT_LT(cmp("9.2.0~rc1-1", "9.2.0~rc2-1"), 0);
}

TEST(Evr, ReleaseComparedWhenBothPresent) {
    EXPECT_LT(cmp("9.0-1", "9.0-2"), 0);
    EXPECT_EQ(cmp("9.0", "9.0-2"), 0);
}

TEST(Evr, ParseSplitsEpochVersionRelease) {
    auto e = parse_evr("3:1.2.3-4.el7");
    EXPECT_EQ(e.epoch, 3u);
    EXPECT_EQ(e.version, "1.2.3");
    EXPECT_EQ(e.release, "4.el7");
}

TEST(Evr, BadInputThrows) {
    EXPECT_THROW(parse_evr(""), leo::RpmError);
    EXPECT_THROW(parse_evr("x:1.0-1"), leo::RpmError);
    EXPECT_THROW(parse_evr("1:-1"), leo::RpmError);
}

} // namespace
