#pragma once
/// Brokers sharing one external database (DESIGN.md "Components and the cluster"). The
/// coordination is PostgreSQL itself: tables in the schema `leo_installer` of the shared
/// database (kept apart from the broker's own schema), the database server's clock, and
/// row locks. Nothing here is a service of our own.
///
///   leo_installer.cluster_members  one row per broker: member (host name, and the root for
///                                  a sandbox root), host, site_id, broker_version, state,
///                                  heartbeat (server time), registered_at
///   leo_installer.upgrade_lease    one row (id = 1): the broker allowed to upgrade now,
///                                  its fencing token (incremented at every acquisition),
///                                  acquired_at, renewed_at, expires_at (server time)
///
/// SQL is PostgreSQL 9.1+ (no ON CONFLICT, no IF NOT EXISTS on schemas): creation runs
/// under a transaction-level advisory lock and checks the catalogue first.

#include "leo/migrations/connection.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace leo::installer {

inline constexpr const char* k_cluster_schema = "leo_installer";

/// This broker's name in the registry: the host name, followed by " ROOT" for a root
/// other than "/" (sandbox roots on one machine are distinct members).
[[nodiscard]] std::string member_id(const std::filesystem::path& root);

/// Create the schema and its tables when missing (idempotent, safe when brokers race).
/// Throws leo::DatabaseError (the role may not create them: the message says so).
void ensure_cluster_schema(migrations::Connection& conn);

struct ClusterMember {
    std::string member;
    std::string host;
    std::optional<int> site_id;
    std::string broker_version;
    std::string state;          ///< running, upgrading, failed, ...
    std::string heartbeat;      ///< server time, ISO 8601 UTC
    double heartbeat_age_s = 0; ///< seconds between the heartbeat and the server's now()
};

/// Insert or update this broker's row (heartbeat = the server's now()).
void register_member(migrations::Connection& conn, const std::string& member, std::optional<int> site_id,
                     const std::string& broker_version, const std::string& state);

/// When `root`'s broker uses an external database: register it (member_id, its site id,
/// its installed version) with `state`. Returns "" when done or not external, else why it
/// could not (the caller warns: the registry is advisory outside an upgrade).
std::string register_this_broker(const std::filesystem::path& root, const std::string& state);

/// Every registered broker, by member name.
[[nodiscard]] std::vector<ClusterMember> cluster_members(migrations::Connection& conn);

/// Make the registry exactly `members` (rows as cluster_members() read them, heartbeats
/// kept), in one transaction: after the shared database was replaced by a restore point's
/// copy, the registry is the cluster's present, not the copy's past. Throws
/// leo::DatabaseError.
void replace_cluster_members(migrations::Connection& conn, const std::vector<ClusterMember>& members);

/// The lease's holder as the row says.
struct LeaseHolder {
    std::string member;
    std::string application;  ///< its host name, as its sessions' application_name has it
    int pid = 0;
    std::int64_t token = 0;
    std::string acquired_at;  ///< server time, ISO 8601 UTC
    std::string expires_at;   ///< ISO 8601 UTC, "infinity" or "" (NULL) for a row edited by hand
    /// Seconds until expiry, negative when expired; +infinity when the row has no finite
    /// expiry (expires_at NULL or 'infinity': `expiry_valid` is false).
    double seconds_left = 0;
    bool expiry_valid = true;  ///< false: expires_at is NULL or +/-infinity (never written by us)
    std::string purpose;
};

/// The NOTIFY channel of the lease: a release and a takeover notify it, so that a waiting
/// broker looks at the row at once instead of at its next poll.
inline constexpr const char* k_lease_channel = "leo_installer_lease";

/// The one-at-a-time upgrade lease. Held by a session of its own; every method uses the
/// database server's clock. While held, a background thread renews it every ttl/3 on a
/// session of its own (a step longer than the ttl, a pg_dump of a large database or a long
/// migration, does not lose it); a renewal that finds the lease gone marks it lost, and
/// the next fence() or renew() then throws. Movable, not copyable; released (best effort,
/// background renewal stopped first) when destroyed.
///
/// Bad rows (edited or deleted by hand, the table altered) give one clear error naming
/// leo_installer.upgrade_lease and the SQL that repairs it, never a raw server message.
class UpgradeLease {
public:
    struct Options {
        std::chrono::seconds ttl{600};   ///< [cluster] lease_ttl: how long a silent holder keeps it
        std::chrono::seconds wait{900};  ///< --lease-wait: how long to wait for another holder
        std::string purpose;             ///< "upgrade 9.0.7 -> 9.1.2"
        /// A waiter looks at the row when k_lease_channel is notified, and at least this
        /// often without a notification (the bounded fallback for a pooler that does not
        /// deliver them), and when the holder's expiry passes.
        std::chrono::milliseconds poll{2000};
        /// Renew from a background thread every ttl/3 while held (off only in tests).
        bool renew_in_background = true;
        /// Called while waiting (about every 5 s) with the holder; `expired` when it is
        /// about to be taken over.
        std::function<void(const LeaseHolder&, bool expired)> on_wait;
        /// Called once per backend of an expired holder that is terminated.
        std::function<void(const std::string&)> on_takeover;
        /// Throw leo::InterruptedError (nothing taken) when a signal is recorded while
        /// waiting (signals::pending(), looked at before each try): for a caller inside a
        /// critical section already (the posttrans hook's journal run), where Ctrl-C would
        /// otherwise be held until the wait (up to --lease-wait) ends.
        bool stop_on_signal = false;
    };

    /// Take the lease for `member` on the database of `conninfo`, waiting while another
    /// member holds an unexpired one (woken by NOTIFY on k_lease_channel, or every
    /// `options.poll`). An expired holder's sessions (application_name "leo-... HOST pid
    /// PID" with its host and pid, on this database, and only those) are ended with
    /// pg_terminate_backend, then the lease is taken with a new token (and the channel
    /// notified). Throws leo::RefusedError naming the holder (member, pid, since when,
    /// expiry) after `options.wait`, and at once for a held row without a finite expiry
    /// (expires_at NULL or 'infinity', with the UPDATE that clears it);
    /// leo::DatabaseError when the lease row is missing (with the INSERT that restores it),
    /// when the table's columns are not what this installer made (naming them, with the
    /// DROP TABLE that lets it be made anew), or when the database cannot be used.
    static UpgradeLease acquire(const std::string& conninfo, const std::string& member, const Options& options);

    UpgradeLease(UpgradeLease&& other) noexcept;
    UpgradeLease& operator=(UpgradeLease&&) = delete;
    UpgradeLease(const UpgradeLease&) = delete;
    UpgradeLease& operator=(const UpgradeLease&) = delete;
    ~UpgradeLease();

    [[nodiscard]] std::int64_t token() const noexcept { return m_token; }
    /// Extend the lease by the ttl from the server's now(); fenced. Throws leo::InstallError
    /// "the upgrade lease was lost ..." when the row no longer holds our token (taken over,
    /// cleared, its row deleted or its table dropped: the message says which) or the
    /// background renewal found it lost.
    void renew();
    /// The fencing check inside the caller's open transaction on `conn`: locks the lease row
    /// (FOR SHARE) and throws leo::InstallError when the background renewal found the lease
    /// lost, when the row is gone, or when its token is no longer ours or it has expired.
    /// Call it in the transaction of every write the lease protects.
    void fence(migrations::Connection& conn) const;
    /// Whether the background renewal found the lease lost (fence() and renew() throw then).
    [[nodiscard]] bool lost() const noexcept;
    /// Give the lease back (holder cleared, token kept) when it is still ours, and notify
    /// k_lease_channel. Stops the background renewal first.
    void release() noexcept;
    /// Close the lease's own sessions on the shared database, the background renewal's too
    /// (CREATE DATABASE ... TEMPLATE and ALTER DATABASE ... RENAME need it without
    /// sessions). The lease stays held; the next renew() or restate() opens a new session
    /// and starts the background renewal again.
    void disconnect() noexcept;
    /// Write this lease back into the shared database after it was replaced by a restore
    /// point's copy (whose lease row is as it was when the copy was taken): token, holder
    /// and a fresh expiry. Throws leo::InstallError when the row holds a newer token.
    void restate();

    /// While one exists the background renewal is stopped (its thread joined), after one
    /// renewal in the foreground: for an rpm transaction, during which librpm wants no
    /// other thread in the process (it chroots the whole process). Restarted on
    /// destruction unless the lease was released or lost meanwhile.
    class RenewalPause {
    public:
        explicit RenewalPause(UpgradeLease& lease);
        ~RenewalPause();
        RenewalPause(const RenewalPause&) = delete;
        RenewalPause& operator=(const RenewalPause&) = delete;

    private:
        UpgradeLease& m_lease;
    };

    struct Renewer;  ///< the background renewal's shared state (cluster.cpp)

private:
    UpgradeLease(migrations::Connection conn, std::string member, std::int64_t token, std::chrono::seconds ttl);
    void start_renewal();
    void stop_renewal() noexcept;
    /// Start the background renewal again after disconnect() stopped it.
    void resume_renewal();
    /// The lease's session, opened again after disconnect().
    migrations::Connection& session();
    std::optional<migrations::Connection> m_conn;
    std::string m_conninfo;
    std::string m_member;
    std::int64_t m_token = 0;
    std::chrono::seconds m_ttl{600};
    bool m_released = false;
    bool m_restart_renewal = false;  ///< disconnect() stopped the background renewal
    std::shared_ptr<Renewer> m_renewer;  ///< null when not renewing in the background
};

/// An UpgradeLease::RenewalPause of `lease` when it is held and renewing (nullptr
/// otherwise, or when the lease is lost: there is nothing to pause then).
[[nodiscard]] std::shared_ptr<void> pause_lease_renewal(std::optional<UpgradeLease>& lease);

/// The lease options of every command that migrates a shared database (`upgrade`, the
/// posttrans hook): `ttl` from [cluster] lease_ttl, `wait` how long to wait for another
/// holder (seconds), `purpose` shown to the other brokers ("upgrade 9.0.7 -> 9.1.2"), and
/// `say` told who holds the lease while waiting and when an expired holder is taken over.
[[nodiscard]] UpgradeLease::Options lease_options(std::chrono::seconds ttl, std::chrono::seconds wait,
                                                  std::string purpose,
                                                  const std::function<void(const std::string&)>& say);

/// Take the lease as a registered member, what every command that migrates a shared
/// database does: the registry's schema made, `member` registered "waiting" (with `site_id`
/// and `version`), UpgradeLease::acquire(), then registered "upgrading". When the wait
/// fails, the member is registered `state_on_failure` with `version` (best effort: the
/// registry must not keep saying "waiting") and the error rethrown. Throws what
/// ensure_cluster_schema, register_member and UpgradeLease::acquire throw.
[[nodiscard]] UpgradeLease acquire_as_member(const std::string& conninfo, const std::string& member,
                                             std::optional<int> site_id, const std::string& version,
                                             const UpgradeLease::Options& options,
                                             const std::string& state_on_failure);

/// The current holder of the lease, or nullopt when none (or no lease table yet). Throws
/// leo::DatabaseError naming the table and the repair when its columns were altered.
[[nodiscard]] std::optional<LeaseHolder> lease_holder(migrations::Connection& conn);

/// A pending work-queue job moved from a site that is no longer a member to one that is.
struct JobMove {
    std::int64_t job_id = 0;
    int from_site = 0;
    int to_site = 0;
};

/// Move every pending work-queue job whose site_id is no current member's site to a
/// member's site (the members' sites in turn, in job order), in one transaction fenced by
/// `lease`. Nothing (empty) when no member has a site id. Throws leo::DatabaseError.
std::vector<JobMove> reassign_orphaned_jobs(migrations::Connection& conn, const UpgradeLease& lease);

} // namespace leo::installer
