// untrusted_path_reason: may root trust a host path (a program, a file whose commands it runs)?
#include "system_root_walk.hpp"

namespace leo::fs {
namespace stdfs = std::filesystem;
using namespace detail;

std::optional<std::string> untrusted_path_reason(const stdfs::path& path) {
    std::deque<std::string> pending;
    for (const auto& part : stdfs::absolute(path).relative_path())
        if (!part.empty() && part != ".")
            pending.push_back(part.string());
    std::vector<std::string> at; // the resolved directories so far
    auto joined = [&](const std::vector<std::string>& parts) {
        std::string s;
        for (const auto& x : parts)
            s += "/" + x;
        return s.empty() ? std::string("/") : s;
    };
    struct stat dir {};
    if (::lstat("/", &dir) != 0)
        return "cannot stat /";
    int hops = 0;
    while (!pending.empty()) {
        const auto comp = pending.front();
        pending.pop_front();
        if (comp == "..") {
            if (!at.empty())
                at.pop_back();
            if (::stat(joined(at).c_str(), &dir) != 0)
                return fmt::format("cannot stat {}", joined(at));
            continue;
        }
        auto next = at;
        next.push_back(comp);
        const auto here = joined(next);
        struct stat st {};
        if (::lstat(here.c_str(), &st) != 0)
            return fmt::format("{} does not exist", here);
        const bool sticky_ok = (dir.st_mode & S_ISVTX) != 0 && dir.st_uid == 0 && st.st_uid == 0;
        if (writable_by_others(dir) && !sticky_ok)
            return fmt::format("{} is in {} (owner uid {}, mode {}), which a user other than root can change", here,
                               joined(at), dir.st_uid, mode_text(dir.st_mode));
        if (S_ISLNK(st.st_mode)) {
            if (++hops > k_max_link_hops)
                return fmt::format("{}: too many levels of symbolic links", here);
            std::array<char, 4096> buf{};
            const ssize_t n = ::readlink(here.c_str(), buf.data(), buf.size() - 1);
            if (n < 0)
                return fmt::format("cannot read the link {}", here);
            const std::string target(buf.data(), static_cast<size_t>(n));
            auto comps = link_components(target);
            if (target.starts_with('/')) {
                at.clear();
                if (::lstat("/", &dir) != 0)
                    return "cannot stat /";
            }
            pending.insert(pending.begin(), comps.begin(), comps.end());
            continue;
        }
        if (pending.empty() && writable_by_others(st))
            return fmt::format("{} (owner uid {}, mode {}) can be changed by a user other than root", here, st.st_uid,
                               mode_text(st.st_mode));
        at = std::move(next);
        dir = st;
    }
    return std::nullopt;
}

} // namespace leo::fs
