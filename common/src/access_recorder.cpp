// AccessRecorder: the paths the SystemRoots of this process reach, for answers kept while
// their inputs stay the same (check-update's warm answer).
#include "system_root_walk.hpp"

#include "leo/common/crypto.hpp"

#include <map>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace leo::fs {
namespace stdfs = std::filesystem;

namespace {

struct Recording {
    std::mutex mutex;
    std::map<std::pair<std::string, std::string>, std::size_t> index;  // (root, inside) -> position
    std::vector<AccessRecorder::Access> accesses;
};

std::atomic<Recording*> g_recording{nullptr};
thread_local bool t_noting = false;  // file_identity reaches the path through the same root

std::pair<std::string, std::string> key_of(const SystemRoot& root, const stdfs::path& inside) {
    return {root.path().string(), inside.lexically_normal().string()};
}

/// Record `digest` as what the run read (`names`: listed) at an access noted before; a
/// different digest for the same path marks it unsteady.
void note_digest(const SystemRoot& root, const stdfs::path& inside, const std::string& digest, bool names) noexcept {
    Recording* r = g_recording.load(std::memory_order_acquire);
    if (r == nullptr || t_noting)
        return;
    try {
        const std::lock_guard lock(r->mutex);
        const auto it = r->index.find(key_of(root, inside));
        if (it == r->index.end())
            return;
        auto& a = r->accesses[it->second];
        std::string& field = names ? a.names : a.content;
        if (field.empty())
            field = digest;
        else if (field != digest)
            a.unsteady = true;
    } catch (...) {
        // Recording is best effort; a digest not recorded leaves the stat identity alone.
    }
}

} // namespace

AccessRecorder::AccessRecorder() {
    Recording* expected = nullptr;
    auto* fresh = new Recording;
    if (!g_recording.compare_exchange_strong(expected, fresh)) {
        delete fresh;
        throw std::logic_error("AccessRecorder: another recorder is live");
    }
}

AccessRecorder::~AccessRecorder() { delete g_recording.exchange(nullptr); }

std::vector<AccessRecorder::Access> AccessRecorder::accesses() const {
    Recording* r = g_recording.load();
    const std::lock_guard lock(r->mutex);
    return r->accesses;
}

std::string file_identity(const SystemRoot& root, const stdfs::path& inside) {
    try {
        const auto st = root.stat(inside);
        if (!st)
            return "absent";
        return fmt::format("{}:{}:{}:{}.{:09}:{}.{:09}:{:o}:{}", st->st_dev, st->st_ino, st->st_size,
                           st->st_mtim.tv_sec, st->st_mtim.tv_nsec, st->st_ctim.tv_sec, st->st_ctim.tv_nsec,
                           st->st_mode, st->st_uid);
    } catch (const std::exception&) {
        return "unreadable";
    }
}

std::string names_digest(const std::vector<std::string>& names) {
    std::string all;
    for (const auto& n : names)
        all += n + '\0';
    return crypto::digest_hex("sha256", all);
}

namespace detail {

void note_access(const SystemRoot& root, const stdfs::path& inside, bool written) noexcept {
    Recording* r = g_recording.load(std::memory_order_acquire);
    if (r == nullptr || t_noting)
        return;
    t_noting = true;
    try {
        const auto note = [&](const stdfs::path& path, bool is_written) {
            const auto key = key_of(root, path);
            {
                const std::lock_guard lock(r->mutex);
                if (const auto it = r->index.find(key); it != r->index.end()) {
                    r->accesses[it->second].written |= is_written;
                    return;
                }
            }
            // First reached: its identity before anything this run does to it.
            std::string first = file_identity(root, path);
            const std::lock_guard lock(r->mutex);
            if (r->index.contains(key))
                return;
            r->index.emplace(key, r->accesses.size());
            AccessRecorder::Access a;
            a.root = root.path();
            a.inside = path.lexically_normal();
            a.first = std::move(first);
            a.written = is_written;
            a.output = is_written;
            r->accesses.push_back(std::move(a));
        };
        note(inside, written);
        // A name made, replaced or removed in a directory changes the directory too.
        if (written && inside.has_parent_path() && inside.parent_path() != inside)
            note(inside.parent_path(), true);
    } catch (...) {
        // Recording is best effort: a path it could not note is kept as one that cannot be
        // identified, so that no answer is built on an incomplete list of inputs.
        const std::lock_guard lock(r->mutex);
        AccessRecorder::Access a;
        a.root = root.path();
        a.inside = inside;
        a.first = "unreadable";
        a.written = written;
        r->accesses.push_back(std::move(a));
    }
    t_noting = false;
}

void note_content(const SystemRoot& root, const stdfs::path& inside, std::string_view bytes) noexcept {
    if (g_recording.load(std::memory_order_acquire) == nullptr)
        return;
    try {
        note_digest(root, inside, crypto::digest_hex("sha256", bytes), false);
    } catch (...) {
    }
}

void note_names(const SystemRoot& root, const stdfs::path& inside, const std::vector<std::string>& names) noexcept {
    if (g_recording.load(std::memory_order_acquire) == nullptr)
        return;
    try {
        note_digest(root, inside, names_digest(names), true);
    } catch (...) {
    }
}

} // namespace detail
} // namespace leo::fs
