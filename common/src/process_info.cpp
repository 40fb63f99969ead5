// What a live process is, from /proc: state, uids, program, command line, start time.
#include "leo/common/process_info.hpp"

#include "leo/common/redact.hpp"
#include "leo/common/system_root.hpp"

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <filesystem>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

namespace leo::proc {
namespace {

/// A whole /proc file (they report size 0: read to the end), at most 64 KiB.
std::optional<std::string> read_proc_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); // not-under-root: /proc of the live system
    if (fd < 0)
        return std::nullopt;
    fs::UniqueFd guard(fd);
    std::string out;
    std::array<char, 4096> buf{};
    while (out.size() < 65536) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return std::nullopt;
        if (n == 0)
            break;
        out.append(buf.data(), static_cast<size_t>(n));
    }
    return out;
}

template <typename T> std::optional<T> parse_number(std::string_view text) {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end == text.data())
        return std::nullopt;
    return value;
}

std::string_view next_word(std::string_view& text) {
    const auto begin = text.find_first_not_of(" \t");
    if (begin == std::string_view::npos) {
        text = {};
        return {};
    }
    text.remove_prefix(begin);
    const auto end = text.find_first_of(" \t\n");
    const auto word = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end);
    return word;
}

} // namespace

std::optional<StatFields> parse_stat(std::string_view text) {
    const auto open = text.find('(');
    const auto close = text.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open)
        return std::nullopt;
    StatFields f;
    f.comm = std::string(text.substr(open + 1, close - open - 1));
    std::string_view rest = text.substr(close + 1);
    // Fields 3 .. 22: state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt,
    // majflt, cmajflt, utime, stime, cutime, cstime, priority, nice, num_threads,
    // itrealvalue, starttime.
    std::string_view word = next_word(rest);
    if (word.size() != 1)
        return std::nullopt;
    f.state = word.front();
    for (int field = 4; field < 22; ++field) {
        if (next_word(rest).empty())
            return std::nullopt;
    }
    const auto ticks = parse_number<std::uint64_t>(next_word(rest));
    if (!ticks)
        return std::nullopt;
    f.start_ticks = *ticks;
    return f;
}

std::optional<std::int64_t> parse_btime(std::string_view text) {
    size_t pos = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos)
            nl = text.size();
        std::string_view line = text.substr(pos, nl - pos);
        if (line.starts_with("btime ")) {
            line.remove_prefix(6);
            return parse_number<std::int64_t>(next_word(line));
        }
        pos = nl + 1;
    }
    return std::nullopt;
}

std::optional<std::pair<uid_t, uid_t>> parse_status_uids(std::string_view text) {
    std::string_view rest;
    if (text.starts_with("Uid:")) {
        rest = text.substr(4);
    } else {
        const auto at = text.find("\nUid:");
        if (at == std::string_view::npos)
            return std::nullopt;
        rest = text.substr(at + 5);
    }
    const auto real = parse_number<uid_t>(next_word(rest));
    const auto effective = parse_number<uid_t>(next_word(rest));
    if (!real || !effective)
        return std::nullopt;
    return std::pair{*real, *effective};
}

std::vector<std::string> parse_cmdline(std::string_view text) {
    std::vector<std::string> args;
    size_t pos = 0;
    while (pos < text.size()) {
        auto nul = text.find('\0', pos);
        if (nul == std::string_view::npos)
            nul = text.size();
        args.emplace_back(text.substr(pos, nul - pos));
        pos = nul + 1;
    }
    return args;
}

std::optional<std::int64_t> boot_time() {
    const auto text = read_proc_file("/proc/stat");
    return text ? parse_btime(*text) : std::nullopt;
}

std::optional<ProcessInfo> read_process(pid_t pid) {
    if (pid <= 0)
        return std::nullopt;
    const auto stat = read_proc_file(fmt::format("/proc/{}/stat", pid));
    if (!stat)
        return std::nullopt;
    const auto fields = parse_stat(*stat);
    if (!fields)
        return std::nullopt;
    ProcessInfo info;
    info.pid = pid;
    info.state = fields->state;
    info.comm = fields->comm;
    if (const auto status = read_proc_file(fmt::format("/proc/{}/status", pid))) {
        if (const auto uids = parse_status_uids(*status)) {
            info.real_uid = uids->first;
            info.effective_uid = uids->second;
        }
    }
    if (const auto cmdline = read_proc_file(fmt::format("/proc/{}/cmdline", pid)))
        info.argv = parse_cmdline(*cmdline);
    const long hz = ::sysconf(_SC_CLK_TCK);
    if (const auto btime = boot_time(); btime && hz > 0)
        info.start_time = *btime + static_cast<std::int64_t>(fields->start_ticks / static_cast<std::uint64_t>(hz));
    return info;
}

bool proc_mounted() { return ::access("/proc/self/stat", R_OK) == 0; }

bool process_running(pid_t pid) {
    if (pid <= 0)
        return false;
    if (::kill(pid, 0) != 0 && errno != EPERM)
        return false;
    const auto stat = read_proc_file(fmt::format("/proc/{}/stat", pid));
    if (!stat)
        return true; // no /proc: kill's answer stands
    const auto fields = parse_stat(*stat);
    return !fields || (fields->state != 'Z' && fields->state != 'X');
}

std::string ProcessInfo::program() const {
    if (argv.empty() || argv.front().empty())
        return printable("[" + comm + "]");
    return printable(std::filesystem::path(argv.front()).filename().string());
}

std::string ProcessInfo::command() const {
    if (argv.empty())
        return printable("[" + comm + "]");
    std::string out;
    for (const auto& a : argv)
        out += (out.empty() ? "" : " ") + a;
    return printable(out);
}

} // namespace leo::proc
