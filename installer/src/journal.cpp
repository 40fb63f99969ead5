#include "leo/installer/journal.hpp"
#include "leo/installer/hint.hpp"

#include "leo/common/clock.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"
#include "leo/installer/paths.hpp"

#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

Journal::Journal(stdfs::path root) : m_root(std::move(root)), m_file(fs::SystemRoot(m_root).host(fs::SystemRoot::k_journal)) {}

void Journal::append(nlohmann::json record) {
    record["v"] = k_journal_format_version;
    record["time"] = clock::utc_now();
    // Text from outside (a host name, a package summary) may not be UTF-8: replaced, not fatal.
    const std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    const fs::SystemRoot sr(m_root);
    sr.make_dirs(fs::SystemRoot::k_state_dir, 0700, fs::Owner{0, 0});
    int fd = sr.open_append(fs::SystemRoot::k_journal, 0600).release();
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int err = errno;
            ::close(fd);
            throw system_error("cannot write the journal " + m_file.string(), err);
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        throw system_error("cannot fsync the journal " + m_file.string(), err);
    }
    ::close(fd);
}

std::optional<RunRecord> Journal::last_run() const {
    auto all = runs();
    if (all.empty()) return std::nullopt;
    return std::move(all.back());
}

std::vector<RunRecord> Journal::runs() const {
    // The journal of one root grows by a few lines a run; 64 MiB bounds a damaged one.
    auto text = fs::SystemRoot(m_root).try_read(fs::SystemRoot::k_journal, std::size_t{64} << 20);
    if (!text) return {};
    try {
        return parse_journal_runs(*text, m_file.string());
    } catch (const InstallError& e) {
        // What to do, for every command that reads it (status, recover, the refusals).
        throw InstallError(fmt::format(
            "{}; leo-installer cannot tell from it whether a run was interrupted: check the system by hand "
            "({}, `rpm{} -q leostream-broker`; a newer leo-installer's `recover` reads a newer format), then move "
            "the journal aside (`mv {} {}.damaged`) so that the next run starts a new one",
            e.what(), command_hint("status"), root_option(), m_file.string(), m_file.string()));
    }
}

std::vector<RunRecord> parse_journal_runs(const std::string& text, const std::string& file) {
    std::vector<RunRecord> runs;
    std::map<std::string, std::size_t> index;  // run id -> position in runs
    std::istringstream in(text);
    std::string line;
    size_t lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        if (line.empty()) continue;
        nlohmann::json r;
        try {
            r = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception&) {
            // A torn last line from a crash has no newline yet; a complete line that is not
            // JSON is damage, wherever it is.
            if (in.peek() == std::char_traits<char>::eof() && !text.empty() && text.back() != '\n') break;
            throw InstallError(fmt::format("{}:{}: damaged journal line", file, lineno));
        }
        // A line that is JSON but not a record (another shape, a field of another type) is
        // damaged too: what reads the run relies on the shapes Journal writes.
        const auto damaged = [&](const std::string& why) {
            return InstallError(fmt::format("{}:{}: damaged journal line ({})", file, lineno, why));
        };
        if (!r.is_object()) throw damaged(fmt::format("must be an object, not {}", r.type_name()));
        const auto v = r.find("v");
        if (v == r.end() || !v->is_number() || *v != k_journal_format_version)
            throw InstallError(fmt::format("{}:{}: journal format version {} is not supported (this leo-installer "
                                           "reads version {})",
                                           file, lineno, v == r.end() ? "0" : v->dump(), k_journal_format_version));
        const auto field = [&](const char* key) {
            const auto it = r.find(key);
            if (it == r.end()) return std::string();
            if (!it->is_string()) throw damaged(fmt::format("\"{}\" must be a string, not {}", key, it->type_name()));
            return it->get<std::string>();
        };
        const std::string type = field("type");
        if (type == "begin") {
            RunRecord run;
            run.id = field("run");
            run.command = field("command");
            run.from = field("from");
            run.to = field("to");
            run.started_at = field("time");
            run.user = field("user");
            run.command_line = field("cmdline");
            if (const auto uid = r.find("uid"); uid != r.end()) {
                if (!uid->is_number_integer()) throw damaged(fmt::format("\"uid\" must be an integer, not {}", uid->type_name()));
                run.uid = uid->get<long long>();
            }
            index[run.id] = runs.size();
            runs.push_back(std::move(run));
            continue;
        }
        const auto at = index.find(field("run"));
        if (at == index.end()) continue;
        RunRecord& run = runs[at->second];
        if (type == "step") {
            const std::string step = field("step");
            const std::string state = field("state");
            if (step.empty()) throw damaged("a step record without \"step\"");
            if (state != "start" && state != "done")
                throw damaged(fmt::format("step state \"{}\" is neither start nor done", state));
            if (state == "start") {
                run.started.push_back(step);
            } else {
                const auto data = r.find("data");
                if (data != r.end() && !data->is_object())
                    throw damaged(fmt::format("\"data\" must be an object, not {}", data->type_name()));
                run.done[step] = data != r.end() ? *data : nlohmann::json::object();
            }
        } else if (type == "end") {
            run.outcome = field("outcome");
            run.ended_at = field("time");
        }
    }
    return runs;
}

std::optional<RunRecord> parse_journal(const std::string& text, const std::string& file) {
    auto runs = parse_journal_runs(text, file);
    if (runs.empty()) return std::nullopt;
    return std::move(runs.back());
}

namespace {

std::string& journal_command_line() {
    static std::string line;
    return line;
}

/// dnf history's user: the audit login uid (who logged in, through sudo or su), else the real uid.
uid_t login_uid() {
    std::string text;
    if (std::ifstream in("/proc/self/loginuid"); in >> text) {  // not-under-root: the running process's own /proc
        try {
            const unsigned long v = std::stoul(text);
            if (v != 4294967295UL) return static_cast<uid_t>(v);  // (uid_t)-1: not set (no login session)
        } catch (const std::exception&) {
        }
    }
    return ::getuid();
}

std::string user_name(uid_t uid) {
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) return found->pw_name;
    return "";
}

} // namespace

void set_journal_command_line(std::string command_line) { journal_command_line() = std::move(command_line); }

std::string Journal::begin(const std::string& command, const std::string& from, const std::string& to) {
    const std::string id = fmt::format("{}-{}", clock::utc_now(), ::getpid());
    if (!m_deferred) m_deferred.emplace();
    const uid_t uid = login_uid();
    append({{"type", "begin"},
            {"run", id},
            {"command", command},
            {"from", from},
            {"to", to},
            {"uid", static_cast<long long>(uid)},
            {"user", user_name(uid)},
            {"cmdline", journal_command_line()}});
    return id;
}

void Journal::step_start(const std::string& run, const std::string& step) {
    append({{"type", "step"}, {"run", run}, {"step", step}, {"state", "start"}});
}

void Journal::step_done(const std::string& run, const std::string& step, const nlohmann::json& data) {
    append({{"type", "step"}, {"run", run}, {"step", step}, {"state", "done"}, {"data", data}});
}

void Journal::end(const std::string& run, const std::string& outcome) {
    append({{"type", "end"}, {"run", run}, {"outcome", outcome}});
    // Nothing is left to undo, but the run has yet to say what it did: a signal from
    // here on is recorded (the CLI reports it and exits 128+N), never a silent death.
    signals::defer_until_exit("the run has ended and is reporting what it did; nothing will be undone");
    m_deferred.reset();
}

void Journal::refuse_if_unfinished() const {
    auto run = last_run();
    if (run && !run->finished())
        throw RefusedError(fmt::format("an earlier `{}` run ({} -> {}, run {}) did not finish; run `leo-installer "
                                       "recover --root {}` first",
                                       run->command, run->from, run->to, run->id, m_root.string()));
}

} // namespace leo::installer
