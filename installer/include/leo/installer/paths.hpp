#pragma once
/// Managed paths (DESIGN.md "Paths under the root"); resolve with leo::fs::under_root.

namespace leo::installer {

inline constexpr const char* k_broker_package = "leostream-broker"; ///< the broker's RPM name
inline constexpr const char* k_home = "/home/leo";                  ///< cannot move, not on NFS
inline constexpr const char* k_migrations_dir = "/home/leo/share/migrations"; ///< shipped by the package
inline constexpr const char* k_state_dir = "/var/lib/leo-installer";
inline constexpr const char* k_packages_dir = "/var/lib/leo-installer/packages"; ///< kept RPMs, for rollback
/// Private copies of package files another user could change (private_package.hpp).
inline constexpr const char* k_staging_dir = "/var/lib/leo-installer/staging";
inline constexpr const char* k_user = "leo";
/// The leo user's login shell: the console Administration Menu (`su - leo` opens it).
inline constexpr const char* k_menu_shell = "/usr/bin/leo-menu";
/// The shell the installer gave leo before the menu existed (replaced by k_menu_shell).
inline constexpr const char* k_previous_shell = "/bin/bash";

} // namespace leo::installer
