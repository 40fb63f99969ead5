// A repository's gpgkey= keys: fetched by the rules of yum plus a pin, shown and imported
// with consent on first use (repo_keys.hpp).
#include "repo_keys.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/common/system_root.hpp"
#include "leo/repo/metadata.hpp"
#include "leo/repo/url.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

namespace leo::installer {
namespace stdfs = std::filesystem;

namespace {

constexpr int k_pin_format = 1;
constexpr std::string_view k_keys_dir = "/var/lib/leo-installer/keys";

std::string file_of(const repo::RepoConfig& r) { return r.source.empty() ? "its .repo file" : r.source; }

/// The text of gpgkey `url`: https (and http when allowed) with the repository's
/// transport settings; file:// and absolute paths inside the root.
std::string fetch_key(const fs::SystemRoot& sys, const repo::RepoConfig& r, const std::string& url,
                      const KeyCallbacks& cb) {
    const std::string shown = repo::redact_url(url);
    const std::string scheme = url.starts_with('/') ? "file" : repo::url_scheme(url);
    if (scheme == "file") {
        const std::string path = url.starts_with('/') ? url : url.substr(std::string_view("file://").size());
        try {
            return sys.read(path, repo::k_key_limit);
        } catch (const SystemError& e) {
            throw RepoError(fmt::format("repository {}: gpgkey {}: {}; gpgkey file paths are read inside the root "
                                        "{}: check gpgkey= in {}",
                                        r.id, shown, e.what(), sys.path().string(), file_of(r)));
        }
    }
    if (scheme == "http") {
        if (!r.allow_http_gpgkey)
            throw RepoError(fmt::format("repository {}: gpgkey {} is fetched over plain http; use https or a file, "
                                        "or set allow_http_gpgkey=1 in {} to accept the risk",
                                        r.id, shown, file_of(r)));
        const std::string w = fmt::format("repository {}: gpgkey {} is fetched over plain http "
                                          "(allow_http_gpgkey=1 in {}): anyone on the network path can replace it; "
                                          "its fingerprint is pinned when first imported",
                                          r.id, shown, file_of(r));
        log::warning("{}", w);
        if (cb.on_warning) cb.on_warning(w);
        return repo::fetch_url(r, url);
    }
    if (scheme == "https") return repo::fetch_url(r, url);
    throw RepoError(fmt::format("repository {}: gpgkey {}: unsupported scheme; use https://, file:// or an absolute "
                                "path in {}",
                                r.id, shown, file_of(r)));
}

using Pins = std::map<std::string, std::string>;  // url -> fingerprint

Pins read_pins(const fs::SystemRoot& sys, const std::string& repo_id) {
    Pins pins;
    std::optional<std::string> text;
    try {
        text = sys.try_read(key_pin_path(repo_id), 1 << 20);
    } catch (const SystemError& e) {
        // another user than root (check-update reads only) cannot read root's pins
        log::warning("key pins of repository {} not read: {}", repo_id, e.what());
        return pins;
    }
    if (!text) return pins;
    const std::string where = sys.host(key_pin_path(repo_id)).string();
    try {
        const auto j = nlohmann::json::parse(*text);
        if (j.value("format", 0) != k_pin_format)
            throw RepoError(fmt::format("{}: key pin format {} is not known to this version (expected {}); remove "
                                        "the file to pin the repository's keys again",
                                        where, j.value("format", 0), k_pin_format));
        for (const auto& [url, fp] : j.at("keys").items()) pins[url] = fp.get<std::string>();
    } catch (const nlohmann::json::exception& e) {
        throw RepoError(fmt::format("{}: not a key pin file ({}); remove it to pin the repository's keys again", where,
                                    e.what()));
    }
    return pins;
}

void write_pins(const fs::SystemRoot& sys, const std::string& repo_id, const Pins& pins) {
    sys.make_dirs(fs::SystemRoot::k_state_dir, 0700, fs::Owner{0, 0}, fs::ExistingDir::keep);
    sys.make_dirs(k_keys_dir, 0700, fs::Owner{0, 0});
    nlohmann::json j{{"format", k_pin_format}, {"repo", repo_id}, {"keys", nlohmann::json::object()}};
    for (const auto& [url, fp] : pins) j["keys"][url] = fp;
    sys.write_atomic(key_pin_path(repo_id), j.dump(2) + "\n", 0600, fs::Owner{0, 0});
}

/// The version of the gpg-pubkey package rpm makes of a key: its short id, lower case.
std::string rpm_version_of(const std::string& fingerprint) {
    std::string s = fingerprint.size() >= 8 ? fingerprint.substr(fingerprint.size() - 8) : fingerprint;
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

std::string describe(const rpm::PublicKey& k, const std::string& url) {
    return fmt::format("GPG key {}:\n Userid     : \"{}\"\n Fingerprint: {}\n From       : {}", k.short_id(),
                       k.user_id, k.fingerprint_text(), repo::redact_url(url));
}

} // namespace

stdfs::path key_pin_path(const std::string& repo_id) {
    return stdfs::path(k_keys_dir) / (repo_id + ".json");
}

const std::vector<RepoKey>& RepoKeyring::keys_of(const repo::RepoConfig& r) {
    if (auto it = m_done.find(r.id); it != m_done.end()) return it->second;
    if (r.id.empty() || r.id.find('/') != std::string::npos || r.id.starts_with('.'))
        throw RepoError(fmt::format("repository \"{}\": not a usable repository id", r.id));
    const fs::SystemRoot sys(m_root);
    Pins pins = read_pins(sys, r.id);
    const Pins pins_before = pins;
    std::optional<std::vector<rpm::PublicKey>> imported;
    std::vector<RepoKey> out;
    bool imported_now = false;
    for (const auto& url : r.gpgkeys) {
        const std::string shown = repo::redact_url(url);
        rpm::PublicKey key;
        try {
            key = rpm::parse_public_key(fetch_key(sys, r, url, m_cb), shown);
        } catch (const RpmError& e) {
            std::throw_with_nested(
                RepoError(fmt::format("repository {}: gpgkey {} is not a usable key; check gpgkey= in {}", r.id,
                                      shown, file_of(r))));
        }
        if (auto pin = pins.find(url); pin != pins.end() && pin->second != key.fingerprint)
            throw RepoError(fmt::format(
                "repository {}: the key at gpgkey {} changed: its pinned fingerprint is {}, the key there now is {} "
                "(\"{}\", fingerprint {}); it is not trusted and nothing was changed. If the repository's owner "
                "rotated its key, check the new fingerprint with them, then remove the pin {} (and the old key: rpm "
                "--root {} --dbpath /var/lib/rpm -e gpg-pubkey-{}); the next run shows the new key and asks before "
                "importing it",
                r.id, shown, pin->second, key.short_id(), key.user_id, key.fingerprint, sys.host(key_pin_path(r.id)).string(),
                m_root.string(), rpm_version_of(pin->second)));
        if (!imported) imported = rpm::imported_keys(m_root);
        const bool in_rpmdb = std::any_of(imported->begin(), imported->end(), [&](const rpm::PublicKey& k) {
            return k.fingerprint == key.fingerprint;
        });
        if (!in_rpmdb && m_mode == KeyImport::preview) {
            const std::string w = fmt::format(
                "repository {}: {}\nis not imported into the rpmdb of {} yet: used for this run only, changing "
                "nothing; `leo-installer upgrade` shows it and asks before importing it",
                r.id, describe(key, url), m_root.string());
            log::warning("{}", w);
            if (m_cb.on_warning) m_cb.on_warning(w);
        } else if (!in_rpmdb) {
            const std::string shown_key = describe(key, url);
            log::info("repository {}: importing {}", r.id, shown_key);
            if (m_cb.on_step) m_cb.on_step("Importing " + shown_key);
            bool yes = true;
            try {
                if (m_cb.confirm) yes = m_cb.confirm("Is this ok");
            } catch (const RefusedError&) {
                throw RefusedError(fmt::format(
                    "repository {}: GPG key {} (fingerprint {}) from {} is not imported yet, and there is no "
                    "terminal to ask whether to trust it: nothing was changed. Check the fingerprint with the "
                    "repository's owner, then run again with -y to import it (or import it yourself: rpm --root {} "
                    "--dbpath /var/lib/rpm --import FILE)",
                    r.id, key.short_id(), key.fingerprint_text(), shown, m_root.string()));
            }
            if (!yes)
                throw RefusedError(fmt::format("repository {}: GPG key {} (fingerprint {}) from {} was not imported: "
                                               "nothing was changed",
                                               r.id, key.short_id(), key.fingerprint_text(), shown));
            rpm::import_key(m_root, key);
            imported_now = true;
            imported->push_back(key);
            log::info("repository {}: imported GPG key {} ({})", r.id, key.short_id(), key.fingerprint);
        }
        if (m_mode == KeyImport::ask) pins[url] = key.fingerprint;
        out.push_back({url, std::move(key)});
    }
    if (m_mode == KeyImport::ask && pins != pins_before) {
        if (imported_now) {
            write_pins(sys, r.id, pins);  // with the import the administrator agreed to
            m_pinned = true;
        }
        else
            m_pending[r.id] = pins;       // a key already in the rpmdb: pinned when the run changes something
    }
    return m_done[r.id] = std::move(out);
}

void RepoKeyring::commit_pins() {
    const fs::SystemRoot sys(m_root);
    for (const auto& [id, pins] : m_pending) {
        write_pins(sys, id, pins);
        m_pinned = true;
    }
    m_pending.clear();
}

std::vector<repo::SigningKey> RepoKeyring::signing_keys(const repo::RepoConfig& r) {
    std::vector<repo::SigningKey> out;
    for (const auto& k : keys_of(r)) out.push_back({k.key.armored, k.url});
    return out;
}

} // namespace leo::installer
