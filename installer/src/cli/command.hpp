#pragma once
/// What the subcommands share: the Command base class, the helpers more than one command
/// uses (defined in command.cpp), and one factory per command (registered in cli.cpp).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace CLI {
class App;
class Option;
} // namespace CLI

namespace leo::preflight {
struct Report;
struct HostFacts;
} // namespace leo::preflight

namespace leo::installer {
struct RepoSelection;
} // namespace leo::installer

namespace leo::cli {

/// The program name in messages: "leo-installer", or "switch_database.pl" when called
/// by that name (the link in /home/leo/bin; switch_database_main sets it).
extern const char* k_prog;

/// One subcommand: registers its options, then runs (STYLE.md: one unit per command).
class Command {
public:
    virtual ~Command() = default;
    virtual void setup(CLI::App& app) = 0;
    virtual int run() = 0;
    /// Whether this invocation needs root (checked after parsing: exit 4 otherwise).
    /// Only the commands documented as read-only for other users say false.
    [[nodiscard]] virtual bool needs_root() const { return true; }
    /// `--wait SECONDS` for the run lock (0: refuse at once when another run holds it).
    [[nodiscard]] int lock_wait() const { return m_wait; }
    [[nodiscard]] bool json() const { return m_json; }

    /// The options given before the subcommand (`leo-installer --root R -y upgrade`), as dnf
    /// takes its global options anywhere: each must be one this subcommand has, and a value
    /// given in both places must be the same. Throws leo::UsageError otherwise.
    struct Globals {
        std::string root;  ///< "" when not given
        bool json = false;
        bool assumeyes = false;
        bool assumeno = false;
    };
    void apply_globals(const Globals& g, const CLI::App& sub);

protected:
    std::string m_root = "/";
    bool m_json = false;
    bool m_assumeyes = false;
    bool m_assumeno = false;  ///< --assumeno: every question answered no (dnf)
    int m_wait = 0;
    void add_root(CLI::App& sub);
    /// --wait SECONDS, for the commands that take the run lock.
    void add_wait(CLI::App& sub);
    void add_json(CLI::App& sub);
    /// -y/--assumeyes and --assumeno (dnf's pair; they exclude each other).
    void add_assumeyes(CLI::App& sub);
    /// confirm() with this command's -y/--assumeno.
    [[nodiscard]] bool ask(const std::string& question) const;
    [[nodiscard]] std::filesystem::path root() const;
};

void print_json(const nlohmann::json& j);

/// The line (newline included) a warning is shown as on stderr: "leo-installer: warning: TEXT",
/// the text made printable (printable()).
std::string warning_line(const std::string& text);

/// The command line this program was given: the program's name (argv[0]'s file name), then
/// the arguments as given (set by cli::main).
const std::vector<std::string>& program_arguments();

/// log::open_log, and a warning on stderr when the log cannot be written (a FIFO or a
/// link planted there): the run goes on, but never silently without its log.
void open_log(const std::filesystem::path& root);

/// A warning on stderr when installer.conf's [maintenance_window] cannot be read
/// (InstallerConfig::maintenance_window_error): a command that does not use the window goes
/// on, and says that an upgrade refuses until it is fixed. Nothing else: the command reports
/// any other problem of installer.conf itself when it reads it.
void warn_about_maintenance_window(const std::filesystem::path& root);

/// Columns of the terminal on stdout (100 when it is not a terminal).
std::size_t terminal_width();

/// A progress bar on stderr when it is a terminal; nothing (nullptr) on a pipe.
std::function<void(std::uint64_t, std::uint64_t)> progress_bar(const std::string& label);

/// The facts of `root` (preflight::gather_facts), or those of `facts_file` (a saved
/// `facts --json`) when it is not "": what `--facts FILE` does wherever it is taken.
/// Throws leo::UsageError naming --facts FILE when it cannot be read.
preflight::HostFacts load_facts(const std::string& facts_file, const std::filesystem::path& root);

/// The preflight report inside install/upgrade: printed only when something did not pass.
void print_problems(const preflight::Report& rep);

/// Ask on the terminal; refuse when there is none (DESIGN.md: -y or a terminal).
/// `assumeno` (dnf's --assumeno) answers no without asking, and says so after the question
/// on stdout: the caller goes on as for a typed "n" ("... cancelled: nothing was changed").
bool confirm(bool assumeyes, const std::string& question, bool assumeno = false);

/// Pairs of repeated --skip ID and --reason TEXT, in order.
std::map<std::string, std::string> skip_map(const std::vector<std::string>& ids,
                                            const std::vector<std::string>& reasons);

/// The package named as a positional argument, as dnf takes it (`install FILE.rpm`,
/// `install leostream-broker-9.2.0`): a path (it ends in .rpm or has a /) is a local file;
/// "leostream-broker" is the newest in the repositories; "leostream-broker-V[-R][.ARCH]"
/// is that version. Throws leo::UsageError for anything else.
struct PackageArgument {
    std::string file;                    ///< a local package file, or ""
    std::optional<std::string> version;  ///< a version from the repositories (V, V-R, or a NEVRA)
};
[[nodiscard]] PackageArgument package_argument(const std::string& arg);

/// Options shared by the commands that read repositories.
struct RepoOptions {
    std::vector<std::string> ids;
    std::vector<std::string> from_path;
    bool refresh = false;     ///< --refresh: metadata expired now (dnf)
    bool cache_only = false;  ///< -C, --cacheonly: no network at all (dnf)
    void add(CLI::App& sub);
    /// --repo and --repofrompath, and on_warning printing each repository warning on
    /// stderr ("leo-installer: warning: ...") and into the log.
    [[nodiscard]] installer::RepoSelection selection() const;
};

/// The package a command installs, as --rpm FILE, --version V, or positionally (`install
/// FILE.rpm`, `upgrade leostream-broker-9.2.0`: package_argument).
struct PackageChoice {
    std::string rpm;                     ///< --rpm, or the positional file
    std::string version;                 ///< --version, or the positional version
    std::string positional;              ///< the positional spelling, "" when none
    bool version_given = false;          ///< a version was asked for (either spelling)
    CLI::Option* version_opt = nullptr;  ///< --version, to tell it was given
    /// The positional package into `rpm` or `version`, once. Throws leo::UsageError when the
    /// package is given twice, or a local file comes with --repo/--repofrompath.
    void take_positional(const RepoOptions& repos);
};

// One factory per command, each in its own file.
std::unique_ptr<Command> make_facts_command();
std::unique_ptr<Command> make_preflight_command();
std::unique_ptr<Command> make_verify_command();
std::unique_ptr<Command> make_install_command();
std::unique_ptr<Command> make_status_command();
std::unique_ptr<Command> make_db_command();
std::unique_ptr<Command> make_service_command();
std::unique_ptr<Command> make_check_update_command();
std::unique_ptr<Command> make_upgrade_command();
std::unique_ptr<Command> make_rollback_command();
std::unique_ptr<Command> make_migrate_command();
std::unique_ptr<Command> make_recover_command();
std::unique_ptr<Command> make_snapshot_command();
std::unique_ptr<Command> make_switch_database_command();
std::unique_ptr<Command> make_clean_command();
std::unique_ptr<Command> make_history_command();
std::unique_ptr<Command> make_remove_command();
std::unique_ptr<Command> make_hook_command();
std::unique_ptr<Command> make_setting_command();
std::unique_ptr<Command> make_log_command();
std::unique_ptr<Command> make_support_bundle_command();
std::unique_ptr<Command> make_backup_command();

} // namespace leo::cli
