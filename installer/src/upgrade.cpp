#include "leo/installer/upgrade.hpp"
#include "leo/installer/switch_database.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/installer/journal.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"
#include "leo/common/log.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/status.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/preflight/facts.hpp"
#include "leo/rpm/evr.hpp"
#include "leo/rpm/transaction.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

rpm::Evr evr_of(const repo::PackageEntry& e) { return rpm::Evr{e.epoch, e.version, e.release}; }
rpm::Evr evr_of(const rpm::PackageInfo& p) { return rpm::Evr{p.epoch.value_or(0), p.version, p.release}; }

rpm::PackageInfo installed_broker(const stdfs::path& root) {
    const auto installed = rpm::query_installed(root, k_broker_package);
    if (installed.empty())
        throw InstallError(fmt::format("no broker is installed in {} ({} is not in its rpmdb); install it first "
                                       "with `leo-installer install --rpm FILE`",
                                       root.string(), k_broker_package));
    if (installed.size() > 1) {
        std::string all;
        for (const auto& p : installed) all += (all.empty() ? "" : ", ") + p.nevra();
        throw InstallError(fmt::format("{} versions of the broker are in the rpmdb of {} ({}); an interrupted "
                                       "transaction must be repaired first",
                                       installed.size(), root.string(), all));
    }
    return installed.front();
}

std::vector<Candidate> available(const stdfs::path& root, const RepoSelection& sel) {
    std::vector<Candidate> out;
    const fs::SystemRoot sys(root);
    for (const auto& r : select_repos(root, sel)) {
        auto md = repo::load_metadata(r, sys, "/var/cache/leo-installer/metadata",
                                      [](const std::string& name) { return name == k_broker_package; });
        for (auto& e : md.packages)
            if (e.arch == "x86_64" || e.arch == "noarch") out.push_back({r, std::move(e)});
    }
    std::stable_sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
        return rpm::compare_evr(evr_of(a.entry), evr_of(b.entry)) > 0;
    });
    return out;
}

bool version_matches(const repo::PackageEntry& e, const std::string& v) {
    if (e.version == v) return true;
    if (e.version + "-" + e.release == v) return true;
    return std::to_string(e.epoch) + ":" + e.version + "-" + e.release == v;
}

/// The repository's gpgkey URLs as local files (fetched into the cache when remote).
std::vector<stdfs::path> repo_keys(const stdfs::path& root, const repo::RepoConfig& r) {
    std::vector<stdfs::path> out;
    const fs::SystemRoot sys(root);
    const stdfs::path dir = "/var/cache/leo-installer/keys";
    int n = 0;
    for (const auto& url : r.gpgkeys) {
        if (url.rfind("file://", 0) == 0) {
            out.emplace_back(url.substr(7));
        } else if (!url.empty() && url[0] == '/') {
            out.emplace_back(url);
        } else {
            repo::ensure_cache_dir(sys, dir);
            const auto file = dir / fmt::format("{}-{}.asc", r.id, n++);
            sys.write_atomic(file, repo::fetch_url(r, url), 0644);
            out.push_back(sys.host(file));
        }
    }
    return out;
}

void step(const UpgradeCallbacks& cb, const std::string& s) {
    log::info("{}", s);
    if (cb.on_step) cb.on_step(s);
}

/// The steps after the restore point: transaction, migrations, spot-check, each
/// announced in the journal before it starts and recorded when it ends.
void apply(const stdfs::path& root, const stdfs::path& file, const rpm::PackageInfo& target,
           const std::vector<stdfs::path>& keys, bool require_signature, const UpgradeCallbacks& cb,
           UpgradeOutcome& outcome, Journal& journal, const std::string& run) {
    journal.step_start(run, "transaction");
    fault::point("upgrade.before_transaction");
    rpm::TransactionOptions opts;
    opts.kind = rpm::TransactionKind::upgrade;
    opts.require_signature = require_signature;
    opts.keys.files = keys;
    step(cb, fmt::format("upgrading the package to {}", target.nevra()));
    rpm::run_transaction(root, file, opts);
    {
        const fs::SystemRoot sr(root);
        sr.make_dirs(fs::SystemRoot::k_state_dir, 0700, fs::Owner{0, 0});
        sr.make_dirs(k_packages_dir, 0700, fs::Owner{0, 0});
        sr.copy_from_host(file, stdfs::path(k_packages_dir) / (target.nevra() + ".rpm"), 0600);
    }
    journal.step_done(run, "transaction");
    fault::point("upgrade.after_transaction");

    journal.step_start(run, "migrate");
    step(cb, "applying database migrations");
    migrations::InternalDatabase db(root);
    if (db.status().state != migrations::DbState::running) db.start();
    auto conn = migrations::Connection::open(db.conninfo());
    auto result = migrations::migrate(conn, migrations::load_migrations(fs::SystemRoot(root).checked_host(k_migrations_dir)),
                                      target.version);
    outcome.migrations_applied = result.applied;
    outcome.schema_version = result.schema_after;
    journal.step_done(run, "migrate");
    fault::point("upgrade.after_migrate");

    journal.step_start(run, "spot_check");
    step(cb, "spot-checking the result");
    const auto now = rpm::query_installed(root, k_broker_package);
    if (now.size() != 1 || now.front().nevra() != target.nevra()) {
        std::string all;
        for (const auto& p : now) all += (all.empty() ? "" : ", ") + p.nevra();
        throw InstallError(fmt::format("spot-check: the rpmdb holds [{}], not exactly {}", all, target.nevra()));
    }
    const auto expected = shipped_schema_version(root);
    const auto state = migrations::read_schema_state(conn);
    if (expected && state.schema_version != expected)
        throw InstallError(fmt::format("spot-check: the schema version is {}, but {} ships {}",
                                       state.schema_version.value_or("none"), target.nevra(), *expected));
    journal.step_done(run, "spot_check");
    fault::point("upgrade.after_spot_check");
}

} // namespace

std::vector<repo::RepoConfig> select_repos(const stdfs::path& root, const RepoSelection& sel) {
    auto all = repo::load_repo_configs(fs::SystemRoot(root));
    for (const auto& extra : sel.extra) {
        if (std::any_of(all.begin(), all.end(), [&](const repo::RepoConfig& r) { return r.id == extra.id; }))
            throw UsageError(fmt::format("--repofrompath {}: a repository with id '{}' already exists ({}); choose "
                                         "another id",
                                         extra.id, extra.id,
                                         std::find_if(all.begin(), all.end(), [&](const repo::RepoConfig& r) {
                                             return r.id == extra.id;
                                         })->source));
        all.push_back(extra);
    }
    std::vector<repo::RepoConfig> out;
    if (sel.ids.empty()) {
        for (auto& r : all)
            if (r.enabled) out.push_back(r);
    } else {
        for (const auto& id : sel.ids) {
            auto it = std::find_if(all.begin(), all.end(), [&](const repo::RepoConfig& r) { return r.id == id; });
            if (it == all.end()) {
                std::string known;
                for (const auto& r : all) known += (known.empty() ? "" : ", ") + r.id;
                throw UsageError(fmt::format("--repo {}: no such repository in {} or --repofrompath (known: {})", id,
                                             fs::SystemRoot(root).host("/etc/yum.repos.d").string(),
                                             known.empty() ? "none" : known));
            }
            if (std::none_of(out.begin(), out.end(), [&](const repo::RepoConfig& r) { return r.id == id; })) {
                out.push_back(*it);
                out.back().enabled = true;
            }
        }
    }
    if (out.empty())
        throw RepoError(fmt::format("no enabled repository in {}; add a .repo file or pass --repofrompath ID,URL",
                                    fs::SystemRoot(root).host("/etc/yum.repos.d").string()));
    return out;
}

UpdateInfo check_update(const stdfs::path& root, const RepoSelection& sel) {
    UpdateInfo info;
    info.installed = installed_broker(root);
    info.available = available(root, sel);
    if (!info.available.empty() &&
        rpm::compare_evr(evr_of(info.available.front().entry), evr_of(info.installed)) > 0)
        info.update = info.available.front();
    return info;
}

UpgradeOutcome upgrade(const UpgradeRequest& req, const UpgradeCallbacks& cb) {
    const stdfs::path root = checked_root(req.root);
    if (req.version && req.version->empty()) throw UsageError("--version: empty; give a version such as 9.2.0");
    Journal(root).refuse_if_unfinished();
    require_internal_database(root, "upgrade");
    UpgradeOutcome outcome;
    const rpm::PackageInfo current = installed_broker(root);
    outcome.from = current.nevra();

    // 1. plan: resolve the target.
    stdfs::path file;
    std::string expected_nevra;  ///< what the repository metadata says the download is
    std::vector<stdfs::path> keys = req.gpgkeys;
    GpgCheck gpgcheck = req.gpgcheck;
    if (req.package_file) {
        file = *req.package_file;
    } else {
        step(cb, "reading repository metadata");
        auto candidates = available(root, req.repos);
        std::optional<Candidate> chosen;
        for (auto& c : candidates) {
            if (!req.version || version_matches(c.entry, *req.version)) {
                chosen = c;
                break;
            }
        }
        if (!chosen) {
            std::string versions;
            for (const auto& c : candidates) versions += (versions.empty() ? "" : ", ") + c.entry.nevra();
            throw InstallError(req.version ? fmt::format("version {} of {} is not in the repositories (available: {})",
                                                         *req.version, k_broker_package,
                                                         versions.empty() ? "none" : versions)
                                           : fmt::format("the repositories offer no {} package", k_broker_package));
        }
        const auto& e = chosen->entry;
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
            throw InstallError(fmt::format("{} is older than the installed {}; `upgrade` does not downgrade: use "
                                           "`leo-installer rollback` to return to a restore point",
                                           e.nevra(), current.nevra()));
        // 2. stage: download and verify before anything changes.
        step(cb, fmt::format("downloading {} from {}", e.nevra(), chosen->repo.id));
        file = repo::download_package(chosen->repo, e, fs::SystemRoot(root), "/var/cache/leo-installer/packages",
                                      [&cb](std::uint64_t done, std::uint64_t total) {
                                          if (done > 0) fault::point("download");
                                          if (cb.on_download) cb.on_download(done, total);
                                      });
        if (!chosen->repo.gpgcheck) gpgcheck = GpgCheck::no;
        expected_nevra = e.nevra();
        auto rk = repo_keys(root, chosen->repo);
        keys.insert(keys.end(), rk.begin(), rk.end());
    }
    step(cb, fmt::format("verifying {}", file.string()));
    const auto verification = verify_for_install(root, file, keys, gpgcheck);
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
        throw InstallError(fmt::format("{} is older than the installed {}; `upgrade` does not downgrade: use "
                                       "`leo-installer rollback` to return to a restore point",
                                       target.nevra(), current.nevra()));

    // Gates of this first form: preflight, upgrade profile.
    step(cb, "running preflight checks (upgrade profile)");
    const auto report = preflight::run_checks(preflight::gather_facts(root), preflight::Profile::upgrade);
    if (cb.on_preflight) cb.on_preflight(report);
    if (report.inhibited())
        throw RefusedError(fmt::format("preflight refused the upgrade: {}; nothing was changed",
                                       preflight::inhibitor_summary(report)));

    rpm::TransactionOptions topts;
    topts.kind = rpm::TransactionKind::upgrade;
    topts.require_signature = gpgcheck == GpgCheck::yes;
    topts.keys.files = keys;
    step(cb, fmt::format("testing the rpm transaction {} -> {}", current.nevra(), target.nevra()));
    try {
        rpm::test_transaction(root, file, topts);
    } catch (const RpmError&) {
        std::throw_with_nested(InstallError(fmt::format("cannot upgrade to {}; nothing was changed", target.nevra())));
    }
    if (req.dry_run) {
        outcome.kind = UpgradeOutcome::Kind::dry_run;
        return outcome;
    }
    if (cb.confirm && !cb.confirm(fmt::format("Upgrade {} to {} in {}?", current.nevra(), target.nevra(),
                                              root.string())))
        throw RefusedError("upgrade cancelled: nothing was changed");

    auto lock = RunLock::acquire(root, "upgrade to " + target.nevra());
    const InstallerConfig config = load_config(root);
    Journal journal(root);
    journal.refuse_if_unfinished();
    const std::string run = journal.begin("upgrade", current.nevra(), target.nevra());
    fault::point("upgrade.begin");
    step(cb, "taking a restore point");
    RestorePoint rp;
    journal.step_start(run, "restore_point");
    try {
        rp = create_restore_point(root, "before upgrade to " + target.nevra(), config, cb.on_warning);
    } catch (const Error&) {
        journal.end(run, "abandoned");
        std::throw_with_nested(InstallError(fmt::format(
            "cannot take a restore point before upgrading {}; nothing was changed", current.nevra())));
    }
    journal.step_done(run, "restore_point", {{"id", rp.id}});
    fault::point("upgrade.after_restore_point");
    outcome.restore_point = rp.id;
    try {
        apply(root, file, target, keys, gpgcheck == GpgCheck::yes, cb, outcome, journal, run);
    } catch (const std::exception& failure) {
        const std::string cause = describe(failure);
        log::error("upgrade {} -> {} failed: {}; rolling back to {}", current.nevra(), target.nevra(), cause, rp.id);
        step(cb, fmt::format("the upgrade failed; rolling back to restore point {}", rp.id));
        journal.step_start(run, "rollback");
        try {
            restore(root, rp, cb.on_step);
        } catch (const std::exception& rollback_failure) {
            throw InstallError(fmt::format(
                "upgrade {} -> {} failed: {}; the automatic rollback failed too: {}; run `leo-installer recover "
                "--root {}` once the cause is fixed",
                current.nevra(), target.nevra(), cause, describe(rollback_failure), root.string()));
        }
        journal.step_done(run, "rollback");
        journal.end(run, "rolled-back");
        throw InstallError(fmt::format("upgrade {} -> {} failed: {}; rolled back to {} (restore point {})",
                                       current.nevra(), target.nevra(), cause, current.nevra(), rp.id));
    }
    fault::point("upgrade.before_end");
    journal.end(run, "ok");
    for (const auto& id : prune_restore_points(root, config.keep_restore_points))
        step(cb, fmt::format("deleted restore point {} (keeping the newest {})", id, config.keep_restore_points));
    log::info("upgraded {} -> {}", current.nevra(), target.nevra());
    return outcome;
}

RestorePoint rollback(const stdfs::path& root_in, const std::string& id,
                      const std::function<void(const std::string&)>& on_step) {
    const stdfs::path root = checked_root(root_in);
    Journal journal(root);
    journal.refuse_if_unfinished();
    require_internal_database(root, "rollback");
    auto rp = find_restore_point(root, id);
    auto lock = RunLock::acquire(root, "rollback " + rp.id);
    journal.refuse_if_unfinished();
    const auto installed = rpm::query_installed(root, k_broker_package);
    const std::string run = journal.begin("rollback", installed.empty() ? "" : installed.front().nevra(), rp.nevra);
    journal.step_start(run, "restore");
    restore(root, rp, on_step);
    journal.step_done(run, "restore", {{"id", rp.id}});
    journal.end(run, "ok");
    return rp;
}

namespace {
RecoverOutcome recover_run(const stdfs::path& root_in, const std::function<void(const std::string&)>& on_step);
} // namespace

RecoverOutcome recover(const stdfs::path& root, const std::function<void(const std::string&)>& on_step) {
    try {
        return recover_run(root, on_step);
    } catch (const nlohmann::json::exception& e) {
        // A journal record whose step data lacks what its step writes (edited, or damaged
        // on disk): nothing is guessed, nothing more is changed.
        throw InstallError(fmt::format("the journal in {} records the last run with data this leo-installer cannot "
                                       "use ({}); nothing was changed: inspect it and the system by hand",
                                       fs::SystemRoot(root).host(fs::SystemRoot::k_journal).string(), e.what()));
    }
}

namespace {
RecoverOutcome recover_run(const stdfs::path& root_in, const std::function<void(const std::string&)>& on_step) {
    const stdfs::path root = checked_root(root_in);
    std::optional<RunLock> lock;
    lock.emplace(RunLock::acquire(root, "recover"));
    Journal journal(root);
    RecoverOutcome out;
    const auto run = journal.last_run();
    if (!run || run->finished()) {
        out.kind = RecoverOutcome::Kind::nothing;
        out.message = "nothing to recover: the last run finished";
        return out;
    }
    out.run = run->id;
    auto say = [&](const std::string& s) {
        log::info("recover {}: {}", run->id, s);
        if (on_step) on_step(s);
    };
    // Partial restore points from the crash are never listed; remove them.
    {
        const fs::SystemRoot sr(root);
        for (const auto& name : sr.list(fs::SystemRoot::k_snapshots))
            if (name.rfind(".", 0) == 0) sr.remove_all(stdfs::path(fs::SystemRoot::k_snapshots) / name);
    }

    if (run->command == "install") {
        // A first install: finish it when the package is in place (the database steps are
        // idempotent), undo it when the transaction had not ended.
        if (run->is_done("transaction")) {
            say("completing the database step of the interrupted install");
            InstallRequest req;
            req.root = root;
            req.package_file = fs::SystemRoot(root).checked_host(stdfs::path(k_packages_dir) / (run->to + ".rpm"));
            req.gpgcheck = GpgCheck::no;  // the kept copy was verified when it was installed
            journal.end(run->id, "recovered-forward");
            lock.reset();  // install takes the lock itself
            (void)install(req, InstallCallbacks{});
            out.kind = RecoverOutcome::Kind::completed;
            out.message = fmt::format("the `install` of {} was interrupted after its rpm transaction: completed it",
                                      run->to);
            return out;
        }
        for (const auto& p : rpm::query_installed(root, k_broker_package)) {
            say(fmt::format("erasing {}, left by the interrupted install", p.nevra()));
            rpm::erase_package(root, p.nevra());
        }
        journal.end(run->id, "recovered-back");
        out.kind = RecoverOutcome::Kind::undone;
        out.message = fmt::format("the `install` of {} was interrupted before its rpm transaction ended: undone, no "
                                  "broker is installed (the leo user is kept); run the install again",
                                  run->to);
        return out;
    }

    if (run->command == "switch-database") return recover_switch(root, *run, journal, say);

    std::string rp_id;
    if (run->command == "upgrade") {
        if (!run->is_done("restore_point")) {
            journal.end(run->id, "abandoned");
            out.kind = RecoverOutcome::Kind::undone;
            out.message = fmt::format("the `upgrade` {} -> {} stopped before its restore point was complete: nothing "
                                      "had changed, {} is installed",
                                      run->from, run->to, run->from);
            return out;
        }
        if (run->is_done("spot_check")) {
            journal.end(run->id, "recovered-forward");
            out.kind = RecoverOutcome::Kind::completed;
            out.message = fmt::format("the `upgrade` {} -> {} had completed every step: finished it, {} is installed",
                                      run->from, run->to, run->to);
            return out;
        }
        rp_id = run->done.at("restore_point").value("id", "");
    } else if (run->command == "rollback") {
        // The rollback's target is recorded at its start; find it by NEVRA (newest first).
        const auto all = list_restore_points(root);
        for (auto it = all.rbegin(); it != all.rend(); ++it)
            if (it->nevra == run->to) {
                rp_id = it->id;
                break;
            }
    }
    if (rp_id.empty()) throw InstallError(fmt::format("cannot recover run {} ({}): no restore point for it", run->id,
                                                      run->command));
    const auto rp = find_restore_point(root, rp_id);

    // rpmdb repair: an interrupted transaction can leave two versions in the rpmdb.
    const auto installed = rpm::query_installed(root, k_broker_package);
    if (installed.size() > 1) {
        for (const auto& p : installed) {
            if (p.nevra() == rp.nevra) continue;
            say(fmt::format("removing the stale rpmdb entry {} left by the interrupted transaction", p.nevra()));
            rpm::remove_rpmdb_entry(root, p.nevra());
        }
    }
    say(fmt::format("returning to {} (restore point {})", rp.nevra, rp.id));
    journal.step_start(run->id, "recover");
    restore(root, rp, on_step);
    journal.step_done(run->id, "recover", {{"id", rp.id}});
    journal.end(run->id, "recovered-back");
    out.kind = RecoverOutcome::Kind::undone;
    out.message = fmt::format("the `{}` {} -> {} was interrupted: returned to {} (restore point {})", run->command,
                              run->from, run->to, rp.nevra, rp.id);
    return out;
}
} // namespace

} // namespace leo::installer
