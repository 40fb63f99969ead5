#include "leo/installer/upgrade.hpp"
#include "leo/installer/hint.hpp"
#include "staging.hpp"
#include "update_check.hpp"
#include "leo/installer/switch_database.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/installer/broker_database.hpp"
#include "leo/installer/journal.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"
#include "leo/common/log.hpp"
#include "leo/common/signals.hpp"
#include "leo/installer/cluster.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/dry_run.hpp"
#include "leo/installer/kept_package.hpp"
#include "leo/installer/private_package.hpp"
#include "leo/installer/gates.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/services.hpp"
#include "leo/installer/spot_check.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/status.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/preflight/facts.hpp"
#include "leo/repo/url.hpp"
#include "leo/rpm/evr.hpp"
#include "leo/rpm/lock.hpp"
#include "leo/rpm/transaction.hpp"

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <set>

#include <fmt/format.h>

#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;
using namespace update_detail;

namespace {

void step(const UpgradeCallbacks& cb, const std::string& s) {
    log::info("{}", s);
    if (cb.on_step) cb.on_step(s);
}

/// What the run says while another rpm transaction holds rpm's lock.
std::function<void(const rpm::LockHolder&)> rpm_lock_message(const UpgradeCallbacks& cb, std::chrono::seconds limit) {
    return [&cb, limit](const rpm::LockHolder& h) {
        step(cb, fmt::format("waiting up to {} s for another rpm transaction to finish (pid {}{})", limit.count(),
                             h.pid, h.command.empty() ? "" : ": " + h.command));
    };
}

/// The *.rpmnew files in the broker's configuration directories (host paths).
std::set<std::string> rpmnew_files(const stdfs::path& root) {
    std::set<std::string> out;
    const fs::SystemRoot sr(root);
    for (const char* dir : {"/home/leo/etc", "/etc/leostream"})
        for (const auto& name : sr.list(dir))
            if (name.size() > 7 && name.compare(name.size() - 7, 7, ".rpmnew") == 0)
                out.insert(sr.host(stdfs::path(dir) / name).string());
    return out;
}

/// The broker database of this run: the internal instance (started when needed) or the
/// external database a cluster shares.
struct BrokerDatabase {
    bool external = false;
    std::string conninfo;  ///< may hold a password: never printed
    std::string endpoint;  ///< for messages
    std::optional<int> site_id;
    /// This run migrates the schema (always for the internal database; for a shared one,
    /// only the broker that finds it older than the package's, with --allow-remote-upgrade).
    bool migrates = true;
    UpgradeLease* lease = nullptr;  ///< the cluster's upgrade lease, held for the run (external)
};

BrokerDatabase broker_database(const stdfs::path& root, const UpgradeCallbacks& cb) {
    const auto target = broker_database_target(root, [&cb](const std::string& notice) { step(cb, notice); });
    BrokerDatabase out;
    out.external = target.external;
    out.conninfo = target.conninfo;
    out.endpoint = target.endpoint;
    out.site_id = target.site_id;
    return out;
}

/// Durations of the run's steps, for the report: lap(NAME) records the time since the
/// previous lap (or the start) under NAME.
class StepTimer {
public:
    explicit StepTimer(UpgradeOutcome& out) : m_out(out), m_last(std::chrono::steady_clock::now()) {}
    void lap(const std::string& name) {
        const auto now = std::chrono::steady_clock::now();
        m_out.step_seconds.emplace_back(name, std::chrono::duration<double>(now - m_last).count());
        m_last = now;
    }

private:
    UpgradeOutcome& m_out;
    std::chrono::steady_clock::time_point m_last;
};

/// The steps after the restore point: transaction, migrations, spot-check, each
/// announced in the journal before it starts and recorded when it ends.
void apply(const stdfs::path& root, const stdfs::path& file, const rpm::PackageInfo& target,
           const std::vector<stdfs::path>& keys, bool require_signature, std::chrono::seconds rpmdb_wait,
           const UpgradeCallbacks& cb, UpgradeOutcome& outcome, Journal& journal, const std::string& run,
           const StoppedComponents& stopped, std::chrono::seconds spot_check_timeout, StepTimer& timer,
           const BrokerDatabase& database) {
    if (database.lease) database.lease->renew();
    journal.step_start(run, "transaction");
    fault::point("upgrade.before_transaction");
    rpm::TransactionOptions opts;
    opts.kind = rpm::TransactionKind::upgrade;
    opts.require_signature = require_signature;
    opts.keys.files = keys;
    opts.lock_wait_limit = rpmdb_wait;
    opts.on_lock_wait = rpm_lock_message(cb, rpmdb_wait);
    opts.on_progress = [&cb](const std::string&, std::uint64_t done, std::uint64_t total) {
        if (cb.on_progress) cb.on_progress(done, total);
    };
    step(cb, fmt::format("upgrading the package to {}", target.nevra()));
    const auto rpmnew_before = rpmnew_files(root);
    {
        // librpm wants no other thread during its transaction (it chroots the process):
        // the lease's background renewal pauses, after one renewal, until it has ended.
        std::optional<UpgradeLease::RenewalPause> pause;
        if (database.lease) pause.emplace(*database.lease);
        rpm::run_transaction(root, file, opts);
    }
    // A %config(noreplace) file the administrator had edited is kept; rpm writes the new
    // version beside it. Said on the terminal, not only in the log.
    for (const auto& f : rpmnew_files(root))
        if (rpmnew_before.count(f) == 0)
            step(cb, fmt::format("{} was edited here, so rpm kept it and wrote the new version as {}: merge them by "
                                 "hand",
                                 f.substr(0, f.size() - 7), f));
    {
        const fs::SystemRoot sr(root);
        sr.make_dirs(fs::SystemRoot::k_state_dir, 0700, fs::Owner{0, 0});
        sr.make_dirs(k_packages_dir, 0700, fs::Owner{0, 0});
        sr.copy_from_host(file, stdfs::path(k_packages_dir) / (target.nevra() + ".rpm"), 0600);
    }
    journal.step_done(run, "transaction");
    timer.lap("transaction");
    fault::point("upgrade.after_transaction");
    signals::check();

    journal.step_start(run, "migrate");
    if (database.lease) database.lease->renew();
    auto conn = migrations::Connection::open(database.external ? database.conninfo
                                                               : broker_database(root, cb).conninfo);
    if (database.migrates) {
        step(cb, database.external ? fmt::format("migrating the shared database {} (--allow-remote-upgrade)",
                                                 database.endpoint)
                                   : std::string("applying database migrations"));
        const auto migrate_start = std::chrono::steady_clock::now();
        migrations::MigrateOptions mopts;
        mopts.kind = database.external ? migrations::DatabaseKind::external : migrations::DatabaseKind::internal;
        mopts.allow_remote_upgrade = migrations::AllowRemoteUpgrade::yes;  // checked by the plan (exit 3 before)
        mopts.site_id = database.site_id;
        if (database.lease) mopts.fence = [lease = database.lease](migrations::Connection& c) { lease->fence(c); };
        auto result = migrations::migrate(
            conn, migrations::load_migrations(fs::SystemRoot(root).checked_host(k_migrations_dir)), target.version,
            mopts);
        log::info("applied {} database migrations in {:.2f} s", result.applied.size(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - migrate_start).count());
        outcome.migrations_applied = result.applied;
        outcome.schema_version = result.schema_after;
    } else {
        outcome.schema_version = migrations::read_schema_state(conn).schema_version;
        step(cb, fmt::format("the shared schema is already at {}: not migrating (another broker of the cluster did)",
                             outcome.schema_version.value_or("none")));
    }
    journal.step_done(run, "migrate");
    fault::point("upgrade.after_migrate");
    signals::check();

    journal.step_start(run, "start");
    timer.lap("migrate");
    start_after_change(root, stopped, [&cb](const std::string& s) { step(cb, s); });
    timer.lap("start");
    journal.step_done(run, "start");
    fault::point("upgrade.after_start");
    signals::check();

    journal.step_start(run, "spot_check");
    if (database.lease) database.lease->renew();
    step(cb, "spot-checking the result");
    SpotCheckInputs probes;
    probes.root = root;
    probes.target = target;
    probes.expected_schema = shipped_schema_version(root);
    probes.started = stopped;
    probes.timeout = spot_check_timeout;
    spot_check(conn, probes, [&cb](const std::string& s) { step(cb, s); });
    timer.lap("spot_check");
    journal.step_done(run, "spot_check");
    fault::point("upgrade.after_spot_check");
    signals::check();
}

} // namespace

namespace {
UpgradeOutcome upgrade_locked(const UpgradeRequest& req, const UpgradeCallbacks& cb, const stdfs::path& root,
                              const RunLock& lock, bool& changed, RepoKeyring& keyring);
} // namespace

UpgradeOutcome upgrade(const UpgradeRequest& req, const UpgradeCallbacks& cb) {
    const stdfs::path root = checked_root(req.root);
    if (req.version && req.version->empty()) throw UsageError("--version: empty; give a version such as 9.2.0");
    // One lock for the whole run: taken before the plan, held through the question, so
    // the plan that is confirmed is the plan that runs. A refusal before the first change
    // removes the state directory the lock created on a root that never had one.
    auto lock = RunLock::acquire(root, "upgrade");
    bool changed = false;
    // A repository's keys: shown and imported with consent on first use; a dry run
    // changes nothing and uses them in memory (repo_keys.hpp).
    RepoKeyring keyring(root, req.dry_run ? KeyImport::preview : KeyImport::ask,
                        KeyCallbacks{cb.on_step, cb.on_warning, cb.confirm});
    try {
        Journal(root).refuse_if_unfinished();
        return upgrade_locked(req, cb, root, lock, changed, keyring);
    } catch (...) {
        // (a key imported with consent stays, and so does its pin under the state directory)
        if (!changed && !keyring.pinned_any()) lock.remove_state_dir_if_created();
        throw;
    }
}

namespace {
UpgradeOutcome upgrade_locked(const UpgradeRequest& req, const UpgradeCallbacks& cb, const stdfs::path& root,
                              const RunLock& lock, bool& changed, RepoKeyring& keyring) {
    UpgradeOutcome outcome;
    const rpm::PackageInfo current = installed_broker(root);
    outcome.from = current.nevra();

    // 1. plan: resolve the target.
    stdfs::path file;
    std::string expected_nevra;  ///< what the repository metadata says the download is
    std::vector<stdfs::path> keys = req.gpgkeys;
    GpgCheck gpgcheck = req.gpgcheck;
    RepoKeySources repo_keys;
    if (req.package_file) {
        file = *req.package_file;
    } else {
        step(cb, "reading repository metadata");
        const Candidate chosen = staging::choose(available(root, req.repos, keyring), req.version);
        const auto& e = chosen.entry;
        const int cmp = rpm::compare_evr(evr_of(e), evr_of(current));
        if (cmp == 0 && req.version) {
            outcome.kind = UpgradeOutcome::Kind::nothing_to_do;
            outcome.to = current.nevra();
            outcome.already_that_version = true;
            return outcome;
        }
        if (cmp == 0 || (cmp < 0 && !req.version)) {
            outcome.kind = UpgradeOutcome::Kind::nothing_to_do;
            outcome.to = current.nevra();
            return outcome;
        }
        if (cmp < 0)
            throw InstallError(replace_advice(e.nevra(), cmp, current.nevra(), root, "upgrade"));
        // 2. stage: download and verify before anything changes.
        step(cb, fmt::format("downloading {} from {}", e.nevra(), chosen.repo.id));
        if (!chosen.repo.gpgcheck) gpgcheck = GpgCheck::no;
        auto staged = staging::stage(root, chosen, cb.on_download, keyring, gpgcheck, req.repos.cache);
        file = staged.file;
        expected_nevra = staged.expected_nevra;
        repo_keys = std::move(staged.repo_keys);
    }
    // From here on only a file no other user can change (private_package.hpp).
    const PrivatePackage package(root, file);
    if (!package.warning().empty() && cb.on_warning) cb.on_warning(package.warning());
    file = package.path();
    step(cb, fmt::format("verifying {}", file.string()));
    const auto verification = verify_for_install(root, file, keys, gpgcheck, repo_keys);
    const auto& target = verification.package;
    if (!expected_nevra.empty() && target.nevra() != expected_nevra)
        throw InstallError(fmt::format("{} is {}, but the repository metadata says {}: the repository is "
                                       "inconsistent; nothing was changed",
                                       file.string(), target.nevra(), expected_nevra));
    if (target.name != k_broker_package)
        throw InstallError(fmt::format("{} is {}, not the broker package {}", file.string(), target.nevra(),
                                       k_broker_package));
    if (gpgcheck == GpgCheck::no && verification.signature != rpm::SignatureState::ok && cb.on_warning)
        cb.on_warning(fmt::format("signature check disabled: {} is accepted with signature state {}", target.nevra(),
                                  rpm::to_string(verification.signature)));
    outcome.to = target.nevra();
    const int cmp = rpm::compare_evr(evr_of(target), evr_of(current));
    if (cmp == 0) {
        outcome.kind = UpgradeOutcome::Kind::nothing_to_do;
        return outcome;
    }
    if (cmp < 0)
        throw InstallError(replace_advice(target.nevra(), cmp, current.nevra(), root, "upgrade"));

    // Gates of this first form: preflight, upgrade profile.
    step(cb, "running preflight checks (upgrade profile)");
    const auto report = preflight::run_checks(preflight::gather_facts(root), preflight::Profile::upgrade);
    if (cb.on_preflight) cb.on_preflight(report);
    if (report.inhibited() && req.dry_run)  // a gate too: the dry run goes on to the whole plan
        outcome.would_refuse.push_back("preflight: " + preflight::inhibitor_summary(report));
    else if (report.inhibited())
        throw RefusedError(fmt::format("preflight refused the upgrade: {}; nothing was changed",
                                       preflight::inhibitor_summary(report)));

    // The gates of the documented procedure, on the broker database (the server's clock).
    const InstallerConfig config = load_config(root);
    step(cb, "checking the upgrade's gates");
    // Read as found: an internal database the plan had to start is stopped again when the
    // run ends before its first change (a refusal, a dry run, a cancelled question).
    const bool db_was_running =
        load_database_config(root).mode == DatabaseMode::external ||
        migrations::InternalDatabase(root).status().state == migrations::DbState::running;
    struct StopIfStarted {
        const stdfs::path& root;
        bool started;
        const bool& changed;
        ~StopIfStarted() {
            if (!started || changed) return;
            try {
                (void)migrations::InternalDatabase(root).stop();
            } catch (const std::exception& e) {
                log::warning("could not stop the internal database again after the plan: {}", e.what());
            }
        }
    } stop_if_started{root, !db_was_running, changed};
    BrokerDatabase database = broker_database(root, cb);
    const auto package_schema = package_schema_version(file);
    const auto decide_migration = [&](migrations::Connection& conn) {
        const auto schema = migrations::read_schema_state(conn).schema_version;
        database.migrates = !database.external ||
                            (package_schema && (!schema || migrations::compare_versions(*package_schema, *schema) > 0));
        return schema;
    };
    std::optional<std::string> shared_schema;
    std::optional<LeaseHolder> busy_lease;  ///< another broker upgrading now
    {
        auto conn = migrations::Connection::open(database.conninfo);
        GateInputs gates{config, current, target, req.override_reason};
        outcome.gates = evaluate_gates(conn, gates);
        if (database.external) {
            shared_schema = decide_migration(conn);
            if (const auto h = lease_holder(conn); h && h->seconds_left > 0) busy_lease = h;
        }
    }
    if (cb.on_gates) cb.on_gates(outcome.gates);
    if (req.dry_run) {
        // A dry run shows the whole plan, then what would refuse a real run (the CLI exits 3).
        for (const auto& g : outcome.gates)
            if (g.state == GateState::refused) outcome.would_refuse.push_back(g.id + ": " + g.detail);
        try {
            require_stoppable(root, req.components_stopped);
        } catch (const RefusedError& e) {
            outcome.would_refuse.push_back(std::string("components: ") + e.what());
        }
    } else {
        enforce_gates(outcome.gates);
        require_stoppable(root, req.components_stopped);
    }
    if (database.external) {
        // Another broker is upgrading now: it may be the one that migrates the shared
        // schema. Wait for the lease, then decide again (refused then if still older).
        if (database.migrates && !req.allow_remote_upgrade && busy_lease)
            step(cb, fmt::format("{} is upgrading the cluster now ({}): this broker waits for it, then only replaces "
                                 "its package if the shared schema is at {} by then",
                                 busy_lease->member, busy_lease->purpose, package_schema.value_or("none")));
        else if (database.migrates && !req.allow_remote_upgrade)
            throw RefusedError(fmt::format(
                "the shared database {} is at schema {}, and {} ships {}: migrating an external database needs "
                "--allow-remote-upgrade; give it on one broker of the cluster (the first), the others then only "
                "replace their package; nothing was changed",
                database.endpoint, shared_schema.value_or("none"), target.nevra(), package_schema.value_or("none")));
        const bool waits_for_migrator = database.migrates && !req.allow_remote_upgrade;
        if (!waits_for_migrator)
            step(cb, database.migrates
                     ? fmt::format("this broker migrates the shared database {} from schema {} to {}",
                                   database.endpoint, shared_schema.value_or("none"), package_schema.value_or("none"))
                     : fmt::format("the shared database {} is at schema {} already: only the package is replaced",
                                   database.endpoint, shared_schema.value_or("none")));
    }

    rpm::TransactionOptions topts;
    topts.kind = rpm::TransactionKind::upgrade;
    topts.require_signature = gpgcheck == GpgCheck::yes;
    topts.keys.files = keys;
    topts.keys.armored = repo_keys.armored;
    topts.lock_wait_limit = req.rpmdb_wait;
    topts.on_lock_wait = rpm_lock_message(cb, req.rpmdb_wait);
    step(cb, fmt::format("testing the rpm transaction {} -> {}", current.nevra(), target.nevra()));
    try {
        rpm::test_transaction(root, file, topts);
    } catch (const RpmLockedError&) {  // another rpm transaction: a refusal, not a failure
        std::throw_with_nested(RefusedError(fmt::format("cannot upgrade to {}; nothing was changed", target.nevra())));
    } catch (const RpmError&) {
        std::throw_with_nested(InstallError(fmt::format("cannot upgrade to {}; nothing was changed", target.nevra())));
    }
    if (req.dry_run) {
        outcome.kind = UpgradeOutcome::Kind::dry_run;
        // The plan, and the migrations run for real in a throw-away copy (dropped).
        const auto manager = service_manager(root);
        for (auto c : k_broker_components)
            if (manager->status(c).state == ComponentStatus::State::running) outcome.components_stopped.push_back(c);
        outcome.service_manager = manager->name();
        {
            auto conn = migrations::Connection::open(database.conninfo);
            outcome.database_bytes = std::stoull(conn.query("SELECT pg_database_size(current_database())::text").at(0, 0));
            if (database.external) {
                try {
                    outcome.cluster = cluster_members(conn);
                } catch (const migrations::QueryError&) {  // no registry yet
                }
            }
        }
        std::error_code ec;
        outcome.package_bytes = stdfs::file_size(file, ec);
        // The space a restore point needs (the package, and the database's copy or dump),
        // against what the snapshots' filesystem has free.
        const auto where = fs::nearest_existing_ancestor(fs::SystemRoot(root).host(fs::SystemRoot::k_snapshots));
        if (const auto space = stdfs::space(where, ec); !ec) outcome.space_free_bytes = space.available;
        outcome.space_needed_bytes = outcome.package_bytes + (database.migrates ? outcome.database_bytes : 0) +
                                     (database.external ? 0 : outcome.database_bytes);
        step(cb, "running the migrations in a throw-away copy of the broker database");
        outcome.trial = try_migrations_on_copy(root, file, target.version);
        outcome.migrations_applied = outcome.trial->applied;
        outcome.schema_version = outcome.trial->schema_after;
        outcome.migrates = database.migrates;
        return outcome;
    }
    lock.describe("upgrade to " + target.nevra());  // what a second run is told while we ask
    if (cb.confirm && !cb.confirm(fmt::format("Upgrade {} to {} in {}?", current.nevra(), target.nevra(),
                                              root.string())))
        throw RefusedError("upgrade cancelled: nothing was changed");

    // Another rpm/yum/dnf transaction on this root (an administrator's `rpm -i`): wait for
    // it, bounded, before the restore point; refuse with nothing changed when it goes on.
    try {
        rpm::wait_for_transaction_lock(fs::SystemRoot(root), req.rpmdb_wait,
                                       [&](const rpm::LockHolder& h, std::chrono::milliseconds) {
                                           rpm_lock_message(cb, req.rpmdb_wait)(h);
                                       });
    } catch (const RpmLockedError&) {
        std::throw_with_nested(RefusedError(fmt::format(
            "cannot upgrade {} while another rpm transaction runs; nothing was changed: run the upgrade again when "
            "it has finished, or give it longer with --rpmdb-wait SECONDS",
            current.nevra())));
    }
    // The plan was made before the question: another tool (an administrator's rpm -U)
    // may have changed the installed broker meanwhile. Run a plan only on what it was made for.
    {
        const auto now = rpm::query_installed(root, k_broker_package);
        std::string now_text;
        for (const auto& p : now) now_text += (now_text.empty() ? "" : " and ") + p.nevra();
        if (now.size() != 1 || now.front().nevra() != current.nevra())
            throw RefusedError(fmt::format(
                "the installed broker changed while the question waited (planned for {}, now {}); nothing was "
                "changed: run the upgrade again to see what it will do",
                current.nevra(), now.empty() ? std::string("none") : now_text));
    }
    // A cluster: this broker registers, then waits for the one-at-a-time upgrade lease
    // (expiring on the database server's clock; an expired holder's sessions are ended).
    std::optional<UpgradeLease> lease;
    const std::string member = member_id(root);
    if (database.external) {
        const auto lopts = lease_options(config.cluster_lease_ttl, req.lease_wait,
                                         fmt::format("upgrade {} -> {}", current.version, target.version),
                                         [&cb](const std::string& line) { step(cb, line); });
        step(cb, "taking the cluster's upgrade lease");
        // A failed wait leaves the broker as it was: running its current version.
        lease.emplace(acquire_as_member(database.conninfo, member, database.site_id, current.version, lopts,
                                        "running"));
        database.lease = &*lease;
        outcome.lease_token = lease->token();
        auto conn = migrations::Connection::open(database.conninfo);
        // Another broker may have migrated while this one waited.
        shared_schema = decide_migration(conn);
        if (database.migrates && !req.allow_remote_upgrade)
            throw RefusedError(fmt::format(
                "the shared database {} is at schema {}, and {} ships {}: migrating an external database needs "
                "--allow-remote-upgrade; nothing was changed",
                database.endpoint, shared_schema.value_or("none"), target.nevra(), package_schema.value_or("none")));
    }
    // The restore point's own checks (sessions on the broker database, free space) before
    // the journal records a run: a refusal here changes nothing.
    try {
        // Other sessions on the broker database are refused here, with nothing changed,
        // unless broker components run: theirs end when they stop, so the restore point
        // checks the sessions again after the stop.
        bool components_running = false;
        if (!req.components_stopped) {
            const auto manager = service_manager(root);
            for (auto c : k_broker_components)
                if (manager->status(c).state == ComponentStatus::State::running) components_running = true;
        }
        // The rollback reinstalls the installed RPM: kept by install/upgrade, else found in a
        // package cache or given with --installed-rpm (a broker installed by rpm -U).
        (void)keep_installed_package(root, current, req.installed_package_file);
        if (!database.external) precheck_restore_point(root, cb.on_warning, !components_running);
    } catch (const RefusedError&) {
        std::throw_with_nested(RefusedError(fmt::format(
            "cannot take a restore point before upgrading {}; nothing was changed", current.nevra())));
    } catch (const Error&) {
        std::throw_with_nested(InstallError(fmt::format(
            "cannot take a restore point before upgrading {}; nothing was changed", current.nevra())));
    }
    outcome.migrates = database.migrates;
    Journal journal(root);
    changed = true;
    keyring.commit_pins();  // the keys this run trusts, pinned now that it changes the root
    const std::string run = journal.begin("upgrade", current.nevra(), target.nevra());
    // For recover: the lease this run holds, and whether it changes the shared database.
    if (lease)
        journal.step_done(run, "lease", {{"lease_token", lease->token()}, {"shared_database", database.migrates}});
    fault::point("upgrade.begin");
    StepTimer timer(outcome);
    // The broker's components stop before the restore point (its copy needs the database
    // without clients) and start again after the migrations: the downtime runs from here.
    journal.step_start(run, "stop");
    StoppedComponents stopped;
    const auto down_since = std::chrono::steady_clock::now();
    const auto start_again = [&](const char* when) {
        try {
            start_after_change(root, stopped, [&cb](const std::string& s) { step(cb, s); });
        } catch (const std::exception& e) {
            if (cb.on_warning)
                cb.on_warning(fmt::format("{}, starting the broker components again failed: {}; start them with "
                                          "`leo-installer service start --root {}`",
                                          when, describe(e), root.string()));
        }
    };
    try {
        stopped = stop_for_change(root, req.components_stopped, [&cb](const std::string& s) { step(cb, s); });
    } catch (const Error&) {
        start_again("after the failed stop");
        journal.end(run, "abandoned");
        std::throw_with_nested(InstallError(fmt::format(
            "cannot stop the broker components before upgrading {}; nothing was changed", current.nevra())));
    }
    journal.step_done(run, "stop");
    timer.lap("stop");
    outcome.service_manager = stopped.manager;
    outcome.components_stopped = stopped.were_running;
    fault::point("upgrade.after_stop");
    step(cb, "taking a restore point");
    RestorePoint rp;
    journal.step_start(run, "restore_point");
    try {
        if (database.external) {
            ExternalDatabasePart part;
            part.conninfo = database.conninfo;
            part.endpoint = database.endpoint;
            part.dump = database.migrates;
            // The broker that migrates may own the server for the moment: a template copy
            // there when every broker is stopped (checked), a directory dump otherwise.
            part.allow_copy = database.migrates && req.allow_remote_upgrade;
            part.before_copy = [&lease] {
                if (lease) lease->disconnect();
            };
            part.after_copy = [&lease] {
                if (lease) lease->renew();  // a new session, and the background renewal again
            };
            rp = create_external_restore_point(root, "before upgrade to " + target.nevra(), config,
                                               RestorePointKind::before_upgrade, part,
                                               [&cb](const std::string& s) { step(cb, s); }, cb.on_warning);
        } else {
            rp = create_restore_point(root, "before upgrade to " + target.nevra(), config, cb.on_warning);
        }
    } catch (const Error&) {
        start_again("after the failed restore point");
        journal.end(run, "abandoned");
        std::throw_with_nested(InstallError(fmt::format(
            "cannot take a restore point before upgrading {}; nothing was changed", current.nevra())));
    }
    journal.step_done(run, "restore_point", {{"id", rp.id}});
    timer.lap("restore_point");
    fault::point("upgrade.after_restore_point");
    outcome.restore_point = rp.id;
    if (const int sig = signals::pending()) {
        start_again("after the interruption");
        journal.end(run, "abandoned");
        throw InterruptedError(fmt::format("upgrade {} -> {} interrupted by {} before the package changed: {} is "
                                           "installed, nothing was changed (restore point {} is kept)",
                                           current.nevra(), target.nevra(), signals::name(sig), current.nevra(),
                                           rp.id),
                               sig);
    }
    try {
        apply(root, file, target, keys, gpgcheck == GpgCheck::yes, req.rpmdb_wait, cb, outcome, journal, run,
              stopped, config.spot_check_timeout, timer, database);
    } catch (const std::exception& failure) {
        const std::string cause = describe(failure);
        const int sig = signals::pending();
        log::error("upgrade {} -> {} {}: {}; rolling back to {}", current.nevra(), target.nevra(),
                   sig != 0 ? "interrupted" : "failed", cause, rp.id);
        step(cb, fmt::format("the upgrade {}; rolling back to restore point {}",
                             sig != 0 ? "was interrupted by " + signals::name(sig) : std::string("failed"), rp.id));
        signals::say("undoing the upgrade: returning to the restore point; please wait");
        // A component the failed start left running (the new program, with its sessions on
        // the database) is stopped before the restore, which needs the database to itself.
        try {
            const auto manager = service_manager(root);
            (void)stop_components(root, *manager, stopped.were_running, RecordStop::no, {});
        } catch (const std::exception&) {
        }
        journal.step_start(run, "rollback");
        RestoreOutcome undone;
        try {
            // A shared database this run migrated goes back too, but only while the lease
            // is still ours: a broker that lost it (another took over after it expired, and
            // may have upgraded the cluster since) must not put its old dump over that.
            bool restore_shared = database.external && database.migrates;
            if (restore_shared) {
                try {
                    lease->renew();
                } catch (const std::exception& lost) {
                    restore_shared = false;
                    step(cb, fmt::format("the shared database is left as it is: {}", describe(lost)));
                }
            }
            ExternalRestore shared;
            shared.restore_database = restore_shared;
            shared.conninfo = database.conninfo;
            shared.before_rename = [&lease] {
                if (lease) lease->disconnect();
            };
            shared.after_rename = [&lease] {
                if (lease) lease->restate();
            };
            shared.pause_renewal = [&lease]() -> std::shared_ptr<void> { return pause_lease_renewal(lease); };
            undone = database.external ? restore_external(root, rp, cb.on_step, run, req.rpmdb_wait, shared)
                                       : restore(root, rp, cb.on_step, run, false, req.rpmdb_wait);
            if (database.external) {
                auto conn = migrations::Connection::open(database.conninfo);
                register_member(conn, member, database.site_id, current.version, "running");
            }
        } catch (const std::exception& rollback_failure) {
            throw InstallError(fmt::format(
                "upgrade {} -> {} failed: {}; the automatic rollback failed too: {}; run {} once the cause "
                "is fixed",
                current.nevra(), target.nevra(), cause, describe(rollback_failure), command_hint("recover")));
        }
        journal.step_done(run, "rollback");
        // The old version runs again: start what the upgrade stopped.
        start_again("after the rollback");
        journal.end(run, "rolled-back");
        if (sig != 0)
            throw InterruptedError(fmt::format("upgrade {} -> {} interrupted by {}: rolled back to {} (restore point "
                                               "{}); nothing of {} is left (what it had done is kept for "
                                               "inspection as restore point {})",
                                               current.nevra(), target.nevra(), signals::name(sig), current.nevra(),
                                               rp.id, target.nevra(), undone.left_restore_point),
                                   sig);
        throw InstallError(fmt::format("upgrade {} -> {} failed: {}; rolled back to {} (restore point {}; the failed "
                                       "state is kept for inspection as restore point {})",
                                       current.nevra(), target.nevra(), cause, current.nevra(), rp.id,
                                       undone.left_restore_point));
    }
    if (!stopped.were_running.empty())
        outcome.downtime_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - down_since).count();
    fault::point("upgrade.before_end");
    // From the journal's end, a signal is recorded until the process exits (the dump of
    // the restore point and retention are not interrupted half-way either).
    journal.end(run, "ok");
    fault::point("upgrade.after_end");
    if (database.external) {
        // The cluster's record, then, once every member runs the new version, the pending
        // jobs of sites that left the cluster go to its members (fenced by the lease).
        try {
            auto conn = migrations::Connection::open(database.conninfo);
            register_member(conn, member, database.site_id, target.version, "running");
            outcome.cluster = cluster_members(conn);
            const bool all_new = std::all_of(outcome.cluster.begin(), outcome.cluster.end(),
                                             [&](const ClusterMember& m) { return m.broker_version == target.version; });
            if (all_new) {
                outcome.cluster_upgraded = true;
                outcome.jobs_moved = reassign_orphaned_jobs(conn, *lease);
                for (const auto& m : outcome.jobs_moved)
                    step(cb, fmt::format("moved pending job {} from site {} (no longer in the cluster) to site {}",
                                         m.job_id, m.from_site, m.to_site));
            }
        } catch (const std::exception& e) {
            if (cb.on_warning) cb.on_warning(fmt::format("updating the cluster's record failed: {}", describe(e)));
        }
        lease->release();
    }
    // Off the critical path (the broker runs the new version already): the checksums and
    // the off-instance dump of the restore point's frozen copy.
    if (const auto problem = finish_restore_point(root, rp, cb.on_step); !problem.empty() && cb.on_warning)
        cb.on_warning(fmt::format("restore point {} is kept without its dump (its database copy is there): {}; "
                                  "{} tries again",
                                  rp.id, problem, command_hint("snapshot verify " + rp.id)));
    for (const auto& id : prune_restore_points(root, config.keep_restore_points))
        step(cb, fmt::format("deleted restore point {} (retention: the newest {} automatic ones are kept)", id,
                             config.keep_restore_points));
    log::info("upgraded {} -> {}", current.nevra(), target.nevra());
    return outcome;
}
} // namespace

} // namespace leo::installer
