#pragma once
/// The upgrade's gates (DESIGN.md "The maintenance-window upgrade", step 2): before
/// anything changes, each says passed or refused; one refusal stops the upgrade with exit 3
/// and nothing changed. The rules are the broker's documented update procedure:
/// - `upgrades_enabled`: the administration setting "disable broker upgrade"
///   (settings.upgrades_enabled = 'false' in the broker database) refuses;
/// - `support_licence`: the newest support_licence.expires_on before the database server's
///   current_date refuses (the refusal gives the date); no licence recorded passes, said;
/// - `maintenance_window`: outside installer.conf's `[maintenance_window] windows` (weekly
///   ranges in `time_zone`, the time read from the database server's clock) refuses;
///   `--now --reason TEXT` overrides it, and the override is logged with its reason; a
///   `[maintenance_window]` section that cannot be read (InstallerConfig::
///   maintenance_window_error: syntax, key, windows, a time zone not in the zoneinfo
///   database) refuses, also with `--now` (the other commands only warn about it);
/// - `replication`: "never proceed while the database is replicated": the server in
///   recovery (a standby), connected standbys (pg_stat_replication: each named by its
///   application_name and address, and its state), replication slots of this database or
///   physical ones (9.4+), publications or subscriptions (10+, a subscription with the
///   publications it subscribes to) refuse, each named;
/// - `upgrade_path`: a package that declares `Provides: leostream-broker(upgrade-requires) = V`
///   refuses an installed version older than V ("upgrade to V first").

#include "leo/installer/config.hpp"
#include "leo/rpm/package.hpp"

#include <optional>
#include <string>
#include <vector>

namespace leo::migrations {
class Connection;
}

namespace leo::installer {

/// The rpm capability by which a broker package names a version that must be installed
/// before it (Provides: leostream-broker(upgrade-requires) = 9.2.0).
inline constexpr const char* k_upgrade_requires = "leostream-broker(upgrade-requires)";

/// One weekly range of the maintenance window, in minutes from Monday 00:00.
struct WeeklyRange {
    int start = 0;   ///< 0 .. 10079
    int length = 0;  ///< 1 .. 10080 minutes
    std::string text;
};

/// Parse `windows` ("Sat 22:00-Sun 04:00, Mon-Fri 02:00-03:00, Wed 23:00-01:00"): DAY or
/// DAY-DAY (each day of the range), HH:MM, '-', an optional DAY and HH:MM (24:00 allowed as
/// an end). An end at or before the start without a DAY runs into the next day. Days are
/// Mon..Sun or their full English names, any case. Throws leo::UsageError naming the
/// range and what was expected.
[[nodiscard]] std::vector<WeeklyRange> parse_windows(const std::string& windows);

/// Whether `minute_of_week` (0 = Monday 00:00) is inside one of `ranges`.
[[nodiscard]] bool inside_windows(const std::vector<WeeklyRange>& ranges, int minute_of_week);

/// Minutes from `minute_of_week` until the next range opens (0 when inside one); nullopt
/// when there is none.
[[nodiscard]] std::optional<int> minutes_until_open(const std::vector<WeeklyRange>& ranges, int minute_of_week);

enum class GateState { passed, refused, overridden };
[[nodiscard]] const char* to_string(GateState s);

struct GateVerdict {
    std::string id;      ///< upgrades_enabled, support_licence, maintenance_window, replication, upgrade_path
    GateState state = GateState::passed;
    std::string detail;  ///< one line: why it passed or was refused
};

struct GateInputs {
    InstallerConfig config;
    rpm::PackageInfo installed;
    rpm::PackageInfo target;
    /// `--now --reason TEXT`: the maintenance window does not apply (the reason is logged).
    std::optional<std::string> override_reason;
};

/// Evaluate every gate on the broker database `conn` (the server's clock and date).
/// Throws leo::UsageError for a time zone the server does not know (naming installer.conf),
/// leo::DatabaseError when the database cannot be read.
[[nodiscard]] std::vector<GateVerdict> evaluate_gates(migrations::Connection& conn, const GateInputs& inputs);

/// Throws leo::RefusedError (exit 3) listing every refused gate ("...; nothing was
/// changed"); nothing when all passed or were overridden.
void enforce_gates(const std::vector<GateVerdict>& verdicts);

} // namespace leo::installer
