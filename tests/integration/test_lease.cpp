// The cluster's upgrade lease against a real PostgreSQL (ExternalPostgres, TCP on
// 127.0.0.1): bad rows (expiry NULL or 'infinity', the row deleted while held, the table
// dropped or altered) give clear errors naming the row and the repair, and change nothing;
// the background renewal keeps a lease whose holder is busy longer than the ttl; a waiter
// is woken by NOTIFY when the lease is released.
#include "db_support.hpp"
#include "test_support.hpp"

#include "leo/common/error.hpp"
#include "leo/installer/cluster.hpp"
#include "leo/migrations/connection.hpp"

#include <atomic>
#include <chrono>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {
using ::testing::HasSubstr;
using leo::installer::UpgradeLease;
using namespace std::chrono_literals;

constexpr const char* k_password = "lease-secret";

class Lease : public ::testing::Test {
protected:
    void SetUp() override {
        ext = std::make_unique<leo::test::ExternalPostgres>();
        ext->create_role("broker", k_password, false);
        ext->create_database("leo_cluster", "broker");
        conninfo = ext->conninfo("leo_cluster", "broker", k_password);
        auto c = leo::migrations::Connection::open(conninfo);
        leo::installer::ensure_cluster_schema(c);
    }
    leo::migrations::Connection db() const { return leo::migrations::Connection::open(conninfo); }
    /// The lease row, whole, as text ("" when there is none).
    std::string row() const {
        auto c = db();
        const auto r = c.query("SELECT t::text FROM leo_installer.upgrade_lease t WHERE id = 1");
        return r.empty() ? "" : r.at(0, 0);
    }
    static UpgradeLease::Options options(std::chrono::seconds ttl = 60s, std::chrono::seconds wait = 0s) {
        UpgradeLease::Options o;
        o.ttl = ttl;
        o.wait = wait;
        o.purpose = "test";
        return o;
    }
    /// acquire() for `member` must throw E with `message` in its chain, changing nothing.
    template <typename E>
    std::string expect_refused(const std::string& member, const std::string& message) {
        const std::string before = row();
        std::string what;
        try {
            (void)UpgradeLease::acquire(conninfo, member, options());
            ADD_FAILURE() << "acquire did not throw";
        } catch (const E& e) {
            what = leo::describe(e);
        } catch (const std::exception& e) {
            ADD_FAILURE() << "another exception: " << leo::describe(e);
        }
        EXPECT_THAT(what, HasSubstr(message));
        EXPECT_THAT(what, ::testing::Not(HasSubstr("(SQL: "))) << "a raw server error: " << what;
        EXPECT_EQ(row(), before) << "the lease row changed";
        return what;
    }

    std::unique_ptr<leo::test::ExternalPostgres> ext;
    std::string conninfo;
};

TEST_F(Lease, AHeldRowWithoutAFiniteExpiryIsRefusedNamingTheRowAndTheRepair) {
    for (const char* expiry : {"'infinity'", "NULL"}) {
        db().exec(std::string("UPDATE leo_installer.upgrade_lease SET token = 7, holder = 'other-host', "
                              "holder_application = 'other-host', holder_pid = 4242, purpose = 'upgrade x', "
                              "acquired_at = now(), expires_at = ") +
                  expiry + " WHERE id = 1");
        const auto what = expect_refused<leo::RefusedError>(
            "me", "the cluster's lease row (leo_installer.upgrade_lease, id = 1) says other-host (pid 4242");
        EXPECT_THAT(what, HasSubstr(std::string("with no expiry (expires_at is ") +
                                    (std::string(expiry) == "NULL" ? "NULL" : "infinity") + ")"));
        EXPECT_THAT(what, HasSubstr("UPDATE leo_installer.upgrade_lease SET holder = NULL"));
        EXPECT_THAT(what, HasSubstr("nothing was changed"));
        // lease_holder reads it without a raw error (infinite timestamps cannot be subtracted).
        auto c = db();
        const auto h = leo::installer::lease_holder(c);
        ASSERT_TRUE(h.has_value());
        EXPECT_FALSE(h->expiry_valid);
        EXPECT_GT(h->seconds_left, 0);
        // The repair the message gives works.
        db().exec("UPDATE leo_installer.upgrade_lease SET holder = NULL, holder_application = NULL, holder_pid = "
                  "NULL, purpose = NULL, expires_at = now() WHERE id = 1");
        auto lease = UpgradeLease::acquire(conninfo, "me", options());
        EXPECT_EQ(lease.token(), 8);
    }
    // '-infinity' is an expired lease: taken over.
    db().exec("UPDATE leo_installer.upgrade_lease SET holder = 'other-host', holder_application = 'other-host', "
              "holder_pid = 4242, expires_at = '-infinity' WHERE id = 1");
    auto lease = UpgradeLease::acquire(conninfo, "me", options());
    EXPECT_EQ(lease.token(), 9);
}

TEST_F(Lease, AMissingRowIsRefusedWithTheInsertThatRestoresIt) {
    db().exec("DELETE FROM leo_installer.upgrade_lease");
    const auto what = expect_refused<leo::DatabaseError>(
        "me", "the cluster's lease row (leo_installer.upgrade_lease, id = 1) is missing");
    EXPECT_THAT(what, HasSubstr("INSERT INTO leo_installer.upgrade_lease (id, token) VALUES (1, extract(epoch FROM "
                                "now())::bigint)"));
    db().exec("INSERT INTO leo_installer.upgrade_lease (id, token) VALUES (1, extract(epoch FROM now())::bigint)");
    auto lease = UpgradeLease::acquire(conninfo, "me", options());
    EXPECT_GT(lease.token(), 1000000);
}

TEST_F(Lease, AnAlteredTableIsRefusedNamingTheColumnsAndTheRepair) {
    db().exec("ALTER TABLE leo_installer.upgrade_lease ALTER COLUMN expires_at TYPE text");
    db().exec("ALTER TABLE leo_installer.upgrade_lease DROP COLUMN holder_pid");
    const auto what = expect_refused<leo::DatabaseError>(
        "me", "the cluster's lease table leo_installer.upgrade_lease in the shared database is not as this installer "
              "made it (column holder_pid is missing; column expires_at is text, expected timestamp with time zone)");
    EXPECT_THAT(what, HasSubstr("DROP TABLE leo_installer.upgrade_lease;"));
    auto c = db();
    EXPECT_THROW((void)leo::installer::lease_holder(c), leo::DatabaseError);
    // The repair: dropped, it is made anew.
    db().exec("DROP TABLE leo_installer.upgrade_lease");
    auto lease = UpgradeLease::acquire(conninfo, "me", options());
    EXPECT_EQ(lease.token(), 1);
}

TEST_F(Lease, ARowDeletedWhileHeldIsALostLeaseFencedAndStops) {
    UpgradeLease::Options o = options(3s);
    auto lease = UpgradeLease::acquire(conninfo, "me", o);
    db().exec("DELETE FROM leo_installer.upgrade_lease");
    // The background renewal (every ttl/3 = 1 s) finds it gone and marks the lease lost.
    for (int i = 0; i < 50 && !lease.lost(); ++i) std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(lease.lost());
    try {
        lease.renew();
        ADD_FAILURE() << "renew did not throw";
    } catch (const leo::InstallError& e) {
        EXPECT_THAT(e.what(), HasSubstr("the upgrade lease was lost (its row (leo_installer.upgrade_lease, id = 1) "
                                        "was deleted while this run held it); this run stops"));
    }
    auto c = db();
    c.exec("BEGIN");
    try {
        lease.fence(c);
        ADD_FAILURE() << "fence did not throw";
    } catch (const leo::InstallError& e) {
        EXPECT_THAT(e.what(), HasSubstr("fencing: the upgrade lease is no longer this broker's"));
        EXPECT_THAT(e.what(), HasSubstr("was deleted while this run held it"));
    }
    c.exec("ROLLBACK");
    lease.release();  // nothing to release: no error, nothing inserted
    EXPECT_EQ(row(), "");
}

TEST_F(Lease, ARowDeletedWhileHeldIsFencedWithoutTheBackgroundRenewal) {
    UpgradeLease::Options o = options();
    o.renew_in_background = false;
    auto lease = UpgradeLease::acquire(conninfo, "me", o);
    db().exec("DELETE FROM leo_installer.upgrade_lease");
    auto c = db();
    c.exec("BEGIN");
    try {
        lease.fence(c);
        ADD_FAILURE() << "fence did not throw";
    } catch (const leo::InstallError& e) {
        EXPECT_THAT(e.what(), HasSubstr("fencing: the lease row (leo_installer.upgrade_lease, id = 1) was deleted "
                                        "while this run held the lease"));
    }
    c.exec("ROLLBACK");
    EXPECT_THROW(lease.renew(), leo::InstallError);
}

TEST_F(Lease, ATableDroppedWhileHeldIsALostLease) {
    UpgradeLease::Options o = options();
    o.renew_in_background = false;
    auto lease = UpgradeLease::acquire(conninfo, "me", o);
    db().exec("DROP TABLE leo_installer.upgrade_lease");
    try {
        lease.renew();
        ADD_FAILURE() << "renew did not throw";
    } catch (const leo::InstallError& e) {
        EXPECT_THAT(e.what(), HasSubstr("the upgrade lease was lost (the table leo_installer.upgrade_lease was "
                                        "dropped while this run held the lease); this run stops"));
    }
    auto c = db();
    c.exec("BEGIN");
    try {
        lease.fence(c);
        ADD_FAILURE() << "fence did not throw";
    } catch (const leo::InstallError& e) {
        EXPECT_THAT(e.what(), HasSubstr("fencing: the lease table leo_installer.upgrade_lease was dropped or altered"));
    }
    c.exec("ROLLBACK");
}

TEST_F(Lease, TheBackgroundRenewalKeepsALeaseLongerThanItsTtl) {
    auto lease = UpgradeLease::acquire(conninfo, "slow", options(3s));
    // A step three ttls long, without a renewal from the run itself.
    std::this_thread::sleep_for(9s);
    EXPECT_FALSE(lease.lost());
    // Nobody can take it over: it has not expired.
    try {
        (void)UpgradeLease::acquire(conninfo, "other", options(3s, 1s));
        ADD_FAILURE() << "another broker took the lease";
    } catch (const leo::RefusedError& e) {
        EXPECT_THAT(e.what(), HasSubstr("another broker holds the cluster's upgrade lease: slow"));
    }
    EXPECT_EQ(db().query("SELECT (expires_at > now())::text, holder, token::text FROM leo_installer.upgrade_lease")
                  .at(0, 0),
              "true");
    auto c = db();
    c.exec("BEGIN");
    EXPECT_NO_THROW(lease.fence(c));
    c.exec("ROLLBACK");
    EXPECT_NO_THROW(lease.renew());
    lease.release();
    EXPECT_EQ(db().query("SELECT count(*)::text FROM leo_installer.upgrade_lease WHERE holder IS NULL").at(0, 0), "1");
}

TEST_F(Lease, WithoutTheBackgroundRenewalTheSameLeaseIsTakenOver) {
    // The control of the test above: the same wait without renewal loses the lease.
    UpgradeLease::Options o = options(3s);
    o.renew_in_background = false;
    auto lease = UpgradeLease::acquire(conninfo, "slow", o);
    std::this_thread::sleep_for(4s);
    auto other = UpgradeLease::acquire(conninfo, "other", options(3s, 5s));
    EXPECT_EQ(other.token(), 2);
    EXPECT_THROW(lease.renew(), leo::Error);  // lost (or its session ended by the takeover)
}

TEST_F(Lease, AWaiterIsWokenByTheReleaseNotByItsPoll) {
    auto holder = std::make_unique<UpgradeLease>(UpgradeLease::acquire(conninfo, "first", options()));
    std::atomic<bool> waiting{false};
    std::atomic<bool> taken{false};
    std::chrono::steady_clock::time_point taken_at;
    std::thread waiter([&] {
        UpgradeLease::Options o = options(60s, 60s);
        o.poll = 30s;  // far longer than the test allows: only the NOTIFY can wake it in time
        o.on_wait = [&](const leo::installer::LeaseHolder&, bool) { waiting = true; };
        auto second = UpgradeLease::acquire(conninfo, "second", o);
        taken_at = std::chrono::steady_clock::now();
        taken = true;
        EXPECT_EQ(second.token(), 2);
    });
    for (int i = 0; i < 100 && !waiting; ++i) std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(waiting.load()) << "the second broker did not start waiting";
    std::this_thread::sleep_for(500ms);
    EXPECT_FALSE(taken.load()) << "taken while still held";
    const auto released_at = std::chrono::steady_clock::now();
    holder.reset();  // releases, and notifies
    waiter.join();
    ASSERT_TRUE(taken.load());
    EXPECT_LT(std::chrono::duration<double>(taken_at - released_at).count(), 5.0)
        << "the waiter was not woken by the release (its poll is 30 s)";
}

TEST_F(Lease, AWaiterStillPollsWhenNoNotificationComes) {
    auto holder = UpgradeLease::acquire(conninfo, "first", options());
    std::atomic<bool> taken{false};
    std::thread waiter([&] {
        UpgradeLease::Options o = options(60s, 30s);
        o.poll = 500ms;
        auto second = UpgradeLease::acquire(conninfo, "second", o);
        taken = true;
    });
    std::this_thread::sleep_for(1s);
    EXPECT_FALSE(taken.load());
    // Cleared by hand, without NOTIFY: the bounded poll notices.
    db().exec("UPDATE leo_installer.upgrade_lease SET holder = NULL, holder_application = NULL, holder_pid = NULL, "
              "purpose = NULL WHERE id = 1");
    waiter.join();
    EXPECT_TRUE(taken.load());
}

} // namespace
