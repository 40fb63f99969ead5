#include "leo/common/archive.hpp"

#include "leo/common/error.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>

#include <fcntl.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

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

void add_path(struct archive* out, struct archive* disk, const stdfs::path& root, const stdfs::path& abs,
              std::vector<std::string>& names, const stdfs::path& out_file) {
    std::unique_ptr<archive_entry, EntryDeleter> entry(archive_entry_new());
    // Lexically: stdfs::relative() resolves links, which would store a link the leo account
    // planted under the name of what it points to (and so poison the restore point).
    const std::string name = abs.lexically_relative(root).string();
    archive_entry_copy_sourcepath(entry.get(), abs.c_str());
    if (archive_read_disk_entry_from_file(disk, entry.get(), -1, nullptr) != ARCHIVE_OK)
        fail(disk, "cannot read " + abs.string());
    archive_entry_copy_pathname(entry.get(), name.c_str());
    if (archive_write_header(out, entry.get()) != ARCHIVE_OK) fail(out, "cannot write " + out_file.string());
    names.push_back(name);
    std::error_code ec;
    if (stdfs::is_regular_file(stdfs::symlink_status(abs, ec))) {
        // O_NOFOLLOW: the entry was a regular file a moment ago; if it became a link since,
        // refuse it rather than archive what it points to.
        const int fd = ::open(abs.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) throw system_error("cannot read " + abs.string(), errno);
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
        for (const auto& c : children) add_path(out, disk, root, c, names, out_file);
    }
}
} // namespace

std::vector<std::string> create_tar_gz(const stdfs::path& root, const std::vector<std::string>& paths,
                                       const stdfs::path& out_file) {
    WritePtr out(archive_write_new());
    archive_write_add_filter_gzip(out.get());
    archive_write_set_format_pax_restricted(out.get());
    if (archive_write_open_filename(out.get(), out_file.c_str()) != ARCHIVE_OK)
        fail(out.get(), "cannot create " + out_file.string());
    ReadPtr disk(archive_read_disk_new());
    archive_read_disk_set_standard_lookup(disk.get());
    std::vector<std::string> names;
    for (const auto& p : paths) {
        const stdfs::path abs = root / stdfs::path(p).relative_path();
        std::error_code ec;
        if (!stdfs::exists(stdfs::symlink_status(abs, ec))) continue;
        add_path(out.get(), disk.get(), root, abs, names, out_file);
    }
    if (archive_write_close(out.get()) != ARCHIVE_OK) fail(out.get(), "cannot finish " + out_file.string());
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
