// What the menu reads from the commands' JSON: the modes, the external connection, the
// log names; and the JSON the Edit form passes on stdin.
#include "runner.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
using namespace leo::menu;
using ::testing::ElementsAre;

TEST(MenuRunner, Modes) {
    const auto m = parse_modes(R"({"database_in_use": {"mode": "external", "endpoint": "x"}})",
                               R"({"ssl_certificate": {"installed": true}})");
    EXPECT_TRUE(m.external_database);
    EXPECT_TRUE(m.ssl_certificate);
    const auto i = parse_modes(R"({"database_in_use": {"mode": "internal"}})", R"({"ssl_certificate_installed": false})");
    EXPECT_FALSE(i.external_database);
    EXPECT_FALSE(i.ssl_certificate);
    // What cannot be read hides the items (a warning line before the document is skipped).
    const auto none = parse_modes("error: unknown command setting", "");
    EXPECT_FALSE(none.external_database || none.ssl_certificate);
    EXPECT_TRUE(parse_modes("warning: x\n{\"database_in_use\": {\"mode\": \"external\"}}", "").external_database);
}

TEST(MenuRunner, Connection) {
    const auto c =
        parse_connection(R"({"database_in_use": {"mode": "external", "endpoint": "postgres broker@db1.lan:6432/leo"}})");
    EXPECT_EQ(c.username, "broker");
    EXPECT_EQ(c.host, "db1.lan");
    EXPECT_EQ(c.port, "6432");
    EXPECT_EQ(c.name, "leo");
    const auto internal = parse_connection(R"({"database_in_use": {"mode": "internal", "endpoint": ""}})");
    EXPECT_EQ(internal.host, "");
    EXPECT_EQ(internal.port, "5432");
    const auto j = nlohmann::json::parse(connection_json(c, "p\"w\\d"));
    EXPECT_EQ(j["password"], "p\"w\\d");
    EXPECT_EQ(j["db_host"], "db1.lan");
    EXPECT_EQ(j["port"], "6432");
}

TEST(MenuRunner, LogNames) {
    EXPECT_THAT(parse_log_names(R"([{"name": "broker"}, {"name": "installer"}])"), ElementsAre("broker", "installer"));
    EXPECT_THAT(parse_log_names(R"({"logs": ["broker", "httpd"]})"), ElementsAre("broker", "httpd"));
    EXPECT_TRUE(parse_log_names("not json").empty());
}

} // namespace
