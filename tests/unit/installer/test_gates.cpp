// The maintenance window's pure logic (gates.hpp): parse_windows, inside_windows,
// minutes_until_open. Minutes of the week count from Monday 00:00.
#include "leo/common/error.hpp"
#include "leo/installer/gates.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {
using leo::installer::inside_windows;
using leo::installer::minutes_until_open;
using leo::installer::parse_windows;
using leo::installer::WeeklyRange;

constexpr int k_day = 24 * 60;
constexpr int k_week = 7 * k_day;
enum Day { mon, tue, wed, thu, fri, sat, sun };

/// Minute of the week of DAY HH:MM.
constexpr int at(Day d, int h, int m = 0) { return d * k_day + h * 60 + m; }

/// The UsageError message parse_windows throws for `text` ("" when it throws none).
std::string error_for(const std::string& text) {
    try {
        (void)parse_windows(text);
    } catch (const leo::UsageError& e) {
        return e.what();
    }
    return {};
}

bool inside(const std::string& windows, int minute) { return inside_windows(parse_windows(windows), minute); }

TEST(MaintenanceWindow, OneDayOneRange) {
    const auto r = parse_windows("Mon 02:00-03:00");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].start, at(mon, 2));
    EXPECT_EQ(r[0].length, 60);
    EXPECT_EQ(r[0].text, "Mon 02:00-03:00");
    EXPECT_FALSE(inside_windows(r, at(mon, 1, 59)));
    EXPECT_TRUE(inside_windows(r, at(mon, 2)));
    EXPECT_TRUE(inside_windows(r, at(mon, 2, 59)));
    EXPECT_FALSE(inside_windows(r, at(mon, 3))) << "the end is not inside";
    EXPECT_FALSE(inside_windows(r, at(tue, 2, 30))) << "another day";
}

TEST(MaintenanceWindow, DayRangeIsOneRangePerDay) {
    const auto r = parse_windows("Mon-Fri 02:00-03:00");
    ASSERT_EQ(r.size(), 5u);
    for (int d = mon; d <= fri; ++d) {
        EXPECT_EQ(r[static_cast<size_t>(d)].start, at(static_cast<Day>(d), 2)) << d;
        EXPECT_EQ(r[static_cast<size_t>(d)].length, 60) << d;
        EXPECT_EQ(r[static_cast<size_t>(d)].text, "Mon-Fri 02:00-03:00");
        EXPECT_TRUE(inside_windows(r, at(static_cast<Day>(d), 2, 30))) << d;
    }
    EXPECT_FALSE(inside_windows(r, at(sat, 2, 30)));
    EXPECT_FALSE(inside_windows(r, at(sun, 2, 30)));
    EXPECT_FALSE(inside_windows(r, at(wed, 12)));
}

TEST(MaintenanceWindow, DayRangeAcrossTheWeekEnd) {
    // Fri, Sat, Sun and Mon, each 22:00 to 02:00 the next day.
    const auto r = parse_windows("Fri-Mon 22:00-02:00");
    ASSERT_EQ(r.size(), 4u);
    EXPECT_EQ(r[0].start, at(fri, 22));
    EXPECT_EQ(r[3].start, at(mon, 22));
    for (const auto& x : r)
        EXPECT_EQ(x.length, 240);
    EXPECT_TRUE(inside_windows(r, at(sat, 1))); // Friday night's
    EXPECT_TRUE(inside_windows(r, at(sun, 23)));
    EXPECT_TRUE(inside_windows(r, at(mon, 1)));     // Sunday night's, across Sun -> Mon
    EXPECT_TRUE(inside_windows(r, at(tue, 1, 59))); // Monday night's
    EXPECT_FALSE(inside_windows(r, at(tue, 2)));
    EXPECT_FALSE(inside_windows(r, at(tue, 22)));
    EXPECT_FALSE(inside_windows(r, at(fri, 1))) << "Thursday night is not in Fri-Mon";
    EXPECT_FALSE(inside_windows(r, at(fri, 21, 59)));
}

TEST(MaintenanceWindow, EndOnAnotherDay) {
    const auto r = parse_windows("Sat 22:00-Sun 04:00");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].start, at(sat, 22));
    EXPECT_EQ(r[0].length, 6 * 60);
    EXPECT_FALSE(inside_windows(r, at(sat, 21, 59)));
    EXPECT_TRUE(inside_windows(r, at(sat, 23, 59)));
    EXPECT_TRUE(inside_windows(r, at(sun, 0)));
    EXPECT_TRUE(inside_windows(r, at(sun, 3, 59)));
    EXPECT_FALSE(inside_windows(r, at(sun, 4)));
}

TEST(MaintenanceWindow, EndOnAnotherDayAcrossTheWeekEnd) {
    const auto r = parse_windows("Sun 22:00-Mon 04:00");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].start, at(sun, 22));
    EXPECT_EQ(r[0].length, 6 * 60);
    EXPECT_TRUE(inside_windows(r, k_week - 1)); // Sun 23:59
    EXPECT_TRUE(inside_windows(r, 0));          // Mon 00:00
    EXPECT_TRUE(inside_windows(r, at(mon, 3, 59)));
    EXPECT_FALSE(inside_windows(r, at(mon, 4)));
    EXPECT_FALSE(inside_windows(r, at(sun, 21, 59)));
    // An end at midnight of the next day: Sun 22:00 to Mon 00:00.
    const auto m = parse_windows("Sun 22:00-Mon 00:00");
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].length, 120);
    EXPECT_TRUE(inside_windows(m, k_week - 1));
    EXPECT_FALSE(inside_windows(m, 0));
}

TEST(MaintenanceWindow, EndBeforeStartRunsIntoTheNextDay) {
    const auto r = parse_windows("Wed 23:00-01:00");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].start, at(wed, 23));
    EXPECT_EQ(r[0].length, 120);
    EXPECT_TRUE(inside_windows(r, at(thu, 0, 30)));
    EXPECT_FALSE(inside_windows(r, at(thu, 1)));
    EXPECT_FALSE(inside_windows(r, at(wed, 0, 30))) << "the early hours of the start day are not inside";
    // Sunday's night runs into Monday morning of the next week.
    EXPECT_TRUE(inside("Sun 23:00-01:00", at(mon, 0, 30)));
    EXPECT_FALSE(inside("Sun 23:00-01:00", at(sun, 0, 30)));
    // An end equal to the start: the whole day from there.
    const auto whole = parse_windows("Tue 06:00-06:00");
    ASSERT_EQ(whole.size(), 1u);
    EXPECT_EQ(whole[0].length, k_day);
}

TEST(MaintenanceWindow, TwentyFourHundredEndsTheDay) {
    const auto r = parse_windows("Mon 00:00-24:00");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].start, 0);
    EXPECT_EQ(r[0].length, k_day);
    EXPECT_TRUE(inside_windows(r, at(mon, 23, 59)));
    EXPECT_FALSE(inside_windows(r, at(tue, 0)));
    EXPECT_TRUE(inside("Sun 20:00-24:00", k_week - 1));
    EXPECT_FALSE(inside("Sun 20:00-24:00", 0)) << "Sun 24:00 is the week's end, not inside";
    EXPECT_EQ(parse_windows("Sat 22:00-Sun 24:00")[0].length, 26 * 60);
    // 24:00 is an end only.
    EXPECT_NE(error_for("Mon 24:00-24:00").find("'24:00' is not a time HH:MM"), std::string::npos)
        << error_for("Mon 24:00-24:00");
    EXPECT_NE(error_for("Mon 22:00-24:01").find("'24:01' is not a time HH:MM"), std::string::npos);
}

TEST(MaintenanceWindow, DayNamesInAnyCaseAndBlanks) {
    const auto short_names = parse_windows("Sat 22:00-Sun 04:00");
    for (const char* text :
         {"saturday 22:00-SUNDAY 04:00", "SAT 22:00-sun 04:00", "Sat 22:00 - Sun 04:00", "  Sat\t22:00-Sun 04:00  "}) {
        const auto r = parse_windows(text);
        ASSERT_EQ(r.size(), 1u) << text;
        EXPECT_EQ(r[0].start, short_names[0].start) << text;
        EXPECT_EQ(r[0].length, short_names[0].length) << text;
    }
    EXPECT_EQ(parse_windows("monday-FRIDAY 02:00-03:00").size(), 5u);
}

TEST(MaintenanceWindow, SeveralRanges) {
    const auto r = parse_windows("Sat 22:00-Sun 04:00, Mon-Fri 02:00-03:00,Wed 23:00-01:00");
    ASSERT_EQ(r.size(), 7u);
    EXPECT_EQ(r[0].text, "Sat 22:00-Sun 04:00");
    EXPECT_EQ(r[1].text, "Mon-Fri 02:00-03:00");
    EXPECT_EQ(r[6].text, "Wed 23:00-01:00");
    EXPECT_TRUE(inside_windows(r, at(sun, 1)));
    EXPECT_TRUE(inside_windows(r, at(thu, 2, 30)));
    EXPECT_TRUE(inside_windows(r, at(thu, 0, 30)));
    EXPECT_FALSE(inside_windows(r, at(thu, 1, 30)));
    EXPECT_FALSE(inside_windows(r, at(sun, 4, 30)));
}

TEST(MaintenanceWindow, MinutesUntilOpen) {
    const auto r = parse_windows("Sat 22:00-Sun 04:00");
    EXPECT_EQ(minutes_until_open(r, at(sat, 23)), 0) << "inside: open now";
    EXPECT_EQ(minutes_until_open(r, at(sat, 21)), 60);
    EXPECT_EQ(minutes_until_open(r, at(sat, 21, 59)), 1);
    // Just closed: a week less the window's six hours.
    EXPECT_EQ(minutes_until_open(r, at(sun, 4)), k_week - 6 * 60);
    // Across the week end Sun -> Mon.
    EXPECT_EQ(minutes_until_open(parse_windows("Mon 02:00-03:00"), at(sun, 23)), 180);
    EXPECT_EQ(minutes_until_open(parse_windows("Sun 22:00-Mon 04:00"), at(mon, 4)), k_week - 6 * 60);
    // The nearest of several.
    const auto days = parse_windows("Mon-Fri 02:00-03:00, Sat 22:00-Sun 04:00");
    EXPECT_EQ(minutes_until_open(days, at(tue, 3)), 23 * 60);
    EXPECT_EQ(minutes_until_open(days, at(fri, 3)), at(sat, 22) - at(fri, 3));
    EXPECT_EQ(minutes_until_open(days, at(sun, 4)), 22 * 60) << "Monday 02:00";
    // No range: nothing ever opens.
    EXPECT_FALSE(minutes_until_open(std::vector<WeeklyRange>{}, 0).has_value());
    EXPECT_FALSE(inside_windows({}, 0));
}

TEST(MaintenanceWindow, BadInputSaysWhichRangeAndWhatWasExpected) {
    struct Case {
        std::string text;
        std::string message;
    };
    const std::vector<Case> cases{
        {"Mon", "'Mon': no time; expected DAY HH:MM-[DAY ]HH:MM or DAY-DAY HH:MM-HH:MM (for example Sat 22:00-Sun "
                "04:00)"},
        {"Mon 02:00", "'Mon 02:00': no '-' between start and end"},
        {"Xyz 02:00-03:00", "'Xyz 02:00-03:00': 'Xyz' is not a day (Mon..Sun)"},
        {"Mon-Xyz 02:00-03:00", "'Mon-Xyz 02:00-03:00': 'Mon-Xyz' is not a day range such as Mon-Fri"},
        {"Mon 2:00-03:00", "'Mon 2:00-03:00': '2:00' is not a time HH:MM"},
        {"Mon 02:60-03:00", "'02:60' is not a time HH:MM"},
        {"Mon 02:00-25:00", "'25:00' is not a time HH:MM"},
        {"Mon 02:00-3pm", "'3pm' is not a time HH:MM"},
        {"Mon 02:00-Xyz 03:00", "'Xyz' is not a day (Mon..Sun)"},
        {"Mon-Fri 22:00-Sat 02:00", "'Mon-Fri 22:00-Sat 02:00': a day range cannot end on another day"},
        {"", "an empty range (two commas, or a comma at an end)"},
        {"Mon 02:00-03:00,", "an empty range"},
        {"Mon 02:00-03:00,,Tue 02:00-03:00", "an empty range"},
    };
    for (const auto& c : cases) {
        const std::string got = error_for(c.text);
        EXPECT_NE(got.find(c.message), std::string::npos) << "windows = " << c.text << "\ngot: " << got;
    }
    // The expected form is given with every malformed range.
    EXPECT_NE(error_for("Mon 02:00").find("expected DAY HH:MM-[DAY ]HH:MM"), std::string::npos);
}

} // namespace
