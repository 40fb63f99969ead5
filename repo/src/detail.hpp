#pragma once
/// Helpers shared by the files of repo/src (not installed): text, limits, locations, checksums.

#include "leo/common/error.hpp"
#include "leo/repo/metadata.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace leo::repo::detail {

/// The server says the file is not there (HTTP 404 or 410; a file:// URL naming no file):
/// what a caller that treats absence differently (repomd.xml.asc) catches.
class NotFoundError : public RepoError {
public:
    using RepoError::RepoError;
};

/// `s` without leading and trailing blanks (space, tab, CR, LF).
std::string trim(std::string_view s);
/// `s` in ASCII lower case (the C locale's tolower), as yum compares option names and hash types.
std::string lower(std::string s);

/// `text` (trimmed) as an unsigned decimal; `ok` says whether all of it was one.
std::uint64_t to_u64(const std::string& text, bool& ok);

/// The last path segment of `href`.
std::string basename_of(const std::string& href);

/// "sha" is sha1 in old metadata; anything else must be a digest we know ("" otherwise).
std::string digest_name(const std::string& type);

/// Why the package's location may not be fetched ("" when it may): its href must be a
/// relative path inside the repository with a usable file name, and an xml:base must be
/// http(s) (file only in a file:// repository) and not downgrade an https repository.
std::string unsafe_location(const PackageEntry& entry);

/// The most bytes one transfer (or one decompression) may produce, and where that bound
/// comes from, for the message ("that primary declares", "the cap for repomd.xml").
struct Limit {
    std::uint64_t bytes = 0;
    std::string source;
};

} // namespace leo::repo::detail
