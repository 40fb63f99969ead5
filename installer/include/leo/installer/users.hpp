#pragma once
/// The `leo` account: a system group and user whose home is /home/leo.

#include <filesystem>

namespace leo::installer {

/// Create group `leo` and system user `leo` (home /home/leo, no password: the shadow
/// entry stays locked, as the broker documentation states) in `root` when missing,
/// with shadow-utils' `groupadd`/`useradd --root`. Creates /home/leo (0755, owner leo)
/// when missing. Idempotent: returns false when the user already existed.
/// Its login shell is the Administration Menu (k_menu_shell, issue 16: `su - leo` opens
/// it): given at creation, and to an existing leo whose shell is still the installer's old
/// default /bin/bash (`usermod --shell`; any other shell is the administrator's choice and
/// kept). k_menu_shell is listed in ROOT/etc/shells (appended, atomically) when missing.
/// Throws leo::SystemError with the tool's own message when it fails.
bool ensure_leo_user(const std::filesystem::path& root);

} // namespace leo::installer
