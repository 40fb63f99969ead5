#include "cli.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/redact.hpp"
#include "leo/installer/install.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/status.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/switch_database.hpp"
#include "leo/installer/trust.hpp"
#include "leo/installer/upgrade.hpp"
#include "leo/repo/config.hpp"
#include "leo/repo/url.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/rpm/transaction.hpp"
#include "leo/preflight/checks.hpp"
#include "leo/preflight/facts.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"

#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

namespace leo::cli {
namespace stdfs = std::filesystem;

namespace {

/// The program name in messages: "leo-installer", or "switch_database.pl" when called
/// by that name (the link in /home/leo/bin).
const char* k_prog = "leo-installer";
constexpr const char* k_switch_prog = "switch_database.pl";

/// One subcommand: registers its options, then runs (STYLE.md: one unit per command).
class Command {
public:
    virtual ~Command() = default;
    virtual void setup(CLI::App& app) = 0;
    virtual int run() = 0;

protected:
    std::string m_root = "/";
    bool m_json = false;
    bool m_assumeyes = false;
    void add_root(CLI::App& sub) {
        sub.add_option("--root", m_root, "Operate on the system under DIR (like rpm --root)")->option_text("DIR");
    }
    void add_json(CLI::App& sub) { sub.add_flag("--json", m_json, "Machine-readable JSON output"); }
    void add_assumeyes(CLI::App& sub) {
        sub.add_flag("-y,--assumeyes", m_assumeyes, "Answer yes: change without asking");
    }
    [[nodiscard]] stdfs::path root() const { return installer::checked_root(m_root); }
};

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << "\n"; }

/// Columns of the terminal on stdout (100 when it is not a terminal).
std::size_t terminal_width() {
    struct winsize ws {};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 60) return ws.ws_col;
    return 100;
}

/// A progress bar on stderr when it is a terminal; nothing (nullptr) on a pipe.
std::function<void(std::uint64_t, std::uint64_t)> progress_bar(const std::string& label) {
    if (::isatty(STDERR_FILENO) == 0) return nullptr;  // nothing on a pipe
    return [label](std::uint64_t done, std::uint64_t total) {
        if (total == 0) return;
        const int pct = static_cast<int>(done * 100 / total);
        std::cerr << fmt::format("\r  {} [{:<25}] {:3}% {}/{} KiB", label,
                                 std::string(static_cast<size_t>(pct / 4), '#'), pct, done / 1024, total / 1024)
                  << (done >= total ? "\n" : "") << std::flush;
    };
}

/// The preflight report inside install/upgrade: printed only when something did not pass.
void print_problems(const preflight::Report& rep) {
    if (preflight::all_pass(rep)) return;
    std::cout << preflight::to_table(rep, {terminal_width(), preflight::TableOptions::Rows::problems});
}

/// Ask on the terminal; refuse when there is none (DESIGN.md: -y or a terminal).
bool confirm(bool assumeyes, const std::string& question) {
    if (assumeyes) return true;
    if (::isatty(STDIN_FILENO) == 0)
        throw RefusedError("no terminal to ask for confirmation on; pass -y (--assumeyes) to proceed");
    std::cout << question << " [y/N]: " << std::flush;
    std::string answer;
    if (!std::getline(std::cin, answer)) return false;
    return answer == "y" || answer == "Y" || answer == "yes";
}

/// Pairs of repeated --skip ID and --reason TEXT, in order.
std::map<std::string, std::string> skip_map(const std::vector<std::string>& ids,
                                            const std::vector<std::string>& reasons) {
    if (ids.size() != reasons.size())
        throw UsageError(fmt::format("every --skip ID needs its own --reason TEXT (got {} --skip and {} --reason)",
                                     ids.size(), reasons.size()));
    std::map<std::string, std::string> m;
    for (size_t i = 0; i < ids.size(); ++i) {
        if (reasons[i].find_first_not_of(" \t") == std::string::npos)
            throw UsageError(fmt::format("--reason for --skip {} is empty: say why the check is skipped", ids[i]));
        if (!m.emplace(ids[i], reasons[i]).second)
            throw UsageError(fmt::format("--skip {} is given twice; give each check once, with one --reason", ids[i]));
    }
    return m;
}

preflight::HostFacts load_facts(const std::string& facts_file, const stdfs::path& root) {
    if (facts_file.empty()) return preflight::gather_facts(root);
    try {
        return preflight::read_facts_file(facts_file);
    } catch (const PreflightError&) {
        std::throw_with_nested(UsageError("--facts " + facts_file));
    }
}

// ---------------------------------------------------------------------------------------

class FactsCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
    }
    int run() override {
        const auto facts = preflight::gather_facts(root());
        const auto j = preflight::to_json(facts);
        if (m_json) {
            print_json(j);
        } else {
            std::cout << fmt::format("os:        {} (ID={}, VERSION_ID={}) from {}\n", facts.os.pretty_name,
                                     facts.os.id, facts.os.version_id,
                                     facts.os.source.empty() ? "nowhere: " + facts.os.error : facts.os.source);
            std::cout << fmt::format("arch:      {}\n", facts.arch);
            std::cout << fmt::format("vcpus:     {} ({})\n", facts.vcpus, facts.vcpus_source);
            std::cout << fmt::format("memory:    {} KiB MemTotal ({})\n", facts.mem_total_kib, facts.mem_source);
            std::cout << fmt::format("/home/leo: {} on {} ({}, source {}), {} bytes total, {} available\n",
                                     facts.home.path, facts.home.mount_point, facts.home.fstype,
                                     facts.home.mount_source, facts.home.total_bytes, facts.home.available_bytes);
        }
        return 0;
    }
};

class PreflightCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
        sub.add_option("--profile", m_profile,
                       "install | upgrade (adds upgrade-space) | rest-api (memory only)")
            ->option_text("PROFILE");
        std::string fixed;
        for (const auto& info : preflight::check_catalog())
            if (!info.skippable) fixed += fmt::format(" {} ({})", info.id, info.not_skippable_because);
        sub.footer("Checks that cannot be skipped:" + fixed);
        sub.add_option("--facts", m_facts, "Judge a saved `facts --json` output instead of this host")
            ->option_text("FILE");
        sub.add_option("--skip", m_skips, "Skip check ID (needs --reason; recorded)")->option_text("ID");
        sub.add_option("--reason", m_reasons, "Why the preceding --skip is safe")->option_text("TEXT");
    }
    int run() override {
        const auto profile = preflight::parse_profile(m_profile);
        const auto skips = skip_map(m_skips, m_reasons);
        const auto r = root();
        log::open_log(r);
        const auto facts = load_facts(m_facts, r);
        const auto report = preflight::run_checks(facts, profile, skips);
        for (const auto& res : report.results)
            if (res.verdict == preflight::Verdict::skipped)
                log::warning("preflight: check {} skipped ({}; would have been: {})", res.id, res.skip_reason,
                             preflight::to_string(res.judged));
        log::info("preflight ({}): {}", preflight::to_string(profile), report.inhibited() ? "refused" : "passed");
        if (m_json) print_json(preflight::to_json(report));
        else std::cout << preflight::to_table(report, {terminal_width(), preflight::TableOptions::Rows::all});
        if (report.inhibited()) {
            if (!m_json)
                std::cerr << k_prog << ": error: preflight found inhibitors; fix what the remediation lines say\n";
            return static_cast<int>(ExitCode::refused);
        }
        return 0;
    }

private:
    std::string m_profile = "install";
    std::string m_facts;
    std::vector<std::string> m_skips;
    std::vector<std::string> m_reasons;
};

class VerifyCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
        sub.add_option("--rpm", m_rpm, "The package file")->required()->option_text("FILE");
        sub.add_option("--gpgkey", m_keys, "Armored public key file (repeatable)")->option_text("FILE");
    }
    int run() override {
        std::vector<stdfs::path> keys(m_keys.begin(), m_keys.end());
        const auto r = root();
        const auto v = rpm::verify_package(m_rpm, rpm::Keys{r, keys});
        if (m_json) {
            print_json({{"file", m_rpm},
                        {"nevra", v.package.nevra()},
                        {"arch", v.package.arch},
                        {"digests", v.digests_ok ? "ok" : "bad"},
                        {"signature", rpm::to_string(v.signature)},
                        {"key_id", v.key_id},
                        {"sha256", v.sha256},
                        {"detail", v.detail}});
        } else {
            std::cout << fmt::format("{}: {}\n  digests:   {}\n  signature: {}{}\n  sha256:    {}\n", m_rpm,
                                     v.package.name.empty() ? "(unreadable package header)" : v.package.nevra(), v.digests_ok ? "OK" : "BAD",
                                     rpm::to_string(v.signature),
                                     v.key_id.empty() ? "" : " (key " + v.key_id + ")", v.sha256);
            if (!v.detail.empty()) std::cout << "  detail:    " << v.detail << "\n";
        }
        switch (v.signature) {
        case rpm::SignatureState::ok: break;
        case rpm::SignatureState::nokey:
            std::cerr << fmt::format("{}: error: {}: NOKEY: key {} is neither in a --gpgkey file nor imported in "
                                     "the rpmdb of {}; pass the signer's public key with --gpgkey FILE\n",
                                     k_prog, m_rpm, v.key_id, r.string());
            break;
        case rpm::SignatureState::unsigned_:
            std::cerr << fmt::format("{}: error: {} is not signed\n", k_prog, m_rpm);
            break;
        case rpm::SignatureState::nottrusted:
            std::cerr << fmt::format("{}: error: {}: key {} is not trusted\n", k_prog, m_rpm, v.key_id);
            break;
        case rpm::SignatureState::bad:
            std::cerr << fmt::format("{}: error: {} is corrupt or was changed; download it again\n", k_prog, m_rpm);
            break;
        }
        return v.signature == rpm::SignatureState::ok ? 0 : 1;
    }

private:
    std::string m_rpm;
    std::vector<std::string> m_keys;
};

class InstallCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_assumeyes(sub);
        auto* rpm_opt = sub.add_option("--rpm", m_rpm, "Install this local package file")->option_text("FILE");
        sub.add_option("--repo", m_repo, "Install from this yum repository (not supported yet)")
            ->option_text("ID")
            ->excludes(rpm_opt);
        sub.add_option("--gpgkey", m_keys, "Armored public key to verify with (repeatable)")->option_text("FILE");
        sub.add_flag("--nogpgcheck", m_nogpgcheck, "Do not require a valid signature (warns)");
        sub.add_option("--skip", m_skips, "Skip preflight check ID (needs --reason)")->option_text("ID");
        sub.add_option("--reason", m_reasons, "Why the preceding --skip is safe")->option_text("TEXT");
    }
    int run() override {
        if (!m_repo.empty())
            throw Error("install --repo: installing from a yum repository is not supported yet; download the "
                        "package and install it with --rpm FILE");
        if (m_rpm.empty()) throw UsageError("install needs --rpm FILE (the broker package to install)");
        installer::InstallRequest req;
        req.root = root();
        req.package_file = m_rpm;
        req.gpgkeys.assign(m_keys.begin(), m_keys.end());
        req.gpgcheck = m_nogpgcheck ? installer::GpgCheck::no : installer::GpgCheck::yes;
        req.skips = skip_map(m_skips, m_reasons);
        std::error_code ec;
        req.switch_database_program = stdfs::read_symlink("/proc/self/exe", ec);  // this program
        log::open_log(req.root);
        log::info("install --rpm {} --root {}", m_rpm, req.root.string());

        installer::InstallCallbacks cb;
        cb.on_step = [](const std::string& s) { std::cout << "==> " << s << "\n" << std::flush; };
        cb.on_warning = [](const std::string& s) { std::cerr << k_prog << ": warning: " << s << "\n"; };
        cb.on_preflight = print_problems;
        cb.confirm = [this](const std::string& q) { return confirm(m_assumeyes, q); };
        cb.on_progress = progress_bar("install");
        const auto outcome = installer::install(req, cb);
        const auto nevra = outcome.verification.package.nevra();
        switch (outcome.kind) {
        case installer::InstallOutcome::Kind::nothing_to_do:
            std::cout << nevra << " is already installed in " << req.root.string() << ": nothing to do\n";
            break;
        case installer::InstallOutcome::Kind::completed:
        case installer::InstallOutcome::Kind::installed:
            std::cout << fmt::format("{} {} in {}", outcome.kind == installer::InstallOutcome::Kind::installed
                                                        ? "installed"
                                                        : "completed the install of",
                                     nevra, req.root.string());
            if (outcome.schema_version)
                std::cout << fmt::format("; schema version {} ({} migration{} applied)", *outcome.schema_version,
                                         outcome.migrations_applied.size(),
                                         outcome.migrations_applied.size() == 1 ? "" : "s");
            std::cout << "\n";
            break;
        }
        log::info("install finished: {}", nevra);
        return 0;
    }

private:
    std::string m_rpm;
    std::string m_repo;
    std::vector<std::string> m_keys;
    std::vector<std::string> m_skips;
    std::vector<std::string> m_reasons;
    bool m_nogpgcheck = false;
};

class StatusCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
    }
    int run() override {
        const auto s = installer::gather_status(root());
        if (m_json) print_json(installer::to_json(s));
        else std::cout << installer::to_text(s);
        return 0;
    }
};

class DbCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        sub.add_option("action", m_action, "init | start | stop | status")
            ->required()
            ->check(CLI::IsMember({"init", "start", "stop", "status"}));
    }
    int run() override {
        const auto r = root();
        // Before anything: a root with shell characters would reach /bin/sh through initdb.
        migrations::check_root_for_postgres(r);
        migrations::InternalDatabase db(r);
        if (m_action == "status") {
            const auto st = db.status();
            switch (st.state) {
            case migrations::DbState::not_initialised:
                std::cout << "internal database: not initialised (" << db.data_dir().string() << ")\n";
                return 3;
            case migrations::DbState::stopped:
                std::cout << "internal database: stopped (" << st.data_dir << ")\n";
                return 3;
            case migrations::DbState::running:
                std::cout << "internal database: running, pid " << st.pid.value_or(0) << " (" << st.data_dir
                          << ", PostgreSQL " << st.server_version << ")\n";
                return 0;
            }
        }
        log::open_log(r);
        log::info("db {} --root {}", m_action, r.string());
        if (m_action == "init") {
            db.check_prerequisites();
            std::cout << (db.init() ? "initialised the internal database in "
                                    : "the internal database is already initialised in ")
                      << db.data_dir().string() << "\n";
        } else if (m_action == "start") {
            std::cout << (db.start() ? "started the internal database\n" : "the internal database is already running\n");
        } else if (m_action == "stop") {
            std::cout << (db.stop() ? "stopped the internal database\n" : "the internal database was not running\n");
        }
        return 0;
    }

private:
    std::string m_action;
};

/// Options shared by the commands that read repositories.
struct RepoOptions {
    std::vector<std::string> ids;
    std::vector<std::string> from_path;
    void add(CLI::App& sub) {
        sub.add_option("--repo", ids, "Use only this repository (repeatable; enables it)")->option_text("ID");
        sub.add_option("--repofrompath", from_path, "Add a repository for this command")->option_text("ID,URL");
    }
    [[nodiscard]] installer::RepoSelection selection() const {
        installer::RepoSelection sel;
        sel.ids = ids;
        for (const auto& spec : from_path) sel.extra.push_back(repo::repo_from_path(spec));
        return sel;
    }
};


class CheckUpdateCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
        m_repos.add(sub);
    }
    int run() override {
        const auto info = installer::check_update(root(), m_repos.selection());
        if (m_json) {
            nlohmann::json j{{"installed", info.installed.nevra()}, {"available", nlohmann::json::array()}};
            for (const auto& c : info.available)
                j["available"].push_back({{"nevra", c.entry.nevra()}, {"repo", c.repo.id}, {"url", repo::redact_url(c.entry.url())}});
            j["update"] = info.update ? nlohmann::json(info.update->entry.nevra()) : nlohmann::json(nullptr);
            print_json(j);
        } else if (info.update) {
            std::cout << fmt::format("update available: {} (installed {}) from {}\n", info.update->entry.nevra(),
                                     info.installed.nevra(), info.update->repo.id);
        } else {
            std::cout << fmt::format("no update: {} is the newest available\n", info.installed.nevra());
        }
        return info.update ? static_cast<int>(ExitCode::update_available) : 0;
    }

private:
    RepoOptions m_repos;
};

class UpgradeCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_assumeyes(sub);
        m_repos.add(sub);
        auto* rpm_opt = sub.add_option("--rpm", m_rpm, "Upgrade to this local package file")->option_text("FILE");
        m_version_opt = sub.add_option("--version", m_version, "Upgrade to this version from the repositories")
                            ->option_text("V")
                            ->excludes(rpm_opt);
        rpm_opt->excludes(sub.get_option("--repo"))->excludes(sub.get_option("--repofrompath"));
        sub.add_option("--gpgkey", m_keys, "Armored public key to verify with (repeatable)")->option_text("FILE");
        sub.add_flag("--nogpgcheck", m_nogpgcheck, "Do not require a valid signature (warns)");
        sub.add_flag("--dry-run", m_dry_run, "Plan, download and verify only; change nothing");
        sub.add_flag("--allow-remote-upgrade", m_allow_remote, "Allow migrating an external database");
    }
    int run() override {
        if (m_allow_remote)
            throw Error("upgrade --allow-remote-upgrade: external databases are not supported yet; this version "
                        "upgrades the internal database only");
        installer::UpgradeRequest req;
        req.root = root();
        if (!m_rpm.empty()) req.package_file = m_rpm;
        if (m_version_opt->count() > 0) req.version = m_version;
        req.repos = m_repos.selection();
        req.gpgkeys.assign(m_keys.begin(), m_keys.end());
        req.gpgcheck = m_nogpgcheck ? installer::GpgCheck::no : installer::GpgCheck::yes;
        req.dry_run = m_dry_run;
        log::open_log(req.root);
        installer::UpgradeCallbacks cb;
        cb.on_step = [](const std::string& s) { std::cout << "==> " << s << "\n" << std::flush; };
        cb.on_warning = [](const std::string& s) { std::cerr << k_prog << ": warning: " << s << "\n"; };
        cb.on_preflight = print_problems;
        cb.confirm = [this](const std::string& q) { return confirm(m_assumeyes, q); };
        cb.on_download = progress_bar("download");
        const auto out = installer::upgrade(req, cb);
        switch (out.kind) {
        case installer::UpgradeOutcome::Kind::nothing_to_do:
            std::cout << out.from
                      << (out.already_that_version ? " is installed: nothing to do\n"
                                                   : " is already the newest: nothing to do\n");
            break;
        case installer::UpgradeOutcome::Kind::dry_run:
            std::cout << fmt::format("dry run: {} -> {} is possible; nothing was changed\n", out.from, out.to);
            break;
        case installer::UpgradeOutcome::Kind::upgraded:
            std::cout << fmt::format("upgraded {} -> {}; schema version {}; restore point {} (`leo-installer "
                                     "rollback {}` returns to {})\n",
                                     out.from, out.to, out.schema_version.value_or("none"), out.restore_point,
                                     out.restore_point, out.from);
            break;
        }
        return 0;
    }

private:
    RepoOptions m_repos;
    std::string m_rpm;
    std::string m_version;
    CLI::Option* m_version_opt = nullptr;
    std::vector<std::string> m_keys;
    bool m_nogpgcheck = false;
    bool m_dry_run = false;
    bool m_allow_remote = false;
};

class RollbackCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_assumeyes(sub);
        sub.add_option("id", m_id, "Restore point (default: the newest)")->option_text("SNAPSHOT");
        sub.add_flag("--vm-snapshot", m_vm, "Revert the whole VM to the snapshot taken with the restore point "
                                            "(runs [vm_snapshot] restore_command)");
    }
    int run() override {
        const auto r = root();
        if (!m_vm) installer::require_internal_database(r, "rollback");
        const auto rp = installer::find_restore_point(r, m_id);
        if (m_vm) {
            if (!confirm(m_assumeyes, fmt::format("Revert the VM to snapshot {} (restore point {}, {})?",
                                                  rp.vm_snapshot_id.empty() ? "-" : rp.vm_snapshot_id, rp.id, rp.nevra)))
                throw RefusedError("rollback cancelled: nothing was changed");
            log::open_log(r);
            installer::run_vm_restore_hook(r, rp, installer::load_config(r));
            std::cout << "the VM-snapshot restore hook reverted to snapshot " << rp.vm_snapshot_id << "\n";
            return 0;
        }
        if (!confirm(m_assumeyes, fmt::format("Roll {} back to restore point {} ({}, {})?", r.string(), rp.id,
                                              rp.nevra, rp.reason)))
            throw RefusedError("rollback cancelled: nothing was changed");
        log::open_log(r);
        installer::rollback(r, rp.id, [](const std::string& s) { std::cout << "==> " << s << "\n" << std::flush; });
        std::cout << fmt::format("rolled back to restore point {}: {}, schema {}\n", rp.id, rp.nevra,
                                 rp.schema_version.value_or("none"));
        return 0;
    }

private:
    std::string m_id;
    bool m_vm = false;
};

/// `leo-installer migrate`: the schema migrations alone (DESIGN.md "Migrations").
class MigrateCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        sub.add_flag("--dry-run", m_dry_run, "Print the plan and the SQL; change nothing");
        sub.add_flag("--validate", m_validate, "Check the history against the files; change nothing");
        sub.add_flag("--allow-remote-upgrade", m_allow_remote, "Allow migrating an older external database");
        sub.add_option("--baseline", m_baseline, "Adopt a database made before the engine at this version")
            ->option_text("VERSION");
        sub.add_option("--migrations", m_dir, "Migration files (default: ROOT/home/leo/share/migrations)")
            ->option_text("DIR");
        sub.add_option("--db", m_db, "An external database (libpq conninfo); default: the one the broker uses")
            ->option_text("CONNINFO");
    }
    int run() override {
        namespace mig = leo::migrations;
        const auto r = root();
        const auto installed = rpm::query_installed(r, "leostream-broker");
        if (installed.size() != 1)
            throw Error(fmt::format("migrate needs exactly one installed broker in {} (found {}); the schema "
                                    "version follows the installed package",
                                    r.string(), installed.size()));
        const std::string broker_version = installed.front().version;
        bool external = !m_db.empty();
        std::string conninfo = m_db;
        if (!external) {
            // The database the broker uses (switch_database.pl records an external one).
            if (const auto cfg = installer::load_database_config(r); cfg.mode == installer::DatabaseMode::external) {
                conninfo = installer::external_conninfo(cfg);
                external = true;
            }
        }
        if (!external) {
            mig::InternalDatabase db(r);
            if (db.status().state != mig::DbState::running) db.start();
            conninfo = db.conninfo();
        }
        auto conn = mig::Connection::open(conninfo);
        const auto files =
            mig::load_migrations(m_dir.empty() ? fs::SystemRoot(r).checked_host("/home/leo/share/migrations") : stdfs::path(m_dir));
        mig::MigrateOptions o;
        o.kind = external ? mig::DatabaseKind::external : mig::DatabaseKind::internal;
        o.allow_remote_upgrade = m_allow_remote ? mig::AllowRemoteUpgrade::yes : mig::AllowRemoteUpgrade::no;
        o.dry_run = m_dry_run ? mig::DryRun::yes : mig::DryRun::no;
        if (!m_baseline.empty()) o.baseline = m_baseline;
        if (m_validate) {
            const auto state = mig::read_schema_state(conn);
            const auto d = mig::decide_upgrade(state, files, broker_version, o.kind, o.allow_remote_upgrade);
            const auto v = mig::validate(state, files, broker_version);
            // --validate reads only: an older external schema is "pending", not a refusal.
            if (d.refused() && d.action != mig::UpgradeDecision::Action::refuse_remote) throw RefusedError(d.message);
            if (!v.ok()) throw RefusedError(v.message());
            std::cout << fmt::format("schema {}: the history matches the {} migration files; {} pending\n",
                                     state.schema_version.value_or("none"), files.size(), v.pending.size());
            for (const auto* m : v.pending) std::cout << "  pending: " << m->script << "\n";
            if (d.action == mig::UpgradeDecision::Action::refuse_remote)
                std::cout << "  applying them to this external database needs --allow-remote-upgrade (every broker "
                             "sharing it then runs the new schema)\n";
            return 0;
        }
        if (!m_dry_run) {
            installer::Journal(r).refuse_if_unfinished();
            log::open_log(r);
        }
        const auto res = mig::migrate(conn, files, broker_version, o);
        for (const auto& p : res.plan) {
            std::cout << (m_dry_run ? "would apply " : "applied ") << p.script
                      << (p.transactional ? "" : " (no transaction)") << "\n";
            if (m_dry_run) std::cout << p.sql << (p.sql.empty() || p.sql.back() == '\n' ? "" : "\n");
        }
        std::cout << fmt::format("schema {} -> {}{}\n", res.schema_before.value_or("none"),
                                 res.schema_after.value_or("none"), m_dry_run ? " (dry run: nothing changed)" : "");
        return 0;
    }

private:
    bool m_dry_run = false;
    bool m_validate = false;
    bool m_allow_remote = false;
    std::string m_baseline;
    std::string m_dir;
    std::string m_db;
};

class RecoverCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_assumeyes(sub);
    }
    int run() override {
        const auto r = root();
        log::open_log(r);
        const auto out = installer::recover(r, [](const std::string& s) { std::cout << "==> " << s << "\n" << std::flush; });
        std::cout << out.message << "\n";
        return 0;
    }
};

class SnapshotCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
        add_assumeyes(sub);
        sub.add_option("action", m_action, "list | create | delete")
            ->required()
            ->check(CLI::IsMember({"list", "create", "delete"}));
        sub.add_option("id", m_id, "Restore point id (delete)")->option_text("SNAPSHOT");
    }
    int run() override {
        const auto r = root();
        if (m_action != "delete" && !m_id.empty())
            throw UsageError(fmt::format("snapshot {} takes no restore point id (got '{}')", m_action, m_id));
        if (m_action == "list") {
            const auto all = installer::list_restore_points(r);
            if (m_json) {
                nlohmann::json j = nlohmann::json::array();
                for (const auto& rp : all) j.push_back(installer::to_json(rp));
                print_json(j);
            } else if (all.empty()) {
                std::cout << "no restore points\n";
            } else {
                std::cout << fmt::format("{:<22} {:<36} {:<10} {}\n", "ID", "PACKAGE", "SCHEMA", "REASON");
                for (const auto& rp : all)
                    std::cout << fmt::format("{:<22} {:<36} {:<10} {}\n", rp.id, rp.nevra,
                                             rp.schema_version.value_or("-"), rp.reason);
            }
            return 0;
        }
        log::open_log(r);
        if (m_action == "create") {
            installer::require_internal_database(r, "a restore point");  // before the question
            if (!confirm(m_assumeyes, "Take a restore point of " + r.string() + "?"))
                throw RefusedError("cancelled: nothing was changed");
            auto lock = installer::RunLock::acquire(r, "snapshot create");
            installer::Journal(r).refuse_if_unfinished();
            const auto config = installer::load_config(r);
            const auto rp = installer::create_restore_point(r, "taken by snapshot create", config, [](const std::string& w) {
                std::cerr << k_prog << ": warning: " << w << "\n";
            });
            std::cout << "restore point " << rp.id << " taken (" << rp.nevra << ")"
                      << (rp.vm_snapshot_id.empty() ? "" : ", VM snapshot " + rp.vm_snapshot_id) << "\n";
            for (const auto& id : installer::prune_restore_points(r, config.keep_restore_points))
                std::cout << "deleted restore point " << id << " (keeping the newest " << config.keep_restore_points
                          << ")\n";
            return 0;
        }
        if (m_id.empty()) throw UsageError("snapshot delete needs the restore point id (see `snapshot list`)");
        const auto rp = installer::find_restore_point(r, m_id);
        if (!confirm(m_assumeyes, "Delete restore point " + rp.id + "?"))
            throw RefusedError("cancelled: nothing was changed");
        auto lock = installer::RunLock::acquire(r, "snapshot delete");
        installer::Journal(r).refuse_if_unfinished();
        installer::delete_restore_point(r, rp.id);
        std::cout << "deleted restore point " << rp.id << "\n";
        return 0;
    }

private:
    std::string m_action;
    std::string m_id;
};

/// The first line of `file` (a password file): at most 64 KiB are read, so /dev/zero or a
/// huge file cannot exhaust memory. Throws leo::UsageError naming the file and the reason.
std::string first_line_of(const std::string& file) {
    constexpr std::size_t k_max = 64 * 1024;
    std::error_code ec;
    if (stdfs::is_directory(file, ec))
        throw UsageError(fmt::format("--password_file {}: is a directory, not a file", file));
    std::FILE* f = std::fopen(file.c_str(), "rbe");
    if (f == nullptr)
        throw UsageError(fmt::format("--password_file {}: cannot read {}: {}", file, file, std::strerror(errno)));
    std::string buf(k_max, '\0');
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), f);
    std::fclose(f);
    buf.resize(n);
    const auto eol = buf.find('\n');
    if (buf.substr(0, eol).find('\0') != std::string::npos)
        throw UsageError(fmt::format("--password_file {}: its first line contains a NUL byte", file));
    if (eol == std::string::npos && n == k_max)
        throw UsageError(fmt::format("--password_file {}: no end of line in its first {} KiB", file, k_max / 1024));
    return buf.substr(0, eol);
}

/// Read a password from the terminal without echo. Returns nullopt when stdin is no terminal.
std::optional<std::string> prompt_password(const std::string& prompt) {
    if (::isatty(STDIN_FILENO) == 0) return std::nullopt;
    struct termios old {};
    const bool have_termios = ::tcgetattr(STDIN_FILENO, &old) == 0;
    if (have_termios) {
        struct termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    std::cerr << prompt << std::flush;
    std::string answer;
    const bool ok = static_cast<bool>(std::getline(std::cin, answer));
    if (have_termios) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    std::cerr << "\n";
    if (!ok) return std::nullopt;
    return answer;
}

/// switch_database.pl, flag for flag (installer/include/leo/installer/switch_database.hpp),
/// plus --root and -y like every command, each flag also spelled with hyphens
/// (--db-host), and password sources that stay out of the process list: --password_file
/// FILE (first line; "-" reads standard input), LEO_DB_PASSWORD (or libpq's PGPASSWORD),
/// or a prompt on the terminal.
class SwitchDatabaseCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        sub.add_flag("--show_current,--show-current", m_flags.show_current, "Show the database the broker uses (password masked)");
        sub.add_flag("--to_internal,--to-internal", m_flags.to_internal, "Switch back to the internal database (nothing is copied)");
        m_opts.to_external = sub.add_option("--to_external,--to-external", m_to_external,
                                            "Switch to an external database: new (create it and copy into it), "
                                            "existing (connect to a broker database), copy_to_existing (azuresql)")
                                 ->option_text("MODE");
        m_opts.db_vendor =
            sub.add_option("--db_vendor,--db-vendor", m_db_vendor, "postgres (default), mssqlserver or azuresql")->option_text("VENDOR");
        m_opts.db_name = sub.add_option("--db_name,--db-name", m_db_name, "Database name")->option_text("NAME");
        m_opts.db_host = sub.add_option("--db_host,--db-host", m_db_host, "Database server host name or address")->option_text("HOST");
        m_opts.port = sub.add_option("--port", m_port, "TCP port, 1-65535 (default: 5432, or 1433 for SQL Server)")
                          ->option_text("PORT");
        m_opts.username = sub.add_option("--username", m_username, "Database user")->option_text("USER");
        m_opts.password = sub.add_option("--password", m_password,
                                         "Database password (visible in the process list: prefer --password_file, "
                                         "LEO_DB_PASSWORD or the prompt)")
                              ->option_text("PASSWORD");
        m_opts.password_file =
            sub.add_option("--password_file,--password-file", m_password_file, "Read the password from the first line of FILE (- : stdin)")
                ->option_text("FILE")
                ->excludes(m_opts.password);
        m_opts.site_id = sub.add_option("--site_id,--site-id", m_site_id, "This broker's site id in the cluster")->option_text("ID");
        sub.add_flag("--skip_confirmation,--skip-confirmation,-y,--assumeyes", m_flags.skip_confirmation, "Do not ask before switching");
        sub.add_flag("--allow_remote_upgrade,--allow-remote-upgrade", m_flags.allow_remote_upgrade,
                     "Allow upgrading the schema of an older external database");
    }
    int run() override {
        auto given = [](CLI::Option* o, const std::string& v) {
            return o->count() > 0 ? std::optional<std::string>(v) : std::nullopt;
        };
        m_flags.to_external = given(m_opts.to_external, m_to_external);
        m_flags.db_vendor = given(m_opts.db_vendor, m_db_vendor);
        m_flags.db_name = given(m_opts.db_name, m_db_name);
        m_flags.db_host = given(m_opts.db_host, m_db_host);
        m_flags.port = given(m_opts.port, m_port);
        m_flags.username = given(m_opts.username, m_username);
        m_flags.site_id = given(m_opts.site_id, m_site_id);
        m_flags.password_given = m_opts.password->count() > 0 || m_opts.password_file->count() > 0;
        m_flags.password_flag = m_opts.password_file->count() > 0 ? "--password_file" : "--password";
        auto req = installer::parse_switch_flags(m_flags);
        req.root = root();
        if (req.action == installer::SwitchAction::to_external) req.target.password = password(req.target);
        // What is checked is what is stored: libpq must not fall back to a password of the
        // administrator's environment (PGPASSWORD, ~/.pgpass) that the broker will not have.
        for (const char* var : {"PGPASSWORD", "PGSERVICE", "PGSERVICEFILE", "LEO_DB_PASSWORD"})
            ::unsetenv(var);  // (LEO_DB_PASSWORD: nor does it reach the [services] hooks)
        ::setenv("PGPASSFILE", "/dev/null/leo-installer: only the password given", 1);
        if (req.action == installer::SwitchAction::show_current) {
            std::cout << installer::to_text(installer::show_current(req.root));
            return 0;
        }
        log::open_log(req.root);
        installer::SwitchCallbacks cb;
        cb.on_step = [](const std::string& s) { std::cout << "==> " << s << "\n" << std::flush; };
        cb.on_warning = [](const std::string& s) { std::cerr << k_prog << ": warning: " << s << "\n"; };
        cb.confirm = [](const std::string& q) {
            if (::isatty(STDIN_FILENO) == 0)
                throw RefusedError("no terminal to ask for confirmation on; pass --skip_confirmation to proceed");
            return confirm(false, q);
        };
        const auto out = installer::switch_database(req, cb);
        for (const auto& m : out.migrations_applied) std::cout << "    applied " << m << "\n";
        std::cout << out.message << "\n";
        return 0;
    }

private:
    std::string password(const migrations::Endpoint& target) const {
        if (m_opts.password->count() > 0) {
            std::cerr << k_prog
                      << ": warning: --password is visible to other users in the process list; prefer "
                         "--password_file, LEO_DB_PASSWORD or the prompt\n";
            return m_password;
        }
        if (m_opts.password_file->count() > 0) {
            std::string text;
            if (m_password_file == "-") {
                std::getline(std::cin, text);
            } else {
                text = first_line_of(m_password_file);
            }
            if (!text.empty() && text.back() == '\r') text.pop_back();
            if (text.empty())
                throw UsageError(fmt::format("--password_file {}: the first line is empty", m_password_file));
            return text;
        }
        for (const char* var : {"LEO_DB_PASSWORD", "PGPASSWORD"})
            if (const char* env = std::getenv(var); env != nullptr) return env;
        if (auto typed = prompt_password(fmt::format("Password for {} (empty: none): ", target.display())))
            return *typed;
        return {};
    }

    installer::SwitchFlags m_flags;
    struct {
        CLI::Option* to_external = nullptr;
        CLI::Option* db_vendor = nullptr;
        CLI::Option* db_name = nullptr;
        CLI::Option* db_host = nullptr;
        CLI::Option* port = nullptr;
        CLI::Option* username = nullptr;
        CLI::Option* password = nullptr;
        CLI::Option* password_file = nullptr;
        CLI::Option* site_id = nullptr;
    } m_opts;
    std::string m_to_external, m_db_vendor, m_db_name, m_db_host, m_port, m_username, m_password, m_password_file,
        m_site_id;
};

struct Entry {
    const char* name;
    const char* help;
    std::unique_ptr<Command> command;
};

} // namespace

namespace {

/// Run the parsed command; print the error chain and map it to the exit code.
int run_command(Command& cmd) {
    try {
        int rc = cmd.run();
        log::close_log();
        return rc;
    } catch (const std::exception& e) {
        // A secret quoted by a library (a URL with its password) never reaches the terminal.
        const std::string chain = redact_secrets(describe(e));
        log::error("{}", chain);
        log::close_log();
        std::cerr << k_prog << ": error: " << chain << "\n";
        return static_cast<int>(exit_code(e));
    }
}

/// Called as switch_database.pl (the link in /home/leo/bin): that one command.
int switch_database_main(int argc, char** argv) {
    k_prog = k_switch_prog;
    if (auto refusal = installer::untrusted_invocation(argv[0])) {
        std::cerr << k_prog << ": error: " << *refusal << "\n";
        return static_cast<int>(ExitCode::refused);
    }
    CLI::App app{"switch_database.pl: show or change the database the connection broker uses", k_prog};
    app.set_version_flag("--version", std::string(k_prog) + " (leo-installer " + LEO_VERSION + ")");
    SwitchDatabaseCommand cmd;
    cmd.setup(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << k_prog << ": error: " << e.what() << "; run '" << k_prog << " --help' for usage\n";
        return static_cast<int>(ExitCode::usage);
    }
    return run_command(cmd);
}

} // namespace

int main(int argc, char** argv) {
    // Files and directories get explicit modes; what is not given one is never group- or
    // world-writable, whatever umask the administrator's shell had (DESIGN.md).
    ::umask(022);
    if (argc > 0 && stdfs::path(argv[0]).filename() == k_switch_prog) return switch_database_main(argc, argv);
    CLI::App app{"leo-installer: install, upgrade and manage the connection broker", k_prog};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string(k_prog) + " " + LEO_VERSION);

    std::vector<Entry> entries;
    entries.push_back({"facts", "Gather the host facts that preflight judges", std::make_unique<FactsCommand>()});
    entries.push_back({"preflight", "Run the preflight checks (exit 3 on an inhibitor)",
                       std::make_unique<PreflightCommand>()});
    entries.push_back({"verify", "Verify a package's digests and signature", std::make_unique<VerifyCommand>()});
    entries.push_back({"install", "Install the broker from a local RPM", std::make_unique<InstallCommand>()});
    entries.push_back({"check-update", "Is a newer broker in the repositories? (exit 100: yes, 0: no)",
                       std::make_unique<CheckUpdateCommand>()});
    entries.push_back({"upgrade", "Upgrade the broker (restore point first; rolls back on failure)",
                       std::make_unique<UpgradeCommand>()});
    entries.push_back({"rollback", "Return to a restore point", std::make_unique<RollbackCommand>()});
    entries.push_back({"recover", "Finish or undo a run that was interrupted (crash, kill, power loss)",
                       std::make_unique<RecoverCommand>()});
    entries.push_back({"snapshot", "Restore points: list | create | delete ID", std::make_unique<SnapshotCommand>()});
    entries.push_back({"migrate", "Schema migrations alone (--dry-run, --validate, --baseline)",
                       std::make_unique<MigrateCommand>()});
    entries.push_back({"status", "Installed version, schema version, database state", std::make_unique<StatusCommand>()});
    entries.push_back({"db", "The internal PostgreSQL instance: init | start | stop | status",
                       std::make_unique<DbCommand>()});
    entries.push_back({"switch-database", "Show or change the broker's database (switch_database.pl)",
                       std::make_unique<SwitchDatabaseCommand>()});

    std::vector<std::pair<CLI::App*, Command*>> subs;
    for (auto& e : entries) {
        CLI::App* sub = app.add_subcommand(e.name, e.help);
        e.command->setup(*sub);
        subs.emplace_back(sub, e.command.get());
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::string what = e.what();
        bool any_parsed = false;
        for (auto& [sub, cmd] : subs) any_parsed = any_parsed || sub->parsed();
        if (!any_parsed && argc > 1 && argv[1][0] != '-') {
            std::string names;
            for (auto& en : entries) names += (names.empty() ? "" : ", ") + std::string(en.name);
            what = fmt::format("unknown command '{}' (commands: {})", argv[1], names);
        }
        std::cerr << k_prog << ": error: " << what << "; run '" << k_prog << " --help' for usage\n";
        return static_cast<int>(ExitCode::usage);
    }

    for (auto& [sub, cmd] : subs)
        if (sub->parsed()) return run_command(*cmd);
    return static_cast<int>(ExitCode::usage);
}

} // namespace leo::cli
