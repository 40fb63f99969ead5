#include "leo/common/accounts.hpp"

#include "leo/common/system_root.hpp"

#include <cstdio>
#include <memory>

#include <grp.h>
#include <pwd.h>

namespace leo::accounts {
namespace {
struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

/// ROOT/etc/<name> through SystemRoot (no unsafe link), as a FILE for fgetpwent/fgetgrent;
/// null when it does not exist or cannot be read.
std::unique_ptr<std::FILE, FileCloser> open_db(const std::filesystem::path& root, const char* name) {
    try {
        auto fd = fs::SystemRoot(root).open_read(std::string("/etc/") + name);
        std::FILE* f = ::fdopen(fd.get(), "r");
        if (f != nullptr)
            (void)fd.release();
        return std::unique_ptr<std::FILE, FileCloser>(f);
    } catch (const std::exception&) {
        return nullptr;
    }
}
} // namespace

std::optional<User> find_user(const std::filesystem::path& root, const std::string& name) {
    std::unique_ptr<std::FILE, FileCloser> f(open_db(root, "passwd").release());
    if (!f) return std::nullopt;
    while (struct passwd* pw = ::fgetpwent(f.get())) {
        if (name == pw->pw_name)
            return User{pw->pw_name, pw->pw_uid, pw->pw_gid, pw->pw_dir ? pw->pw_dir : "",
                        pw->pw_shell ? pw->pw_shell : ""};
    }
    return std::nullopt;
}

std::optional<User> find_user_by_uid(const std::filesystem::path& root, uid_t uid) {
    std::unique_ptr<std::FILE, FileCloser> f(open_db(root, "passwd").release());
    if (!f) return std::nullopt;
    while (struct passwd* pw = ::fgetpwent(f.get())) {
        if (pw->pw_uid == uid)
            return User{pw->pw_name, pw->pw_uid, pw->pw_gid, pw->pw_dir ? pw->pw_dir : "",
                        pw->pw_shell ? pw->pw_shell : ""};
    }
    return std::nullopt;
}

std::optional<Group> find_group(const std::filesystem::path& root, const std::string& name) {
    std::unique_ptr<std::FILE, FileCloser> f(open_db(root, "group").release());
    if (!f) return std::nullopt;
    while (struct group* gr = ::fgetgrent(f.get())) {
        if (name == gr->gr_name) return Group{gr->gr_name, gr->gr_gid};
    }
    return std::nullopt;
}

} // namespace leo::accounts
