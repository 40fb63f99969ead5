// Unit tests of migrations/src/engine/statements.cpp: the splitter's psql rules and the
// transaction control statements a transactional migration may not contain.
#include "leo/migrations/engine.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace leo::migrations {
namespace {

using Strings = std::vector<std::string>;

std::string command_of(std::string_view statement) { return transaction_control_command(statement).value_or("-"); }

TEST(SplitStatements, SemicolonsInsideARoutineBodyOrParenthesesDoNotSplit) {
    // PostgreSQL 14's SQL-standard bodies: psql keeps them whole, and so do we.
    EXPECT_EQ(
        split_statements("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\n"
                         "SELECT 3;"),
        (Strings{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END", "SELECT 3"}));
    EXPECT_EQ(
        split_statements("create or replace procedure p() begin atomic select case when true then 1 end; "
                         "end; commit"),
        (Strings{"create or replace procedure p() begin atomic select case when true then 1 end; end", "commit"}));
    // BEGIN and END count only in routines: a CASE ... END elsewhere is an expression.
    EXPECT_EQ(split_statements("SELECT CASE WHEN x THEN 1 END FROM t; END"), (Strings{"SELECT CASE WHEN x THEN 1 END "
                                                                                      "FROM t",
                                                                                      "END"}));
    EXPECT_EQ(split_statements("SELECT (1; 2); SELECT 3"), (Strings{"SELECT (1; 2)", "SELECT 3"}));
}

TEST(SplitStatements, ADollarInsideAWordIsNoDollarQuote) {
    EXPECT_EQ(split_statements("SELECT a$b$ FROM t; SELECT 1 $b$;"), (Strings{"SELECT a$b$ FROM t", "SELECT 1 $b$;"}));
    EXPECT_EQ(split_statements("SELECT E'\\';' AS x; SELECT 2"), (Strings{"SELECT E'\\';' AS x", "SELECT 2"}));
}

TEST(TransactionControl, TheCommandsThatEndOrStartATransaction) {
    EXPECT_EQ(command_of("COMMIT"), "COMMIT");
    EXPECT_EQ(command_of("commit work"), "COMMIT");
    EXPECT_EQ(command_of("Commit And Chain"), "COMMIT");
    EXPECT_EQ(command_of("END"), "END");
    EXPECT_EQ(command_of("end transaction"), "END");
    EXPECT_EQ(command_of("ROLLBACK"), "ROLLBACK");
    EXPECT_EQ(command_of("ROLLBACK WORK"), "ROLLBACK");
    EXPECT_EQ(command_of("rollback and no chain"), "ROLLBACK");
    EXPECT_EQ(command_of("ABORT"), "ABORT");
    EXPECT_EQ(command_of("BEGIN"), "BEGIN");
    EXPECT_EQ(command_of("BEGIN ISOLATION LEVEL SERIALIZABLE"), "BEGIN");
    EXPECT_EQ(command_of("START TRANSACTION READ WRITE"), "START TRANSACTION");
    EXPECT_EQ(command_of("PREPARE TRANSACTION 'x'"), "PREPARE TRANSACTION");
    EXPECT_EQ(command_of("COMMIT PREPARED 'x'"), "COMMIT PREPARED");
    EXPECT_EQ(command_of("ROLLBACK PREPARED 'x'"), "ROLLBACK PREPARED");
    // comments and line ends between the keywords
    EXPECT_EQ(command_of("-- done\n  COMMIT /* the first half */"), "COMMIT");
    EXPECT_EQ(command_of("commit/* x */prepared 'gid'"), "COMMIT PREPARED");
    EXPECT_EQ(command_of("START\n\tTRANSACTION"), "START TRANSACTION");
}

TEST(TransactionControl, StatementsThatStayInsideTheTransactionAreNot) {
    for (const char* ok : {"SAVEPOINT before_data",
                           "RELEASE SAVEPOINT before_data",
                           "RELEASE before_data",
                           "ROLLBACK TO SAVEPOINT before_data",
                           "ROLLBACK TO before_data",
                           "rollback work to savepoint s",
                           "ROLLBACK TRANSACTION TO s",
                           "PREPARE q AS SELECT 1",
                           "START something",
                           "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                           "SELECT 'COMMIT'",
                           "SELECT CASE WHEN true THEN 1 END",
                           "DO $$ BEGIN PERFORM 1; END $$",
                           "CREATE TABLE commits (x int)",
                           "endpoint",
                           "beginning",
                           "\"COMMIT\"",
                           "",
                           "  -- only\n",
                           "COMMENT ON TABLE t IS 'END'"})
        EXPECT_EQ(command_of(ok), "-") << ok;
}

TEST(TransactionControl, FoundWithTheirLinesInAScript) {
    const std::string sql = "CREATE TABLE a (x int);\n"
                            "COMMIT;\n"
                            "DO $$\nBEGIN\n  PERFORM 1;\nEND\n$$;\n"
                            "SELECT CASE WHEN true THEN 1\nELSE 2 END;\n"
                            "/* a comment; with COMMIT; */ SELECT 'END; ROLLBACK';\n"
                            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n"
                            "SAVEPOINT s; ROLLBACK TO SAVEPOINT s; RELEASE SAVEPOINT s;\n"
                            "\n  -- the end\n  END;\n"
                            "begin; rollback";
    const auto found = find_transaction_control(sql);
    ASSERT_EQ(found.size(), 4U);
    EXPECT_EQ(found[0].command, "COMMIT");
    EXPECT_EQ(found[0].line, 2);
    EXPECT_EQ(found[1].command, "END");
    EXPECT_EQ(found[1].line, 15);
    EXPECT_EQ(found[2].command, "BEGIN");
    EXPECT_EQ(found[2].line, 16);
    EXPECT_EQ(found[3].command, "ROLLBACK");
    EXPECT_EQ(found[3].line, 16);
}

TEST(TransactionControl, LinesCountCrLfAndLoneCrAndIgnoreAByteOrderMark) {
    const auto crlf = find_transaction_control("\xEF\xBB\xBF"
                                               "SELECT 1;\r\n\r\nCOMMIT;\r\n");
    ASSERT_EQ(crlf.size(), 1U);
    EXPECT_EQ(crlf[0].line, 3);
    const auto cr = find_transaction_control("SELECT 1;\rCOMMIT;\r");
    ASSERT_EQ(cr.size(), 1U);
    EXPECT_EQ(cr[0].line, 2);
    EXPECT_TRUE(find_transaction_control("\xEF\xBB\xBF"
                                         "CREATE TABLE t (x int);\n")
                    .empty());
}

TEST(LoadMigrations, RecordsTransactionControlStatements) {
    test::TempDir dir;
    std::ofstream(dir.path() / "V1__clean.sql") << "CREATE TABLE a (x int);\n";
    std::ofstream(dir.path() / "V2__commits.sql") << "CREATE TABLE b (x int);\nCOMMIT;\nCREATE TABLE c (x int);\n";
    const auto ms = load_migrations(dir.path());
    ASSERT_EQ(ms.size(), 2U);
    EXPECT_TRUE(ms[0].transaction_control.empty());
    ASSERT_EQ(ms[1].transaction_control.size(), 1U);
    EXPECT_EQ(ms[1].transaction_control[0].command, "COMMIT");
    EXPECT_EQ(ms[1].transaction_control[0].line, 2);
}

TEST(Validate, APendingTransactionalMigrationWithCommitIsAProblem) {
    Migration ok;
    ok.version = "1";
    ok.script = "V1__ok.sql";
    Migration bad;
    bad.version = "2";
    bad.script = "V2__split.sql";
    bad.transaction_control = {{"COMMIT", 3}, {"BEGIN", 4}};
    Migration no_tx = bad;
    no_tx.version = "3";
    no_tx.script = "V3__no_tx.sql";
    no_tx.transactional = false;
    const std::vector<Migration> files{ok, bad, no_tx};
    const auto v = validate(SchemaState{}, files, "9.1.2");
    ASSERT_EQ(v.problems.size(), 1U);
    EXPECT_EQ(v.problems[0].kind, ValidationProblem::Kind::transaction_control);
    EXPECT_EQ(v.problems[0].version, "2");
    const auto& msg = v.problems[0].message;
    EXPECT_NE(msg.find("migration V2__split.sql, line 3: COMMIT, line 4: BEGIN"), std::string::npos) << msg;
    EXPECT_NE(msg.find("remove the statement"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'-- leo:no-transaction'"), std::string::npos) << msg;
    EXPECT_EQ(v.pending.size(), 3U);
}

} // namespace
} // namespace leo::migrations
