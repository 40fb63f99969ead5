#pragma once
/// Look up users and groups in a root's own `etc/passwd` and `etc/group` (not the
/// host's NSS: a sandbox root has its own accounts).

#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>

namespace leo::accounts {

struct User {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
    std::string home;
    std::string shell;
};

struct Group {
    std::string name;
    gid_t gid = 0;
};

/// The entry named `name` in `ROOT/etc/passwd`, or nullopt (also when the file is missing).
[[nodiscard]] std::optional<User> find_user(const std::filesystem::path& root, const std::string& name);
/// The first entry with uid `uid` in `ROOT/etc/passwd`, or nullopt (also when the file is
/// missing): for naming the owner of a file in messages ("uid 999 (leo)").
[[nodiscard]] std::optional<User> find_user_by_uid(const std::filesystem::path& root, uid_t uid);
/// The entry named `name` in `ROOT/etc/group`, or nullopt.
[[nodiscard]] std::optional<Group> find_group(const std::filesystem::path& root, const std::string& name);

} // namespace leo::accounts
