// leo-installer install: install the broker from a local RPM (--rpm FILE) or from the repositories
// (the newest, or --version V), downloaded and verified as `upgrade` stages it.
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/log.hpp"
#include "leo/installer/install.hpp"

#include <fstream>
#include <iostream>
#include <system_error>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace leo::cli {
namespace stdfs = std::filesystem;

namespace {

/// What ROOT/usr/bin/switch_database.pl names: the program an administrator runs, the
/// launcher (warm_answer.hpp), not the full program this is, PREFIX/libexec/leo-installer/
/// leo-installer, the launcher's private part (the package's own link names the launcher
/// too: rpm/specs/leo-installer.spec). The launcher executed this program with its own
/// argv[0]: the launcher is that path when this program is its ../libexec/leo-installer/
/// leo-installer (a build tree's launcher is not in bin/), else PREFIX/bin/leo-installer
/// when there is one; else this program itself (started some other way).
stdfs::path switch_database_program() {
    std::error_code ec;
    const auto self = stdfs::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    const auto dir = self.parent_path();
    if (dir.filename() != "leo-installer" || dir.parent_path().filename() != "libexec") return self;
    const auto launches_us = [&self](const stdfs::path& launcher) {
        std::error_code e;
        const auto real = stdfs::canonical(launcher, e);  // not-under-root: the host's own program
        if (e || ::access(real.c_str(), X_OK) != 0) return stdfs::path();
        const auto program = real.parent_path().parent_path() / "libexec" / "leo-installer" / real.filename();
        return stdfs::equivalent(program, self, e) && !e ? real : stdfs::path();
    };
    std::string argv0;
    std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);  // not-under-root: this process's own /proc
    std::getline(cmdline, argv0, '\0');
    if (argv0.find('/') != std::string::npos)
        if (auto p = launches_us(stdfs::absolute(argv0, ec)); !p.empty()) return p;
    if (auto p = launches_us(dir.parent_path().parent_path() / "bin" / self.filename()); !p.empty()) return p;
    return self;
}

class InstallCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        add_assumeyes(sub);
        m_repos.add(sub);
        auto* rpm_opt = sub.add_option("--rpm", m_pkg.rpm, "Install this local package file")->option_text("FILE");
        m_pkg.version_opt = sub.add_option("--version", m_pkg.version,
                                       "Install this version from the repositories (V, V-R, E:V-R or a NEVRA; "
                                       "default: the newest)")
                            ->option_text("V")
                            ->excludes(rpm_opt);
        rpm_opt->excludes(sub.get_option("--repo"))->excludes(sub.get_option("--repofrompath"));
        sub.add_option("package", m_pkg.positional,
                       "Install this local FILE.rpm, or leostream-broker[-VERSION] from the repositories (as dnf takes "
                       "it; the same as --rpm FILE or --version V)")
            ->option_text("FILE.rpm|NAME");
        sub.add_option("--gpgkey", m_keys, "Armored public key to verify with (repeatable)")->option_text("FILE");
        sub.add_flag("--nogpgcheck", m_nogpgcheck, "Do not require a valid signature (warns)");
        sub.add_option("--skip", m_skips, "Skip preflight check ID (needs --reason)")->option_text("ID");
        sub.add_option("--reason", m_reasons, "Why the preceding --skip is safe")->option_text("TEXT");
    }
    int run() override {
        installer::InstallRequest req;
        req.root = root();
        m_pkg.take_positional(m_repos);
        req.package_file = m_pkg.rpm;
        if (m_pkg.version_opt->count() > 0 || m_pkg.version_given) req.version = m_pkg.version;
        req.repos = m_repos.selection();
        req.gpgkeys.assign(m_keys.begin(), m_keys.end());
        req.gpgcheck = m_nogpgcheck ? installer::GpgCheck::no : installer::GpgCheck::yes;
        req.skips = skip_map(m_skips, m_reasons);
        req.switch_database_program = switch_database_program();
        open_log(req.root);
        if (m_pkg.rpm.empty())
            log::info("install from the repositories{} --root {}", m_pkg.version.empty() ? "" : " --version " + m_pkg.version,
                      req.root.string());
        else
            log::info("install --rpm {} --root {}", m_pkg.rpm, req.root.string());

        installer::InstallCallbacks cb;
        cb.on_step = [](const std::string& s) { std::cout << "==> " << s << "\n" << std::flush; };
        cb.on_warning = [](const std::string& s) { std::cerr << k_prog << ": warning: " << s << "\n"; };
        cb.on_preflight = print_problems;
        cb.confirm = [this](const std::string& q) { return ask(q); };
        cb.on_progress = progress_bar("install");
        cb.on_download = progress_bar("download");
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
            for (const auto& m : outcome.migrations_applied) std::cout << "  applied " << m << "\n";
            break;
        }
        log::info("install finished: {}", nevra);
        return 0;
    }

private:
    RepoOptions m_repos;
    PackageChoice m_pkg;
    std::vector<std::string> m_keys;
    std::vector<std::string> m_skips;
    std::vector<std::string> m_reasons;
    bool m_nogpgcheck = false;
};

} // namespace

std::unique_ptr<Command> make_install_command() { return std::make_unique<InstallCommand>(); }

} // namespace leo::cli
