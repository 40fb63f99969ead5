#pragma once
// The ZIP writer of the support bundle (libarchive) and where the bundle is created.

#include "leo/common/system_root.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct archive;

namespace leo::installer::detail {

/// A ZIP (deflate) written to a descriptor it does not own; entries from memory, 0600,
/// owned by root in the archive's metadata. Throws leo::SystemError naming `shown`.
class ZipWriter {
public:
    ZipWriter(int fd, std::string shown, std::time_t mtime);
    ~ZipWriter();
    ZipWriter(const ZipWriter&) = delete;
    ZipWriter& operator=(const ZipWriter&) = delete;
    void add(const std::string& name, std::string_view content);
    /// Write the central directory; the archive is complete only after this.
    void finish();

private:
    struct archive* m_archive = nullptr;
    std::string m_shown;
    std::time_t m_mtime;
};

/// A new bundle file, created O_EXCL|O_NOFOLLOW 0600 through SystemRoot in the output
/// directory, under `name` or, when that exists, name-2.zip, name-3.zip, ...
struct BundleFile {
    std::unique_ptr<fs::SystemRoot> dir_root; ///< the root the file is reached through
    std::string inside;                       ///< its path inside dir_root
    fs::UniqueFd fd;
    std::filesystem::path host;               ///< the file on the host
    std::optional<fs::Owner> owner;           ///< given the file once it is complete
    /// fsync, then fchown to `owner` when there is one (after the last byte: leo never
    /// holds a half-written bundle). Throws leo::SystemError.
    void complete();
};

/// Create the bundle file (see BundleFile). `output_dir` nullopt: ROOT/home/leo, and the
/// file is to be given to leo (`leo_owner`, by complete()); otherwise a host directory, the file root's.
/// Throws leo::UsageError when the directory does not exist or is not one.
[[nodiscard]] BundleFile create_bundle_file(const std::filesystem::path& root,
                                            const std::optional<std::filesystem::path>& output_dir,
                                            const std::string& name, std::optional<fs::Owner> leo_owner);

} // namespace leo::installer::detail
