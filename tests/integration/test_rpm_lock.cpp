// Integration tests of rpm's transaction lock (issue "Runs that cannot be torn", part 5):
// a real second rpm process holds ROOT/var/lib/rpm/.rpm.lock while its %pre (a Lua
// scriptlet: no /bin/sh needed in the root) sleeps; transaction_lock_holder names it,
// wait_for_transaction_lock gives up after its limit naming it or returns once it ends,
// and run_transaction of another package waits for it and then succeeds.
#include "leo/common/error.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/common/system_root.hpp"
#include "leo/rpm/lock.hpp"
#include "leo/rpm/transaction.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

namespace leo::rpm {
namespace {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// How long the slow packages' %pre sleeps (seconds): the time their rpm holds the lock.
constexpr int k_pre_sleep = 4;

/// `rpm -i` of `package` into `root` in the background (stdin /dev/null, output to a
/// file), as an administrator's second transaction; waited for at the end.
class BackgroundRpm {
  public:
    BackgroundRpm(const stdfs::path& root, const stdfs::path& package, const stdfs::path& log) : m_log(log) {
        m_pid = subprocess::spawn_detached({"/usr/bin/rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "-i",
                                            "--nosignature", "--nodeps", package.string()},
                                           {}, log);
    }
    ~BackgroundRpm() {
        if (m_pid > 0 && !m_done) {
            ::kill(m_pid, SIGKILL);
            ::waitpid(m_pid, nullptr, 0);
        }
    }
    BackgroundRpm(const BackgroundRpm&) = delete;
    BackgroundRpm& operator=(const BackgroundRpm&) = delete;
    [[nodiscard]] pid_t pid() const { return m_pid; }
    /// Has it ended (reaping it)? Its exit status in `status()`.
    bool ended() {
        if (!m_done && ::waitpid(m_pid, &m_status, WNOHANG) == m_pid)
            m_done = true;
        return m_done;
    }
    /// Wait up to `limit` for it to end; true when it exited 0.
    bool wait_ok(std::chrono::milliseconds limit) {
        const auto deadline = Clock::now() + limit;
        while (!ended() && Clock::now() < deadline)
            std::this_thread::sleep_for(20ms);
        return m_done && WIFEXITED(m_status) && WEXITSTATUS(m_status) == 0;
    }
    [[nodiscard]] std::string output() const { return test::slurp(m_log); }

  private:
    stdfs::path m_log;
    pid_t m_pid = -1;
    int m_status = 0;
    bool m_done = false;
};

class RpmLockTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_tmp = new test::TempDir();
        s_slow = test::build_sleeping_package(s_tmp->path(), "slowpkg", k_pre_sleep);
        s_slow2 = test::build_sleeping_package(s_tmp->path(), "slowpkg2", k_pre_sleep);
        s_other = test::build_sleeping_package(s_tmp->path(), "otherpkg", 0);
    }
    static void TearDownTestSuite() {
        delete s_tmp;
        s_tmp = nullptr;
    }
    void SetUp() override {
        m_root = m_dir.path() / "root";
        stdfs::create_directories(m_root);
    }
    /// Until `rpm` holds the lock (it takes it after reading the package), at most 10 s.
    std::optional<LockHolder> wait_until_held(BackgroundRpm& rpm) const {
        const fs::SystemRoot sys(m_root);
        const auto deadline = Clock::now() + 10s;
        while (Clock::now() < deadline && !rpm.ended()) {
            if (auto h = transaction_lock_holder(sys); h && h->pid == rpm.pid())
                return h;
            std::this_thread::sleep_for(20ms);
        }
        return std::nullopt;
    }
    [[nodiscard]] bool installed(const std::string& name) const { return test::rpm_query(m_root, name).ok(); }

    static test::TempDir* s_tmp;
    static stdfs::path s_slow, s_slow2, s_other;
    test::TempDir m_dir;
    stdfs::path m_root;
};
test::TempDir* RpmLockTest::s_tmp = nullptr;
stdfs::path RpmLockTest::s_slow;
stdfs::path RpmLockTest::s_slow2;
stdfs::path RpmLockTest::s_other;

TEST_F(RpmLockTest, LockPathIsRpmsMacroUnderThePinnedDbpath) {
    EXPECT_EQ(transaction_lock_path(), "/var/lib/rpm/.rpm.lock");
    // rpm itself agrees (the macro file, with our _dbpath).
    const auto r = subprocess::run({"rpm", "--dbpath", "/var/lib/rpm", "--eval", "%{_rpmlock_path}"});
    ASSERT_TRUE(r.ok()) << r.err;
    EXPECT_EQ(subprocess::last_line(r.out), "/var/lib/rpm/.rpm.lock");
}

TEST_F(RpmLockTest, NobodyHoldsAMissingOrFreeLockAndItIsNeverCreated) {
    const fs::SystemRoot sys(m_root);
    EXPECT_FALSE(transaction_lock_holder(sys));
    const auto started = Clock::now();
    wait_for_transaction_lock(sys, 5s);
    EXPECT_LT(Clock::now() - started, 1s);
    EXPECT_FALSE(stdfs::exists(m_root / "var/lib/rpm/.rpm.lock")) << "not created";
    // A lock file nobody holds (what an ended rpm leaves).
    stdfs::create_directories(m_root / "var/lib/rpm");
    std::ofstream(m_root / "var/lib/rpm/.rpm.lock").close();
    EXPECT_FALSE(transaction_lock_holder(sys));
    wait_for_transaction_lock(sys, 0s);
}

TEST_F(RpmLockTest, ASecondRpmHoldsTheLockAndWeWaitForIt) {
    const fs::SystemRoot sys(m_root);
    const auto lock_file = m_root / "var/lib/rpm/.rpm.lock";
    BackgroundRpm rpm(m_root, s_slow, m_dir.path() / "rpm1.log");
    const auto holder = wait_until_held(rpm);
    ASSERT_TRUE(holder) << "rpm never held " << lock_file << ": " << rpm.output();
    EXPECT_EQ(holder->pid, rpm.pid());
    EXPECT_TRUE(holder->command.starts_with("/usr/bin/rpm --root " + m_root.string())) << holder->command;
    EXPECT_NE(holder->command.find("slowpkg-1-1.noarch.rpm"), std::string::npos) << holder->command;

    // A 1 s limit: told once at the start, then RpmLockedError naming the file and the holder.
    {
        std::vector<std::pair<pid_t, long>> told;
        const auto started = Clock::now();
        try {
            wait_for_transaction_lock(sys, 1s, [&](const LockHolder& h, std::chrono::milliseconds waited) {
                told.emplace_back(h.pid, static_cast<long>(waited.count()));
            });
            ADD_FAILURE() << "no RpmLockedError";
        } catch (const RpmLockedError& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find("rpm's transaction lock " + lock_file.string() + " is held by pid " +
                                std::to_string(rpm.pid()) + " (/usr/bin/rpm --root"),
                      std::string::npos)
                << what;
            EXPECT_NE(what.find("still after 1 s"), std::string::npos) << what;
            EXPECT_EQ(e.holder_pid(), rpm.pid());
            EXPECT_EQ(e.holder_command(), holder->command);
            EXPECT_EQ(exit_code(e), ExitCode::error);
        }
        const auto took = Clock::now() - started;
        EXPECT_GE(took, 1s);
        EXPECT_LT(took, 2500ms);
        ASSERT_EQ(told.size(), 1U);
        EXPECT_EQ(told[0].first, rpm.pid());
        EXPECT_LT(told[0].second, 200);
        EXPECT_FALSE(rpm.ended()) << "still running: its %pre sleeps " << k_pre_sleep << " s";
    }

    // A 15 s limit: returns once the rpm transaction has ended.
    {
        const auto started = Clock::now();
        int told = 0;
        wait_for_transaction_lock(sys, 15s, [&](const LockHolder&, std::chrono::milliseconds) { ++told; });
        EXPECT_LT(Clock::now() - started, 10s);
        EXPECT_EQ(told, 1);
        EXPECT_FALSE(transaction_lock_holder(sys));
        EXPECT_TRUE(rpm.wait_ok(5s)) << rpm.output();
        EXPECT_TRUE(installed("slowpkg"));
    }
}

TEST_F(RpmLockTest, RunTransactionWaitsForASecondRpmThenSucceeds) {
    BackgroundRpm rpm(m_root, s_slow2, m_dir.path() / "rpm2.log");
    ASSERT_TRUE(wait_until_held(rpm)) << rpm.output();
    TransactionOptions opts;
    opts.kind = TransactionKind::install;
    opts.require_signature = false;
    std::vector<LockHolder> told;
    opts.on_lock_wait = [&](const LockHolder& h) { told.push_back(h); };
    const auto started = Clock::now();
    run_transaction(m_root, s_other, opts);
    const auto took = Clock::now() - started;
    ASSERT_EQ(told.size(), 1U);
    EXPECT_EQ(told[0].pid, rpm.pid());
    EXPECT_NE(told[0].command.find("slowpkg2"), std::string::npos) << told[0].command;
    EXPECT_GE(took, 1s) << "it waited for the other transaction";
    EXPECT_TRUE(rpm.wait_ok(5s)) << rpm.output();
    EXPECT_TRUE(installed("slowpkg2"));
    EXPECT_TRUE(installed("otherpkg"));
    EXPECT_FALSE(transaction_lock_holder(fs::SystemRoot(m_root))) << "our lock ended with the transaction";
}

TEST_F(RpmLockTest, EveryTransactionGivesUpAfterItsLimitChangingNothing) {
    BackgroundRpm rpm(m_root, s_slow, m_dir.path() / "rpm3.log");
    ASSERT_TRUE(wait_until_held(rpm)) << rpm.output();
    TransactionOptions opts;
    opts.kind = TransactionKind::install;
    opts.require_signature = false;
    opts.lock_wait_limit = 0s;
    EXPECT_THROW(test_transaction(m_root, s_other, opts), RpmLockedError);
    EXPECT_THROW(run_transaction(m_root, s_other, opts), RpmLockedError);
    EXPECT_THROW(erase_package(m_root, "slowpkg-1-1.noarch", opts), RpmLockedError);
    EXPECT_THROW(remove_rpmdb_entry(m_root, "slowpkg-1-1.noarch", opts), RpmLockedError);
    EXPECT_TRUE(rpm.wait_ok(10s)) << rpm.output();
    EXPECT_FALSE(installed("otherpkg"));
    EXPECT_TRUE(installed("slowpkg"));
    // Free now: the erase goes through.
    erase_package(m_root, "slowpkg-1-1.noarch", opts);
    EXPECT_FALSE(installed("slowpkg"));
}

} // namespace
} // namespace leo::rpm
