// leo-installer setting: show or change the broker's administration settings (the manual's
// Administration Menu > Advanced): debug, upgrades, admin-login, rest-api, ssl-certificate, cipher-suite.
#include "command.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/broker_database.hpp"
#include "leo/installer/hint.hpp"
#include "leo/installer/journal.hpp"
#include "leo/installer/lock.hpp"
#include "leo/installer/services.hpp"
#include "leo/installer/settings.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/preflight/checks.hpp"
#include "leo/preflight/facts.hpp"

#include <algorithm>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {

namespace {

/// One `setting` subcommand: its word, the words it takes, and for each the value stored.
struct Action {
    std::string_view word;    ///< "on"
    std::string_view value;   ///< "true" ("" for ssl-certificate uninstall)
};

struct Subcommand {
    std::string_view word;    ///< "debug"
    std::vector<Action> actions;
};

const std::vector<Subcommand>& subcommands() {
    static const std::vector<Subcommand> k_subcommands{
        {"debug", {{"on", "true"}, {"off", "false"}}},
        {"upgrades", {{"enable", "true"}, {"disable", "false"}}},
        {"admin-login", {{"disable", "false"}, {"enable", "true"}}},
        {"rest-api", {{"enable", "true"}, {"disable", "false"}}},
        {"ssl-certificate", {{"uninstall", ""}}},
        {"cipher-suite", {{"default", installer::k_default_cipher_suite}}},
    };
    return k_subcommands;
}

std::string words_of(const Subcommand& s) {
    std::string out;
    for (size_t i = 0; i < s.actions.size(); ++i)
        out += (i == 0 ? "" : i + 1 == s.actions.size() ? " or " : ", ") + std::string(s.actions[i].word);
    return out;
}

/// A boolean as the menu says it: "on"/"off" for debug mode, "enabled"/"disabled" otherwise.
std::string shown(const installer::SettingValue& v) {
    if (v.info->kind == installer::SettingKind::text) return v.value;
    if (!v.enabled) return fmt::format("'{}' (neither true nor false)", printable(v.value));
    if (v.info->name == "debug") return *v.enabled ? "on" : "off";
    return *v.enabled ? "enabled" : "disabled";
}

class SettingCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        add_json(sub);
        add_assumeyes(sub);
        sub.add_option("setting", m_what,
                       "show | debug on|off | upgrades enable|disable | admin-login disable|enable | rest-api "
                       "enable|disable | ssl-certificate uninstall | cipher-suite default")
            ->required();
        sub.add_option("action", m_action, "what to do with the setting (see above)");
        sub.add_option("--facts", m_facts,
                       "rest-api enable: judge a saved `facts --json` output instead of this host")
            ->option_text("FILE");
    }

    int run() override {
        const auto r = root();
        // Every word is checked before anything is read or changed.
        const Subcommand* sub = nullptr;
        const Action* action = nullptr;
        if (m_what == "show") {
            if (!m_action.empty())
                throw UsageError(fmt::format("`setting show` takes no other word (got '{}')", printable(m_action)));
        } else {
            for (const auto& s : subcommands())
                if (s.word == m_what) sub = &s;
            if (sub == nullptr) {
                std::string all = "show";
                for (const auto& s : subcommands()) all += ", " + std::string(s.word);
                throw UsageError(fmt::format("unknown setting '{}': expected one of {}; nothing was changed",
                                             printable(m_what), all));
            }
            for (const auto& a : sub->actions)
                if (a.word == m_action) action = &a;
            if (action == nullptr)
                throw UsageError(fmt::format("`setting {}` takes {}, not {}; nothing was changed", sub->word,
                                             words_of(*sub),
                                             m_action.empty() ? "nothing" : "'" + printable(m_action) + "'"));
        }
        // --facts is read by rest-api enable; rest-api disable takes it (the menu passes its
        // own --facts to both) and does not need it.
        if (!m_facts.empty() && (sub == nullptr || sub->word != "rest-api"))
            throw UsageError("--facts FILE is read by `setting rest-api enable` only");
        if (sub == nullptr) return show(r);

        // Under the run lock: an upgrade reads these settings in its gates and a rollback
        // puts the database back; after an interrupted run, `recover` first.
        std::optional<installer::RunLock> lock;
        if (fs::SystemRoot(r).exists(fs::SystemRoot::k_state_dir))
            lock.emplace(installer::RunLock::acquire(r, "setting " + m_what + " " + m_action));
        installer::Journal(r).refuse_if_unfinished();
        open_log(r);
        log::info("setting {} {} --root {}", m_what, m_action, r.string());
        if (sub->word == "ssl-certificate") return uninstall_certificate(r);
        if (sub->word == "rest-api" && action->word == "enable") require_memory_for_rest_api(r);
        return change(r, *installer::find_setting(sub->word), std::string(action->value));
    }

private:
    static void say(const std::string& line) { std::cout << line << "\n" << std::flush; }

    int show(const std::filesystem::path& r) const {
        const auto target = installer::broker_database_target(r, say);
        auto conn = migrations::Connection::open(target.conninfo);
        const auto values = installer::read_settings(conn);
        const auto cert = installer::ssl_certificate_files(r);
        const bool installed = std::find(cert.begin(), cert.end(), installer::k_ssl_certificate) != cert.end();
        if (json()) {
            nlohmann::json settings = nlohmann::json::object();
            for (const auto& v : values) {
                nlohmann::json one = {{"value", v.value}, {"stored", v.stored}};
                if (v.info->kind == installer::SettingKind::boolean)
                    one["enabled"] = v.enabled ? nlohmann::json(*v.enabled) : nlohmann::json();
                settings[std::string(v.info->name)] = one;
            }
            print_json({{"database", target.endpoint},
                        {"external", target.external},
                        {"settings", settings},
                        {"ssl_certificate", {{"installed", installed}, {"files", cert}}}});
            return 0;
        }
        for (const auto& v : values)
            std::cout << fmt::format("{:<20} {}{}\n", v.info->name, shown(v), v.stored ? "" : " (default: no row)");
        std::cout << fmt::format("{:<20} {}\n", "ssl_certificate",
                                 installed ? "installed (" + fs::SystemRoot(r).host(installer::k_ssl_certificate).string() + ")"
                                           : std::string("not installed (the web server's default certificate)"));
        std::cout << "(settings table of " << target.endpoint << ")\n";
        return 0;
    }

    /// The rest-api preflight profile on this host's facts (or --facts): an inhibitor refuses.
    void require_memory_for_rest_api(const std::filesystem::path& r) const {
        const auto facts = load_facts(m_facts, r);
        const auto report = preflight::run_checks(facts, preflight::Profile::rest_api);
        log::info("setting rest-api enable: {}", preflight::summary_line(report));
        if (!report.inhibited()) return;
        std::string why;
        for (const auto& res : report.results)
            if (res.verdict == preflight::Verdict::inhibitor)
                why += fmt::format("{}{}: {}; {}{}", why.empty() ? "" : "; ", res.id, res.measured, res.required,
                                   res.remediation.empty() ? "" : "; " + res.remediation);
        throw RefusedError(fmt::format("the REST API cannot be enabled on this host: {}; nothing was changed", why));
    }

    int change(const std::filesystem::path& r, const installer::SettingInfo& info, const std::string& value) const {
        const auto target = installer::broker_database_target(r, say);
        auto conn = migrations::Connection::open(target.conninfo);
        installer::SettingValue now;
        for (auto& v : installer::read_settings(conn))
            if (v.info == &info) now = v;
        installer::SettingValue after = now;
        after.value = value;
        after.stored = true;
        if (info.kind == installer::SettingKind::boolean) after.enabled = installer::parse_setting_bool(value);
        const bool same = info.kind == installer::SettingKind::boolean ? now.enabled == after.enabled
                                                                        : now.value == value;
        if (same && now.stored) {
            if (json()) print_json({{"setting", std::string(info.name)}, {"value", now.value}, {"changed", false}});
            else say(fmt::format("{} is already {}: nothing to change", info.title, shown(now)));
            return 0;
        }
        const std::string shared =
            target.external ? fmt::format(" (the external database {} is shared by every broker of its cluster: "
                                          "this changes it for all of them)",
                                          target.endpoint)
                            : std::string();
        if (!ask(fmt::format("Change {} from {} to {}{}?", info.title, shown(now), shown(after), shared)))
            throw RefusedError("setting cancelled: nothing was changed");
        const auto before = installer::write_setting(conn, info, value);
        if (info.name == "cipher_suite") restart_web_server(r, "the cipher suite was reset");
        if (json())
            print_json({{"setting", std::string(info.name)},
                        {"before", before ? nlohmann::json(*before) : nlohmann::json()},
                        {"value", value},
                        {"changed", true}});
        else
            say(fmt::format("{}: {} (settings.{} = '{}')", info.title, shown(after), info.name, value));
        return 0;
    }

    int uninstall_certificate(const std::filesystem::path& r) const {
        const auto files = installer::ssl_certificate_files(r);
        const fs::SystemRoot sr(r);
        if (std::find(files.begin(), files.end(), installer::k_ssl_certificate) == files.end())
            (void)installer::remove_ssl_certificate(r);  // refuses, naming the file
        std::string list;
        for (const auto& f : files) list += (list.empty() ? "" : ", ") + sr.host(f).string();
        if (!ask(fmt::format("Uninstall the SSL certificate ({})? The web server restarts with its default "
                             "certificate.",
                             list)))
            throw RefusedError("setting cancelled: nothing was changed");
        const auto removed = installer::remove_ssl_certificate(r);
        for (const auto& f : removed) say("removed " + sr.host(f).string());
        restart_web_server(r, "the SSL certificate was uninstalled");
        if (json()) print_json({{"ssl_certificate", {{"installed", false}, {"removed", removed}}}});
        return 0;
    }

    /// `service restart httpd` when the web server runs (a stopped one reads the change
    /// when it starts). A failure is an error after the change was made: said so.
    void restart_web_server(const std::filesystem::path& r, const std::string& done) const {
        const auto print = [this](const std::string& line) {
            if (!json()) say(line);
        };
        try {
            const auto manager = installer::service_manager(r);
            const auto st = manager->status(installer::Component::httpd);
            if (st.state != installer::ComponentStatus::State::running) {
                print(fmt::format("{} is not running: it uses the change when it starts",
                                  installer::component_title(installer::Component::httpd)));
                return;
            }
            (void)installer::stop_components(r, *manager, {installer::Component::httpd}, installer::RecordStop::no,
                                             print, print);
            (void)installer::start_components(r, *manager, {installer::Component::httpd}, print, print);
        } catch (const Error&) {
            std::throw_with_nested(InstallError(fmt::format(
                "{}, but restarting the web server failed; restart it with {}", done,
                installer::command_hint("service restart httpd"))));
        }
    }

    std::string m_what;
    std::string m_action;
    std::string m_facts;
};

} // namespace

std::unique_ptr<Command> make_setting_command() { return std::make_unique<SettingCommand>(); }

} // namespace leo::cli
