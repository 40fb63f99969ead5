#pragma once
/// Managed paths (DESIGN.md "Paths under the root"); resolve with leo::fs::under_root.

namespace leo::installer {

inline constexpr const char* k_broker_package = "leostream-broker"; ///< the broker's RPM name
inline constexpr const char* k_home = "/home/leo";                  ///< cannot move, not on NFS
inline constexpr const char* k_migrations_dir = "/home/leo/share/migrations"; ///< shipped by the package
inline constexpr const char* k_state_dir = "/var/lib/leo-installer";
inline constexpr const char* k_packages_dir = "/var/lib/leo-installer/packages"; ///< kept RPMs, for rollback
inline constexpr const char* k_user = "leo";

} // namespace leo::installer
