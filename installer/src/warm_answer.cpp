// check-update's warm answer (warm_answer.hpp): kept by the full program, given again by the launcher.
//
// This file is linked into the launcher: it may use only what the launcher loads (OpenSSL's
// libcrypto, libc++ and the header-only nlohmann-json) and the parts of our libraries that
// need nothing more (SystemRoot, crypto digests, URL rules). libcurl is the GET module's
// (warm_get.hpp), loaded only when a GET is needed.
#include "leo/installer/warm_answer.hpp"

#include "warm_get.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/system_root.hpp"
#include "leo/repo/cache.hpp"
#include "leo/repo/url.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <future>
#include <map>
#include <set>
#include <string_view>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ;

namespace leo::installer::warm {
namespace stdfs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int k_format = 2;  // 2: inputs carry the digest of the bytes read and names listed
constexpr std::string_view k_user_answers = "/answers";
constexpr std::size_t k_answer_limit = std::size_t{4} << 20;  // a kept answer is a few KiB

/// Variables of the terminal and the login session: they change between shells and never
/// change an answer (nothing here or in libcurl, OpenSSL or librpm reads them).
constexpr std::array<std::string_view, 26> k_environment_ignored = {
    "_",           "PWD",          "OLDPWD",       "SHLVL",         "TERM",           "COLORTERM",
    "COLUMNS",     "LINES",        "LS_COLORS",    "PS1",           "PS2",            "PROMPT_COMMAND",
    "HISTSIZE",    "HISTFILESIZE", "HISTCONTROL",  "MAIL",          "DISPLAY",        "SSH_CLIENT",
    "SSH_CONNECTION", "SSH_TTY",   "SSH_AUTH_SOCK", "TMUX",         "TMUX_PANE",      "STY",
    "XDG_SESSION_ID", "INVOCATION_ID"};

bool ignored(std::string_view name) {
    return std::find(k_environment_ignored.begin(), k_environment_ignored.end(), name) !=
               k_environment_ignored.end() ||
           name.starts_with("SUDO_") || name.starts_with("TERM_") || name.starts_with("XDG_RUNTIME");
}

/// The identity of a host file outside any root (the full program), as fs::file_identity.
std::string host_identity(const stdfs::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "absent";  // not-under-root: the program's own file
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" +
           std::to_string(st.st_ctim.tv_sec) + "." + std::to_string(st.st_ctim.tv_nsec);
}

std::string working_directory() {
    std::error_code ec;
    const auto cwd = stdfs::current_path(ec);
    return ec ? std::string() : cwd.string();
}

/// Where the answers of this user for `root` are: (the root of a SystemRoot, the directory in it).
std::optional<std::pair<stdfs::path, stdfs::path>> place_of(const stdfs::path& root) {
    if (::geteuid() == 0) return std::make_pair(root, stdfs::path(repo::k_answer_cache));
    auto dir = user_cache_dir(root);
    if (!dir) return std::nullopt;
    return std::make_pair(*dir, stdfs::path(k_user_answers));
}

/// The file name of the answer of this command line in this environment (`environment`:
/// environment_digest()): each has its own, so that a monitoring agent and a shell running the
/// same command do not take turns replacing one answer.
std::string answer_name(const std::vector<std::string>& args, const std::string& cwd, const std::string& environment) {
    std::string key = std::to_string(::geteuid()) + '\0' + cwd + '\0' + environment;
    for (const auto& a : args) key += '\0' + a;
    return crypto::digest_hex("sha256", key).substr(0, 32) + ".json";
}

std::string policy_name(repo::CachePolicy p) {
    switch (p) {
    case repo::CachePolicy::refresh: return "refresh";
    case repo::CachePolicy::cache_only: return "cache_only";
    case repo::CachePolicy::normal: break;
    }
    return "normal";
}

/// Why the launcher could not give this repository's answer again ("" when it can).
std::string unanswerable(const repo::RepoConfig& r, const repo::Metadata* md) {
    if (md == nullptr) return "repository " + r.id + " was skipped";
    if (!r.mirrorlist.empty() || !r.metalink.empty()) return "repository " + r.id + " uses a mirrorlist or metalink";
    if (r.baseurls.empty()) return "repository " + r.id + " has no baseurl";
    const bool in_url = std::any_of(r.baseurls.begin(), r.baseurls.end(),
                                    [](const std::string& u) { return repo::redact_url(u) != u; }) ||
                        repo::redact_url(r.proxy) != r.proxy || r.proxy.find('@') != std::string::npos;
    if (!r.proxy_username.empty() || !r.proxy_password.empty() || !r.username.empty() || !r.password.empty() || in_url)
        return "repository " + r.id + " uses credentials (never kept)";
    if (!r.sslverify) return "repository " + r.id + " has sslverify=0";
    if (r.repo_gpgcheck)
        for (const auto& k : r.gpgkeys)
            if (!k.starts_with('/') && !k.starts_with("file://"))
                return "repository " + r.id + " has repo_gpgcheck with a key fetched from " + repo::url_scheme(k);
    if (md->repomd_sha256.empty()) return "repository " + r.id + " keeps no entries";
    if (md->stale) return "repository " + r.id + " was answered by its cache: the servers' repomd.xml is older";
    return {};
}

/// SHA-256 (hex) of the file's bytes, "" when it is missing (as AccessRecorder::Access::content).
std::string content_digest(const fs::SystemRoot& sys, const stdfs::path& inside) {
    const auto bytes = sys.try_read(inside);
    return bytes ? crypto::digest_hex("sha256", *bytes) : std::string();
}

/// What identifies the rpmdb of `root` (librpm reads it, not SystemRoot): its directory and
/// each file, as file_identity, except those readers touch (sqlite's -shm, BDB's __db.*
/// regions, the lock files); sqlite's -wal, which every close truncates (a new mtime, the
/// same bytes), by its size when empty (the data is then in rpmdb.sqlite) and else by the
/// SHA-256 of its bytes. "" when it cannot be read.
std::string rpmdb_identity(const fs::SystemRoot& sys) {
    try {
        const stdfs::path dir(fs::SystemRoot::k_rpmdb);
        std::string id = fs::file_identity(sys, dir);
        for (const auto& name : sys.list(dir)) {
            if (name.ends_with("-shm") || name.starts_with("__db") || name == ".rpm.lock" || name == ".dbenv.lock")
                continue;
            id += "\n" + name + " ";
            if (name.ends_with("-wal")) {
                const auto st = sys.stat(dir / name);
                if (st && st->st_size == 0) id += "empty";
                else id += crypto::digest_hex("sha256", sys.read(dir / name, std::size_t{256} << 20));
            } else {
                id += fs::file_identity(sys, dir / name);
            }
        }
        return id;
    } catch (const std::exception&) {
        return {};
    }
}

// ---- the launcher's GET of repomd.xml -----------------------------------------------------------

/// Loads the GET module (warm_get.hpp) and initialises libcurl: its GET, or nullptr when the
/// module is missing, of another version, or libcurl cannot start. The module stays loaded
/// (the launcher ends in _exit or exec).
GetFunction load_get_module(const stdfs::path& module) noexcept {
    void* handle = ::dlopen(module.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) return nullptr;
    const auto init = reinterpret_cast<GetInit>(::dlsym(handle, k_get_init_symbol));
    const auto get = reinterpret_cast<GetFunction>(::dlsym(handle, k_get_symbol));
    if (init == nullptr || get == nullptr || !init()) return nullptr;
    return get;
}

/// The GET module, loaded on a thread of its own from construction (mapping and relocating
/// libcurl's libraries is most of a warm answer's time: it overlaps the checks of the
/// answer's inputs); get() waits for it. The thread is detached: the launcher ends in _exit or
/// exec, which end it too. Without a thread (none can start), get() loads the module itself.
class GetLoader {
public:
    explicit GetLoader(stdfs::path module) : m_module(std::move(module)) {
        std::promise<GetFunction> loaded;
        m_loaded = loaded.get_future();
        try {
            std::thread([module = m_module, loaded = std::move(loaded)]() mutable {
                loaded.set_value(load_get_module(module));
            }).detach();
        } catch (const std::system_error&) {
            // No thread: `loaded` was destroyed with the lambda, get() sees a broken promise.
        }
    }

    GetFunction get() {
        try {
            return m_loaded.get();
        } catch (const std::future_error&) {
            return load_get_module(m_module);
        }
    }

private:
    stdfs::path m_module;
    std::future<GetFunction> m_loaded;
};

/// GetRequest::sink: appends to the std::string `context`.
bool append_body(void* context, const char* data, std::size_t size) {
    try {
        static_cast<std::string*>(context)->append(data, size);
        return true;
    } catch (...) {  // std::bad_alloc: the GET fails, the full program answers
        return false;
    }
}

/// SHA-256 of what `url` serves with the repository's settings, or "" on any failure.
std::string remote_sha256(GetFunction get, const repo::RepoConfig& r, const std::string& url, bool allow_file) {
    const auto protocols = repo::transfer_protocols(url, allow_file);
    if (get == nullptr || !protocols.allowed) return {};
    std::string body;
    GetRequest request{};
    request.size = sizeof request;
    request.url = url.c_str();
    request.protocols = protocols.protocols.c_str();
    request.redirect_protocols = protocols.redirect_protocols.c_str();
    request.protocol_mask = protocols.protocol_mask;
    request.redirect_mask = protocols.redirect_mask;
    request.timeout = r.timeout;
    request.minrate = r.minrate;
    request.proxy = r.proxy.c_str();
    request.no_proxy = r.no_proxy ? 1 : 0;
    request.sslcacert = r.sslcacert.c_str();
    request.sslclientcert = r.sslclientcert.c_str();
    request.sslclientkey = r.sslclientkey.c_str();
    request.limit = repo::k_repomd_limit;
    request.sink = &append_body;
    request.context = &body;
    if (!get(&request)) return {};
    return crypto::digest_hex("sha256", body);
}

json repo_json(const repo::RepoConfig& r, const repo::Metadata& md) {
    return {{"id", r.id},
            {"url", repo::join_url(r.baseurls.front(), "repodata/repomd.xml")},
            {"allow_file", repo::url_scheme(r.baseurls.front()) == "file"},
            {"repomd_sha256", md.repomd_sha256},
            {"fetched", md.fetched},
            {"metadata_expire", repo::is_local(r) ? std::int64_t{0} : r.metadata_expire},  // read in place each time
            {"timeout", r.timeout},
            {"minrate", r.minrate},
            {"proxy", r.proxy},
            {"no_proxy", r.no_proxy},
            {"sslcacert", r.sslcacert},
            {"sslclientcert", r.sslclientcert},
            {"sslclientkey", r.sslclientkey},
            {"repo_gpgcheck", r.repo_gpgcheck}};
}

repo::RepoConfig repo_of(const json& j) {
    repo::RepoConfig r;
    r.id = j.at("id").get<std::string>();
    r.timeout = j.at("timeout").get<long>();
    r.minrate = j.at("minrate").get<std::uint64_t>();
    r.proxy = j.at("proxy").get<std::string>();
    r.no_proxy = j.at("no_proxy").get<bool>();
    r.sslcacert = j.at("sslcacert").get<std::string>();
    r.sslclientcert = j.at("sslclientcert").get<std::string>();
    r.sslclientkey = j.at("sslclientkey").get<std::string>();
    return r;
}

/// Would the full program ask this repository for repomd.xml again? (repo's CachePolicy and
/// metadata_expire, as load_metadata decides: a fetch time in the future does not count.)
bool must_ask(const std::string& policy, std::int64_t fetched, std::int64_t expire, std::int64_t now) {
    if (policy == "cache_only") return false;
    if (policy == "refresh") return true;
    if (fetched > now + 60) return true;
    if (expire < 0) return false;
    return now - fetched >= expire;
}

/// Writes all of `text` to `fd`: 0, or the errno of the write that failed.
int write_all(int fd, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? errno : EIO;
        done += static_cast<std::size_t>(n);
    }
    return 0;
}

} // namespace

std::optional<stdfs::path> user_cache_dir(const stdfs::path& root) {
    stdfs::path base;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/') base = xdg;
    else if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/' && std::string_view(home) != "/")
        base = stdfs::path(home) / ".cache";
    else return std::nullopt;
    return base / "leo-installer" /
           crypto::digest_hex("sha256", stdfs::absolute(root).lexically_normal().string()).substr(0, 16);
}

std::string environment_digest() {
    std::vector<std::string> vars;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        const std::string_view v(*e);
        if (!ignored(v.substr(0, v.find('=')))) vars.emplace_back(v);
    }
    std::sort(vars.begin(), vars.end());
    std::string all;
    for (const auto& v : vars) all += v + '\0';
    return crypto::digest_hex("sha256", all);
}

// ---- the full program's half ---------------------------------------------------------------------

struct AnswerMaker::State {
    std::optional<fs::AccessRecorder> recorder;
    std::vector<std::string> args;
    stdfs::path root;
    repo::CachePolicy policy;
    json repos = json::array();
    std::string not_answerable;
    std::string rpmdb;  ///< rpmdb_identity() before the run
};

AnswerMaker::AnswerMaker(std::vector<std::string> args, const stdfs::path& root, repo::CachePolicy policy)
    : m_state(std::make_unique<State>()) {
    m_state->args = std::move(args);
    m_state->root = fs::SystemRoot(root).path();
    m_state->policy = policy;
    m_state->rpmdb = rpmdb_identity(fs::SystemRoot(m_state->root));  // before the run reads it
    m_state->recorder.emplace();
}

AnswerMaker::~AnswerMaker() = default;

void AnswerMaker::repo_loaded(const repo::RepoConfig& r, const repo::Metadata* md) {
    if (!m_state->not_answerable.empty()) return;
    m_state->not_answerable = unanswerable(r, md);
    if (m_state->not_answerable.empty()) m_state->repos.push_back(repo_json(r, *md));
}

std::string AnswerMaker::keep(const std::string& out, const std::string& err, int exit_code) noexcept {
    try {
        State& s = *m_state;
        if (!s.recorder) return "already kept";
        auto accesses = s.recorder->accesses();
        s.recorder.reset();  // what keeping writes is not an input
        if (!s.not_answerable.empty()) return s.not_answerable;
        if (s.repos.empty()) return "no repository was read";
        if (s.rpmdb.empty() || rpmdb_identity(fs::SystemRoot(s.root)) != s.rpmdb)
            return "the rpmdb changed while the run read it, or cannot be read";
        json inputs = json::array();
        std::map<stdfs::path, fs::SystemRoot> roots;
        for (const auto& a : accesses) {
            if (a.output) continue;
            const auto& sys = roots.try_emplace(a.root, a.root).first->second;
            const std::string shown = sys.host(a.inside).string();
            const std::string now = fs::file_identity(sys, a.inside);
            if (now == "unreadable" || a.first == "unreadable") return "an input cannot be identified: " + shown;
            if (!a.written && (a.unsteady || now != a.first))
                return "an input changed while the run read it: " + shown;
            // What the run read, by its bytes (a rewrite within one tick of the clock keeps the
            // times); what it wrote after reading, by the bytes it left.
            std::string content = a.content;
            std::string names = a.names;
            if (!content.empty() && a.written) content = content_digest(sys, a.inside);
            if (!names.empty() && a.written) names = fs::names_digest(sys.list(a.inside));
            if ((!content.empty() && content_digest(sys, a.inside) != content) ||
                (!names.empty() && fs::names_digest(sys.list(a.inside)) != names))
                return "an input changed while the run read it: " + shown;
            inputs.push_back(json::array({a.root.string(), a.inside.string(), now, content, names}));
        }
        std::error_code ec;
        const auto program = stdfs::read_symlink("/proc/self/exe", ec);
        if (ec) return "the program's own file is unknown";
        const std::string cwd = working_directory();
        if (cwd.empty()) return "the working directory is unknown";
        const std::string environment = environment_digest();
        const json answer{{"format", k_format},
                          {"args", s.args},
                          {"cwd", cwd},
                          {"euid", ::geteuid()},
                          {"root", s.root.string()},
                          {"environment", environment},
                          {"program", host_identity(program)},
                          {"policy", policy_name(s.policy)},
                          {"rpmdb", s.rpmdb},
                          {"inputs", inputs},
                          {"repos", s.repos},
                          {"out", out},
                          {"err", err},
                          {"exit", exit_code}};
        const auto place = place_of(s.root);
        if (!place) return "no cache directory for this user (HOME and XDG_CACHE_HOME unset)";
        const fs::SystemRoot sys(place->first);
        sys.make_dirs(place->second, 0700, std::nullopt, fs::ExistingDir::enforce);
        const std::string name = answer_name(s.args, cwd, environment);
        sys.write_atomic(place->second / name, answer.dump() + "\n", 0600);
        // At most k_max_answers: the oldest others go.
        std::vector<std::pair<std::int64_t, std::string>> kept;
        for (const auto& n : sys.list(place->second)) {
            if (n == name) continue;
            if (const auto st = sys.lstat(place->second / n)) kept.emplace_back(st->st_mtim.tv_sec, n);
        }
        std::sort(kept.begin(), kept.end());
        for (std::size_t i = 0; i + k_max_answers < kept.size() + 1; ++i) sys.remove(place->second / kept[i].second);
        return {};
    } catch (const std::exception& e) {
        return std::string("cannot keep the answer: ") + e.what();
    }
}

// ---- the launcher's half ---------------------------------------------------------------------------

std::optional<int> answer(int argc, char** argv, const stdfs::path& program) noexcept {
    try {
        if (argc < 2) return std::nullopt;
        std::vector<std::string> args{stdfs::path(argv[0]).filename().string()};
        args.insert(args.end(), argv + 1, argv + argc);
        if (std::find(args.begin() + 1, args.end(), "check-update") == args.end()) return std::nullopt;
        // --root as CLI11 reads it (--root DIR, --root=DIR); the kept answer must name the same.
        stdfs::path root = "/";
        for (std::size_t i = 1; i < args.size(); ++i) {
            if (args[i] == "--") break;
            if (args[i] == "--root" && i + 1 < args.size()) root = args[i + 1];
            else if (args[i].starts_with("--root=")) root = args[i].substr(7);
        }
        root = fs::SystemRoot(root).path();  // absolute and normal, no trailing "/", as the full program's
        const std::string cwd = working_directory();
        const auto place = place_of(root);
        if (cwd.empty() || !place) return std::nullopt;
        const fs::SystemRoot sys(place->first);
        // Only a directory of this user's that nobody else may write (the full program's
        // rule for another user's cache: update_check.cpp), and the same for the answers in it.
        const auto ours = [](const std::optional<struct stat>& d) {
            return d && S_ISDIR(d->st_mode) && fs::owned_privately(*d);
        };
        if (::geteuid() != 0) {
            struct stat parent {};
            struct stat dir {};
            if (::lstat(place->first.parent_path().c_str(), &parent) != 0 || !ours(parent) ||  // not-under-root: the user's own cache
                ::lstat(place->first.c_str(), &dir) != 0 || !ours(dir))  // not-under-root: the user's own cache
                return std::nullopt;
        }
        if (!ours(sys.lstat(place->second))) return std::nullopt;
        const std::string environment = environment_digest();
        const stdfs::path file = place->second / answer_name(args, cwd, environment);
        const auto st = sys.lstat(file);
        if (!st || !S_ISREG(st->st_mode) || !fs::owned_privately(*st))
            return std::nullopt;
        const auto text = sys.try_read(file, k_answer_limit);
        if (!text) return std::nullopt;
        const json a = json::parse(*text, nullptr, false);
        if (a.is_discarded() || !a.is_object() || a.value("format", 0) != k_format) return std::nullopt;
        // The repositories the full program would ask for repomd.xml again; the GET module
        // starts loading now, while the inputs are checked.
        const std::string policy = a.at("policy").get<std::string>();
        const auto now = static_cast<std::int64_t>(std::time(nullptr));
        std::vector<const json*> asked;
        for (const auto& r : a.at("repos")) {
            if (!must_ask(policy, r.at("fetched").get<std::int64_t>(), r.at("metadata_expire").get<std::int64_t>(),
                          now))
                continue;
            // With repo_gpgcheck the full program fetches repomd.xml.asc again too and verifies
            // it (OpenPGP, librpm: not in the launcher): a signature that went bad or that a
            // key no longer trusted made is its error, even over the same repomd.xml.
            if (r.value("repo_gpgcheck", true)) return std::nullopt;
            asked.push_back(&r);
        }
        std::optional<GetLoader> loader;
        if (!asked.empty()) loader.emplace(program.parent_path() / k_get_module);
        if (a.at("args") != json(args) || a.at("cwd") != cwd || a.at("euid") != ::geteuid() ||
            a.at("root") != root.string() || a.at("environment") != environment ||
            a.at("program") != host_identity(program) || a.at("rpmdb") != rpmdb_identity(fs::SystemRoot(root)))
            return std::nullopt;
        std::map<stdfs::path, fs::SystemRoot> roots;
        for (const auto& in : a.at("inputs")) {
            const stdfs::path r = in.at(0).get<std::string>();
            const auto& s = roots.try_emplace(r, r).first->second;
            const stdfs::path inside = in.at(1).get<std::string>();
            if (fs::file_identity(s, inside) != in.at(2).get<std::string>()) return std::nullopt;
            const auto content = in.at(3).get<std::string>();
            const auto names = in.at(4).get<std::string>();
            if (!content.empty() && content_digest(s, inside) != content) return std::nullopt;
            if (!names.empty() && fs::names_digest(s.list(inside)) != names) return std::nullopt;
        }
        const GetFunction get = loader ? loader->get() : nullptr;
        for (const json* r : asked) {
            if (remote_sha256(get, repo_of(*r), r->at("url").get<std::string>(), r->at("allow_file").get<bool>()) !=
                r->at("repomd_sha256").get<std::string>())
                return std::nullopt;
        }
        // Every field is read before anything is written: an answer that fails to parse
        // half-way must not leave its text on the terminal before the full program's own.
        const auto err = a.at("err").get<std::string>();
        const auto out = a.at("out").get<std::string>();
        const int code = a.at("exit").get<int>();
        if (code != 0 && code != 100) return std::nullopt;  // only check-update's two answers are kept
        (void)write_all(STDERR_FILENO, err);
        // As the full program (cli.cpp, output_written): an answer that cannot be written is
        // an error, a closed pipe is not.
        if (const int e = write_all(STDOUT_FILENO, out); e != 0 && e != EPIPE) {
            (void)write_all(STDERR_FILENO, std::string("leo-installer: error: cannot write the output: ") +
                                               std::strerror(e) + "\n");
            return 1;
        }
        return code;
    } catch (...) {
        return std::nullopt;
    }
}

} // namespace leo::installer::warm
