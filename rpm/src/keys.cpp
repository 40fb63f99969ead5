// OpenPGP public keys and detached signatures through librpm (rpmpgp.h, rpmkeyring.h).
#include "leo/rpm/keys.hpp"

#include "leo/common/error.hpp"
#include "leo/rpm/handles.hpp"
#include "leo/rpm/rpmlib.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <fcntl.h>

#include <rpm/rpmbase64.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmpgp.h>
#include <rpm/rpmtag.h>

namespace leo::rpm {
namespace stdfs = std::filesystem;

bool has_rpmdb(const stdfs::path& root);  // package.cpp

namespace {

struct FreeDeleter {
    void operator()(void* p) const noexcept { std::free(p); }
};
using Bytes = std::unique_ptr<std::uint8_t, FreeDeleter>;

struct DigParamsDeleter {
    void operator()(pgpDigParams p) const noexcept { pgpDigParamsFree(p); }
};
using DigParamsPtr = std::unique_ptr<std::remove_pointer_t<pgpDigParams>, DigParamsDeleter>;

std::string hex(const std::uint8_t* bytes, std::size_t n, bool upper) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += upper ? fmt::format("{:02X}", bytes[i]) : fmt::format("{:02x}", bytes[i]);
    return out;
}

/// Binary OpenPGP packets.
struct Packets {
    Bytes data;
    std::size_t size = 0;
};

/// The packets of an armored block "-----BEGIN PGP <kind>-----" (armor headers skipped,
/// the "=" CRC-24 line checked when present), decoded with librpm's own base64 and CRC
/// (rpmbase64.h: what its pgpParsePkts does for public keys; rpm 4.18's pgpParsePkts
/// decodes public key blocks only). Empty when the text is not such a block.
Packets dearmor_block(std::string_view text, std::string_view kind) {
    const std::string begin = fmt::format("-----BEGIN PGP {}-----", kind);
    const std::string end = fmt::format("-----END PGP {}-----", kind);
    auto pos = text.find(begin);
    if (pos == std::string_view::npos) return {};
    pos = text.find('\n', pos);
    if (pos == std::string_view::npos) return {};
    ++pos;
    // armor headers ("Version: ...") up to the first empty line
    while (pos < text.size()) {
        const auto eol = text.find('\n', pos);
        if (eol == std::string_view::npos) return {};
        std::string_view line = text.substr(pos, eol - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!line.empty() && line.find(':') == std::string_view::npos) break;  // no empty line: body starts here
        pos = eol + 1;
        if (line.empty()) break;
    }
    std::string body;
    std::string crc;
    bool ended = false;
    while (pos < text.size()) {
        auto eol = text.find('\n', pos);
        std::string_view line = text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        pos = eol == std::string_view::npos ? text.size() : eol + 1;
        if (line == end) {
            ended = true;
            break;
        }
        if (line.starts_with('=')) crc = std::string(line.substr(1));
        else body += line;
    }
    if (!ended || body.empty()) return {};
    void* out = nullptr;
    std::size_t len = 0;
    if (rpmBase64Decode(body.c_str(), &out, &len) != 0 || out == nullptr || len == 0) {
        std::free(out);
        return {};
    }
    Packets p{Bytes(static_cast<std::uint8_t*>(out)), len};
    if (!crc.empty()) {
        char* computed = rpmBase64CRC(p.data.get(), p.size);
        const bool same = computed != nullptr && crc == computed;
        std::free(computed);
        if (!same) return {};
    }
    return p;
}

/// A public key's packets: an armored block, or the binary key itself (a .key file as
/// `gpg --export` writes it without --armor). Empty when neither.
Packets key_packets(std::string_view text) {
    if (text.find("-----BEGIN PGP PUBLIC KEY BLOCK-----") != std::string_view::npos) {
        const std::string copy(text);  // librpm wants a NUL-terminated string
        std::uint8_t* pkt = nullptr;
        std::size_t len = 0;
        const pgpArmor kind = pgpParsePkts(copy.c_str(), &pkt, &len);
        Packets out{Bytes(pkt), len};
        if (kind != PGPARMOR_PUBKEY || pkt == nullptr || len == 0) return {};
        return out;
    }
    // binary: an old- or new-format public key packet (tag 6) first
    if (text.size() < 2) return {};
    const auto first = static_cast<unsigned char>(text[0]);
    const bool old_format_key = (first & 0xC0) == 0x80 && ((first >> 2) & 0x0F) == 6;
    const bool new_format_key = first == 0xC6;
    if (!old_format_key && !new_format_key) return {};
    auto* copy = static_cast<std::uint8_t*>(std::malloc(text.size()));
    if (copy == nullptr) return {};
    std::memcpy(copy, text.data(), text.size());
    return Packets{Bytes(copy), text.size()};
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

/// A keyring of `keys` and their subkeys (in memory).
KeyringPtr keyring_of(const std::vector<PublicKey>& keys) {
    KeyringPtr keyring(rpmKeyringNew());
    for (const auto& k : keys) {
        const Packets p = key_packets(k.armored);
        if (!p.data) continue;
        PubkeyPtr key(rpmPubkeyNew(p.data.get(), p.size));
        if (!key) continue;
        rpmKeyringAddKey(keyring.get(), key.get());
        int count = 0;
        rpmPubkey* subkeys = rpmGetSubkeys(key.get(), &count);
        for (int i = 0; i < count; ++i) {
            rpmKeyringAddKey(keyring.get(), subkeys[i]);
            rpmPubkeyFree(subkeys[i]);
        }
        std::free(subkeys);
    }
    return keyring;
}

} // namespace

/// For package.cpp: the packets of an armored or binary public key (empty: not one).
std::vector<std::uint8_t> public_key_packets(std::string_view text) {
    const Packets p = key_packets(text);
    if (!p.data) return {};
    return {p.data.get(), p.data.get() + p.size};
}

std::string PublicKey::short_id() const {
    std::string id = key_id.size() >= 8 ? key_id.substr(key_id.size() - 8) : key_id;
    std::transform(id.begin(), id.end(), id.begin(), [](unsigned char c) { return std::toupper(c); });
    return "0x" + id;
}

std::string PublicKey::fingerprint_text() const {
    std::string out;
    for (std::size_t i = 0; i < fingerprint.size(); i += 4) {
        if (i != 0) out += ' ';
        out += fingerprint.substr(i, 4);
    }
    return out;
}

bool PublicKey::has_id(std::string_view id) const {
    const std::string want = lower(std::string(id));
    return want == key_id || std::find(subkey_ids.begin(), subkey_ids.end(), want) != subkey_ids.end();
}

PublicKey parse_public_key(std::string_view armored, const std::string& source) {
    initialize();
    const auto refuse = [&](const std::string& why) {
        return RpmError(fmt::format("{}: {}; a gpgkey must be an armored OpenPGP public key (gpg --armor --export "
                                    "KEYID)",
                                    source, why));
    };
    const Packets p = key_packets(armored);
    if (!p.data) throw refuse("not an OpenPGP public key (armored or binary)");
    pgpDigParams raw = nullptr;
    if (pgpPrtParams(p.data.get(), p.size, PGPTAG_PUBLIC_KEY, &raw) != 0 || raw == nullptr)
        throw refuse("librpm cannot parse the key");
    const DigParamsPtr dig(raw);
    PublicKey key;
    key.armored = std::string(armored);
    key.key_id = hex(pgpDigParamsSignID(dig.get()), 8, false);
    if (const char* uid = pgpDigParamsUserID(dig.get()); uid != nullptr) key.user_id = uid;
    std::uint8_t* fp = nullptr;
    std::size_t fplen = 0;
    if (pgpPubkeyFingerprint(p.data.get(), p.size, &fp, &fplen) != 0 || fp == nullptr)
        throw refuse("librpm cannot compute the key's fingerprint");
    const Bytes fp_owned(fp);
    key.fingerprint = hex(fp, fplen, true);
    pgpDigParams* subs = nullptr;
    int count = 0;
    if (pgpPrtParamsSubkeys(p.data.get(), p.size, dig.get(), &subs, &count) == 0 && subs != nullptr) {
        for (int i = 0; i < count; ++i) {
            key.subkey_ids.push_back(hex(pgpDigParamsSignID(subs[i]), 8, false));
            pgpDigParamsFree(subs[i]);
        }
        std::free(subs);
    }
    return key;
}

std::vector<PublicKey> imported_keys(const stdfs::path& root) {
    std::vector<PublicKey> out;
    if (!has_rpmdb(root)) return out;
    const std::string r = stdfs::absolute(root).string();
    TsPtr ts = make_ts(r.c_str());
    LogCapture capture;
    if (rpmtsOpenDB(ts.get(), O_RDONLY) != 0)
        throw RpmError(fmt::format("cannot open the rpmdb of {}{}", r,
                                   capture.joined().empty() ? "" : ": " + capture.joined()));
    MiPtr mi(rpmtsInitIterator(ts.get(), RPMDBI_NAME, "gpg-pubkey", 0));
    while (mi) {
        Header h = rpmdbNextIterator(mi.get());
        if (h == nullptr) break;
        const char* armored = headerGetString(h, RPMTAG_DESCRIPTION);
        if (armored == nullptr) continue;
        try {
            out.push_back(parse_public_key(armored, "gpg-pubkey in the rpmdb of " + r));
        } catch (const RpmError&) {
            // a key rpm itself imported but we cannot read: rpm's own keyring still has it
        }
    }
    return out;
}

void import_key(const stdfs::path& root, const PublicKey& key) {
    const std::string r = stdfs::absolute(root).string();
    TsPtr ts = make_ts(r.c_str());
    const Packets p = key_packets(key.armored);
    if (!p.data) throw RpmError(fmt::format("key {}: not an OpenPGP public key", key.short_id()));
    LogCapture capture;
    if (rpmtsImportPubkey(ts.get(), p.data.get(), p.size) != RPMRC_OK)
        throw RpmError(fmt::format("cannot import key {} ({}) into the rpmdb of {}{}", key.short_id(),
                                   key.fingerprint_text(), r,
                                   capture.joined().empty() ? "" : ": " + capture.joined()));
}

DetachedResult verify_detached(std::string_view data, std::string_view armored_signature,
                               const std::vector<PublicKey>& keys) {
    initialize();
    DetachedResult result;
    const Packets p = dearmor_block(armored_signature, "SIGNATURE");
    if (!p.data) {
        result.detail = "not an armored OpenPGP signature";
        return result;
    }
    pgpDigParams raw = nullptr;
    if (pgpPrtParams(p.data.get(), p.size, PGPTAG_SIGNATURE, &raw) != 0 || raw == nullptr) {
        result.detail = "librpm cannot parse the signature";
        return result;
    }
    const DigParamsPtr sig(raw);
    result.signer_key_id = hex(pgpDigParamsSignID(sig.get()), 8, false);
    const auto known = std::any_of(keys.begin(), keys.end(),
                                   [&](const PublicKey& k) { return k.has_id(result.signer_key_id); });
    if (!known) {
        result.state = DetachedState::unknown_key;
        return result;
    }
    const KeyringPtr keyring = keyring_of(keys);
    DIGEST_CTX ctx = rpmDigestInit(pgpDigParamsAlgo(sig.get(), PGPVAL_HASHALGO), RPMDIGEST_NONE);
    if (ctx == nullptr) {
        result.state = DetachedState::bad;
        result.detail = "the signature's hash algorithm is not supported by librpm";
        return result;
    }
    rpmDigestUpdate(ctx, data.data(), data.size());
    LogCapture capture;
    const rpmRC rc = rpmKeyringVerifySig(keyring.get(), sig.get(), ctx);  // works on a copy of ctx
    rpmDigestFinal(ctx, nullptr, nullptr, 0);
    switch (rc) {
    case RPMRC_OK: result.state = DetachedState::ok; break;
    case RPMRC_NOKEY: result.state = DetachedState::unknown_key; break;
    default:
        result.state = DetachedState::bad;
        result.detail = capture.joined().empty() ? "the signature does not match the data" : capture.joined();
        break;
    }
    return result;
}

} // namespace leo::rpm
