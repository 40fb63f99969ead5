// leo-installer support-bundle: collect the logs and state support asks for, redact, write the ZIP.
#include "leo/common/clock.hpp"
#include "leo/installer/support_bundle.hpp"

#include "support_bundle_zip.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/error.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/config.hpp"
#include "leo/installer/database_config.hpp"
#include "leo/installer/logs.hpp"
#include "leo/installer/paths.hpp"
#include "leo/installer/restore_point.hpp"
#include "leo/installer/services.hpp"
#include "leo/installer/status.hpp"
#include "leo/installer/trust.hpp"
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"
#include "leo/preflight/checks.hpp"
#include "leo/preflight/facts.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <functional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

std::string utc(std::chrono::system_clock::time_point t, const char* format) {
    return clock::utc_time(static_cast<std::int64_t>(std::chrono::system_clock::to_time_t(t)), format);
}

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
    return buf;
}

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The components' environment (the units' EnvironmentFile): PGPASSWORD-like settings.
constexpr const char* k_broker_env = "/etc/leostream/broker.env";

/// Files that hold keys themselves: never read into a bundle.
bool key_file(const std::string& name) {
    return name == "database.key" || ends_with(name, ".key") || ends_with(name, ".p12") || ends_with(name, ".pfx") ||
           ends_with(name, ".jks") || ends_with(name, ".keytab");
}

/// What the bundle collects, entry by entry; every text redacted on the way in.
class Collector {
public:
    Collector(const stdfs::path& root, RedactionRules rules, std::uint64_t log_tail, detail::ZipWriter& zip)
        : m_root(root), m_sr(root), m_rules(std::move(rules)), m_log_tail(log_tail), m_zip(zip) {}

    /// Redact `text` and write it into the ZIP at once: one entry in memory at a time.
    void add(const std::string& name, const std::string& source, const std::string& text, std::string note = {}) {
        const std::string redacted = redact_text(text, m_rules);
        m_zip.add(name, redacted);
        m_entries.push_back({name, source, redacted.size(), std::move(note)});
    }
    void omit(const std::string& what, const std::string& why) { m_omitted.push_back({what, why}); }

    /// Run `collect`; an error it throws becomes an omission of `what`.
    void attempt(const std::string& what, const std::function<void()>& collect) {
        try {
            collect();
        } catch (const std::exception& e) {
            omit(what, describe(e));
        }
    }

    void logs() {
        std::vector<LogFile> logs;
        attempt("the broker's log directory " + std::string(k_broker_logs_dir),
                [&] { logs = list_logs(m_sr); });
        if (logs.empty()) {
            // list_logs() failed on the directory: the fixed logs one by one still.
            for (const char* n : {"installer", "database"}) attempt("log " + std::string(n), [&] {
                auto l = find_log(m_sr, n);
                logs.push_back(std::move(l));
            });
        }
        for (const auto& log : logs) {
            const std::string what = fmt::format("log {} ({})", log.name, log.path);
            if (!log.problem.empty()) {
                omit(what, log.problem);
                continue;
            }
            if (!log.exists) {
                omit(what, "it does not exist");
                continue;
            }
            if (m_log_bytes >= k_bundle_log_budget) {
                omit(what, fmt::format("the bundle's logs already hold {} bytes (at most {})", m_log_bytes,
                                       k_bundle_log_budget));
                continue;
            }
            attempt(what, [&] {
                const auto tail = read_tail(m_sr, log.path, m_log_tail);
                m_log_bytes += tail.text.size();
                std::string note;
                std::string text = tail.text;
                if (tail.skipped > 0) {
                    note = fmt::format("cut: the last {} of {} bytes (the first {} left out)", tail.text.size(),
                                       tail.size, tail.skipped);
                    text = fmt::format("[leo-installer support-bundle: {}]\n", note) + text;
                }
                add("logs/" + log.name + ".log", log.path, text, note);
            });
        }
    }

    /// A file under the root as config/PATH (skipped quietly when missing).
    void config_file(const std::string& inside) {
        const std::string name = stdfs::path(inside).filename().string();
        if (key_file(name)) {
            omit(inside, "a key file: never collected");
            return;
        }
        // try_read follows a link only where root alone can write (SystemRoot); one planted
        // by another account is refused, and named in the MANIFEST.
        attempt(inside, [&] {
            if (auto text = m_sr.try_read(inside, k_bundle_file_limit)) add("config" + inside, inside, *text);
        });
    }

    void config_dir(const std::string& dir, std::string_view suffix) {
        std::vector<std::string> names;
        attempt(dir, [&] { names = m_sr.list(dir); });
        for (const auto& n : names) {
            if (!suffix.empty() && !ends_with(n, suffix)) continue;
            const std::string inside = dir + "/" + n;
            std::optional<struct stat> st;
            attempt(inside, [&] { st = m_sr.lstat(inside); });
            if (st && S_ISDIR(st->st_mode)) continue;
            config_file(inside);
        }
    }

    void rpm_output(const std::string& name, const std::vector<std::string>& args, const std::string& shown) {
        attempt(shown, [&] {
            if (const auto why = fs::untrusted_path_reason("/usr/bin/rpm")) throw Error("not run: " + *why);
            std::vector<std::string> argv{"/usr/bin/rpm", "--root", m_root.string(), "--dbpath", "/var/lib/rpm"};
            argv.insert(argv.end(), args.begin(), args.end());
            subprocess::Options o;
            o.clean_env = true;
            o.env["PATH"] = k_safe_path;
            o.env["LC_ALL"] = "C";
            o.timeout = std::chrono::seconds(120);
            const auto r = subprocess::run(argv, o);
            // rpm -V exits 1 when a file differs: its output is the answer, not a failure.
            std::string text = r.out;
            if (!r.err.empty()) text += "\n[stderr]\n" + r.err;
            text += fmt::format("\n[{}: exit status {}]\n", subprocess::command_line(argv), r.exit_code);
            add(name, shown, text);
        });
    }

    void schema_history() {
        attempt("the database's schema history", [&] {
            std::string conninfo;
            const auto config = load_database_config(m_root);
            if (config.mode == DatabaseMode::external) {
                conninfo = external_conninfo(config);
            } else {
                const migrations::InternalDatabase db(m_root);
                if (db.status().state != migrations::DbState::running)
                    throw Error("the internal database is not running (leo-installer db start starts it)");
                conninfo = db.conninfo();
            }
            auto conn = migrations::Connection::open(conninfo);
            const auto state = migrations::read_schema_state(conn);
            nlohmann::json j;
            j["has_history"] = state.has_history;
            j["history_format"] = state.history_format;
            j["schema_version"] = state.schema_version ? nlohmann::json(*state.schema_version) : nlohmann::json();
            j["broker_version"] = state.broker_version ? nlohmann::json(*state.broker_version) : nlohmann::json();
            j["applied"] = nlohmann::json::array();
            for (const auto& a : state.applied)
                j["applied"].push_back({{"version", a.version},
                                        {"description", a.description},
                                        {"script", a.script},
                                        {"checksum", a.checksum},
                                        {"type", a.type},
                                        {"broker_version", a.broker_version},
                                        {"installed_by", a.installed_by},
                                        {"installed_host", a.installed_host}});
            j["failed"] = nlohmann::json::array();
            for (const auto& f : state.failed)
                j["failed"].push_back({{"version", f.version},
                                       {"script", f.script},
                                       {"installed_on", f.installed_on},
                                       {"failure", f.failure}});
            add("schema-history.json", "leo_schema_history", j.dump(2) + "\n");
        });
    }

    void state() {
        bool installed = false;
        attempt("status --json", [&] {
            const auto s = gather_status(m_root);
            installed = !s.installed.empty();
            add("status.json", "leo-installer status --json", to_json(s).dump(2) + "\n");
        });
        std::optional<preflight::HostFacts> facts;
        attempt("facts --json", [&] {
            facts = preflight::gather_facts(m_root);
            add("facts.json", "leo-installer facts --json", preflight::to_json(*facts).dump(2) + "\n");
        });
        if (facts) {
            const auto profile = installed ? preflight::Profile::upgrade : preflight::Profile::install;
            attempt("preflight --json", [&] {
                const auto report = preflight::run_checks(*facts, profile, {});
                add("preflight.json",
                    fmt::format("leo-installer preflight --profile {} --json", installed ? "upgrade" : "install"),
                    preflight::to_json(report).dump(2) + "\n");
            });
        } else {
            omit("preflight --json", "the host facts could not be gathered");
        }
    }

    void journal() {
        const std::string inside(fs::SystemRoot::k_journal);
        attempt("the journal " + inside, [&] {
            if (!m_sr.exists(inside)) {
                omit("the journal " + inside, "no run recorded yet (it does not exist)");
                return;
            }
            const auto tail = read_tail(m_sr, inside, m_log_tail);
            std::string note;
            if (tail.skipped > 0) note = fmt::format("cut: the last {} of {} bytes", tail.text.size(), tail.size);
            add("journal.txt", inside, tail.text, note);
        });
    }

    void restore_points() {
        const std::string dir(fs::SystemRoot::k_snapshots);
        std::vector<std::string> ids;
        attempt("restore points " + dir, [&] { ids = m_sr.list(dir); });
        for (const auto& id : ids) {
            const std::string manifest = dir + "/" + id + "/manifest.json";
            attempt(manifest, [&] {
                if (auto text = m_sr.try_read(manifest, k_bundle_file_limit))
                    add("restore-points/" + id + ".json", manifest, *text);
                else
                    omit(manifest, "no manifest (a restore point left half-written?)");
            });
        }
    }

    [[nodiscard]] const std::vector<BundleEntry>& entries() const { return m_entries; }
    [[nodiscard]] const std::vector<BundleOmission>& omitted() const { return m_omitted; }

private:
    stdfs::path m_root;
    fs::SystemRoot m_sr;
    RedactionRules m_rules;
    std::uint64_t m_log_tail;
    detail::ZipWriter& m_zip;
    std::uint64_t m_log_bytes = 0;  ///< of logs so far, against k_bundle_log_budget
    std::vector<BundleEntry> m_entries;
    std::vector<BundleOmission> m_omitted;
};

std::string manifest_text(const stdfs::path& root, const std::string& host, std::chrono::system_clock::time_point now,
                          const Collector& c, std::uint64_t log_tail) {
    std::string t = fmt::format("leo-installer {} support bundle\nhost: {}\ncreated: {}\nroot: {}\n\n", LEO_VERSION,
                                host, utc(now, "%Y-%m-%dT%H:%M:%SZ"), root.string());
    t += fmt::format("Secrets are redacted (***): passwords, sealed values, private keys, URL credentials, the values "
                     "of secret keys. Logs and the journal keep their last {} bytes.\n\nIncluded:\n",
                     log_tail);
    for (const auto& e : c.entries())
        t += fmt::format("  {:<36} {:>10} bytes  from {}{}\n", e.name, e.bytes, printable(e.source),
                         e.note.empty() ? "" : " (" + e.note + ")");
    t += "\nNot collected:\n";
    if (c.omitted().empty()) t += "  (nothing)\n";
    for (const auto& o : c.omitted()) t += fmt::format("  {}: {}\n", printable(o.what), printable(o.why));
    return t;
}

} // namespace

std::string support_bundle_name(const std::string& host, std::chrono::system_clock::time_point now) {
    std::string h;
    for (const char c : host)
        if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-') h += c;
    if (h.empty() || h.find_first_not_of('.') == std::string::npos) h = "localhost";
    return fmt::format("leostream-support-{}-{}.zip", h, utc(now, "%Y%m%dT%H%M%SZ"));
}

RedactionRules support_bundle_rules(const stdfs::path& root) {
    RedactionRules rules;
    try {
        rules.secret_keys = load_config(root).support_bundle_secret_keys;
    } catch (const std::exception&) {  // the fixed rules still apply
    }
    try {
        const auto config = load_database_config(root);
        if (!config.external.password.empty()) rules.literals.push_back(config.external.password);
    } catch (const std::exception&) {
    }
    return rules;
}

SupportBundle create_support_bundle(const SupportBundleOptions& options) {
    const auto now = options.now.value_or(std::chrono::system_clock::now());
    const std::string host = host_name();
    std::optional<fs::Owner> leo;
    if (!options.output_dir)
        if (const auto user = accounts::find_user(options.root, k_user)) leo = fs::Owner{user->uid, user->gid};
    // The file first: a bad --output is refused before anything is collected.
    auto file = detail::create_bundle_file(options.root, options.output_dir, support_bundle_name(host, now), leo);
    try {
        detail::ZipWriter zip(file.fd.get(), file.host.string(), std::chrono::system_clock::to_time_t(now));
        Collector c(options.root, support_bundle_rules(options.root), options.log_tail_bytes, zip);
        c.logs();
        c.state();
        c.rpm_output("rpm/rpm-qa.txt", {"-qa"}, "rpm -qa");
        c.rpm_output("rpm/rpm-V.txt", {"-V", k_broker_package}, std::string("rpm -V ") + k_broker_package);
        c.journal();
        c.restore_points();
        c.config_file(std::string(fs::SystemRoot::k_installer_conf));
        c.config_file(k_database_conf);
        c.config_file(k_broker_env);
        c.config_dir(std::string(k_home) + "/etc", "");
        c.config_dir(std::string(fs::SystemRoot::k_repos_dir), ".repo");
        c.schema_history();
        // Last, when everything it lists is known.
        zip.add("MANIFEST.txt", redact_text(manifest_text(options.root, host, now, c, options.log_tail_bytes)));
        zip.finish();
        file.complete();
        SupportBundle out;
        out.file = file.host;
        struct stat st {};
        if (::fstat(file.fd.get(), &st) == 0) out.size = static_cast<std::uint64_t>(st.st_size);
        out.entries = c.entries();
        out.omitted = c.omitted();
        return out;
    } catch (...) {
        try {
            (void)file.dir_root->remove(file.inside);
        } catch (const std::exception&) {  // the first error is the one to report
        }
        throw;
    }
}

nlohmann::json to_json(const SupportBundle& b) {
    nlohmann::json j{{"file", b.file.string()}, {"size", b.size}};
    j["entries"] = nlohmann::json::array();
    for (const auto& e : b.entries)
        j["entries"].push_back({{"name", e.name}, {"source", e.source}, {"bytes", e.bytes}, {"note", e.note}});
    j["omitted"] = nlohmann::json::array();
    for (const auto& o : b.omitted) j["omitted"].push_back({{"what", o.what}, {"why", o.why}});
    return j;
}

} // namespace leo::installer
