#include "leo/installer/gates.hpp"
#include "leo/installer/settings.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/redact.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/rpm/evr.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace leo::installer {

namespace {

constexpr int k_day = 24 * 60;
constexpr int k_week = 7 * k_day;
constexpr std::array<const char*, 7> k_days{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
constexpr std::array<const char*, 7> k_day_names{"monday", "tuesday", "wednesday", "thursday",
                                                 "friday", "saturday", "sunday"};

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::optional<int> parse_day(const std::string& word) {
    const std::string w = lower(word);
    for (int i = 0; i < 7; ++i)
        if (w == k_days[static_cast<size_t>(i)] || w == k_day_names[static_cast<size_t>(i)]) return i;
    return std::nullopt;
}

/// "HH:MM" as minutes of the day; 24:00 only when `end`.
std::optional<int> parse_time(const std::string& word, bool end) {
    if (word.size() != 5 || word[2] != ':' || !std::isdigit(static_cast<unsigned char>(word[0])) ||
        !std::isdigit(static_cast<unsigned char>(word[1])) || !std::isdigit(static_cast<unsigned char>(word[3])) ||
        !std::isdigit(static_cast<unsigned char>(word[4])))
        return std::nullopt;
    const int h = (word[0] - '0') * 10 + (word[1] - '0');
    const int m = (word[3] - '0') * 10 + (word[4] - '0');
    if (m > 59) return std::nullopt;
    if (h == 24 && m == 0 && end) return k_day;
    if (h > 23) return std::nullopt;
    return h * 60 + m;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    size_t pos = 0;
    for (;;) {
        const auto next = s.find(sep, pos);
        out.push_back(s.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
        if (next == std::string::npos) break;
        pos = next + 1;
    }
    return out;
}

std::vector<WeeklyRange> parse_range(const std::string& text) {
    const auto bad = [&](const std::string& what) {
        return UsageError(fmt::format("'{}': {}; expected DAY HH:MM-[DAY ]HH:MM or DAY-DAY HH:MM-HH:MM (for example "
                                      "Sat 22:00-Sun 04:00)",
                                      text, what));
    };
    // "DAYS START-END" where END may be "DAY HH:MM": split at the first blank.
    const auto blank = text.find_first_of(" \t");
    if (blank == std::string::npos) throw bad("no time");
    const std::string days = text.substr(0, blank);
    const std::string times = trim(text.substr(blank));
    int first = 0;
    int last = 0;
    if (const auto dash = days.find('-'); dash != std::string::npos) {
        const auto a = parse_day(days.substr(0, dash));
        const auto b = parse_day(days.substr(dash + 1));
        if (!a || !b) throw bad(fmt::format("'{}' is not a day range such as Mon-Fri", days));
        first = *a;
        last = *b;
    } else {
        const auto a = parse_day(days);
        if (!a) throw bad(fmt::format("'{}' is not a day (Mon..Sun)", days));
        first = last = *a;
    }
    const auto dash = times.find('-');
    if (dash == std::string::npos) throw bad("no '-' between start and end");
    const auto start = parse_time(trim(times.substr(0, dash)), false);
    if (!start) throw bad(fmt::format("'{}' is not a time HH:MM", trim(times.substr(0, dash))));
    const std::string end_text = trim(times.substr(dash + 1));
    std::optional<int> end_day;
    std::string end_time = end_text;
    if (const auto b = end_text.find_first_of(" \t"); b != std::string::npos) {
        end_day = parse_day(end_text.substr(0, b));
        if (!end_day) throw bad(fmt::format("'{}' is not a day (Mon..Sun)", end_text.substr(0, b)));
        if (first != last) throw bad("a day range cannot end on another day");
        end_time = trim(end_text.substr(b));
    }
    const auto end = parse_time(end_time, true);
    if (!end) throw bad(fmt::format("'{}' is not a time HH:MM", end_time));
    std::vector<WeeklyRange> out;
    for (int d = first;; d = (d + 1) % 7) {
        WeeklyRange r;
        r.start = d * k_day + *start;
        int length = 0;
        if (end_day) {
            length = (*end_day * k_day + *end) - r.start;
            if (length <= 0) length += k_week;
        } else {
            length = *end - *start;
            if (length <= 0) length += k_day;
        }
        r.length = std::min(length, k_week);
        r.text = text;
        out.push_back(r);
        if (d == last) break;
    }
    return out;
}

} // namespace

std::vector<WeeklyRange> parse_windows(const std::string& windows) {
    std::vector<WeeklyRange> out;
    for (const auto& part : split(windows, ',')) {
        const std::string text = trim(part);
        if (text.empty()) throw UsageError("an empty range (two commas, or a comma at an end)");
        auto ranges = parse_range(text);
        out.insert(out.end(), ranges.begin(), ranges.end());
    }
    return out;
}

bool inside_windows(const std::vector<WeeklyRange>& ranges, int minute_of_week) {
    for (const auto& r : ranges) {
        const int offset = ((minute_of_week - r.start) % k_week + k_week) % k_week;
        if (offset < r.length) return true;
    }
    return false;
}

std::optional<int> minutes_until_open(const std::vector<WeeklyRange>& ranges, int minute_of_week) {
    if (inside_windows(ranges, minute_of_week)) return 0;
    std::optional<int> best;
    for (const auto& r : ranges) {
        const int wait = ((r.start - minute_of_week) % k_week + k_week) % k_week;
        if (!best || wait < *best) best = wait;
    }
    return best;
}

const char* to_string(GateState s) {
    switch (s) {
    case GateState::passed: return "passed";
    case GateState::refused: return "refused";
    case GateState::overridden: return "overridden";
    }
    return "?";
}

namespace {

using migrations::Connection;
using migrations::QueryError;

/// A query on a table the broker's schema may not have (an older schema): nullopt for
/// "undefined table" (42P01), the rows otherwise.
std::optional<migrations::Rows> query_if_table(Connection& conn, const std::string& sql) {
    try {
        return conn.query(sql);
    } catch (const QueryError& e) {
        if (e.sqlstate() == "42P01") return std::nullopt;
        throw;
    }
}

GateVerdict upgrades_enabled(Connection& conn) {
    GateVerdict v{"upgrades_enabled", GateState::passed, ""};
    const auto rows = query_if_table(conn, "SELECT value FROM settings WHERE name = 'upgrades_enabled'");
    if (!rows || rows->empty() || !rows->rows[0][0]) {
        v.detail = "no \"disable broker upgrade\" setting is recorded";
        return v;
    }
    // PostgreSQL's spellings of a boolean (and on/off), read as `setting` reads them:
    // anything else is refused, since a setting that says neither cannot be read as permission.
    const std::string raw = *rows->rows[0][0];
    const auto enabled = parse_setting_bool(raw);
    if (enabled == true) {
        v.detail = "broker upgrades are enabled";
        return v;
    }
    v.state = GateState::refused;
    const bool disabled = enabled == false;
    v.detail = disabled ? fmt::format("broker upgrades are disabled by the administration setting \"disable broker "
                                      "upgrade\" (settings.upgrades_enabled = '{}'): enable them (Administration Menu "
                                      "> Advanced > Upgrade enable) and run again",
                                      printable(raw))
                        : fmt::format("the administration setting settings.upgrades_enabled holds '{}', which is "
                                      "neither true nor false: set it to true to allow upgrades (or false) and run "
                                      "again",
                                      printable(raw));
    return v;
}

GateVerdict support_licence(Connection& conn) {
    GateVerdict v{"support_licence", GateState::passed, ""};
    const auto rows = query_if_table(
        conn, "SELECT max(expires_on)::text, (max(expires_on) < current_date)::text, current_date::text "
              "FROM support_licence");
    if (!rows || rows->empty() || !rows->rows[0][0]) {
        v.detail = "no support licence is recorded";
        return v;
    }
    const std::string expires = *rows->rows[0][0];
    if (rows->rows[0][1] && *rows->rows[0][1] == "true") {
        v.state = GateState::refused;
        v.detail = fmt::format("the support licence expired on {} (today is {} on the database server): renew it "
                               "before upgrading",
                               expires, rows->rows[0][2].value_or("?"));
    } else {
        v.detail = fmt::format("the support licence is valid until {}", expires);
    }
    return v;
}

GateVerdict maintenance_window(Connection& conn, const GateInputs& in) {
    GateVerdict v{"maintenance_window", GateState::passed, ""};
    // An installer.conf whose window cannot be read: no one can say whether now is inside
    // it, so no upgrade (not even with --now) until it is fixed.
    if (!in.config.maintenance_window_error.empty()) {
        v.state = GateState::refused;
        v.detail = fmt::format("the maintenance window cannot be read: {}; fix installer.conf and run again",
                               in.config.maintenance_window_error);
        return v;
    }
    if (in.config.maintenance_windows.empty()) {
        v.detail = "no maintenance window is configured ([maintenance_window] windows in installer.conf)";
        return v;
    }
    const auto ranges = parse_windows(in.config.maintenance_windows);
    migrations::Rows rows;
    try {
        rows = conn.query("SELECT extract(isodow FROM pg_catalog.now() AT TIME ZONE $1)::int, "
                          "extract(hour FROM pg_catalog.now() AT TIME ZONE $1)::int, "
                          "extract(minute FROM pg_catalog.now() AT TIME ZONE $1)::int, "
                          "to_char(pg_catalog.now() AT TIME ZONE $1, 'Dy YYYY-MM-DD HH24:MI')",
                          {in.config.maintenance_time_zone});
    } catch (const QueryError& e) {
        if (e.sqlstate() == "22023")
            throw UsageError(fmt::format("/etc/leo-installer/installer.conf: [maintenance_window] time_zone = {}: the "
                                         "database server does not know this time zone ({}); use a name such as "
                                         "Europe/Berlin or UTC",
                                         in.config.maintenance_time_zone, e.server_message()));
        throw;
    }
    const int minute = (std::stoi(rows.at(0, 0)) - 1) * k_day + std::stoi(rows.at(0, 1)) * 60 + std::stoi(rows.at(0, 2));
    const std::string now = fmt::format("{} {}", rows.at(0, 3), in.config.maintenance_time_zone);
    if (inside_windows(ranges, minute)) {
        v.detail = fmt::format("{} is inside the maintenance window ({})", now, in.config.maintenance_windows);
        return v;
    }
    const auto wait = minutes_until_open(ranges, minute);
    const std::string next =
        wait ? fmt::format("; it opens in {} h {:02} min", *wait / 60, *wait % 60) : std::string();
    if (in.override_reason) {
        v.state = GateState::overridden;
        v.detail = fmt::format("{} is outside the maintenance window ({}), overridden with --now: {}", now,
                               in.config.maintenance_windows, *in.override_reason);
        log::warning("maintenance window overridden with --now --reason \"{}\" ({})", *in.override_reason, now);
        return v;
    }
    v.state = GateState::refused;
    v.detail = fmt::format("{} is outside the maintenance window ({}){}: run it then, or now with --now --reason "
                           "TEXT (logged)",
                           now, in.config.maintenance_windows, next);
    return v;
}

GateVerdict replication(Connection& conn) {
    GateVerdict v{"replication", GateState::passed, ""};
    const int version = conn.server_version_num();
    std::vector<std::string> found;
    if (conn.query("SELECT pg_is_in_recovery()::text").at(0, 0) == "true")
        found.push_back("the database server is a standby in recovery");
    // Each standby (or logical subscriber) connected to this server, by its
    // application_name and address. The details of another role's walsender are NULL
    // without superuser or pg_read_all_stats (state then NULL): said so, with its pid.
    const auto standbys = conn.query("SELECT pid::text, application_name, host(client_addr), state "
                                     "FROM pg_stat_replication ORDER BY application_name, pid");
    for (size_t r = 0; r < standbys.rows.size(); ++r) {
        const auto& row = standbys.rows[r];
        const std::string name = row[1] && !row[1]->empty() ? "\"" + printable(*row[1]) + "\"" : "(no application_name)";
        if (!row[3])
            found.push_back(fmt::format("connected standby {} (walsender pid {}; its address needs superuser or "
                                        "pg_read_all_stats to be shown)",
                                        name, row[0].value_or("?")));
        else
            found.push_back(fmt::format("connected standby {} from {} ({})", name,
                                        row[2] ? printable(*row[2]) : std::string("the local socket"),
                                        printable(*row[3])));
    }
    if (version >= 90400) {
        const auto slots = conn.query("SELECT slot_name, slot_type FROM pg_replication_slots "
                                      "WHERE database IS NULL OR database = current_database() ORDER BY slot_name");
        for (size_t r = 0; r < slots.rows.size(); ++r)
            found.push_back(fmt::format("replication slot {} ({})", printable(slots.at(r, 0)), slots.at(r, 1)));
    }
    if (version >= 100000) {
        const auto pubs = conn.query("SELECT pubname FROM pg_publication ORDER BY pubname");
        for (size_t r = 0; r < pubs.rows.size(); ++r) found.push_back("publication " + printable(pubs.at(r, 0)));
        const auto subs = conn.query("SELECT subname, array_to_string(subpublications, ', ') FROM pg_subscription "
                                     "WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                                     "ORDER BY subname");
        for (size_t r = 0; r < subs.rows.size(); ++r)
            found.push_back(fmt::format("subscription {} (to publication {})", printable(subs.at(r, 0)),
                                        printable(subs.rows[r][1].value_or("?"))));
    }
    if (found.empty()) {
        v.detail = "the broker database is not replicated";
        return v;
    }
    std::string list;
    for (const auto& f : found) list += (list.empty() ? "" : ", ") + f;
    v.state = GateState::refused;
    v.detail = fmt::format("the broker database is replicated ({}); the update procedure forbids upgrading while "
                           "it is: stop the replication first",
                           list);
    return v;
}

GateVerdict upgrade_path(const GateInputs& in) {
    GateVerdict v{"upgrade_path", GateState::passed, ""};
    std::vector<std::string> required;
    for (const auto& [name, version] : in.target.provides)
        if (name == k_upgrade_requires && !version.empty()) required.push_back(version);
    if (required.empty()) {
        v.detail = fmt::format("{} declares no required intermediate version", in.target.nevra());
        return v;
    }
    for (const auto& req : required) {
        const auto r = rpm::parse_evr(req);
        if (rpm::compare_evr(rpm::Evr{in.installed.epoch.value_or(0), in.installed.version, ""},
                             rpm::Evr{r.epoch, r.version, ""}) < 0) {
            v.state = GateState::refused;
            v.detail = fmt::format("{} can only be installed over version {} or later, and {} is installed: upgrade "
                                   "to {} first ({}), then to {}",
                                   in.target.nevra(), req, in.installed.version, req,
                                   command_hint("upgrade --version " + req), in.target.version);
            return v;
        }
    }
    std::string list;
    for (const auto& r : required) list += (list.empty() ? "" : ", ") + r;
    v.detail = fmt::format("{} requires {} or later to be installed first: {} is", in.target.nevra(), list,
                           in.installed.version);
    return v;
}

} // namespace

std::vector<GateVerdict> evaluate_gates(Connection& conn, const GateInputs& inputs) {
    std::vector<GateVerdict> out;
    out.push_back(upgrades_enabled(conn));
    out.push_back(support_licence(conn));
    out.push_back(maintenance_window(conn, inputs));
    out.push_back(replication(conn));
    out.push_back(upgrade_path(inputs));
    for (const auto& v : out) log::info("gate {}: {}: {}", v.id, to_string(v.state), v.detail);
    return out;
}

void enforce_gates(const std::vector<GateVerdict>& verdicts) {
    std::string refused;
    for (const auto& v : verdicts)
        if (v.state == GateState::refused) refused += (refused.empty() ? "" : "; ") + v.id + ": " + v.detail;
    if (!refused.empty()) throw RefusedError(fmt::format("the upgrade's gates refused it: {}; nothing was changed", refused));
}

} // namespace leo::installer
