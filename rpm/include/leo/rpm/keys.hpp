#pragma once
/// OpenPGP public keys and detached signatures, through librpm's OpenPGP API (rpmpgp.h,
/// rpmkeyring.h): parsing a key (key id, fingerprint, user id), the keys imported into a
/// root's rpmdb (gpg-pubkey headers), importing one (`rpm --import`), and verifying a
/// detached signature (repomd.xml.asc). Never a gpg subprocess, never our own OpenPGP.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace leo::rpm {

/// One OpenPGP public key (its primary key and subkeys) as librpm parses it.
struct PublicKey {
    std::string key_id;       ///< the primary key's id: 16 hex digits, lower case
    std::string fingerprint;  ///< the primary key's fingerprint: hex, upper case (40 digits for v4)
    std::string user_id;      ///< the first user id ("Name <mail>"; "" when none)
    std::vector<std::string> subkey_ids;  ///< ids of its subkeys, 16 hex digits each
    std::string armored;      ///< the key as given: armored ("-----BEGIN PGP PUBLIC KEY BLOCK-----...") or binary

    /// "0x" and the last 8 hex digits, upper case, as yum shows a key ("0x6441EDF5").
    [[nodiscard]] std::string short_id() const;
    /// The fingerprint in groups of four, as gpg and yum print it ("F4FC 5B6A ... EDF5").
    [[nodiscard]] std::string fingerprint_text() const;
    /// Does `id` (16 hex digits, any case) name the primary key or one of its subkeys?
    [[nodiscard]] bool has_id(std::string_view id) const;
};

/// Parse a public key, armored or binary (as `gpg --export` writes it; the first key of it).
/// `source` names it in errors
/// (a file or URL). Throws leo::RpmError "SOURCE: not an armored OpenPGP public key ..."
/// when the text is not one, or librpm cannot parse the key (an algorithm it lacks).
[[nodiscard]] PublicKey parse_public_key(std::string_view armored, const std::string& source);

/// The public keys imported into the rpmdb of `root` (its gpg-pubkey headers, whose
/// description holds the armored key, as `rpm --import` writes them), in rpmdb order.
/// Empty when the root has no rpmdb. Reads only. Throws leo::RpmError when the rpmdb
/// cannot be opened.
[[nodiscard]] std::vector<PublicKey> imported_keys(const std::filesystem::path& root);

/// Import `key` into the rpmdb of `root` (rpmtsImportPubkey: what `rpm --root R --import`
/// does; a key already there is left as it is). Throws leo::RpmError with librpm's reason.
void import_key(const std::filesystem::path& root, const PublicKey& key);

/// The outcome of verifying a detached signature (a value: STYLE.md).
enum class DetachedState {
    ok,           ///< made by one of the keys, and it verifies
    bad,          ///< made by one of the keys, but it does not verify (the data changed)
    unknown_key,  ///< made by a key that is not among them
    malformed,    ///< not an armored OpenPGP signature librpm can read
};

struct DetachedResult {
    DetachedState state = DetachedState::malformed;
    std::string signer_key_id;  ///< the issuer key id of the signature (16 hex digits; "" when malformed)
    std::string detail;         ///< librpm's words for a failure ("" when ok)
};

/// Verify `data` against the armored detached signature `armored_signature` (binary
/// signature, as `gpg --detach-sign --armor` makes) with `keys` (primary keys and subkeys):
/// the signature's hash algorithm over the bytes, then rpmKeyringVerifySig.
[[nodiscard]] DetachedResult verify_detached(std::string_view data, std::string_view armored_signature,
                                             const std::vector<PublicKey>& keys);

} // namespace leo::rpm
