// Unit tests of the libpq wrapper's parts that need no server.
#include "leo/migrations/connection.hpp"

#include "leo/common/error.hpp"

#include <gtest/gtest.h>

namespace leo::migrations {
namespace {

TEST(Rows, AtChecksRangeAndNull) {
    Rows rows;
    rows.columns = {"a", "b"};
    rows.rows.push_back({std::string("x"), std::nullopt});
    EXPECT_EQ(rows.at(0, 0), "x");
    EXPECT_THROW((void)rows.at(0, 1), DatabaseError);
    EXPECT_THROW((void)rows.at(1, 0), DatabaseError);
    EXPECT_THROW((void)rows.at(0, 2), DatabaseError);
    EXPECT_FALSE(rows.empty());
}

TEST(Connection, ConnectErrorNamesTheTargetButNeverThePassword) {
    try {
        (void)Connection::open("host=/nonexistent/leo-sock dbname=leo user=leo password=s3cret-pw connect_timeout=2");
        FAIL() << "connected";
    } catch (const DatabaseError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("/nonexistent/leo-sock"), std::string::npos) << msg;
        EXPECT_EQ(msg.find("s3cret-pw"), std::string::npos) << msg;
    }
}

} // namespace
} // namespace leo::migrations
