// The support bundle's ZIP (libarchive) and its file, created without following any link.
#include "support_bundle_zip.hpp"

#include "leo/common/error.hpp"
#include "leo/common/redact.hpp"

#include <cerrno>
#include <cstring>

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

namespace leo::installer::detail {
namespace stdfs = std::filesystem;

namespace {
struct EntryDeleter {
    void operator()(archive_entry* e) const noexcept { archive_entry_free(e); }
};

[[noreturn]] void fail(struct archive* a, const std::string& what) {
    const char* msg = a != nullptr ? archive_error_string(a) : nullptr;
    throw SystemError(fmt::format("{}: {}", what, msg != nullptr ? msg : "libarchive error"));
}
} // namespace

ZipWriter::ZipWriter(int fd, std::string shown, std::time_t mtime) : m_shown(std::move(shown)), m_mtime(mtime) {
    m_archive = archive_write_new();
    if (m_archive == nullptr) throw SystemError("cannot write " + m_shown + ": out of memory");
    if (archive_write_set_format_zip(m_archive) != ARCHIVE_OK ||
        archive_write_set_options(m_archive, "zip:compression=deflate") != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(m_archive, 1) != ARCHIVE_OK ||
        archive_write_open_fd(m_archive, fd) != ARCHIVE_OK)
        fail(m_archive, "cannot write " + m_shown);
}

ZipWriter::~ZipWriter() {
    if (m_archive != nullptr) archive_write_free(m_archive);
}

void ZipWriter::add(const std::string& name, std::string_view content) {
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0600);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(content.size()));
    archive_entry_set_mtime(e.get(), m_mtime, 0);
    if (archive_write_header(m_archive, e.get()) != ARCHIVE_OK) fail(m_archive, "cannot write " + m_shown + ": " + name);
    std::size_t done = 0;
    while (done < content.size()) {
        const la_ssize_t n = archive_write_data(m_archive, content.data() + done, content.size() - done);
        if (n < 0) fail(m_archive, "cannot write " + m_shown + ": " + name);
        done += static_cast<std::size_t>(n);
    }
    if (archive_write_finish_entry(m_archive) != ARCHIVE_OK) fail(m_archive, "cannot write " + m_shown + ": " + name);
}

void ZipWriter::finish() {
    if (archive_write_close(m_archive) != ARCHIVE_OK) fail(m_archive, "cannot write " + m_shown);
}

void BundleFile::complete() {
    if (::fsync(fd.get()) != 0) throw SystemError(fmt::format("cannot write {}: {}", host.string(), std::strerror(errno)));
    if (owner && ::fchown(fd.get(), owner->uid, owner->gid) != 0)
        throw SystemError(fmt::format("cannot give {} to leo: {}", host.string(), std::strerror(errno)));
}

BundleFile create_bundle_file(const stdfs::path& root, const std::optional<stdfs::path>& output_dir,
                              const std::string& name, std::optional<fs::Owner> leo_owner) {
    BundleFile out;
    std::string dir_inside;
    if (output_dir) {
        // The administrator's directory: reached as a root of its own, so the file in it is
        // still created without following a link.
        const auto dir = stdfs::absolute(*output_dir).lexically_normal();
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0)  // not-under-root: the administrator's --output
            throw UsageError(fmt::format("--output {}: {}; give an existing directory", printable(output_dir->string()),
                                         std::strerror(errno)));
        if (!S_ISDIR(st.st_mode))
            throw UsageError(fmt::format("--output {}: not a directory; give an existing directory",
                                         printable(output_dir->string())));
        out.dir_root = std::make_unique<fs::SystemRoot>(dir);
        dir_inside = "/";
        leo_owner.reset();
    } else {
        out.dir_root = std::make_unique<fs::SystemRoot>(root);
        dir_inside = fs::SystemRoot::k_home;
        const auto st = out.dir_root->stat(dir_inside);
        if (!st || !S_ISDIR(st->st_mode))
            throw UsageError(fmt::format("{} is not a directory (is the broker installed?); give another with --output DIR",
                                         out.dir_root->host(dir_inside).string()));
    }
    const std::string stem = name.substr(0, name.size() - 4);  // without ".zip"
    for (int attempt = 1;; ++attempt) {
        const std::string file = attempt == 1 ? name : fmt::format("{}-{}.zip", stem, attempt);
        out.inside = (stdfs::path(dir_inside) / file).string();
        try {
            out.fd = out.dir_root->create_exclusive(out.inside, 0600);
            break;
        } catch (const SystemError&) {
            // Taken (by an earlier bundle in the same second, or a planted name): the next.
            if (!out.dir_root->exists(out.inside) || attempt >= 100) throw;
        }
    }
    out.host = out.dir_root->host(out.inside);
    out.owner = leo_owner;
    return out;
}

} // namespace leo::installer::detail
