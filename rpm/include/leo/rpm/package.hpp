#pragma once
/// Reading RPM package files and verifying their digests and signatures.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace leo::rpm {

/// Name, epoch, version, release, arch of a package.
struct PackageInfo {
    std::string name;
    std::optional<std::uint32_t> epoch; ///< absent when the package has no Epoch tag
    std::string version;
    std::string release;
    std::string arch;  ///< "x86_64", "noarch", ...; for a source package "src"
    bool source = false;
    /// The package's Provides as (name, version) pairs; version "" when unversioned.
    std::vector<std::pair<std::string, std::string>> provides;
    /// The header's own digest as rpm records it, "sha256:HEX" (RPMTAG_SHA256HEADER, rpm >=
    /// 4.14 builds) or else "sha1:HEX" (RPMTAG_SHA1HEADER, every build since rpm 4.0); ""
    /// when the header has neither. The same in a package file and in the rpmdb entry rpm
    /// made from it, so it tells whether a file is the very build that is installed (the
    /// header carries the payload digest too).
    std::string header_digest;

    /// "name-[epoch:]version-release.arch" (epoch shown only when present and non-zero).
    [[nodiscard]] std::string nevra() const;
    /// "[epoch:]version-release".
    [[nodiscard]] std::string evr() const;
};

/// The signature state of a package (values, not exceptions: STYLE.md).
enum class SignatureState {
    ok,         ///< signed with a key in the keyring, and every digest and signature verifies
    nokey,      ///< signed, but the key is not in the keyring
    nottrusted, ///< signed with a key that is known but not trusted
    bad,        ///< a digest or signature does not verify: corrupt or tampered
    unsigned_,  ///< digests verify, but there is no signature
};
[[nodiscard]] std::string_view to_string(SignatureState s);

/// Where public keys come from for verification.
struct Keys {
    /// Load the keys imported into this root's rpmdb (`rpm --root R --import`); empty: none.
    std::filesystem::path root;
    /// Armored public key files (`--gpgkey FILE`).
    std::vector<std::filesystem::path> files;
    /// Public keys (armored, or binary) held in memory (a repository's gpgkey used before it is
    /// imported, as in a dry run).
    std::vector<std::string> armored;
};

struct VerifyResult {
    PackageInfo package;
    SignatureState signature = SignatureState::unsigned_;
    bool digests_ok = false;  ///< every header and payload digest matches
    std::string key_id;       ///< signer key id (16 hex digits) when signed
    std::string detail;       ///< librpm's own words for a failure ("" when ok)
    std::string sha256;       ///< SHA-256 of the whole file, hex
};

/// Read the package header of `path` without verifying signatures.
/// Throws leo::RpmError: "FILE: no such file", "FILE is not an RPM package",
/// "FILE: damaged package header".
[[nodiscard]] PackageInfo read_package_info(const std::filesystem::path& path);

/// The absolute paths of every file and directory in the package's payload, from its
/// header (no verification). Throws like read_package_info.
[[nodiscard]] std::vector<std::string> list_package_files(const std::filesystem::path& path);

/// Verify `path` fully: header and payload digests and the signature, against `keys`.
/// Reads only: changes nothing under keys.root. Throws leo::RpmError for a missing
/// file, a file that is not an RPM, or an unreadable key file (named).
[[nodiscard]] VerifyResult verify_package(const std::filesystem::path& path, const Keys& keys);

} // namespace leo::rpm
