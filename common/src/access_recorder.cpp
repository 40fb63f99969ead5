// AccessRecorder: the paths the SystemRoots of this process reach, for answers kept while
// their inputs stay the same (check-update's warm answer).
#include "system_root_walk.hpp"

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

namespace detail {

void note_access(const SystemRoot& root, const stdfs::path& inside, bool written) noexcept {
    Recording* r = g_recording.load(std::memory_order_acquire);
    if (r == nullptr || t_noting)
        return;
    t_noting = true;
    try {
        const auto note = [&](const stdfs::path& path, bool is_written) {
            const auto key = std::make_pair(root.path().string(), path.lexically_normal().string());
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
            r->accesses.push_back({root.path(), path.lexically_normal(), std::move(first), is_written, is_written});
        };
        note(inside, written);
        // A name made, replaced or removed in a directory changes the directory too.
        if (written && inside.has_parent_path() && inside.parent_path() != inside)
            note(inside.parent_path(), true);
    } catch (...) {
        // Recording is best effort: a path it could not note makes the answer's inputs
        // incomplete, so the recorder is marked unusable.
        const std::lock_guard lock(r->mutex);
        r->accesses.push_back({root.path(), inside, "unreadable", written, false});
    }
    t_noting = false;
}

} // namespace detail
} // namespace leo::fs
