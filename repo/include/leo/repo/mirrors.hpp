#pragma once
/// Mirrors of a repository: yum's mirrorlist (a list of base URLs) and metalink (mirrors
/// plus the size and hashes of the current repomd.xml), parsed; and the rules of failover
/// and retries that load_metadata and download_package follow.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace leo::repo {

/// Whether a list of mirrors may name file:// URLs: only when the administrator wrote the
/// list's own URL as file:// (a local mirrorlist); never from a remote server, which must not
/// make root read local files.
enum class FileUrls { refused, allowed };

/// Base URLs from a mirrorlist or a metalink, in the order to try.
struct MirrorList {
    std::vector<std::string> urls;    ///< base URLs (the directory holding repodata/)
    std::vector<std::string> refused; ///< one line per entry not used: "ENTRY: why" (URLs redacted)
};

/// Parse a mirrorlist as yum does: one URL per line, blank lines and lines starting with
/// '#' skipped, blanks trimmed; yum's variables in a line ($var or ${var}, from `vars`:
/// ("basearch", "x86_64"), ...) are replaced, and "$ARCH" is yum's old name for $basearch.
/// Only http:// and https:// entries are used (file:// too with FileUrls::allowed); any
/// other entry (ftp, rsync, a file:// from a remote list, not a URL) is in `refused`.
/// Never throws: an empty result is the caller's error.
[[nodiscard]] MirrorList parse_mirrorlist(std::string_view text, FileUrls file_urls,
                                          const std::vector<std::pair<std::string, std::string>>& vars);

/// One version of repomd.xml a metalink accepts: its size (0: not declared) and hashes.
struct MetalinkRepomd {
    std::uint64_t size = 0;
    std::vector<std::pair<std::string, std::string>> hashes; ///< (type, lowercase hex): "sha256", ...
};

/// A metalink 3.0 document as MirrorManager serves it (Fedora, EPEL):
/// <metalink><files><file name="repomd.xml"> with <size>, <verification><hash type=...>,
/// <mm0:alternates><mm0:alternate> (older repomd.xml versions a lagging mirror may still
/// serve, accepted as yum accepts them) and <resources><url protocol preference>.
struct Metalink {
    std::vector<MetalinkRepomd> repomd; ///< [0] the current version, then the alternates
    MirrorList mirrors;                 ///< the URLs with "repodata/repomd.xml" cut off, by preference (highest first)
};

/// Parse a metalink with libxml2. URLs not ending in "repodata/repomd.xml" and protocols
/// other than http(s) (file with FileUrls::allowed) are in `mirrors.refused` (rsync and ftp
/// entries, as real metalinks list them, are skipped silently). Throws leo::RepoError
/// (`context` + cause): not XML, not <metalink>, no <file name="repomd.xml">, a version
/// with no hash of a type we verify (sha1, sha224, sha256, sha384, sha512; md5 is ignored).
[[nodiscard]] Metalink parse_metalink(std::string_view xml, FileUrls file_urls, const std::string& context);

/// "" when `repomd_xml` is a version the metalink accepts: for one of its versions, the size
/// matches (when declared) and the strongest hash it lists matches (librepo's rule).
/// Otherwise why not, with the expected and actual values, for the message.
[[nodiscard]] std::string metalink_mismatch(const Metalink& metalink, std::string_view repomd_xml);

/// The retry rules of one URL (yum's `retries`, `timeout`): a transient failure (a stall or
/// timeout, a connection reset, an empty or cut reply, HTTP 408, 429 or 5xx) is retried on
/// the same URL, at most `attempts` times in all, after a backoff of 0.25 s doubling to
/// 1 s, and no new attempt starts once `window` has passed since the first (so a mirror that
/// stalls costs one `timeout`, then the next mirror is tried). Anything else (HTTP 404 and
/// other 4xx, connection refused, an unknown host, TLS, a size or checksum mismatch) moves to
/// the next mirror at once.
struct RetryPolicy {
    unsigned attempts = 10;
    std::chrono::milliseconds window{3000};
};

/// The policy for `retries` (yum: attempts per URL, 0 meaning forever: here 10) and
/// `timeout` seconds: window = min(timeout, 3 s).
[[nodiscard]] RetryPolicy retry_policy(unsigned retries, long timeout_s);

/// The backoff before attempt `attempt` (2, 3, ...): 250 ms, 500 ms, then 1 s.
[[nodiscard]] std::chrono::milliseconds retry_backoff(unsigned attempt);

} // namespace leo::repo
