#pragma once
/// `leo-installer support-bundle`: one ZIP of what support asks for, secrets redacted.
///
/// The archive (libarchive, ZIP, deflate) is named leostream-support-HOST-YYYYMMDDTHHMMSSZ.zip
/// (HOST: gethostname(), only [A-Za-z0-9.-] kept; the time in UTC) and holds:
///
/// | entry                         | from                                                     |
/// |-------------------------------|----------------------------------------------------------|
/// | MANIFEST.txt                  | what is in the bundle, what is not and why (written last) |
/// | logs/NAME.log                 | each log of list_logs(): its last `log_tail_bytes`, until k_bundle_log_budget |
/// | status.json                   | gather_status() (`status --json`)                        |
/// | preflight.json                | run_checks(upgrade profile, or install when no broker)   |
/// | facts.json                    | gather_facts() (`facts --json`: disk and memory)         |
/// | rpm/rpm-qa.txt, rpm/rpm-V.txt | `rpm --root R --dbpath /var/lib/rpm -qa` and `-V leostream-broker` |
/// | journal.txt                   | /var/lib/leo-installer/journal (history), its last part  |
/// | restore-points/ID.json        | each restore point's manifest.json                       |
/// | config/PATH                   | installer.conf, database.conf, /home/leo/etc/*, /etc/yum.repos.d/*.repo |
/// | schema-history.json           | leo_schema_history of the database in use, when reachable |
///
/// Each entry is redacted and written as soon as it is collected (one in memory at a time).
/// Every text is passed through redact_text() (common/redact.hpp) with the rules of
/// support_bundle_rules(): no password, sealed value, private key, URL credential or
/// value of a secret key leaves the machine. Key files (database.key, *.key, *.p12, *.pfx,
/// *.jks) are never read. Every file under the root is read through leo::fs::SystemRoot:
/// a symbolic link planted in a directory leo can write (/home/leo/logs, /home/leo/etc)
/// is not followed; the MANIFEST names it as not collected.
///
/// The ZIP is created with O_CREAT|O_EXCL|O_NOFOLLOW (SystemRoot::create_exclusive),
/// mode 0600, so a name planted in the directory (a link to /etc/shadow) is never
/// written through: the name is taken with a suffix (-2, -3, ...) instead. In /home/leo
/// (the default) it is given to leo (fchown on its descriptor): the Administration Menu
/// runs as leo and the administrator copies the bundle off as leo; elsewhere it stays
/// root's. A bundle that fails half-way is removed.

#include "leo/common/redact.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace leo::installer {

/// Default bound of each log in a bundle: its last 5 MiB.
inline constexpr std::uint64_t k_bundle_log_tail_bytes = std::uint64_t{5} << 20;
/// All logs of a bundle together: at most 64 MiB (leo may make any number of *.log files in
/// /home/leo/logs); the logs after that are named in the MANIFEST as left out.
inline constexpr std::uint64_t k_bundle_log_budget = std::uint64_t{64} << 20;
/// Configuration files and manifests larger than this are left out (named in the MANIFEST).
inline constexpr std::size_t k_bundle_file_limit = std::size_t{1} << 20;

struct SupportBundleOptions {
    std::filesystem::path root = "/";
    /// Where to write: a directory on the host (the administrator's path, as --facts FILE
    /// is); nullopt: ROOT/home/leo. Must exist and be a directory (leo::UsageError).
    std::optional<std::filesystem::path> output_dir;
    std::uint64_t log_tail_bytes = k_bundle_log_tail_bytes;
    /// The time in the name and the MANIFEST (now when not set).
    std::optional<std::chrono::system_clock::time_point> now;
};

/// One entry of the bundle.
struct BundleEntry {
    std::string name;     ///< in the ZIP ("logs/broker.log")
    std::string source;   ///< where it came from ("/home/leo/logs/httpd.log", "rpm -qa")
    std::uint64_t bytes = 0;
    std::string note;     ///< "last 5242880 of 6291456 bytes", "" when whole
};

/// Something that could not be collected, and why.
struct BundleOmission {
    std::string what;
    std::string why;
};

struct SupportBundle {
    std::filesystem::path file;   ///< on the host
    std::uint64_t size = 0;       ///< of the ZIP, bytes
    std::vector<BundleEntry> entries;
    std::vector<BundleOmission> omitted;
};

/// The redaction rules of the root: installer.conf's `[support_bundle] secret_keys`, and
/// as literals the external database's password when database.conf holds one that can
/// be opened (so a log that quoted it in plain text is redacted too). Never throws: what
/// cannot be read adds nothing (the fixed rules still apply).
[[nodiscard]] RedactionRules support_bundle_rules(const std::filesystem::path& root);

/// Collect and write the bundle. Throws leo::UsageError when the output is not a
/// directory (nothing is written), leo::SystemError when the ZIP cannot be written (the
/// partial file removed). What cannot be collected is an omission, never an error.
[[nodiscard]] SupportBundle create_support_bundle(const SupportBundleOptions& options);

/// {"file", "size", "entries": [{"name", "source", "bytes", "note"}], "omitted": [{"what", "why"}]}.
[[nodiscard]] nlohmann::json to_json(const SupportBundle& bundle);

/// The file name for `host` at `now`: leostream-support-HOST-20261201T203000Z.zip.
[[nodiscard]] std::string support_bundle_name(const std::string& host, std::chrono::system_clock::time_point now);

} // namespace leo::installer
