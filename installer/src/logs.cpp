// The broker's and the installer's logs: list, read (tail), truncate; all through SystemRoot.
#include "leo/installer/logs.hpp"

#include "leo/common/error.hpp"
#include "leo/common/redact.hpp"
#include "leo/installer/services.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

namespace leo::installer {
namespace {

struct Fixed {
    const char* name;
    const char* file;
    const char* description;
};

constexpr std::array<Fixed, 4> k_fixed{{
    {"broker", "/home/leo/logs/httpd.log", "the broker's web server"},
    {"queue", "/home/leo/logs/queue.log", "the broker's work queue"},
    {"database", k_database_log, "the internal PostgreSQL server"},
    {"installer", k_installer_log, "leo-installer"},
}};

constexpr std::size_t k_block = 64 * 1024;

void describe_file(const fs::SystemRoot& root, LogFile& log) {
    std::optional<struct stat> st;
    try {
        st = root.lstat(log.path);
    } catch (const Error& e) {
        log.problem = describe(e);
        return;
    }
    if (!st) return;
    if (S_ISLNK(st->st_mode)) {
        log.problem = "a symbolic link (never followed)";
    } else if (!S_ISREG(st->st_mode)) {
        log.problem = "not a regular file";
    } else {
        log.exists = true;
    }
    log.size = static_cast<std::uint64_t>(st->st_size);
    log.modified = st->st_mtim.tv_sec;
}

/// pread() all of [offset, offset + length) of `fd` (short at end of file).
std::string read_range(int fd, std::uint64_t offset, std::uint64_t length, const std::string& shown) {
    std::string out(length, '\0');
    std::uint64_t got = 0;
    while (got < length) {
        const ssize_t n = ::pread(fd, out.data() + got, length - got, static_cast<off_t>(offset + got));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw SystemError(fmt::format("cannot read {}: {}", shown, std::strerror(errno)));
        }
        if (n == 0) break;
        got += static_cast<std::uint64_t>(n);
    }
    out.resize(got);
    return out;
}

std::uint64_t size_of(int fd, const std::string& shown) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw SystemError(fmt::format("cannot stat {}: {}", shown, std::strerror(errno)));
    return static_cast<std::uint64_t>(st.st_size);
}

} // namespace

std::vector<LogFile> list_logs(const fs::SystemRoot& root) {
    std::vector<LogFile> out;
    for (const auto& f : k_fixed) {
        LogFile log;
        log.name = f.name;
        log.path = f.file;
        log.description = f.description;
        describe_file(root, log);
        out.push_back(std::move(log));
    }
    for (const auto& entry : root.list(k_broker_logs_dir)) {
        if (entry.size() <= 4 || entry.compare(entry.size() - 4, 4, ".log") != 0) continue;
        const std::string path = std::string(k_broker_logs_dir) + "/" + entry;
        if (std::any_of(out.begin(), out.end(), [&](const LogFile& l) { return l.path == path; })) continue;
        std::string name = entry.substr(0, entry.size() - 4);
        // A file named after a fixed log ("installer.log" in the broker's directory) keeps
        // its file name, so every name says one file.
        if (std::any_of(out.begin(), out.end(), [&](const LogFile& l) { return l.name == name; })) name = entry;
        LogFile log;
        log.name = name;
        log.path = path;
        log.description = "the broker";
        describe_file(root, log);
        out.push_back(std::move(log));
    }
    return out;
}

LogFile find_log(const fs::SystemRoot& root, const std::string& name) {
    auto logs = list_logs(root);
    for (auto& l : logs)
        if (l.name == name) return l;
    std::string names;
    for (const auto& l : logs) names += (names.empty() ? "" : ", ") + l.name;
    throw UsageError(fmt::format("unknown log '{}': the logs are {} (leo-installer log list shows them)",
                                 printable(name), names));
}

LogTail read_tail(const fs::SystemRoot& root, const std::string& inside, std::uint64_t max_bytes) {
    const auto fd = root.open_read(inside);
    const std::string shown = root.host(inside).string();
    LogTail tail;
    tail.size = size_of(fd.get(), shown);
    if (tail.size <= max_bytes) {
        tail.text = read_range(fd.get(), 0, tail.size, shown);
        return tail;
    }
    std::string text = read_range(fd.get(), tail.size - max_bytes, max_bytes, shown);
    // Start at a whole line: drop the partial first one (unless the block has no newline).
    const auto nl = text.find('\n');
    const std::size_t cut = nl == std::string::npos ? 0 : nl + 1;
    tail.skipped = tail.size - max_bytes + cut;
    tail.text = text.substr(cut);
    return tail;
}

std::string read_last_lines(const fs::SystemRoot& root, const std::string& inside, std::size_t lines) {
    const auto fd = root.open_read(inside);
    const std::string shown = root.host(inside).string();
    const std::uint64_t size = size_of(fd.get(), shown);
    if (lines == 0) return {};
    std::string text;
    std::uint64_t start = size;
    while (start > 0) {
        const std::uint64_t from = start > k_block ? start - k_block : 0;
        text.insert(0, read_range(fd.get(), from, start - from, shown));
        start = from;
        // Enough newlines: `lines` lines end in them, plus one before the first of them
        // (a last line without its newline counts too).
        const std::size_t wanted = lines + (text.empty() || text.back() == '\n' ? 1 : 0);
        if (static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) >= wanted) break;
    }
    std::size_t seen = 0;
    std::size_t pos = text.size();
    if (!text.empty() && text.back() == '\n') --pos;
    while (pos > 0) {
        if (text[pos - 1] == '\n' && ++seen == lines) return text.substr(pos);
        --pos;
    }
    return text;
}

void read_all(const fs::SystemRoot& root, const std::string& inside, const std::function<void(std::string_view)>& sink) {
    const auto fd = root.open_read(inside);
    const std::string shown = root.host(inside).string();
    std::string block(k_block, '\0');
    while (true) {
        const ssize_t n = ::read(fd.get(), block.data(), block.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw SystemError(fmt::format("cannot read {}: {}", shown, std::strerror(errno)));
        }
        if (n == 0) return;
        sink(std::string_view(block.data(), static_cast<std::size_t>(n)));
    }
}

std::uint64_t clear_log(const fs::SystemRoot& root, const LogFile& log) {
    const auto st = root.lstat(log.path);
    if (!st) return 0;
    if (S_ISLNK(st->st_mode))
        throw SystemError(fmt::format("refusing to clear {}: it is a symbolic link, and a link in a directory "
                                      "another account can write is never followed (remove the link and run again)",
                                      root.host(log.path).string()));
    // Never created here: a log removed since the lstat above is an error, not a new
    // root-owned empty file.
    const auto fd = root.open_append(log.path, st->st_mode & 07777, fs::WhenMissing::refuse);
    const std::string shown = root.host(log.path).string();
    const std::uint64_t had = size_of(fd.get(), shown);
    if (::ftruncate(fd.get(), 0) != 0)
        throw SystemError(fmt::format("cannot clear {}: {}", shown, std::strerror(errno)));
    return had;
}

} // namespace leo::installer
