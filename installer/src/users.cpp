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
} // namespace

bool ensure_leo_user(const stdfs::path& root) {
    bool created = false;
    if (!accounts::find_group(root, k_user)) {
        run_tool({"groupadd", "--system", k_user}, root);
        created = true;
    }
    if (!accounts::find_user(root, k_user)) {
        run_tool({"useradd", "--system", "--gid", k_user, "--home-dir", k_home, "--no-create-home",
                  "--shell", "/bin/bash", "--comment", "Connection Broker", k_user},
                 root);
        created = true;
    }
    const auto user = accounts::find_user(root, k_user);
    if (!user) throw SystemError(fmt::format("user {} is still missing from {} after useradd", k_user,
                                             (root / "etc/passwd").string()));
    // /home/leo: made 0755 leo:leo when missing (on its descriptor; a link there is refused);
    // an existing one keeps what the administrator gave it.
    fs::SystemRoot(root).make_dirs(k_home, 0755, fs::Owner{user->uid, user->gid}, fs::ExistingDir::keep);
    return created;
}

} // namespace leo::installer
