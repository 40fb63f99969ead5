#include "leo/installer/users.hpp"

#include "leo/common/accounts.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/common/system_root.hpp"
#include "leo/common/log.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/installer/paths.hpp"

#include <fmt/format.h>

#include <unistd.h>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {
void run_tool(std::vector<std::string> argv, const stdfs::path& root) {
    if (root != "/") argv.insert(argv.begin() + 1, {"--root", root.string()});
    auto r = subprocess::run(argv);
    if (!r.ok())
        throw SystemError(fmt::format("{} failed: {}", subprocess::command_line(argv),
                                      subprocess::last_line(r.err.empty() ? r.out : r.err)));
    log::info("ran {}", subprocess::command_line(argv));
}
/// k_menu_shell in ROOT/etc/shells (chsh and some PAM/ftp checks accept only the shells
/// listed there): appended when missing, the file rewritten atomically, 0644.
void list_in_etc_shells(const stdfs::path& root) {
    const fs::SystemRoot r(root);
    std::string shells = r.try_read("/etc/shells").value_or("");
    std::size_t pos = 0;
    while (pos < shells.size()) {
        const auto end = shells.find('\n', pos);
        if (shells.substr(pos, end == std::string::npos ? std::string::npos : end - pos) == k_menu_shell) return;
        if (end == std::string::npos) break;
        pos = end + 1;
    }
    if (!shells.empty() && shells.back() != '\n') shells += '\n';
    shells += std::string(k_menu_shell) + "\n";
    r.make_dirs("/etc", 0755, std::nullopt, fs::ExistingDir::keep);
    r.write_atomic("/etc/shells", shells, 0644);
    log::info("listed {} in {}", k_menu_shell, r.host("/etc/shells").string());
}
} // namespace

bool ensure_leo_user(const stdfs::path& root) {
    bool created = false;
    if (!accounts::find_group(root, k_user)) {
        run_tool({"groupadd", "--system", k_user}, root);
        created = true;
    }
    if (!accounts::find_user(root, k_user)) {
        run_tool({"useradd", "--system", "--gid", k_user, "--home-dir", k_home, "--no-create-home",
                  "--shell", k_menu_shell, "--comment", "Connection Broker", k_user},
                 root);
        created = true;
    }
    auto user = accounts::find_user(root, k_user);
    if (!user) throw SystemError(fmt::format("user {} is still missing from {} after useradd", k_user,
                                             (root / "etc/passwd").string()));
    if (user->shell == k_previous_shell) run_tool({"usermod", "--shell", k_menu_shell, k_user}, root);
    list_in_etc_shells(root);
    // /home/leo: made 0755 leo:leo when missing (on its descriptor; a link there is refused);
    // an existing one keeps what the administrator gave it.
    fs::SystemRoot(root).make_dirs(k_home, 0755, fs::Owner{user->uid, user->gid}, fs::ExistingDir::keep);
    return created;
}

} // namespace leo::installer
