#pragma once
/// The `leo` account: a system group and user whose home is /home/leo.

#include <filesystem>

namespace leo::installer {

/// Create group `leo` and system user `leo` (home /home/leo, no password: the shadow
/// entry stays locked, as the broker documentation states) in `root` when missing,
/// with shadow-utils' `groupadd`/`useradd --root`. Creates /home/leo (0755, owner leo)
/// when missing. Idempotent: returns false when the user already existed.
/// Throws leo::SystemError with the tool's own message when it fails.
bool ensure_leo_user(const std::filesystem::path& root);

} // namespace leo::installer
