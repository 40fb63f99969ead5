// The one rule for paths that reach PostgreSQL's shell command lines (initdb's popen of
// `postgres --boot`): shell_special_char() and the refusal's wording.
#include "leo/common/error.hpp"
#include "leo/migrations/internal_db.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include <stdlib.h>

namespace leo::migrations {
namespace {

std::string refusal(const std::string& root) {
    try {
        check_root_for_postgres(root);
    } catch (const DatabaseError& e) {
        EXPECT_EQ(e.code(), ExitCode::error);
        return e.what();
    }
    return "<accepted>";
}

TEST(ShellSpecialChar, PlainPathsPass) {
    for (const char* p : {"/", "/tmp/leo-t.AbC123/r", "/srv/broker_1/root-2.0", "/a/b+c,d:e@f=g%h", "/tmp/x.y/z"})
        EXPECT_FALSE(shell_special_char(p)) << p;
}

TEST(ShellSpecialChar, EveryCharacterAShellInterpretsIsFound) {
    const std::string special = "$`\"\\';&|<>()*?[]{}~!# \t\n";
    for (char c : special) {
        const std::string path = std::string("/tmp/r") + c + "x";
        const auto found = shell_special_char(path);
        ASSERT_TRUE(found) << "'" << c << "'";
        EXPECT_EQ(*found, c);
    }
    EXPECT_EQ(shell_special_char(std::string("/tmp/r\x01x")), '\x01');
    EXPECT_EQ(shell_special_char(std::string("/tmp/r\x7fx")), '\x7f');
    EXPECT_EQ(shell_special_char("/tmp/a b$(id)"), ' ') << "the first one is named";
}

TEST(CheckRootForPostgres, RefusalNamesThePathTheCharacterAndWhatToDo) {
    EXPECT_EQ(refusal("/tmp/r$(touch /tmp/pwned)"),
              "the root path /tmp/r$(touch /tmp/pwned) contains '$', which a shell would interpret: PostgreSQL's "
              "initdb starts the server through /bin/sh with this path in its command line; use a root path without "
              "shell characters, for example a symbolic link to it with a plain name (letters, digits and / . _ - + "
              ", : @ = % only)");
    EXPECT_NE(refusal("/tmp/r a").find("contains ' ' (a space)"), std::string::npos);
    EXPECT_NE(refusal("/tmp/r`id`").find("contains '`'"), std::string::npos);
    const auto nl = refusal("/tmp/r\nx");
    EXPECT_NE(nl.find("the root path /tmp/r\\nx contains '\\n' (a newline)"), std::string::npos) << nl;
    EXPECT_EQ(nl.find('\n'), std::string::npos) << "one line";
    EXPECT_EQ(refusal("/tmp/leo-t.AbC123/r"), "<accepted>");
    EXPECT_EQ(refusal("/"), "<accepted>");
}

TEST(CheckRootForPostgres, ARelativeRootIsJudgedAbsolute) {
    // The absolute path is what reaches initdb: "r" under a directory with a space is refused.
    char tmpl[] = "/tmp/leo u.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const auto old = std::filesystem::current_path();
    std::filesystem::current_path(tmpl);
    const auto msg = refusal("r");
    std::filesystem::current_path(old);
    std::filesystem::remove_all(tmpl);
    EXPECT_NE(msg.find(std::string("the root path ") + tmpl + "/r contains ' ' (a space)"), std::string::npos) << msg;
}

TEST(CheckPathForPostgres, NamesWhatAndTheFix) {
    try {
        check_path_for_postgres("/opt/pg sql/bin", "the PostgreSQL server directory", "set LEO_PG_BINDIR to a plain one");
        FAIL();
    } catch (const DatabaseError& e) {
        EXPECT_NE(std::string(e.what()).find("the PostgreSQL server directory /opt/pg sql/bin contains ' ' (a "
                                             "space), which a shell would interpret"),
                  std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("; set LEO_PG_BINDIR to a plain one"), std::string::npos) << e.what();
    }
}

} // namespace
} // namespace leo::migrations
