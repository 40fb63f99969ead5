// The journal's reader: parse_journal on text (Journal::last_run reads the file and calls it).
#include "leo/common/error.hpp"
#include "leo/installer/journal.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

namespace {
using leo::installer::parse_journal;

const char* const k_file = "/var/lib/leo-installer/journal";

/// The InstallError message parse_journal throws for `text` ("" when it throws none).
std::string error_for(const std::string& text) {
    try {
        (void)parse_journal(text, k_file);
    } catch (const leo::InstallError& e) {
        return e.what();
    }
    return {};
}

TEST(Journal, LastRunWithStepsAndATornLastLine) {
    const auto run = parse_journal(
        R"({"v":1,"type":"begin","run":"r1","command":"upgrade","from":"a-1-1.x86_64","to":"a-2-1.x86_64"})"
        "\n"
        R"({"v":1,"type":"step","run":"r1","step":"restore-point","state":"start"})"
        "\n"
        R"({"v":1,"type":"step","run":"r1","step":"restore-point","state":"done","data":{"id":"S1"}})"
        "\n"
        R"({"v":1,"type":"step","run":"r1","step":"rpm","state":"start"})"
        "\n"
        R"({"v":1,"type":"st)",
        k_file);
    ASSERT_TRUE(run);
    EXPECT_EQ(run->id, "r1");
    EXPECT_EQ(run->command, "upgrade");
    EXPECT_EQ(run->from, "a-1-1.x86_64");
    EXPECT_EQ(run->to, "a-2-1.x86_64");
    EXPECT_EQ(run->started, (std::vector<std::string>{"restore-point", "rpm"}));
    EXPECT_TRUE(run->is_done("restore-point"));
    EXPECT_EQ(run->done.at("restore-point").at("id"), "S1");
    EXPECT_FALSE(run->is_done("rpm"));
    EXPECT_FALSE(run->finished());
    EXPECT_FALSE(parse_journal("", k_file));
}

TEST(Journal, DamagedLineAndOtherVersionRefused) {
    EXPECT_EQ(error_for("{ not json\n{\"v\":1,\"type\":\"begin\"}\n"),
              std::string(k_file) + ":1: damaged journal line");
    EXPECT_EQ(error_for("{\"v\":2,\"type\":\"begin\"}\n"),
              std::string(k_file) +
                  ":1: journal format version 2 is not supported (this leo-installer reads version 1)");
}

// Found with fuzz/fuzz_state_json.cpp (fuzz/corpus/state_json/crash-journal-line-a-number,
// the journal "9"): a line that is JSON but not an object threw nlohmann's type_error out
// of last_run() ("cannot use value() with number"); so did a field of another type.
TEST(Journal, JsonThatIsNotARecordIsDamaged) {
    EXPECT_EQ(error_for("9"), std::string(k_file) + ":1: damaged journal line (must be an object, not number)");
    EXPECT_EQ(error_for("[1]\n{}\n"), std::string(k_file) + ":1: damaged journal line (must be an object, not array)");
    EXPECT_EQ(error_for("{\"v\":\"1\",\"type\":\"begin\"}\n"),
              std::string(k_file) +
                  ":1: journal format version \"1\" is not supported (this leo-installer reads version 1)");
    EXPECT_EQ(error_for("{\"type\":\"begin\"}\n"),
              std::string(k_file) +
                  ":1: journal format version 0 is not supported (this leo-installer reads version 1)");
    EXPECT_EQ(error_for("{\"v\":1,\"type\":[\"begin\"]}\n"),
              std::string(k_file) + ":1: damaged journal line (\"type\" must be a string, not array)");
    EXPECT_EQ(error_for("{\"v\":1,\"type\":\"begin\",\"run\":\"r\"}\n{\"v\":1,\"type\":\"step\",\"run\":\"r\",\"step\":"
                        "\"s\",\"state\":\"done\",\"data\":5}\n"),
              std::string(k_file) + ":2: damaged journal line (\"data\" must be an object, not number)");
    // A complete last line (newline-terminated) that is not JSON is damage, not a torn write.
    EXPECT_EQ(error_for("{\"v\":1,\"type\":\"begin\",\"run\":\"r\"}\ngarbage\n"),
              std::string(k_file) + ":2: damaged journal line");
    // A step record must name its step and a known state.
    EXPECT_EQ(error_for("{\"v\":1,\"type\":\"begin\",\"run\":\"r\"}\n{\"v\":1,\"type\":\"step\",\"run\":\"r\","
                        "\"state\":\"start\"}\n"),
              std::string(k_file) + ":2: damaged journal line (a step record without \"step\")");
    EXPECT_EQ(error_for("{\"v\":1,\"type\":\"begin\",\"run\":\"r\"}\n{\"v\":1,\"type\":\"step\",\"run\":\"r\","
                        "\"step\":\"s\",\"state\":\"half\"}\n"),
              std::string(k_file) + ":2: damaged journal line (step state \"half\" is neither start nor done)");
}

} // namespace

namespace {

TEST(JournalFile, TextThatIsNotUtf8IsRecordedReplacedNotFatal) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "the journal's directory is made root-only";
    leo::test::TempDir tmp;
    leo::installer::Journal journal(tmp.path());
    const auto id = journal.begin("upgrade", "broker-\xff\xfe-1", "broker-2");
    const auto run = journal.last_run();
    ASSERT_TRUE(run);
    EXPECT_EQ(run->id, id);
    EXPECT_EQ(run->from, "broker-\xEF\xBF\xBD\xEF\xBF\xBD-1"); // U+FFFD for each byte
    EXPECT_EQ(run->to, "broker-2");
}

} // namespace

// `history` reads every run: a journal written before "uid", "user" and "cmdline" existed
// reads as it is (user unknown); a run ended by a later `recover` gets its end.
TEST(Journal, EveryRunForHistoryOldAndNewRecords) {
    const auto runs = leo::installer::parse_journal_runs(
        R"({"v":1,"type":"begin","run":"r1","command":"install","from":"","to":"a-1-1.x86_64","time":"2026-01-01T10:00:00Z"})"
        "\n"
        R"({"v":1,"type":"end","run":"r1","outcome":"ok","time":"2026-01-01T10:01:00Z"})"
        "\n"
        R"({"v":1,"type":"begin","run":"r2","command":"upgrade","from":"a-1-1.x86_64","to":"a-2-1.x86_64",)"
        R"("time":"2026-01-02T10:00:00Z","uid":1000,"user":"alice","cmdline":"leo-installer upgrade -y"})"
        "\n"
        R"({"v":1,"type":"step","run":"r2","step":"rpm","state":"start","time":"2026-01-02T10:00:05Z"})"
        "\n"
        R"({"v":1,"type":"end","run":"r2","outcome":"recovered-back","time":"2026-01-02T11:00:00Z"})"
        "\n",
        k_file);
    ASSERT_EQ(runs.size(), 2U);
    EXPECT_EQ(runs[0].command, "install");
    EXPECT_FALSE(runs[0].uid);
    EXPECT_EQ(runs[0].user, "");
    EXPECT_EQ(runs[0].started_at, "2026-01-01T10:00:00Z");
    EXPECT_EQ(runs[0].ended_at, "2026-01-01T10:01:00Z");
    EXPECT_EQ(runs[0].outcome, "ok");
    EXPECT_EQ(runs[1].uid, 1000);
    EXPECT_EQ(runs[1].user, "alice");
    EXPECT_EQ(runs[1].command_line, "leo-installer upgrade -y");
    EXPECT_EQ(runs[1].started, std::vector<std::string>{"rpm"});
    EXPECT_EQ(runs[1].outcome, "recovered-back");
    EXPECT_EQ(runs[1].ended_at, "2026-01-02T11:00:00Z");
    // parse_journal's last run is the last of these.
    EXPECT_EQ(parse_journal(R"({"v":1,"type":"begin","run":"r1"})"
                            "\n"
                            R"({"v":1,"type":"begin","run":"r2"})"
                            "\n",
                            k_file)
                  ->id,
              "r2");
    EXPECT_EQ(error_for(R"({"v":1,"type":"begin","run":"r1","uid":"root"})"
                        "\n"),
              std::string(k_file) + ":1: damaged journal line (\"uid\" must be an integer, not string)");
}
