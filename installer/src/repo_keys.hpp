#pragma once
// A repository's gpgkey= keys as yum treats them, plus a pin (repo_keys.cpp):
// - a key over plain http is refused unless the .repo says allow_http_gpgkey=1 (then warned
//   on every run); file:// and absolute paths are read inside the root;
// - the first time a key is used it is shown (yum's "Importing GPG key 0x...: Userid,
//   Fingerprint, From") and imported into the root's rpmdb with the administrator's consent;
// - its fingerprint is pinned in ROOT/var/lib/leo-installer/keys/<repo id>.json (0600,
//   root's), url -> fingerprint; a later key at that URL with another fingerprint is an
//   error naming both, never trusted. Expected rotation: remove the pin (the error says how).
#include "leo/repo/config.hpp"
#include "leo/repo/signature.hpp"
#include "leo/rpm/keys.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace leo::installer {

/// How a run treats a repository key that is neither pinned nor in the rpmdb.
enum class KeyImport {
    ask,      ///< show it, ask `confirm`, import it and pin it (upgrade, install)
    preview,  ///< use it in memory for this run only, with a warning (check-update, --dry-run)
};

struct KeyCallbacks {
    std::function<void(const std::string&)> on_step;
    std::function<void(const std::string&)> on_warning;
    /// The question; may throw leo::RefusedError (no terminal and no -y). nullptr: consent.
    std::function<bool(const std::string&)> confirm;
};

/// One key of a repository, trusted for this run.
struct RepoKey {
    std::string url;     ///< the gpgkey= entry it came from
    rpm::PublicKey key;
};

/// The keys of the repositories of one run, each repository's resolved once.
class RepoKeyring {
public:
    RepoKeyring(std::filesystem::path root, KeyImport mode, KeyCallbacks callbacks)
        : m_root(std::move(root)), m_mode(mode), m_cb(std::move(callbacks)) {}

    /// The keys of `repo`'s gpgkey= list, fetched, checked against the pin and the rpmdb,
    /// shown and imported on first use (mode ask) or used in memory (mode preview).
    /// Throws leo::RepoError (http refused, unreachable, not a key, a key that changed
    /// against its pin), leo::RefusedError (consent refused or impossible: nothing was
    /// changed), leo::RpmError (the import failed).
    const std::vector<RepoKey>& keys_of(const repo::RepoConfig& repo);

    /// keys_of() as repomd.xml.asc's verification takes them.
    std::vector<repo::SigningKey> signing_keys(const repo::RepoConfig& repo);

    /// Write the pins of keys found already imported in the rpmdb (not written by keys_of,
    /// so that a run refused before its first change changes nothing): called at the first
    /// change. A key imported with consent is pinned at once, with the import.
    void commit_pins();

    /// Has this run written a pin file (with a key imported, or by commit_pins)?
    [[nodiscard]] bool pinned_any() const { return m_pinned; }

private:
    std::map<std::string, std::map<std::string, std::string>> m_pending;  ///< repo id -> url -> fingerprint
    bool m_pinned = false;
    std::filesystem::path m_root;
    KeyImport m_mode;
    KeyCallbacks m_cb;
    std::map<std::string, std::vector<RepoKey>> m_done;
};

/// Inside the root: the pin file of repository `repo_id`.
std::filesystem::path key_pin_path(const std::string& repo_id);

} // namespace leo::installer
