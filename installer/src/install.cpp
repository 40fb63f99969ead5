#include "leo/installer/install.hpp"
#include "leo/installer/hint.hpp"
#include "install_steps.hpp"
#include "staging.hpp"
#include "update_check.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"
#include "leo/common/log.hpp"
#include "leo/common/signals.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/private_package.hpp"
#include "leo/installer/status.hpp"
#include "leo/installer/users.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/preflight/facts.hpp"
#include "leo/rpm/rpmlib.hpp"
#include "leo/rpm/transaction.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

void step(const InstallCallbacks& cb, const std::string& what) {
    log::info("{}", what);
    if (cb.on_step) cb.on_step(what);
}

void warn(const InstallCallbacks& cb, const std::string& what) {
    log::warning("{}", what);
    if (cb.on_warning) cb.on_warning(what);
}

bool ships_migrations(const std::vector<std::string>& files) {
    const std::string prefix = std::string(k_migrations_dir) + "/";
    return std::any_of(files.begin(), files.end(), [&](const std::string& f) {
        return f.rfind(prefix, 0) == 0 && f.size() > 4 && f.compare(f.size() - 4, 4, ".sql") == 0;
    });
}

preflight::Report run_preflight(const InstallRequest& req, const stdfs::path& root, const InstallCallbacks& cb) {
    const preflight::HostFacts facts = preflight::gather_facts(root);
    auto report = preflight::run_checks(facts, preflight::Profile::install, req.skips);
    for (const auto& r : report.results) {
        if (r.verdict == preflight::Verdict::skipped)
            log::warning("preflight check {} skipped: {}", r.id, r.skip_reason);
    }
    if (cb.on_preflight) cb.on_preflight(report);
    if (report.inhibited())
        throw RefusedError(fmt::format("preflight refused the install: {}; nothing was changed",
                                       preflight::inhibitor_summary(report)));
    return report;
}


/// Initialise and start the internal database, then apply the shipped migrations.
void database_steps(const stdfs::path& root, const rpm::PackageInfo& pkg, const InstallCallbacks& cb,
                    InstallOutcome& outcome) {
    auto result = install_steps::internal_database_step(root, pkg.version, [&cb](const std::string& s) { step(cb, s); });
    outcome.database_initialised = result.initialised;
    outcome.migrations_applied = std::move(result.applied);
    outcome.schema_version = std::move(result.schema_version);
}

} // namespace

stdfs::path checked_root(const stdfs::path& root) {
    std::error_code ec;
    if (root.empty()) throw UsageError("--root: empty path");
    if (!stdfs::exists(root, ec)) throw UsageError(fmt::format("--root {}: no such directory", root.string()));
    if (!stdfs::is_directory(root, ec)) throw UsageError(fmt::format("--root {}: not a directory", root.string()));
    return stdfs::canonical(root);
}

namespace {

/// An administrator's key file (a host path, like the package file), parsed.
std::optional<rpm::PublicKey> read_key_file(const stdfs::path& f) {
    std::ifstream in(f, std::ios::binary);  // not-under-root: a --gpgkey FILE the administrator gave
    if (!in) return std::nullopt;
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    try {
        return rpm::parse_public_key(text, f.string());
    } catch (const RpmError&) {
        return std::nullopt;
    }
}

/// The NOKEY message: the signer, every key source tried, what to do.
std::string nokey_message(const stdfs::path& root, const stdfs::path& file, const std::string& key_id,
                          const std::vector<stdfs::path>& gpgkeys, const RepoKeySources& repo) {
    std::string signer = key_id;
    std::transform(signer.begin(), signer.end(), signer.begin(), [](unsigned char c) { return std::toupper(c); });
    std::vector<std::string> tried;
    std::vector<std::string> in_db;
    try {
        for (const auto& k : rpm::imported_keys(root)) in_db.push_back(k.short_id());
    } catch (const RpmError& e) {
        in_db.push_back(std::string("unreadable: ") + e.what());
    }
    tried.push_back(fmt::format("the rpmdb of {} ({})", root.string(),
                                in_db.empty() ? std::string("no key imported")
                                              : fmt::format("imported: {}", fmt::join(in_db, ", "))));
    for (const auto& f : gpgkeys) {
        const auto k = read_key_file(f);
        tried.push_back(fmt::format("--gpgkey {} ({})", f.string(), k ? k->short_id() : std::string("unreadable")));
    }
    for (const auto& [url, id] : repo.urls)
        tried.push_back(fmt::format("gpgkey {} of repository {} ({})", url, repo.repo_id, id));
    std::string hint;
    if (!repo.repo_id.empty())
        hint = fmt::format("check gpgkey= of repository {} in {}: it must name the key the repository's packages "
                           "are signed with; or pass the signer's public key with --gpgkey FILE",
                           repo.repo_id, repo.repo_file.empty() ? std::string("its .repo file") : repo.repo_file);
    else
        hint = fmt::format("pass the signer's public key with --gpgkey FILE, or import it (rpm --root {} --dbpath "
                           "/var/lib/rpm --import FILE)",
                           root.string());
    return fmt::format("{}: NOKEY: signed with key {}, which is in none of the keys tried: {}; {}", file.string(),
                       signer, fmt::join(tried, "; "), hint);
}

} // namespace

std::optional<rpm::PublicKey> import_verifying_key(const stdfs::path& root, const std::vector<stdfs::path>& gpgkeys,
                                                   const std::string& signer_key_id) {
    if (signer_key_id.empty()) return std::nullopt;
    for (const auto& k : rpm::imported_keys(root))
        if (k.has_id(signer_key_id)) return std::nullopt;
    for (const auto& f : gpgkeys) {
        const auto k = read_key_file(f);
        if (!k || !k->has_id(signer_key_id)) continue;
        rpm::import_key(root, *k);
        return k;
    }
    return std::nullopt;
}

rpm::VerifyResult verify_for_install(const stdfs::path& root, const stdfs::path& file,
                                     const std::vector<stdfs::path>& gpgkeys, GpgCheck gpgcheck,
                                     const RepoKeySources& repo) {
    rpm::Keys keys{root, gpgkeys, repo.armored};
    rpm::VerifyResult v = rpm::verify_package(file, keys);
    const std::string f = file.string();
    if (!v.digests_ok || v.signature == rpm::SignatureState::bad)
        throw InstallError(fmt::format("{} does not verify: {}; download it again", f, v.detail));
    if (gpgcheck == GpgCheck::yes) {
        switch (v.signature) {
        case rpm::SignatureState::ok: break;
        case rpm::SignatureState::unsigned_:
            throw InstallError(fmt::format("{} is not signed and signatures are required; install a signed "
                                           "package, or pass --nogpgcheck to install it unverified",
                                           f));
        case rpm::SignatureState::nokey: throw InstallError(nokey_message(root, file, v.key_id, gpgkeys, repo));
        case rpm::SignatureState::nottrusted:
            throw InstallError(fmt::format("{}: signed with key {}, which is not trusted", f, v.key_id));
        case rpm::SignatureState::bad: break;  // handled above
        }
    }
    if (v.package.source)
        throw InstallError(fmt::format("{} is a source package (.src.rpm); install the binary x86_64 package", f));
    if (v.package.arch != "x86_64" && v.package.arch != "noarch")
        throw InstallError(fmt::format("{} is built for {}; the broker host is x86_64 and takes x86_64 or noarch "
                                       "packages only",
                                       f, v.package.arch));
    return v;
}

namespace {

/// Everything after verification, under the run lock. Sets `changed` just before the
/// first change to the root.
/// The documented CLI: ROOT/usr/bin/switch_database.pl -> `program` (a root-owned
/// directory, the path root may run), and the documented ROOT/home/leo/bin/switch_database.pl
/// -> that path. Root refuses to run through the second one (trust.hpp); it is there for
/// the manual's sake and names the first. An existing real file is left alone.
void link_switch_database(const stdfs::path& root, const stdfs::path& program, const InstallCallbacks& cb) {
    const fs::SystemRoot sr(root);
    const stdfs::path safe("/usr/bin/switch_database.pl");
    const stdfs::path documented("/home/leo/bin/switch_database.pl");
    auto make_link = [&](const stdfs::path& inside, const std::string& target) {
        const auto st = sr.lstat(inside);
        if (st && !S_ISLNK(st->st_mode)) {
            warn(cb, fmt::format("{} exists and is not a link: left as it is", sr.host(inside).string()));
            return;
        }
        sr.make_dirs(inside.parent_path(), 0755, std::nullopt, fs::ExistingDir::keep);
        sr.symlink(target, inside);
        log::info("linked {} -> {}", sr.host(inside).string(), target);
    };
    make_link(safe, program.string());
    make_link(documented, sr.host(safe).string());
}

void install_locked(const InstallRequest& req, const stdfs::path& root, const InstallCallbacks& cb,
                    InstallOutcome& outcome, bool with_database, bool& changed) {
    const rpm::PackageInfo& pkg = outcome.verification.package;
    Journal journal(root);
    std::string journal_run;

    // 2. What is installed already.
    bool complete_only = false;
    for (const auto& i : rpm::query_installed(root, pkg.name)) {
        if (i.nevra() != pkg.nevra())
            throw InstallError(update_detail::replace_advice(
                pkg.nevra(), rpm::compare_evr(update_detail::evr_of(pkg), update_detail::evr_of(i)), i.nevra(), root,
                "upgrade --rpm FILE"));  // (repository mode said it before staging)
        complete_only = true;
    }
    if (complete_only) {
        migrations::InternalDatabase db(root);
        const auto st = db.status();
        bool pending = false;
        if (with_database && st.state != migrations::DbState::not_initialised) {
            // The schema can only be read from a running server: start a stopped one for
            // the look, and leave it as it was when there is nothing to complete.
            const bool started_here = st.state == migrations::DbState::stopped &&
                                      db.start([&cb](const std::string& notice) { step(cb, notice); });
            auto conn = migrations::Connection::open(db.conninfo());
            auto state = migrations::read_schema_state(conn);
            auto newest = shipped_schema_version(root);
            pending = newest && (!state.schema_version || *state.schema_version != *newest);
            if (started_here && !pending) db.stop();
        }
        if (!with_database || (st.state != migrations::DbState::not_initialised && !pending)) {
            outcome.kind = InstallOutcome::Kind::nothing_to_do;
            log::info("{} is already installed in {}: nothing to do", pkg.nevra(), root.string());
            return;
        }
        outcome.kind = InstallOutcome::Kind::completed;
        step(cb, fmt::format("{} is installed but its database step is not complete: completing it", pkg.nevra()));
    } else {
        // 3. Preflight, install profile.
        step(cb, "running preflight checks (install profile)");
        run_preflight(req, root, cb);

        // 4. Prerequisites of the database step, before any change.
        if (with_database) (void)migrations::find_pg_bindir();

        // 5. Test transaction: dependencies, conflicts, disk space; changes nothing.
        rpm::TransactionOptions topts;
        topts.kind = rpm::TransactionKind::install;
        topts.require_signature = req.gpgcheck == GpgCheck::yes;
        topts.keys.files = req.gpgkeys;
        step(cb, fmt::format("testing the rpm transaction for {}", pkg.nevra()));
        try {
            rpm::test_transaction(root, req.package_file, topts);
        } catch (const RpmLockedError&) {  // another rpm transaction: a refusal, not a failure
            std::throw_with_nested(RefusedError(fmt::format("cannot install {}; nothing was changed", pkg.nevra())));
        } catch (const RpmError&) {
            std::throw_with_nested(InstallError(fmt::format("cannot install {}; nothing was changed", pkg.nevra())));
        }

        // 6. Confirmation, then the changes.
        if (cb.confirm && !cb.confirm(fmt::format("Install {} into {}?", pkg.nevra(), root.string())))
            throw RefusedError("install cancelled: nothing was changed");
        // The plan was made before the question; another tool (an administrator's rpm -i)
        // may have installed the broker meanwhile.
        if (const auto now = rpm::query_installed(root, pkg.name); !now.empty())
            throw RefusedError(fmt::format("{} was installed in {} by something else while the question waited; "
                                           "nothing was changed: run the command again to see what it will do",
                                           now.front().nevra(), root.string()));

        changed = true;
        journal_run = journal.begin("install", "", pkg.nevra());
        journal.step_start(journal_run, "user");
        step(cb, "creating the leo user (if missing)");
        outcome.user_created = ensure_leo_user(root);
        journal.step_done(journal_run, "user");
        fault::point("install.after_user");
        if (const int sig = signals::pending()) {
            journal.end(journal_run, "abandoned");
            throw InterruptedError(fmt::format("install of {} interrupted by {} before its rpm transaction: nothing "
                                               "is installed{}",
                                               pkg.nevra(), signals::name(sig),
                                               outcome.user_created ? " (the leo user was created and is kept)" : ""),
                                   sig);
        }
        journal.step_start(journal_run, "transaction");

        step(cb, fmt::format("installing {}", pkg.nevra()));
        topts.on_progress = [&](const std::string&, std::uint64_t done, std::uint64_t total) {
            if (cb.on_progress) cb.on_progress(done, total);
        };
        try {
            rpm::run_transaction(root, req.package_file, topts);
        } catch (const RpmError&) {
            std::throw_with_nested(InstallError(fmt::format(
                "installing {} failed{}", pkg.nevra(),
                outcome.user_created ? " (the leo user was created and is kept)" : "")));
        }
        const fs::SystemRoot sr(root);
        sr.make_dirs(fs::SystemRoot::k_state_dir, 0700, fs::Owner{0, 0});
        sr.make_dirs(k_packages_dir, 0700, fs::Owner{0, 0});
        sr.copy_from_host(req.package_file, stdfs::path(k_packages_dir) / (pkg.nevra() + ".rpm"), 0600);
        log::info("kept a copy of {} in {}", pkg.nevra(), sr.host(k_packages_dir).string());
        // The key the package verified with goes into the rpmdb, so that the next upgrade
        // verifies with it (yum imports the keys it uses).
        if (req.gpgcheck == GpgCheck::yes) {
            try {
                if (const auto k = import_verifying_key(root, req.gpgkeys, outcome.verification.key_id))
                    step(cb, fmt::format("imported GPG key {} (\"{}\", fingerprint {}) into the rpmdb of {}",
                                         k->short_id(), k->user_id, k->fingerprint_text(), root.string()));
            } catch (const RpmError& e) {
                warn(cb, fmt::format("{}; the next upgrade needs the key again (--gpgkey FILE)", e.what()));
            }
        }
        journal.step_done(journal_run, "transaction");
        fault::point("install.after_transaction");
        if (const int sig = signals::pending()) {
            // Undo: the package out again (the database step has not begun).
            signals::say("undoing the install: erasing the package; please wait");
            step(cb, fmt::format("interrupted by {}: erasing {} again", signals::name(sig), pkg.nevra()));
            journal.step_start(journal_run, "undo");
            rpm::erase_package(root, pkg.nevra());
            (void)sr.remove(stdfs::path(k_packages_dir) / (pkg.nevra() + ".rpm"));  // its kept copy too
            journal.step_done(journal_run, "undo");
            journal.end(journal_run, "rolled-back");
            throw InterruptedError(fmt::format("install of {} interrupted by {}: undone, {} was erased and nothing "
                                               "is installed{}",
                                               pkg.nevra(), signals::name(sig), pkg.nevra(),
                                               outcome.user_created ? " (the leo user was created and is kept)" : ""),
                                   sig);
        }
    }

    changed = true;
    if (journal_run.empty()) {
        // Completing an earlier install: the package is already in place.
        journal_run = journal.begin("install", "", pkg.nevra());
        journal.step_done(journal_run, "transaction");
    }
    // From here the install goes forward only: the package is in, and its database step
    // (initialise, migrate) is finished rather than undone when a signal comes.
    signals::say("the package is installed; finishing its database step, which will not be undone; please wait");
    if (!req.switch_database_program.empty()) link_switch_database(root, req.switch_database_program, cb);
    if (with_database) {
        try {
            journal.step_start(journal_run, "database");
            database_steps(root, pkg, cb, outcome);
            journal.step_done(journal_run, "database");
        } catch (const Error&) {
            std::throw_with_nested(InstallError(fmt::format(
                "{} is installed, but its database step failed; fix the cause below and run the same install "
                "command again to complete it",
                pkg.nevra())));
        }
    } else {
        warn(cb, fmt::format("{} ships no broker migrations (in {}): database step skipped", pkg.nevra(),
                             k_migrations_dir));
    }
    fault::point("install.before_end");
    journal.end(journal_run, "ok");
}

} // namespace

namespace {

/// Verify `file` and check that it is the broker package (with `expected_nevra`, what the
/// repository metadata said it is, when it came from one).
rpm::VerifyResult verify_broker(const stdfs::path& root, const stdfs::path& file, const std::vector<stdfs::path>& keys,
                                GpgCheck gpgcheck, const std::string& expected_nevra, const InstallCallbacks& cb,
                                const RepoKeySources& repo_keys = {}) {
    step(cb, fmt::format("verifying {}", file.string()));
    auto v = verify_for_install(root, file, keys, gpgcheck, repo_keys);
    const rpm::PackageInfo& pkg = v.package;
    if (!expected_nevra.empty() && pkg.nevra() != expected_nevra)
        throw InstallError(fmt::format("{} is {}, but the repository metadata says {}: the repository is "
                                       "inconsistent; nothing was changed",
                                       file.string(), pkg.nevra(), expected_nevra));
    if (pkg.name != k_broker_package)
        throw InstallError(fmt::format("{} is {}, not the broker package {}; nothing was changed", file.string(),
                                       pkg.nevra(), k_broker_package));
    if (gpgcheck == GpgCheck::no && v.signature != rpm::SignatureState::ok)
        warn(cb, fmt::format("signature check disabled{}: {} is {}; it is accepted without knowing who built it",
                             expected_nevra.empty() ? " (--nogpgcheck)" : "", pkg.nevra(),
                             v.signature == rpm::SignatureState::unsigned_
                                 ? "not signed"
                                 : "signed with key " + v.key_id + " (" + std::string(rpm::to_string(v.signature)) +
                                       ")"));
    return v;
}

/// The package file to verify and install: `file`, or a private copy of it when another user
/// could change it (private_package.hpp; said as a warning). `package` holds the copy.
stdfs::path private_package(const stdfs::path& root, const stdfs::path& file, const InstallCallbacks& cb,
                            std::optional<PrivatePackage>& package) {
    package.emplace(root, file);
    if (!package->warning().empty()) warn(cb, package->warning());
    return package->path();
}

/// Repository mode: the broker package `req` names, chosen, downloaded and verified.
/// `req` gets the downloaded file and the repository's keys.
void stage_from_repositories(InstallRequest& req, const stdfs::path& root, const InstallCallbacks& cb,
                             InstallOutcome& outcome, RepoKeyring& keyring, std::optional<PrivatePackage>& package) {
    step(cb, "reading repository metadata");
    const Candidate chosen = staging::choose(update_detail::available(root, req.repos, keyring), req.version);
    for (const auto& i : rpm::query_installed(root, k_broker_package)) {
        if (i.nevra() != chosen.entry.nevra())
            throw InstallError(update_detail::replace_advice(
                chosen.entry.nevra(),
                rpm::compare_evr(update_detail::evr_of(chosen.entry), update_detail::evr_of(i)), i.nevra(), root,
                req.version ? "upgrade --version " + *req.version : std::string("upgrade")));
    }
    step(cb, fmt::format("downloading {} from {}", chosen.entry.nevra(), chosen.repo.id));
    if (!chosen.repo.gpgcheck && req.gpgcheck == GpgCheck::yes) {
        warn(cb, fmt::format("repository {} sets gpgcheck=0 ({}): the package signature is not required",
                             chosen.repo.id, chosen.repo.source));
        req.gpgcheck = GpgCheck::no;
    }
    auto staged = staging::stage(root, chosen, cb.on_download, keyring, req.gpgcheck, req.repos.cache);
    req.package_file = private_package(root, staged.file, cb, package);
    outcome.verification = verify_broker(root, req.package_file, req.gpgkeys, req.gpgcheck, staged.expected_nevra, cb,
                                         staged.repo_keys);
}

} // namespace

InstallOutcome install(const InstallRequest& request, const InstallCallbacks& cb) {
    InstallRequest req = request;
    const stdfs::path root = checked_root(req.root);
    InstallOutcome outcome;
    const bool from_repositories = req.package_file.empty();

    // 1. Verify the package before anything changes (a repository's package: under the
    // lock, below, as its download writes the package cache).
    bool with_database = false;
    const std::string given = req.package_file.string();
    std::optional<PrivatePackage> package;  // from here on only a file no other user can change
    if (!from_repositories) {
        req.package_file = private_package(root, req.package_file, cb, package);
        outcome.verification = verify_broker(root, req.package_file, req.gpgkeys, req.gpgcheck, "", cb);
        with_database = ships_migrations(rpm::list_package_files(req.package_file));
    }
    install_steps::check_root_layout(root, with_database);

    // Until the first real change, a refusal removes what the run created on its way (the
    // lock's directory, an rpmdb opened by the test transaction), and only that: what is
    // missing is noted once the lock is held, never before (a run that waited for another
    // must not remove what that one made meanwhile). A refusal at the lock removes nothing.
    std::optional<RunLock> lock;
    std::optional<CreatedDirsGuard> created;
    bool changed = false;
    // A repository's keys: shown and imported with consent on first use (repo_keys.hpp).
    RepoKeyring keyring(root, KeyImport::ask, KeyCallbacks{cb.on_step, cb.on_warning, cb.confirm});
    lock.emplace(RunLock::acquire(root, from_repositories ? std::string("install (from the repositories)")
                                                          : "install --rpm " + given));
    try {
        created.emplace(root, std::vector<stdfs::path>{stdfs::path(fs::SystemRoot::k_rpmdb)});
        if (from_repositories) {
            stage_from_repositories(req, root, cb, outcome, keyring, package);
            with_database = ships_migrations(rpm::list_package_files(req.package_file));
            install_steps::check_root_layout(root, with_database);
        }
        Journal(root).refuse_if_unfinished();
        fault::point("install.begin");
        install_locked(req, root, cb, outcome, with_database, changed);
        keyring.commit_pins();  // the keys of the repository it came from, now trusted here
    } catch (...) {
        // (a key imported with consent stays, with its pin)
        if (!changed && !keyring.pinned_any()) {
            if (created) created->undo();
            lock->remove_state_dir_if_created();
            lock.reset();
        }
        throw;
    }
    return outcome;
}

} // namespace leo::installer
