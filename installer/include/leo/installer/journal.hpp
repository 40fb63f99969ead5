#pragma once
/// The run journal (ROOT/var/lib/leo-installer/journal): an append-only file of JSON
/// lines, each written and fsynced before the step it announces starts and after it ends,
/// so that `recover` knows after a crash, a power loss or a kill how far a run got.
///
/// Records (format version 1, every record carries "v":1, the run id and its UTC "time"):
///   {"type":"begin","command":"upgrade","from":NEVRA,"to":NEVRA,"time":...,
///    "uid":0,"user":"alice","cmdline":"leo-installer upgrade -y"}
///   {"type":"step","step":NAME,"state":"start"|"done","data":{...}}
///   {"type":"end","outcome":"ok"|"rolled-back"|"recovered-forward"|"recovered-back"|"abandoned"|"given-up"}
/// A run is unfinished while its "begin" has no "end". A journal line of another format
/// version is refused. "uid", "user" and "cmdline" were added within version 1 (optional
/// fields: journals written before them read as they are, with the user unknown), for
/// `history` (dnf history's "User" is the login uid, so `sudo` names the administrator
/// who ran it: /proc/self/loginuid when set, the real uid otherwise).

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "leo/common/signals.hpp"

namespace leo::installer {

inline constexpr int k_journal_format_version = 1;

/// What the journal says about the last run.
struct RunRecord {
    std::string id;
    std::string command;
    std::string from;       ///< NEVRA before
    std::string to;         ///< NEVRA aimed at
    std::vector<std::string> started;  ///< steps started, in order
    std::map<std::string, nlohmann::json> done;  ///< step -> data, for steps that ended
    std::optional<std::string> outcome;           ///< set when the run ended
    std::string started_at;                       ///< UTC time of "begin" (ISO 8601, Z)
    std::string ended_at;                         ///< UTC time of "end" ("" while unfinished)
    std::optional<long long> uid;                 ///< login uid of who started it (unknown in old journals)
    std::string user;                             ///< that uid's name then ("" when unknown)
    std::string command_line;                     ///< argv as given, secrets redacted ("" when unknown)
    [[nodiscard]] bool finished() const { return outcome.has_value(); }
    [[nodiscard]] bool is_done(const std::string& step) const { return done.count(step) != 0; }
};

/// The last run recorded in journal `text` (what Journal::last_run reads); `file` names it
/// in errors. Throws leo::InstallError as last_run does.
[[nodiscard]] std::optional<RunRecord> parse_journal(const std::string& text, const std::string& file);

/// Every run recorded in journal `text`, oldest first (what `history` lists: its number
/// is the index + 1, as dnf history numbers transactions). Records of a run that come after
/// a later run began (recover ending a crashed run) belong to that run. Throws
/// leo::InstallError as parse_journal does.
[[nodiscard]] std::vector<RunRecord> parse_journal_runs(const std::string& text, const std::string& file);

/// The command line the journal records in each "begin" of this process (the CLI sets it
/// once, from argv, with secrets already redacted); "" when never set.
void set_journal_command_line(std::string command_line);

class Journal {
public:
    explicit Journal(std::filesystem::path root);

    /// The last run recorded, if any. Throws leo::InstallError for a journal that cannot
    /// be read or has another format version (a torn last line, from a crash while
    /// writing it, is ignored).
    [[nodiscard]] std::optional<RunRecord> last_run() const;

    /// Every run, oldest first (parse_journal_runs); empty when there is no journal.
    /// Throws as last_run does.
    [[nodiscard]] std::vector<RunRecord> runs() const;

    /// Start a run: returns its id. From here to end() the process is in a critical
    /// section (signals::Deferred): a signal is recorded, and the run checks for it at
    /// its step boundaries (signals::check()) to undo itself.
    std::string begin(const std::string& command, const std::string& from, const std::string& to);
    void step_start(const std::string& run, const std::string& step);
    void step_done(const std::string& run, const std::string& step, const nlohmann::json& data = nlohmann::json::object());
    /// Record the outcome. Signals stay deferred until the process exits
    /// (signals::defer_until_exit): the run still has to report what it did.
    void end(const std::string& run, const std::string& outcome);

    /// Throw leo::RefusedError when the last run is unfinished ("run `leo-installer recover`").
    void refuse_if_unfinished() const;

    [[nodiscard]] const std::filesystem::path& file() const { return m_file; }

private:
    void append(nlohmann::json record);
    std::filesystem::path m_root;
    std::filesystem::path m_file;
    std::optional<signals::Deferred> m_deferred;
};

} // namespace leo::installer
