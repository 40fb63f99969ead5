#include "leo/common/archive.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace leo::archive {
namespace stdfs = std::filesystem;

namespace {
struct ReadDeleter {
    void operator()(struct archive* a) const noexcept { archive_read_free(a); }
};
struct WriteDeleter {
    void operator()(struct archive* a) const noexcept { archive_write_free(a); }
};
struct EntryDeleter {
    void operator()(archive_entry* e) const noexcept { archive_entry_free(e); }
};
using ReadPtr = std::unique_ptr<struct archive, ReadDeleter>;
using WritePtr = std::unique_ptr<struct archive, WriteDeleter>;

[[noreturn]] void fail(struct archive* a, const std::string& what) {
    const char* msg = a != nullptr ? archive_error_string(a) : nullptr;
    throw SystemError(fmt::format("{}: {}", what, msg != nullptr ? msg : "libarchive error"));
}

/// The target text of the link at `inside` (an absolute path in the root), nullopt when it
/// is not a link (or does not exist).
using LinkReader = std::function<std::optional<std::string>(const std::string& inside)>;

/// The components of `p` ("/a/./b/" -> a, ., b; empty ones dropped).
std::vector<std::string> components(const std::string& p) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= p.size()) {
        const size_t end = std::min(p.find('/', start), p.size());
        if (end > start) out.push_back(p.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

std::string join(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& c : parts) out += "/" + c;
    return out.empty() ? "/" : out;
}

/// Where `inside` (an absolute path in the root) is, as the kernel finds it chrooted into
/// the root: every component but the last resolved through the links `read_link` reports
/// (absolute targets from the root, relative ones from their directory), the last taken
/// as it is (a link is judged by where it is, not followed). nullopt after more than 40
/// links (a loop). Never leaves the root: ".." of "/" is "/".
std::optional<std::string> resolve_parent(const std::string& inside, const LinkReader& read_link) {
    auto parts = components(inside);
    if (parts.empty()) return "/";
    const std::string last = parts.back();
    parts.pop_back();
    std::vector<std::string> pending(parts.rbegin(), parts.rend());
    std::vector<std::string> cur;
    int links = 0;
    while (!pending.empty()) {
        const std::string c = pending.back();
        pending.pop_back();
        if (c == ".") continue;
        if (c == "..") {
            if (!cur.empty()) cur.pop_back();
            continue;
        }
        cur.push_back(c);
        const auto target = read_link(join(cur));
        if (!target) continue;
        if (++links > 40) return std::nullopt;
        cur.pop_back();
        if (!target->empty() && (*target)[0] == '/') cur.clear();
        const auto more = components(*target);
        pending.insert(pending.end(), more.rbegin(), more.rend());
    }
    if (last == "..") {
        if (!cur.empty()) cur.pop_back();
    } else if (last != ".") {
        cur.push_back(last);
    }
    return join(cur);
}

bool is_within(const std::string& path, const std::string& dir) {
    return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                           (dir == "/" || path[dir.size()] == '/'));
}

/// Links on disk under `root`, read without following the last component.
LinkReader disk_links(const stdfs::path& root) {
    return [root](const std::string& inside) -> std::optional<std::string> {
        const auto host = root / stdfs::path(inside).relative_path();
        struct stat st {};
        if (::lstat(host.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return std::nullopt;
        std::string buf(PATH_MAX, '\0');
        const ssize_t n = ::readlink(host.c_str(), buf.data(), buf.size());
        if (n < 0) return std::nullopt;
        buf.resize(static_cast<size_t>(n));
        return buf;
    };
}

/// Why the link at `inside` with `target` leaves `paths` (the saved directories), or
/// nullopt when what it points to is inside one of them (itself included: a dangling link
/// or one that points at itself is kept as it is).
std::optional<std::string> link_escapes(const std::string& inside, const std::string& target,
                                        const std::vector<std::string>& paths, const LinkReader& read_link) {
    if (target.empty()) return std::string("it has an empty target");
    const std::string from = target[0] == '/' ? target : stdfs::path(inside).parent_path().string() + "/" + target;
    const auto where = resolve_parent(from, read_link);
    if (!where) return std::string("it leads through a loop of links");
    for (const auto& p : paths) {
        const auto dir = resolve_parent(p, read_link);
        if (dir && is_within(*where, *dir)) return std::nullopt;
    }
    return fmt::format("it points to {}, outside the directories a restore point saves ({})", *where,
                       fmt::join(paths, ", "));
}

/// One line naming the link, its target and the way out.
[[noreturn]] void refuse_link(const stdfs::path& host_link, const std::string& target, const std::string& why) {
    throw RefusedError(fmt::format("symbolic link {} -> {} cannot be saved in a restore point: {}, so a rollback "
                                   "could not put back what it points to; replace the link with a copy of its target "
                                   "(or remove it), then try again",
                                   host_link.string(), target, why));
}

/// Every link at and below `inside` on disk (never followed), in order, with its target.
void for_each_link(const stdfs::path& root, const std::string& inside,
                   const std::function<void(const std::string&, const std::string&)>& visit) {
    const auto read_link = disk_links(root);
    if (const auto t = read_link(inside)) {
        visit(inside, *t);
        return;
    }
    const auto host = root / stdfs::path(inside).relative_path();
    std::error_code ec;
    if (!stdfs::is_directory(stdfs::symlink_status(host, ec))) return;
    std::vector<std::string> children;
    for (const auto& c : stdfs::directory_iterator(host, ec)) children.push_back(c.path().filename().string());
    std::sort(children.begin(), children.end());
    for (const auto& c : children) for_each_link(root, (stdfs::path(inside) / c).string(), visit);
}

void add_path(struct archive* out, struct archive* disk, const stdfs::path& root, const stdfs::path& abs,
              const std::vector<std::string>& paths, std::vector<std::string>& names, const stdfs::path& out_file) {
    std::unique_ptr<archive_entry, EntryDeleter> entry(archive_entry_new());
    // Lexically: stdfs::relative() resolves links, which would store a link the leo account
    // planted under the name of what it points to (and so poison the restore point).
    const std::string name = abs.lexically_relative(root).string();
    archive_entry_copy_sourcepath(entry.get(), abs.c_str());
    if (archive_read_disk_entry_from_file(disk, entry.get(), -1, nullptr) != ARCHIVE_OK)
        fail(disk, "cannot read " + abs.string());
    archive_entry_copy_pathname(entry.get(), name.c_str());
    const auto type = archive_entry_filetype(entry.get());
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
        // A FIFO, socket or device (the leo account can make one in /home/leo/etc): no
        // configuration, and nothing a restore would create. Left out, so that it can
        // neither block the archive nor make the restore point unusable later.
        log::warning("not archived: {} is not a file, a directory or a link", abs.string());
        return;
    }
    if (type == AE_IFLNK) {
        // Stored as the link it is, its target text unchanged; checked again here (it may
        // have changed since check_links), and a link's size is no data to write.
        const char* target = archive_entry_symlink(entry.get());
        const std::string text = target != nullptr ? target : "";
        if (const auto why = link_escapes("/" + name, text, paths, disk_links(root))) refuse_link(abs, text, *why);
        archive_entry_set_size(entry.get(), 0);
    }
    if (archive_write_header(out, entry.get()) != ARCHIVE_OK) fail(out, "cannot write " + out_file.string());
    names.push_back(name);
    std::error_code ec;
    if (stdfs::is_regular_file(stdfs::symlink_status(abs, ec))) {
        // O_NOFOLLOW: the entry was a regular file a moment ago; if it became a link since,
        // refuse it rather than archive what it points to.
        const int fd = ::open(abs.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) throw system_error("cannot read " + abs.string(), errno);
        struct stat opened {};
        if (::fstat(fd, &opened) != 0 || !S_ISREG(opened.st_mode) ||
            opened.st_size != archive_entry_size(entry.get())) {
            ::close(fd);
            throw RefusedError(fmt::format("{} changed while it was archived (another user is writing to it); run "
                                           "again",
                                           abs.string()));
        }
        std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(::fdopen(fd, "rb"), &std::fclose);
        if (!f) {
            ::close(fd);
            throw system_error("cannot read " + abs.string(), errno);
        }
        char buf[65536];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0)
            if (archive_write_data(out, buf, n) < 0) fail(out, "cannot write " + out_file.string());
    }
    if (stdfs::is_directory(stdfs::symlink_status(abs, ec))) {
        std::vector<stdfs::path> children;
        for (const auto& c : stdfs::directory_iterator(abs)) children.push_back(c.path());
        std::sort(children.begin(), children.end());
        for (const auto& c : children) add_path(out, disk, root, c, paths, names, out_file);
    }
}
} // namespace

void check_links(const stdfs::path& root, const std::vector<std::string>& paths) {
    for (const auto& p : paths)
        for_each_link(root, p, [&](const std::string& inside, const std::string& target) {
            if (const auto why = link_escapes(inside, target, paths, disk_links(root)))
                refuse_link(root / stdfs::path(inside).relative_path(), target, *why);
        });
}

std::vector<std::string> create_tar_gz(const stdfs::path& root, const std::vector<std::string>& paths,
                                       const stdfs::path& out_file) {
    // Created here, never followed and never reused: 0600 whatever the umask (it holds
    // secrets); libarchive then writes to the descriptor.
    const int fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) throw system_error("cannot create " + out_file.string(), errno);
    struct Fd {
        int fd;
        ~Fd() { ::close(fd); }
    } owned{fd};
    if (::fchmod(fd, 0600) != 0) throw system_error("cannot set the mode of " + out_file.string(), errno);
    WritePtr out(archive_write_new());
    archive_write_add_filter_gzip(out.get());
    archive_write_set_format_pax_restricted(out.get());
    if (archive_write_open_fd(out.get(), fd) != ARCHIVE_OK) fail(out.get(), "cannot create " + out_file.string());
    ReadPtr disk(archive_read_disk_new());
    archive_read_disk_set_standard_lookup(disk.get());
    archive_read_disk_set_symlink_physical(disk.get());  // a link is archived as the link
    std::vector<std::string> names;
    for (const auto& p : paths) {
        const stdfs::path abs = root / stdfs::path(p).relative_path();
        std::error_code ec;
        if (!stdfs::exists(stdfs::symlink_status(abs, ec))) continue;
        add_path(out.get(), disk.get(), root, abs, paths, names, out_file);
    }
    if (archive_write_close(out.get()) != ARCHIVE_OK) fail(out.get(), "cannot finish " + out_file.string());
    if (::fsync(fd) != 0) throw system_error("cannot write " + out_file.string(), errno);
    return names;
}

std::vector<std::string> list_entries(const stdfs::path& archive_file) {
    ReadPtr in(archive_read_new());
    archive_read_support_filter_all(in.get());
    archive_read_support_format_all(in.get());
    if (archive_read_open_filename(in.get(), archive_file.c_str(), 65536) != ARCHIVE_OK)
        fail(in.get(), "cannot open " + archive_file.string());
    std::vector<std::string> names;
    archive_entry* entry = nullptr;
    int rc;
    while ((rc = archive_read_next_header(in.get(), &entry)) == ARCHIVE_OK) {
        names.emplace_back(archive_entry_pathname(entry));
        if (archive_read_data_skip(in.get()) != ARCHIVE_OK) fail(in.get(), archive_file.string() + " is damaged");
    }
    if (rc != ARCHIVE_EOF) fail(in.get(), archive_file.string() + " is damaged");
    return names;
}

void check_restorable(const stdfs::path& archive_file, const stdfs::path& root,
                      const std::vector<std::string>& paths) {
    ReadPtr in(archive_read_new());
    archive_read_support_filter_all(in.get());
    archive_read_support_format_all(in.get());
    if (archive_read_open_filename(in.get(), archive_file.c_str(), 65536) != ARCHIVE_OK)
        fail(in.get(), "cannot open " + archive_file.string());
    std::map<std::string, std::string> links;  // "/home/leo/etc/x" -> target, as the archive holds them
    std::vector<std::string> order;
    archive_entry* entry = nullptr;
    int rc;
    while ((rc = archive_read_next_header(in.get(), &entry)) == ARCHIVE_OK) {
        const std::string name = archive_entry_pathname(entry);
        const stdfs::path rel(name);
        const std::string inside = "/" + rel.lexically_normal().string();
        const bool saved = std::any_of(paths.begin(), paths.end(), [&](const std::string& p) {
            return is_within(inside, p);
        });
        if (name.empty() || name[0] == '/' || !saved ||
            std::any_of(rel.begin(), rel.end(), [](const stdfs::path& c) { return c == ".."; }))
            throw RefusedError(fmt::format("{} holds '{}', which is not configuration ({}); nothing was changed",
                                           archive_file.string(), name, fmt::join(paths, ", ")));
        const auto type = archive_entry_filetype(entry);
        if (archive_entry_hardlink(entry) != nullptr || (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK))
            throw RefusedError(fmt::format("{} holds '{}', which is not a file, a directory or a symbolic link (a "
                                           "restore point holds no other kind); nothing was changed",
                                           archive_file.string(), name));
        if (type == AE_IFLNK) {
            const char* target = archive_entry_symlink(entry);
            links[inside] = target != nullptr ? target : "";
            order.push_back(inside);
        }
        if (archive_read_data_skip(in.get()) != ARCHIVE_OK) fail(in.get(), archive_file.string() + " is damaged");
    }
    if (rc != ARCHIVE_EOF) fail(in.get(), archive_file.string() + " is damaged");
    // Links as they will be once extracted: the archive's, else what is on disk.
    const auto on_disk = disk_links(root);
    const LinkReader restored = [&](const std::string& inside) -> std::optional<std::string> {
        if (const auto it = links.find(inside); it != links.end()) return it->second;
        return on_disk(inside);
    };
    for (const auto& inside : order)
        if (const auto why = link_escapes(inside, links[inside], paths, restored))
            throw RefusedError(fmt::format("{} holds the symbolic link {} -> {}: {}; it cannot be restored, nothing "
                                           "was changed",
                                           archive_file.string(), inside.substr(1), links[inside], why->substr(3)));
}

void extract(const stdfs::path& archive_file, const stdfs::path& root) {
    ReadPtr in(archive_read_new());
    archive_read_support_filter_all(in.get());
    archive_read_support_format_all(in.get());
    if (archive_read_open_filename(in.get(), archive_file.c_str(), 65536) != ARCHIVE_OK)
        fail(in.get(), "cannot open " + archive_file.string());
    WritePtr disk(archive_write_disk_new());
    archive_write_disk_set_options(disk.get(), ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                                   ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                   ARCHIVE_EXTRACT_UNLINK);
    archive_entry* entry = nullptr;
    int rc;
    while ((rc = archive_read_next_header(in.get(), &entry)) == ARCHIVE_OK) {
        const std::string name = archive_entry_pathname(entry);
        const stdfs::path rel(name);
        if (name.empty() || rel.is_absolute() ||
            std::any_of(rel.begin(), rel.end(), [](const stdfs::path& c) { return c == ".."; }))
            throw SystemError(fmt::format("{}: refusing entry '{}' (absolute or with ..)", archive_file.string(), name));
        const std::string dest = (root / rel).string();
        archive_entry_copy_pathname(entry, dest.c_str());
        if (archive_write_header(disk.get(), entry) != ARCHIVE_OK) fail(disk.get(), "cannot restore " + dest);
        const void* buf;
        size_t size;
        la_int64_t offset;
        int r;
        while ((r = archive_read_data_block(in.get(), &buf, &size, &offset)) == ARCHIVE_OK)
            if (archive_write_data_block(disk.get(), buf, size, offset) != ARCHIVE_OK)
                fail(disk.get(), "cannot restore " + dest);
        if (r != ARCHIVE_EOF) fail(in.get(), archive_file.string() + " is damaged");
        if (archive_write_finish_entry(disk.get()) != ARCHIVE_OK) fail(disk.get(), "cannot restore " + dest);
    }
    if (rc != ARCHIVE_EOF) fail(in.get(), archive_file.string() + " is damaged");
}

std::map<std::string, std::string> regular_file_contents(const stdfs::path& archive_file, std::size_t limit) {
    ReadPtr in(archive_read_new());
    archive_read_support_filter_all(in.get());
    archive_read_support_format_all(in.get());
    if (archive_read_open_filename(in.get(), archive_file.c_str(), 65536) != ARCHIVE_OK)
        fail(in.get(), "cannot open " + archive_file.string());
    std::map<std::string, std::string> out;
    std::size_t total = 0;
    archive_entry* entry = nullptr;
    int rc;
    while ((rc = archive_read_next_header(in.get(), &entry)) == ARCHIVE_OK) {
        if (archive_entry_filetype(entry) != AE_IFREG) {
            if (archive_read_data_skip(in.get()) != ARCHIVE_OK) fail(in.get(), archive_file.string() + " is damaged");
            continue;
        }
        std::string data;
        char buf[65536];
        la_ssize_t n;
        while ((n = archive_read_data(in.get(), buf, sizeof buf)) > 0) {
            total += static_cast<std::size_t>(n);
            if (total > limit)
                throw SystemError(fmt::format("{}: its files add up to more than {} bytes", archive_file.string(),
                                              limit));
            data.append(buf, static_cast<std::size_t>(n));
        }
        if (n < 0) fail(in.get(), archive_file.string() + " is damaged");
        out.emplace(archive_entry_pathname(entry), std::move(data));
    }
    if (rc != ARCHIVE_EOF) fail(in.get(), archive_file.string() + " is damaged");
    return out;
}

} // namespace leo::archive
