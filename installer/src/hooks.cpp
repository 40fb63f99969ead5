// The rpm hooks (hooks.hpp): what the broker package's scriptlets call. Each step is the
// one install/upgrade run (install_steps.hpp, services.hpp, restore_point.hpp), not a copy.
#include "leo/installer/hooks.hpp"

#include "install_steps.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/installer/broker_database.hpp"
#include "leo/installer/cluster.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/hint.hpp"
#include "leo/installer/install.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/restore_point.hpp"
#include "leo/installer/services.hpp"
#include "leo/installer/spot_check.hpp"
#include "leo/installer/status.hpp"
#include "leo/installer/users.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/preflight/facts.hpp"
#include "leo/rpm/transaction.hpp"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <exception>

#include <fmt/format.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

void say(const HookCallbacks& cb, const std::string& s) {
    log::info("{}", s);
    if (cb.on_step) cb.on_step(s);
}

void warn(const HookCallbacks& cb, const std::string& s) {
    log::warning("{}", s);
    if (cb.on_warning) cb.on_warning(s);
}

/// The one broker installed in `root`, or nullopt.
std::optional<rpm::PackageInfo> installed_broker(const stdfs::path& root) {
    auto installed = rpm::query_installed(root, k_broker_package);
    if (installed.empty()) return std::nullopt;
    return installed.front();
}

} // namespace

std::optional<std::string> own_transaction() {
    const char* v = std::getenv(rpm::k_own_transaction_env);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return fmt::format("inside leo-installer's own rpm transaction (pid {}), which does these steps itself", v);
}

PreOutcome run_pre_hook(const PreRequest& req, const HookCallbacks& cb) {
    const stdfs::path root = checked_root(req.root);
    PreOutcome out;
    if (auto why = own_transaction()) {
        out.skipped = std::move(why);
        return out;
    }
    const auto profile = req.mode == PreMode::install ? preflight::Profile::install : preflight::Profile::upgrade;
    const char* what = req.mode == PreMode::install ? "install" : "upgrade";
    // Another leo-installer run on this root changes it under us: refuse (read-only look).
    if (const auto holder = RunLock::holder(root))
        throw RefusedError(fmt::format("another leo-installer run is in progress on {} ({}); let it finish, then "
                                       "run the rpm transaction again; nothing was changed",
                                       root.string(), *holder));
    Journal(root).refuse_if_unfinished();

    say(cb, fmt::format("running preflight checks ({} profile)", preflight::to_string(profile)));
    out.report = preflight::run_checks(preflight::gather_facts(root), profile, req.skips);
    for (const auto& r : out.report.results) {
        if (r.verdict == preflight::Verdict::skipped) log::warning("preflight check {} skipped: {}", r.id, r.skip_reason);
        if (r.verdict == preflight::Verdict::inhibitor || r.verdict == preflight::Verdict::warning)
            log::warning("preflight: check {} {}: {}; fix: {}", r.id, preflight::to_string(r.verdict), r.measured,
                         r.remediation);
    }
    log::info("{}", preflight::summary_line(out.report));
    if (cb.on_preflight) cb.on_preflight(out.report);
    if (out.report.inhibited())
        throw RefusedError(fmt::format("preflight refused the {} of {}: {}; rpm stops the transaction before any "
                                       "file changes, nothing was changed",
                                       what, k_broker_package, preflight::inhibitor_summary(out.report)));
    // What `install` refuses later must stop %pre too (the package always ships its
    // migrations, so the internal database's rules apply).
    if (req.mode == PreMode::install) install_steps::check_root_layout(root, true);

    say(cb, "creating the leo user (if missing)");
    out.user_created = ensure_leo_user(root);
    return out;
}

PretransOutcome run_pretrans_hook(const stdfs::path& root_arg, const HookCallbacks& cb) {
    const stdfs::path root = checked_root(root_arg);
    PretransOutcome out;
    if (auto why = own_transaction()) {
        out.skipped = std::move(why);
        return out;
    }
    std::optional<rpm::PackageInfo> installed;
    try {
        installed = installed_broker(root);
    } catch (const std::exception& e) {
        out.not_taken = fmt::format("no restore point was taken: the rpmdb of {} cannot be read ({}); the "
                                    "transaction goes on without one",
                                    root.string(), describe(e));
        warn(cb, *out.not_taken);
        return out;
    }
    if (!installed) {
        out.skipped = fmt::format("no {} is installed in {}: a first install needs no restore point",
                                  k_broker_package, root.string());
        return out;
    }
    const std::string remedy = fmt::format(
        "the transaction goes on without one; to have one, stop it now and take it with {}, then run the rpm "
        "transaction again",
        command_hint("snapshot create -y"));
    try {
        auto lock = RunLock::acquire(root, "hook pretrans (restore point before an rpm transaction)");
        Journal(root).refuse_if_unfinished();
        if (load_database_config(root).mode == DatabaseMode::external)
            throw RefusedError(
                "the broker uses an external (shared) database: its restore point is taken by `upgrade` under the "
                "cluster's upgrade lease, not from an rpm scriptlet");
        const auto config = load_config(root);
        say(cb, fmt::format("taking a restore point of {} before the rpm transaction", installed->nevra()));
        auto rp = create_restore_point(root, "before an rpm transaction (hook pretrans)", config,
                                       [&cb](const std::string& w) { warn(cb, w); },
                                       RestorePointKind::before_upgrade);
        if (const auto problem = finish_restore_point(root, rp, [&cb](const std::string& s) { say(cb, s); });
            !problem.empty())
            warn(cb, "the restore point's dump could not be taken (its database copy is there): " + problem);
        for (const auto& id : prune_restore_points(root, config.keep_restore_points))
            say(cb, "deleted restore point " + id + " (retention)");
        out.restore_point = rp.id;
        say(cb, fmt::format("restore point {} taken: `leo-installer rollback {}` returns to {}", rp.id, rp.id,
                            installed->nevra()));
    } catch (const std::exception& e) {
        out.not_taken = fmt::format("no restore point was taken: {}; {}", describe(e), remedy);
        warn(cb, *out.not_taken);
    }
    return out;
}

namespace {

/// The database step of posttrans: as `install` for the internal database, as `upgrade`'s
/// migrate step for an external one (DESIGN.md "Cluster"): registered in the cluster's
/// registry, under the one-at-a-time upgrade lease (waiting for another broker that holds
/// it; its token recorded in the journal for `recover`), each migration fenced by it; once
/// every member runs the new version, the pending jobs of sites that left go to members.
void posttrans_database(const stdfs::path& root, const rpm::PackageInfo& pkg, const PosttransRequest& req,
                        const HookCallbacks& cb, PosttransOutcome& out, Journal& journal, const std::string& run) {
    const auto config = load_database_config(root);
    if (config.mode == DatabaseMode::internal) {
        auto r = install_steps::internal_database_step(root, pkg.version, [&cb](const std::string& s) { say(cb, s); });
        out.database_initialised = r.initialised;
        out.migrations_applied = std::move(r.applied);
        out.schema_version = std::move(r.schema_version);
        return;
    }
    ignore_ambient_pg_credentials();
    const std::string conninfo = external_conninfo(config);
    const std::string member = member_id(root);
    say(cb, "taking the cluster's upgrade lease");
    auto lopts = lease_options(load_config(root).cluster_lease_ttl, req.lease_wait,
                               fmt::format("hook posttrans of {}", pkg.nevra()), [&cb](const std::string& s) { say(cb, s); });
    // The run's journal already defers signals: a Ctrl-C must still end the wait.
    lopts.stop_on_signal = true;
    // A posttrans that stops here or below leaves the components stopped and the broker
    // installed but not ready until `recover` finishes: the registry says "failed".
    auto lease = acquire_as_member(conninfo, member, config.site_id, pkg.version, lopts, "failed");
    out.lease_token = lease.token();
    journal.step_done(run, "lease", {{"lease_token", lease.token()}, {"shared_database", true}});
    const auto failed = [&] {
        try {
            auto c = migrations::Connection::open(conninfo);
            register_member(c, member, config.site_id, pkg.version, "failed");
        } catch (const std::exception&) {
        }
    };
    auto conn = migrations::Connection::open(conninfo);
    migrations::MigrateOptions mopts;
    mopts.kind = migrations::DatabaseKind::external;
    mopts.allow_remote_upgrade =
        req.allow_remote_upgrade ? migrations::AllowRemoteUpgrade::yes : migrations::AllowRemoteUpgrade::no;
    mopts.site_id = config.site_id;
    // The scriptlet's consent is the environment of yum or rpm; after a refusal, recover's.
    mopts.allow_flag = fmt::format("{}=1 in the environment (`{}=1 {}`, or of yum or rpm)", k_allow_remote_upgrade_env,
                                   k_allow_remote_upgrade_env, command_hint("recover").substr(1));
    mopts.fence = [&lease](migrations::Connection& c) { lease.fence(c); };
    say(cb, fmt::format("migrating the shared database {}{}", config.external.display(),
                        req.allow_remote_upgrade ? " (remote upgrade allowed)" : ""));
    migrations::MigrateResult r;
    try {
        r = migrations::migrate(conn, migrations::load_migrations(fs::SystemRoot(root).checked_host(k_migrations_dir)),
                                pkg.version, mopts);
    } catch (...) {
        failed();
        throw;
    }
    out.migrations_applied = std::move(r.applied);
    out.schema_version = std::move(r.schema_after);
    try {
        register_member(conn, member, config.site_id, pkg.version, "running");
        const auto members = cluster_members(conn);
        if (std::all_of(members.begin(), members.end(),
                        [&](const ClusterMember& m) { return m.broker_version == pkg.version; }))
            for (const auto& m : reassign_orphaned_jobs(conn, lease))
                say(cb, fmt::format("moved pending job {} from site {} (no longer in the cluster) to site {}", m.job_id,
                                    m.from_site, m.to_site));
    } catch (const std::exception& e) {
        warn(cb, fmt::format("updating the cluster's record failed: {}", describe(e)));
    }
    lease.release();
}

} // namespace

PosttransOutcome run_posttrans_hook(const PosttransRequest& req, const HookCallbacks& cb) {
    const stdfs::path root = checked_root(req.root);
    PosttransOutcome out;
    if (auto why = own_transaction()) {
        out.skipped = std::move(why);
        return out;
    }
    const auto pkg = installed_broker(root);
    if (!pkg) {
        out.skipped = fmt::format("no {} is installed in {}: nothing to finish", k_broker_package, root.string());
        return out;
    }
    out.nevra = pkg->nevra();
    auto lock = RunLock::acquire(root, "hook posttrans (after an rpm transaction of " + out.nevra + ")");
    Journal journal(root);
    // A posttrans that failed before (or was killed) is taken over: its steps are idempotent.
    if (const auto last = journal.last_run(); last && !last->finished()) {
        if (last->command != "hook-posttrans") journal.refuse_if_unfinished();
        journal.end(last->id, "recovered-forward");
        say(cb, fmt::format("finishing the earlier posttrans of {} (run {})", last->to, last->id));
    }
    const std::string run = journal.begin("hook-posttrans", "", out.nevra);
    std::string step = "stop";
    try {
        // rpm's try-restart: what runs is stopped before the schema changes and started after.
        StoppedComponents stopped;
        journal.step_start(run, step);
        try {
            stopped = stop_for_change(root, false, [&cb](const std::string& s) { say(cb, s); });
        } catch (const RefusedError& e) {
            warn(cb, fmt::format("{}; the components keep running the files they had loaded: restart them yourself "
                                 "after this step",
                                 e.what()));
        }
        journal.step_done(run, step);
        step = "database";
        journal.step_start(run, step);
        posttrans_database(root, *pkg, req, cb, out, journal, run);
        journal.step_done(run, step);
        step = "start";
        journal.step_start(run, step);
        start_after_change(root, stopped, [&cb](const std::string& s) { say(cb, s); });
        for (const auto c : stopped.were_running) out.restarted.emplace_back(to_string(c));
        journal.step_done(run, step);
        // No reboot: the broker must run the new version now, as `upgrade` checks it.
        step = "spot_check";
        journal.step_start(run, step);
        SpotCheckInputs probes;
        probes.root = root;
        probes.target = *pkg;
        probes.expected_schema = shipped_schema_version(root);
        probes.started = stopped;
        probes.timeout = load_config(root).spot_check_timeout;
        auto conn = migrations::Connection::open(
            broker_database_target(root, [&cb](const std::string& s) { say(cb, s); }).conninfo);
        spot_check(conn, probes, [&cb](const std::string& s) { say(cb, s); });
        journal.step_done(run, step);
        journal.end(run, "ok");
    } catch (const Error&) {
        std::throw_with_nested(InstallError(fmt::format(
            "{} is installed, but its posttrans step `{}` failed: rpm cannot undo its transaction from a scriptlet; "
            "fix the cause below, then finish it with {} (or return to the restore point taken before it with {})",
            out.nevra, step, command_hint("recover"), command_hint("rollback ID"))));
    }
    return out;
}

} // namespace leo::installer
