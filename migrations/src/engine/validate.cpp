// The history against the files (validate) and DESIGN.md's allow_remote_upgrade rules
// (decide_upgrade).
#include "internal.hpp"
#include "leo/common/hint.hpp"

#include "leo/common/error.hpp"

#include <fmt/format.h>

#include <unordered_map>
#include <unordered_set>

namespace leo::migrations {
using namespace detail;
namespace {

std::string newer_message(const std::string& schema, const std::vector<Migration>& files,
                          const std::string& broker_version, const SchemaState& state) {
    return fmt::format("database schema {} is newer than this broker's newest migration {} (broker {}): a broker "
                       "cannot run an unknown schema; install broker {} or newer",
                       schema, files.empty() ? std::string("(none)") : files.back().version, broker_version,
                       state.min_broker_version.value_or(state.broker_version.value_or("(the one that wrote it)")));
}

/// "migration V2__x.sql, line 3: COMMIT ...: a transactional migration ...; remove ..., or
/// mark ...".
std::string transaction_control_message(const Migration& m) {
    std::string found;
    for (const auto& t : m.transaction_control)
        found += fmt::format("{}line {}: {}", found.empty() ? "" : ", ", t.line, t.command);
    return fmt::format("migration {}, {}: a migration runs in one transaction (its history row is written in it), so "
                       "a statement that ends or starts a transaction would leave its first part committed without "
                       "that row; remove the statement, or mark the migration with the line '{}' to run its "
                       "statements one at a time outside a transaction",
                       m.script, found, k_no_transaction_marker);
}

/// Flyway's advice for a failed entry ("remove any half-completed changes then run
/// repair"), with who ran it and when.
std::string failed_message(const FailedMigration& f) {
    std::string who = f.broker_version.empty() ? "" : " by broker " + f.broker_version;
    if (!f.installed_host.empty())
        who += " on " + f.installed_host;
    if (!f.installed_on.empty())
        who += " at " + f.installed_on;
    return fmt::format("migration {} (version {}) failed part-way{}: {}{} records it as failed (installed_rank {}); "
                       "the statements before the failing one stay applied, so the schema is between two versions "
                       "and no migration runs until this is put right: undo by hand what the migration changed (it "
                       "runs again from its first statement), then remove the failed entry with {}",
                       f.script.empty() ? f.version : f.script, f.version, who,
                       f.failure.empty() ? "" : f.failure + "; ", k_history_table, f.installed_rank,
                       command_hint("migrate --repair"));
}

} // namespace

std::string Validation::message() const {
    std::string out;
    for (const auto& p : problems)
        out += (out.empty() ? "" : "; ") + p.message;
    return out;
}

Validation validate(const SchemaState& state, const std::vector<Migration>& files, const std::string& broker_version) {
    Validation v;
    using Kind = ValidationProblem::Kind;
    for (const auto& f : state.failed)
        v.problems.push_back({Kind::failed_migration, f.version, failed_message(f)});
    const Migration* newest = files.empty() ? nullptr : &files.back();
    std::unordered_map<std::string, const Migration*> by_key;
    by_key.reserve(files.size());
    for (const auto& m : files)
        by_key.emplace(version_key(m.version), &m);

    std::unordered_set<std::string> applied;
    applied.reserve(state.applied.size());
    bool newer_reported = false;
    for (const auto& a : state.applied) {
        if (a.type == "BASELINE")
            continue;
        const auto key = version_key(a.version);
        applied.insert(key);
        const auto it = by_key.find(key);
        if (it == by_key.end()) {
            if (newest == nullptr || compare_versions(a.version, newest->version) > 0) {
                if (!newer_reported)
                    v.problems.push_back(
                        {Kind::database_newer, a.version,
                         newer_message(state.schema_version.value_or(a.version), files, broker_version, state)});
                newer_reported = true;
            } else {
                v.problems.push_back(
                    {Kind::missing_file, a.version,
                     fmt::format("migration {} (version {}) was applied to the database by broker {} but is missing "
                                 "from the migrations directory: an applied migration must stay shipped; restore the "
                                 "file",
                                 a.script.empty() ? a.version : a.script, a.version, a.broker_version)});
            }
            continue;
        }
        const Migration& file = *it->second;
        if (a.checksum_algorithm != k_checksum_algorithm)
            v.problems.push_back({Kind::unknown_algorithm, a.version,
                                  fmt::format("migration {} was recorded with checksum algorithm '{}', which this "
                                              "broker does not know (it uses '{}')",
                                              file.script, a.checksum_algorithm, k_checksum_algorithm)});
        else if (a.checksum != file.checksum)
            v.problems.push_back(
                {Kind::changed_file, a.version,
                 fmt::format("migration {} changed after it was applied: the database recorded checksum {} (applied "
                             "as {}), the file has {} ({}); an applied migration must not change: restore the shipped "
                             "file",
                             file.script, a.checksum, a.script.empty() ? a.version : a.script, file.checksum,
                             k_checksum_algorithm)});
    }

    std::optional<std::vector<long>> schema;
    if (state.schema_version)
        schema = version_parts_or_throw(*state.schema_version);
    std::optional<std::vector<long>> baseline;
    if (state.baseline)
        baseline = version_parts_or_throw(*state.baseline);
    for (const auto& m : files) {
        if (baseline && compare_parts(m.version_parts.empty() ? version_parts_or_throw(m.version) : m.version_parts,
                                      *baseline) <= 0)
            continue;
        if (applied.count(version_key(m.version)) != 0)
            continue;
        const auto parts = m.version_parts.empty() ? version_parts_or_throw(m.version) : m.version_parts;
        if (schema && compare_parts(parts, *schema) < 0) {
            v.problems.push_back({Kind::out_of_order, m.version,
                                  fmt::format("migration {} is older than the database schema {} but was never "
                                              "applied; migrations must be applied in version order",
                                              m.script, *state.schema_version)});
            continue;
        }
        if (m.transactional && !m.transaction_control.empty())
            v.problems.push_back({Kind::transaction_control, m.version, transaction_control_message(m)});
        v.pending.push_back(&m);
    }
    return v;
}

UpgradeDecision decide_upgrade(const SchemaState& state, const std::vector<Migration>& files,
                               const std::string& broker_version, DatabaseKind kind, AllowRemoteUpgrade allow,
                               std::string_view allow_flag) {
    using Action = UpgradeDecision::Action;
    UpgradeDecision d;
    if (!state.schema_version) {
        d.action = files.empty() ? Action::none : Action::initialise;
        return d;
    }
    const std::string& schema = *state.schema_version;
    if (files.empty() || compare_versions(schema, files.back().version) > 0) {
        d.action = Action::refuse_newer;
        d.message = newer_message(schema, files, broker_version, state);
        return d;
    }
    const std::string& newest = files.back().version;
    if (compare_versions(schema, newest) == 0) {
        d.action = Action::none;
        return d;
    }
    if (kind == DatabaseKind::external && allow == AllowRemoteUpgrade::no) {
        d.action = Action::refuse_remote;
        d.message = fmt::format(
            "the external database's schema {} (written by broker {}) is older than this broker's schema {} (broker "
            "{}): upgrading it changes the schema every broker sharing the database runs on; run again with "
            "{} to upgrade it",
            schema, state.broker_version.value_or("unknown"), newest, broker_version, allow_flag);
        return d;
    }
    d.action = Action::upgrade;
    return d;
}

} // namespace leo::migrations
