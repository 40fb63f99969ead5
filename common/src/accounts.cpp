#include "leo/common/accounts.hpp"

#include <cstdio>
#include <memory>

#include <grp.h>
#include <pwd.h>

namespace leo::accounts {
namespace {
struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
} // namespace

std::optional<User> find_user(const std::filesystem::path& root, const std::string& name) {
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen((root / "etc/passwd").c_str(), "re"));
    if (!f) return std::nullopt;
    while (struct passwd* pw = ::fgetpwent(f.get())) {
        if (name == pw->pw_name)
            return User{pw->pw_name, pw->pw_uid, pw->pw_gid, pw->pw_dir ? pw->pw_dir : "",
                        pw->pw_shell ? pw->pw_shell : ""};
    }
    return std::nullopt;
}

std::optional<Group> find_group(const std::filesystem::path& root, const std::string& name) {
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen((root / "etc/group").c_str(), "re"));
    if (!f) return std::nullopt;
    while (struct group* gr = ::fgetgrent(f.get())) {
        if (name == gr->gr_name) return Group{gr->gr_name, gr->gr_gid};
    }
    return std::nullopt;
}

} // namespace leo::accounts
