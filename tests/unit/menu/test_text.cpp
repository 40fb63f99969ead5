// The pager's lines (text.cpp): long lines continued, not cut at the window's edge.
#include "text.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {
using leo::menu::pager_lines;
using leo::menu::pager_rows;
using ::testing::ElementsAre;

TEST(MenuText, ShortLinesAsTheyAre) {
    EXPECT_THAT(pager_lines("a\n\nb c\n", 10), ElementsAre("a", "", "b c"));
    EXPECT_THAT(pager_lines("x\ty\r\n", 10), ElementsAre("x y"));
    EXPECT_TRUE(pager_lines("", 10).empty());
}

TEST(MenuText, LongLinesBreakAtTheLastBlankThatFits) {
    EXPECT_THAT(pager_lines("the REST API needs >= 8 GB RAM", 12),
                ElementsAre("the REST API", "needs >= 8", "GB RAM"));
    // Every word is kept, no line is wider than the window.
    const std::string long_line = "error: the REST API cannot be enabled on this host: memory: 4.0 GiB MemTotal; "
                                  "the REST API needs >= 8 GB RAM; nothing was changed";
    std::string joined;
    for (const auto& l : pager_lines(long_line, 30)) {
        EXPECT_LE(l.size(), 30u) << l;
        joined += (joined.empty() ? "" : " ") + l;
    }
    EXPECT_EQ(joined, long_line);
}

TEST(MenuText, AWordLongerThanTheWindowIsCut) {
    EXPECT_THAT(pager_lines("/a/very/long/path/name", 8), ElementsAre("/a/very/", "long/pat", "h/name"));
}

TEST(MenuText, NeverInsideAUtf8Sequence) {
    // "ééééé" is 10 bytes; 9 bytes would end inside the fifth é.
    EXPECT_THAT(pager_lines("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 9),
                ElementsAre("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", "\xC3\xA9"));
}

TEST(MenuText, EachRowKnowsItsLineSoTheStatusCountsLines) {
    std::size_t lines = 0;
    const auto rows = pager_rows("short\n/a/very/long/path/name\nend\n", 8, &lines);
    EXPECT_EQ(lines, 3u);
    ASSERT_EQ(rows.size(), 5u);
    EXPECT_EQ(rows[0].line, 0u);
    EXPECT_EQ(rows[1].line, 1u);
    EXPECT_EQ(rows[3].line, 1u);
    EXPECT_EQ(rows[3].text, "h/name");
    EXPECT_EQ(rows[4].line, 2u);
    EXPECT_EQ(rows[4].text, "end");
}

} // namespace
