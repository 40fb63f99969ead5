#include "leo/rpm/package.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/rpm/handles.hpp"
#include "leo/rpm/rpmlib.hpp"

#include <fmt/format.h>

#include <cstring>
#include <sys/stat.h>

#include <rpm/rpmcli.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmpgp.h>
#include <rpm/rpmtag.h>
#include <rpm/rpmtd.h>

namespace leo::rpm {
namespace stdfs = std::filesystem;

std::string PackageInfo::evr() const {
    std::string s;
    if (epoch && *epoch != 0) s = std::to_string(*epoch) + ":";
    return s + version + "-" + release;
}

std::string PackageInfo::nevra() const { return name + "-" + evr() + "." + arch; }

std::string_view to_string(SignatureState s) {
    switch (s) {
    case SignatureState::ok: return "ok";
    case SignatureState::nokey: return "nokey";
    case SignatureState::nottrusted: return "nottrusted";
    case SignatureState::bad: return "bad";
    case SignatureState::unsigned_: return "unsigned";
    }
    return "bad";
}

namespace {

std::string get_string(Header h, rpmTagVal tag) {
    const char* s = headerGetString(h, tag);
    return s != nullptr ? s : "";
}

} // namespace

/// Name, EVR, arch and Provides of a header (also used by transaction.cpp).
PackageInfo info_from_header(Header h) {
    PackageInfo p;
    p.name = get_string(h, RPMTAG_NAME);
    p.version = get_string(h, RPMTAG_VERSION);
    p.release = get_string(h, RPMTAG_RELEASE);
    p.source = headerIsSource(h) != 0;
    p.arch = p.source ? "src" : get_string(h, RPMTAG_ARCH);
    if (headerIsEntry(h, RPMTAG_EPOCH)) p.epoch = static_cast<std::uint32_t>(headerGetNumber(h, RPMTAG_EPOCH));
    if (auto d = get_string(h, RPMTAG_SHA256HEADER); !d.empty())
        p.header_digest = "sha256:" + d;
    else if (auto d1 = get_string(h, RPMTAG_SHA1HEADER); !d1.empty())
        p.header_digest = "sha1:" + d1;
    struct rpmtd_s names {}, versions {};
    if (headerGet(h, RPMTAG_PROVIDENAME, &names, HEADERGET_MINMEM) != 0) {
        const bool have_versions = headerGet(h, RPMTAG_PROVIDEVERSION, &versions, HEADERGET_MINMEM) != 0;
        const char* name = nullptr;
        while ((name = rpmtdNextString(&names)) != nullptr) {
            const char* version = have_versions ? rpmtdNextString(&versions) : nullptr;
            p.provides.emplace_back(name, version != nullptr ? version : "");
        }
        rpmtdFreeData(&names);
        if (have_versions) rpmtdFreeData(&versions);
    }
    return p;
}

namespace {

/// The signer's key id from the header's signature tags ("" when unsigned).
std::string signer_key_id(Header h) {
    for (rpmTagVal tag : {RPMTAG_RSAHEADER, RPMTAG_DSAHEADER, RPMTAG_SIGPGP, RPMTAG_SIGGPG}) {
        struct rpmtd_s td;
        if (headerGet(h, tag, &td, HEADERGET_DEFAULT) == 0) continue;
        std::string id;
        pgpDigParams sig = nullptr;
        if (pgpPrtParams(static_cast<const uint8_t*>(td.data), td.count, PGPTAG_SIGNATURE, &sig) == 0 &&
            sig != nullptr) {
            const uint8_t* kid = pgpDigParamsSignID(sig);
            for (int i = 0; i < 8; ++i) id += fmt::format("{:02x}", kid[i]);
            pgpDigParamsFree(sig);
        } else {
            id = "unknown";
        }
        rpmtdFreeData(&td);
        return id;
    }
    return {};
}

void require_file(const stdfs::path& path) {
    if (path.empty()) throw RpmError("no package file given (empty path)");
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw RpmError(path.string() + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw RpmError(path.string() + ": not a regular file");
    if (st.st_size == 0) throw RpmError(path.string() + " is empty (0 bytes), not an RPM package; download it again");
}

FdPtr open_package(const stdfs::path& path) {
    FdPtr fd(Fopen(path.c_str(), "r.ufdio"));
    if (!fd || Ferror(fd.get())) throw RpmError(path.string() + ": cannot open: " + Fstrerror(fd.get()));
    return fd;
}

/// `key` and its subkeys into `keyring` (a package may be signed by a subkey).
void add_with_subkeys(rpmKeyring keyring, rpmPubkey key) {
    rpmKeyringAddKey(keyring, key);
    int count = 0;
    rpmPubkey* subkeys = rpmGetSubkeys(key, &count);
    for (int i = 0; i < count; ++i) {
        rpmKeyringAddKey(keyring, subkeys[i]);
        rpmPubkeyFree(subkeys[i]);
    }
    free(subkeys);
}

/// Add the armored keys of `files` (and their subkeys) to `keyring`.
void add_key_files(rpmKeyring keyring, const std::vector<stdfs::path>& files) {
    for (const auto& f : files) {
        struct stat st {};
        if (::stat(f.c_str(), &st) != 0) throw RpmError("key file " + f.string() + ": " + std::strerror(errno));
        if (!S_ISREG(st.st_mode)) throw RpmError("key file " + f.string() + ": not a regular file");
        PubkeyPtr key(rpmPubkeyRead(f.c_str()));
        if (!key) throw RpmError("key file " + f.string() +
                           ": not an armored OpenPGP public key; export one with gpg --armor --export KEYID");
        add_with_subkeys(keyring, key.get());
    }
}

} // namespace

std::vector<std::uint8_t> public_key_packets(std::string_view text);  // keys.cpp

bool has_rpmdb(const stdfs::path& root) {
    std::error_code ec;
    const auto db = root / "var/lib/rpm";
    return stdfs::is_directory(db, ec) && !stdfs::is_empty(db, ec);
}

/// Shared with transaction.cpp: a transaction set whose keyring holds the root's
/// imported keys and the given key files (in memory only; nothing is imported).
TsPtr make_ts_with_keys(const stdfs::path& root, const Keys& keys) {
    const std::string r = root.empty() ? std::string("/") : stdfs::absolute(root).string();
    TsPtr ts = make_ts(r.c_str());
    rpmKeyring keyring = nullptr;
    std::error_code ec;
    if (!keys.root.empty() && has_rpmdb(keys.root)) {
        keyring = rpmtsGetKeyring(ts.get(), 1);  // loads gpg-pubkey entries of the rpmdb
    }
    if (keyring == nullptr) {
        keyring = rpmKeyringNew();
        rpmtsSetKeyring(ts.get(), keyring);
    }
    KeyringPtr owned(keyring);
    add_key_files(keyring, keys.files);
    for (const auto& text : keys.armored) {
        const std::vector<std::uint8_t> pkt = public_key_packets(text);
        if (pkt.empty()) throw RpmError("a repository key is not an OpenPGP public key");
        PubkeyPtr key(rpmPubkeyNew(pkt.data(), pkt.size()));
        if (!key) throw RpmError("librpm cannot read a repository key");
        add_with_subkeys(keyring, key.get());
    }
    return ts;
}

namespace {
/// The package header of `path`, digests and signatures not checked.
HeaderRef read_header_unverified(const stdfs::path& path) {
    require_file(path);
    TsPtr ts = make_ts("/");
    rpmtsSetVSFlags(ts.get(), RPMVSF_MASK_NODIGESTS | RPMVSF_MASK_NOSIGNATURES);
    FdPtr fd = open_package(path);
    LogCapture capture;
    Header h = nullptr;
    const rpmRC rc = rpmReadPackageFile(ts.get(), fd.get(), path.c_str(), &h);
    HeaderRef header(h);
    if (rc == RPMRC_NOTFOUND) throw RpmError(path.string() + " is not an RPM package");
    if (!header)
        throw RpmError(path.string() + ": damaged package header" +
                       (capture.joined().empty() ? "" : " (" + capture.joined() + ")"));
    return header;
}
} // namespace

PackageInfo read_package_info(const stdfs::path& path) { return info_from_header(read_header_unverified(path).get()); }

std::vector<std::string> list_package_files(const stdfs::path& path) {
    const HeaderRef header = read_header_unverified(path);
    std::vector<std::string> files;
    struct rpmtd_s td;
    if (headerGet(header.get(), RPMTAG_FILENAMES, &td, HEADERGET_EXT) != 0) {
        while (const char* f = rpmtdNextString(&td)) files.emplace_back(f);
        rpmtdFreeData(&td);
    }
    return files;
}

VerifyResult verify_package(const stdfs::path& path, const Keys& keys) {
    require_file(path);
    VerifyResult result;
    result.sha256 = crypto::file_digest_hex("sha256", path);
    TsPtr ts = make_ts_with_keys(keys.root.empty() ? stdfs::path("/") : keys.root, keys);

    // 1. The header and its signature (rpmReadPackageFile checks the header only).
    rpmRC rc;
    HeaderRef header;
    std::string header_detail;
    {
        FdPtr fd = open_package(path);
        LogCapture capture;
        Header h = nullptr;
        rc = rpmReadPackageFile(ts.get(), fd.get(), path.c_str(), &h);
        header = HeaderRef(h);
        header_detail = capture.joined();
    }
    if (rc == RPMRC_NOTFOUND) throw RpmError(path.string() + " is not an RPM package");
    if (!header) {
        result.signature = SignatureState::bad;
        result.detail = "the package header is damaged or truncated" +
                        (header_detail.empty() ? std::string() : " (" + header_detail + ")");
        return result;
    }
    result.package = info_from_header(header.get());
    result.key_id = signer_key_id(header.get());
    const bool is_signed = !result.key_id.empty();

    // 2. The whole file, payload included (what `rpmkeys --checksig` does): first the
    //    digests alone, then, for a package whose header signature verified, the
    //    signatures too (legacy signatures cover the payload as well).
    auto whole_file_failures = [&](bool with_signatures, std::string& detail) {
#ifdef LEO_HAVE_RPMTSSETVFYLEVEL
        rpmtsSetVfyLevel(ts.get(), with_signatures ? (RPMSIG_DIGEST_TYPE | RPMSIG_SIGNATURE_TYPE) : RPMSIG_DIGEST_TYPE);
        rpmtsSetVfyFlags(ts.get(), with_signatures ? RPMVSF_DEFAULT : RPMVSF_MASK_NOSIGNATURES);
#endif
        rpmtsSetVSFlags(ts.get(), with_signatures ? RPMVSF_DEFAULT : RPMVSF_MASK_NOSIGNATURES);
        LogCapture capture;
        const char* argv[] = {path.c_str(), nullptr};
        const int failures = rpmcliVerifySignatures(ts.get(), const_cast<ARGV_const_t>(argv));
        detail = capture.joined();
        return failures;
    };
    std::string detail;
    if (whole_file_failures(false, detail) != 0) {
        result.signature = SignatureState::bad;
        result.detail = detail.empty() ? "package digests do not match: the file is corrupt or was changed"
                                       : "the file is corrupt or was changed (" + detail + ")";
        return result;
    }
    result.digests_ok = true;
    if (rc == RPMRC_OK && is_signed && whole_file_failures(true, detail) != 0) {
        result.signature = SignatureState::bad;
        result.detail = detail.empty() ? "package signature does not verify" : detail;
        return result;
    }

    switch (rc) {
    case RPMRC_OK: result.signature = is_signed ? SignatureState::ok : SignatureState::unsigned_; break;
    case RPMRC_NOKEY:
        result.signature = SignatureState::nokey;
        result.detail = fmt::format("signed with key {}, which is not in the keyring", result.key_id);
        break;
    case RPMRC_NOTTRUSTED:
        result.signature = SignatureState::nottrusted;
        result.detail = fmt::format("signed with key {}, which is not trusted", result.key_id);
        break;
    default:
        result.signature = SignatureState::bad;
        result.detail = header_detail.empty() ? "header signature or digest does not verify" : header_detail;
        break;
    }
    return result;
}

} // namespace leo::rpm
