#include "leo/common/log.hpp"

#include "leo/common/clock.hpp"
#include "leo/common/error.hpp"
#include "leo/common/redact.hpp"
#include "leo/common/system_root.hpp"

#include <cstdio>
#include <ctime>
#include <mutex>
#include <system_error>

#include <unistd.h>

namespace leo::log {
namespace {
std::mutex g_mutex;
std::FILE* g_file = nullptr;

const char* level_name(Level l) {
    switch (l) {
    case Level::debug: return "DEBUG";
    case Level::info: return "INFO";
    case Level::warning: return "WARNING";
    case Level::error: return "ERROR";
    }
    return "INFO";
}
} // namespace

namespace {
std::string g_open_error;  // guarded by g_mutex
}

bool open_log(const std::filesystem::path& root) {
    std::lock_guard lock(g_mutex);
    if (g_file != nullptr) {
        std::fclose(g_file);
        g_file = nullptr;
    }
    // Through SystemRoot: a link planted at the log (or in a directory another user can
    // write on the way to it) is refused, so root never appends to a file of another's choosing.
    try {
        const fs::SystemRoot sr(root);
        sr.make_dirs(fs::SystemRoot::k_log_dir, 0750);
        auto fd = sr.open_append(std::string(fs::SystemRoot::k_log_dir) + "/installer.log", 0640);
        g_file = ::fdopen(fd.get(), "a");
        if (g_file != nullptr)
            (void)fd.release();
    } catch (const Error& e) {
        g_file = nullptr;
        g_open_error = e.what();
    }
    if (g_file != nullptr) g_open_error.clear();
    return g_file != nullptr;
}

std::string last_open_error() {
    std::lock_guard lock(g_mutex);
    return g_open_error;
}

void close_log() {
    std::lock_guard lock(g_mutex);
    if (g_file != nullptr) std::fclose(g_file);
    g_file = nullptr;
}

void write(Level level, std::string_view message) {
    std::lock_guard lock(g_mutex);
    if (g_file == nullptr) return;
    const std::string stamp = clock::utc_now();
    // The last line of defence: no password quoted anywhere reaches the file.
    const std::string clean = printable(redact_secrets(message));
    message = clean;
    std::fprintf(g_file, "%s %s [%d] %.*s\n", stamp.c_str(), level_name(level), static_cast<int>(getpid()),
                 static_cast<int>(message.size()), message.data());
    std::fflush(g_file);
}

} // namespace leo::log
