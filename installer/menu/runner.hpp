#pragma once
/// Runs the menu's actions (actions.hpp) and reads what the menu shows from their output.

#include "actions.hpp"
#include "tree.hpp"

#include <string>
#include <vector>

namespace leo::menu {

/// What an action did, for the screen that shows it.
struct Outcome {
    std::string command;  ///< the argument vector as one line (what the user would type)
    int exit_code = 0;    ///< -1 when it could not start or was killed
    std::string output;   ///< standard output, then standard error
    std::string out;      ///< standard output alone (a JSON document)
};

/// The external database's connection as the Edit form shows it (no password: it is
/// never read back).
struct Connection {
    std::string username, host, port = "5432", name;
};

class Runner {
public:
    explicit Runner(Invocation how) : m_how(std::move(how)) {}
    /// Run the action `id` (its fixed argument vector), with `input` on standard input for
    /// an action that reads it. Never throws for the child's failure: it is the outcome.
    [[nodiscard]] Outcome run(std::string_view id, const std::string& input = {}) const;
    /// The modes (tree.hpp) from `status --json` and `setting show --json`; what cannot
    /// be read counts as false (the item stays hidden; the command says why when run).
    [[nodiscard]] Modes modes() const;
    /// The log names of `log list --json` that the action table allows (log_names()), in
    /// its order; when it cannot be read, log_names() themselves.
    [[nodiscard]] std::vector<std::string> logs() const;
    /// The external database in use (status --json), for the Edit form; defaults when none.
    [[nodiscard]] Connection connection() const;
    /// The argument vector of `id` as one line, for "Running ..." (no value in it is secret).
    [[nodiscard]] std::string command_line(std::string_view id) const;
    [[nodiscard]] const Invocation& invocation() const { return m_how; }

private:
    Invocation m_how;
};

/// Modes from the two JSON documents (either may be ""); pure, for the unit tests.
/// external: status's database_in_use.mode == "external". ssl: setting show's
/// ssl_certificate.installed (a bool), or ssl_certificate_installed.
[[nodiscard]] Modes parse_modes(const std::string& status_json, const std::string& setting_json);

/// status --json's database_in_use.endpoint ("postgres USER@HOST:PORT/NAME") as a
/// Connection; defaults for what does not parse. Pure.
[[nodiscard]] Connection parse_connection(const std::string& status_json);

/// The JSON object --connection_file reads (db_host, db_name, port, username, password).
[[nodiscard]] std::string connection_json(const Connection& c, const std::string& password);

/// The names of `log list --json` (an array of objects with "name", or of strings, or an
/// object with such an array under "logs"); pure.
[[nodiscard]] std::vector<std::string> parse_log_names(const std::string& list_json);

} // namespace leo::menu
