// migrate(): the lock, the state, the decision and validation, then each pending migration.
#include "internal.hpp"

#include "leo/common/error.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace leo::migrations::detail {
namespace {

/// `migrations` in version order (the caller's vector when it already is), duplicates
/// refused.
const std::vector<Migration>& in_order(const std::vector<Migration>& migrations, std::vector<Migration>& storage) {
    const auto less = [](const Migration& a, const Migration& b) {
        return compare_parts(version_parts_or_throw(a.version), version_parts_or_throw(b.version)) < 0;
    };
    const std::vector<Migration>* sorted = &migrations;
    if (!std::is_sorted(migrations.begin(), migrations.end(), less)) {
        storage = migrations;
        std::stable_sort(storage.begin(), storage.end(), less);
        sorted = &storage;
    }
    for (size_t i = 1; i < sorted->size(); ++i)
        if (compare_versions((*sorted)[i - 1].version, (*sorted)[i].version) == 0)
            throw MigrationError(fmt::format("two migrations have version {}: {} and {}", (*sorted)[i].version,
                                             (*sorted)[i - 1].script, (*sorted)[i].script));
    return *sorted;
}

/// What migrate() will do: the decision and the validation, refusals thrown.
struct Prepared {
    UpgradeDecision decision;
    Validation validation;
};

Prepared prepare(const SchemaState& real, const std::vector<Migration>& files, const std::string& broker_version,
                 const MigrateOptions& options) {
    SchemaState state = real;
    if (options.baseline) {
        if (real.has_history && (!real.applied.empty() || !real.failed.empty()))
            throw MigrationError(fmt::format("cannot baseline at {}: the database already has a schema history "
                                             "(schema {}); --baseline only adopts a database made before the "
                                             "migration engine",
                                             *options.baseline, real.schema_version.value_or("none")),
                                 ExitCode::refused);
        AppliedMigration row;
        row.version = *options.baseline;
        row.type = "BASELINE";
        row.broker_version = broker_version;
        row.min_broker_version = broker_part(*options.baseline);
        state.applied = {row};
        state.baseline = row.version;
        state.schema_version = row.version;
        state.broker_version = broker_version;
        state.min_broker_version = row.min_broker_version;
    } else if (!real.schema_version && real.failed.empty() && real.other_tables > 0) {
        throw MigrationError(fmt::format("the database has {} table(s) but {}{}: it was made before the migration "
                                         "engine, or it is not a broker database; adopt it with --baseline VERSION "
                                         "(the schema version it is at) to apply only later migrations",
                                         real.other_tables, real.has_history ? "an empty " : "no ", k_history_table),
                             ExitCode::refused);
    }
    Prepared p;
    p.decision = decide_upgrade(state, files, broker_version, options.kind, options.allow_remote_upgrade,
                                 options.allow_flag);
    if (p.decision.refused())
        throw MigrationError(p.decision.message, ExitCode::refused);
    p.validation = validate(state, files, broker_version);
    if (!p.validation.ok())
        throw MigrationError(p.validation.message(), ExitCode::refused);
    return p;
}

} // namespace

} // namespace leo::migrations::detail

namespace leo::migrations {
using namespace detail;

MigrateResult migrate(Connection& conn, const std::vector<Migration>& migrations, const std::string& broker_version,
                      DryRun dry_run) {
    MigrateOptions options;
    options.dry_run = dry_run;
    return migrate(conn, migrations, broker_version, options);
}

MigrateResult migrate(Connection& conn, const std::vector<Migration>& migrations, const std::string& broker_version,
                      const MigrateOptions& options) {
    std::vector<Migration> storage;
    const auto& files = in_order(migrations, storage);
    if (options.baseline && !parse_version(*options.baseline))
        throw MigrationError(fmt::format("invalid baseline version '{}': expected dot-separated non-negative "
                                         "integers such as 9.0.0.2",
                                         *options.baseline),
                             ExitCode::usage);
    MigrateResult result;
    auto fill = [&](const SchemaState& state, const Prepared& p, bool with_sql) {
        result.schema_before = state.schema_version;
        result.schema_after = options.baseline ? options.baseline : state.schema_version;
        result.action = p.decision.action;
        result.baseline = options.baseline;
        for (const auto* m : p.validation.pending) {
            result.plan.push_back({m->version, m->script, m->transactional, with_sql ? read_migration(*m) : ""});
        }
    };

    if (options.dry_run == DryRun::yes) {
        const auto state = read_schema_state(conn);
        const auto p = prepare(state, files, broker_version, options);
        fill(state, p, true);
        for (const auto& m : result.plan) {
            result.applied.push_back(m.script);
            result.schema_after = m.version;
        }
        return result;
    }

    ClusterLock lock(conn, options.lock);
    SessionName name(conn);
    lock.wait_for_orphans(options.lock.wait);
    // Read under the lock: another broker may have migrated while we waited.
    const auto state = read_schema_state(conn);
    const auto p = prepare(state, files, broker_version, options);
    fill(state, p, false);
    if (p.validation.pending.empty() && !options.baseline)
        return result;

    ensure_history(conn, state);
    const RowContext ctx{broker_version, options.host.empty() ? host_name() : options.host, options.site_id,
                         options.fence};
    if (options.baseline) {
        try {
            insert_history(conn, *options.baseline, fmt::format("baseline: database adopted at {}", *options.baseline),
                           "<< baseline >>", "", "none", "BASELINE", 0, true, ctx);
        } catch (const DatabaseError& e) {
            throw MigrationError(fmt::format("cannot record the baseline {}: {}", *options.baseline, e.what()));
        }
    }
    for (const Migration* pending : p.validation.pending) {
        const Migration& m = *pending;
        lock.verify();
        if (options.fence) options.fence(conn);
        const std::string sql = read_migration(m);
        if (m.transactional)
            apply_transactional(conn, m, sql, options.timeouts, ctx);
        else
            apply_no_transaction(conn, m, sql, options.timeouts, ctx);
        result.applied.push_back(m.script);
        result.schema_after = m.version;
    }
    return result;
}

} // namespace leo::migrations
