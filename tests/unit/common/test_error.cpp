#include "leo/common/error.hpp"

#include <gtest/gtest.h>

namespace {

TEST(Error, DescribeJoinsTheNestedChain) {
    try {
        try {
            throw leo::DatabaseError("ERROR: relation \"jobs\" does not exist");
        } catch (...) {
            std::throw_with_nested(leo::InstallError("install 9.0.40 failed"));
        }
    } catch (const std::exception& e) {
        EXPECT_EQ(leo::describe(e), "install 9.0.40 failed: ERROR: relation \"jobs\" does not exist");
        EXPECT_EQ(leo::exit_code(e), leo::ExitCode::error);
    }
}

TEST(Error, RefusalOrUsageAnywhereInTheChainDecidesTheExitCode) {
    try {
        try {
            throw leo::UsageError("--facts: field 'arch' missing");
        } catch (...) {
            std::throw_with_nested(leo::Error("preflight"));
        }
    } catch (const std::exception& e) {
        EXPECT_EQ(leo::exit_code(e), leo::ExitCode::usage);
    }
    EXPECT_EQ(leo::exit_code(leo::RefusedError("no")), leo::ExitCode::refused);
    EXPECT_EQ(leo::exit_code(std::runtime_error("x")), leo::ExitCode::error);
}

TEST(Error, SystemErrorCarriesStrerror) {
    auto e = leo::system_error("cannot read /x", ENOENT);
    EXPECT_EQ(std::string(e.what()), "cannot read /x: No such file or directory");
}

} // namespace
