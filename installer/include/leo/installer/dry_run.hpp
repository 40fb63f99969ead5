#pragma once
/// `upgrade --dry-run`: the migrations the package ships, run for real in a throw-away
/// copy of the broker database, then dropped (a dry run that only planned said "possible"
/// for an upgrade whose migration then failed).

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace leo::installer {

/// What the trial in the copy did.
struct MigrationTrial {
    bool ran = false;                        ///< false: no copy could be made (`why_not` says why)
    std::string why_not;
    std::vector<std::string> applied;        ///< the scripts that would be applied, in order
    std::optional<std::string> schema_after; ///< the copy's schema version afterwards
    std::string copy_name;                   ///< the scratch database (dropped again)
};

/// Copy the broker database of `root` (internal or external, as database.conf says) into
/// a scratch database "leo_dryrun_PID" on the same server (pg_dump and pg_restore: the
/// broker may keep running), apply the migrations of `package_file` (read from its payload
/// with libarchive) with `broker_version`, and drop the copy. Throws leo::InstallError
/// "the migrations of PACKAGE fail on a copy of the broker database: ..." when one fails
/// (the copy is dropped, the broker database is never touched). A server where the copy
/// cannot be made (an external role without CREATEDB) is not an error: `ran` is false.
[[nodiscard]] MigrationTrial try_migrations_on_copy(const std::filesystem::path& root,
                                                    const std::filesystem::path& package_file,
                                                    const std::string& broker_version);

} // namespace leo::installer
