// Hints spelled for the root of the run.
#include "leo/common/hint.hpp"

#include <algorithm>
#include <cctype>
#include <mutex>

#include <fmt/format.h>

namespace leo {
namespace {

std::mutex g_mutex;
std::filesystem::path g_root = "/";

std::string quoted(const std::string& path) {
    const bool plain = std::all_of(path.begin(), path.end(), [](unsigned char c) {
        return std::isalnum(c) != 0 || c == '/' || c == '.' || c == '_' || c == '-' || c == '+' || c == ':' ||
               c == ',' || c == '@';
    });
    if (plain && !path.empty()) return path;
    std::string out = "'";
    for (const char c : path) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

} // namespace

void set_hint_root(const std::filesystem::path& root) {
    const std::lock_guard lock(g_mutex);
    g_root = root.empty() ? std::filesystem::path("/") : root;
}

std::string root_option() {
    const std::lock_guard lock(g_mutex);
    if (g_root == "/") return {};
    return " --root " + quoted(g_root.string());
}

std::string command_hint(std::string_view args) { return fmt::format("`leo-installer {}{}`", args, root_option()); }

} // namespace leo
