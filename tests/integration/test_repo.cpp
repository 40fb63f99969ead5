// leo::repo against real HTTP (an in-test server on loopback), file:// URLs, the repository
// repo_02 that scripts/build-test-packages.sh builds at test time (packages named as
// createrepo_c's test data) and repositories made by the real createrepo_c tool.
#include "http_server.hpp"
#include "repo_support.hpp"
#include "test_support.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/repo/metadata.hpp"
#include "leo/rpm/evr.hpp"

#include <algorithm>
#include <cstdlib>
#include <csignal>
#include <stdexcept>
#include <sys/resource.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

namespace {
namespace stdfs = std::filesystem;
using leo::test::mode_of;
using leo::test::owner_of;
using leo::test::slurp;
using leo::repo::Metadata;
using leo::repo::PackageEntry;
using leo::repo::RepoConfig;
using leo::test::repo_config;
using leo::fs::SystemRoot;
using leo::test::closed_port_url;
using leo::test::Contains;
using leo::test::HttpServer;
using leo::test::list_dir;
using leo::test::repo_error;
using leo::test::TempDir;

const std::string k_fake_bash = "fake_bash-1.1.1-1.x86_64.rpm";
const std::string k_super_kernel = "super_kernel-6.0.1-2.x86_64.rpm";

/// The repository of fake_bash and super_kernel that scripts/build-test-packages.sh builds
/// (createrepo_c, revision 1334670929): no built package is committed.
stdfs::path repo_02() { return leo::test::test_packages_dir() / "repo_02"; }

/// repo_02's primary metadata file: createrepo_c names it "<sha256 of the file>-primary.xml.gz".
std::string primary_name() {
    for (const auto& e : stdfs::directory_iterator(repo_02() / "repodata")) {
        if (e.path().filename().string().ends_with("-primary.xml.gz")) return e.path().filename().string();
    }
    throw std::runtime_error("no *-primary.xml.gz in " + (repo_02() / "repodata").string());
}
std::string primary_sha256() { return leo::crypto::file_digest_hex("sha256", repo_02() / "repodata" / primary_name()); }

/// A copy of repo_02 in a temporary directory, to break.
stdfs::path copy_repo_02(const TempDir& tmp) {
    const auto dir = tmp.path() / "repo";
    stdfs::copy(repo_02(), dir, stdfs::copy_options::recursive);
    return dir;
}

/// find_package() under the tests' short name.
constexpr auto find = &leo::test::find_package;

void expect_fixture_packages(const Metadata& md, const std::string& base_url) {
    ASSERT_EQ(md.packages.size(), 2u);
    EXPECT_EQ(md.revision, "1334670929");
    const PackageEntry& bash = md.packages[0];
    EXPECT_EQ(bash.name, "fake_bash");
    EXPECT_EQ(bash.arch, "x86_64");
    EXPECT_EQ(bash.epoch, 0u);
    EXPECT_EQ(bash.version, "1.1.1");
    EXPECT_EQ(bash.release, "1");
    EXPECT_EQ(bash.nevra(), "fake_bash-1.1.1-1.x86_64");
    EXPECT_EQ(bash.location_href, k_fake_bash);
    EXPECT_EQ(bash.location_base, "");
    EXPECT_EQ(bash.base_url, base_url);
    const PackageEntry& kernel = md.packages[1];
    EXPECT_EQ(kernel.name, "super_kernel");
    EXPECT_EQ(kernel.nevra(), "super_kernel-6.0.1-2.x86_64");
    EXPECT_EQ(kernel.location_href, k_super_kernel);
    // checksums and sizes agree with the real files createrepo_c read
    for (const PackageEntry* p : {&bash, &kernel}) {
        const auto file = repo_02() / p->location_href;
        EXPECT_EQ(p->checksum_type, "sha256");
        EXPECT_EQ(p->checksum, leo::crypto::file_digest_hex("sha256", file)) << p->name;
        EXPECT_EQ(p->size, stdfs::file_size(file)) << p->name;
    }
}

// ---- the fixture repository, as it should be ----------------------------------------------

TEST(RepoHttp, LoadsFixtureMetadata) {
    HttpServer server(repo_02());
    TempDir cache;
    const auto repo = repo_config("fixture", {server.url()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    EXPECT_EQ(md.repo_id, "fixture");
    expect_fixture_packages(md, server.url());
    EXPECT_EQ(md.packages[0].url(), server.url() + "/" + k_fake_bash);
    EXPECT_EQ(server.request_count("/repodata/repomd.xml"), 1u);
    EXPECT_EQ(server.request_count(primary_name()), 1u);
    EXPECT_EQ(server.request_count("-filelists.xml.gz"), 0u) << "only primary is needed";
    // repomd.xml is kept in cache_dir/<repo id>/; primary is scanned as it arrives, not kept
    EXPECT_EQ(list_dir(cache.path()), (std::vector<std::string>{"fixture", "fixture/repomd.xml"}));
}

TEST(RepoHttp, ProxyNoneIgnoresTheEnvironmentsProxy) {
    // yum: proxy=_none_ is no proxy at all; without a proxy setting the environment's counts.
    HttpServer server(repo_02());
    TempDir cache;
    auto repo = repo_config("direct", {server.url()});
    repo.timeout = 2;
    repo.retries = 1;
    ::setenv("http_proxy", "http://127.0.0.1:9", 1);  // the discard port: nothing listens
    const std::string through_env = repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    repo.no_proxy = true;
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    ::unsetenv("http_proxy");
    EXPECT_FALSE(through_env.empty());
    EXPECT_EQ(md.packages.size(), 2u);
}

TEST(RepoHttp, TrailingSlashInBaseurl) {
    HttpServer server(repo_02());
    TempDir cache;
    const Metadata md = leo::repo::load_metadata(repo_config("slash", {server.url() + "/"}), SystemRoot(cache.path()), "/");
    ASSERT_EQ(md.packages.size(), 2u);
    EXPECT_EQ(md.packages[1].url(), server.url() + "/" + k_super_kernel);
}

TEST(RepoHttp, FilterKeepsOnlyMatchingNames) {
    HttpServer server(repo_02());
    TempDir cache;
    const Metadata md = leo::repo::load_metadata(repo_config("fixture", {server.url()}), SystemRoot(cache.path()), "/",
                                                 [](const std::string& name) { return name == "super_kernel"; });
    ASSERT_EQ(md.packages.size(), 1u);
    EXPECT_EQ(md.packages[0].name, "super_kernel");
}

TEST(RepoHttp, DownloadsAndVerifiesBothPackages) {
    HttpServer server(repo_02());
    TempDir cache;
    TempDir dest;
    const auto repo = repo_config("fixture", {server.url()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    for (const auto& p : md.packages) {
        std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
        const auto path = leo::repo::download_package(
            repo, p, SystemRoot(dest.path()), "/", [&](std::uint64_t done, std::uint64_t total) { calls.emplace_back(done, total); });
        EXPECT_EQ(path, dest.path() / p.location_href);
        EXPECT_EQ(leo::fs::read_file(path), leo::fs::read_file(repo_02() / p.location_href));
        ASSERT_FALSE(calls.empty()) << "progress is reported";
        EXPECT_EQ(calls.back(), std::make_pair(p.size, p.size));
        EXPECT_TRUE(std::is_sorted(calls.begin(), calls.end()));
    }
    EXPECT_EQ(list_dir(dest.path()), (std::vector<std::string>{k_fake_bash, k_super_kernel}));
}

TEST(RepoHttp, FollowsRedirects) {
    HttpServer server(repo_02());
    server.redirect("/old/repodata/repomd.xml", "/repodata/repomd.xml");
    server.redirect("/old/repodata/" + primary_name(), server.url() + "/repodata/" + primary_name());
    TempDir cache;
    const Metadata md = leo::repo::load_metadata(repo_config("moved", {server.url() + "/old"}), SystemRoot(cache.path()), "/");
    EXPECT_EQ(md.packages.size(), 2u);
    EXPECT_EQ(server.request_count("/repodata/repomd.xml"), 2u);
}

TEST(RepoFile, FileBaseurlLoadsAndDownloads) {
    TempDir cache;
    TempDir dest;
    const std::string url = "file://" + repo_02().string();
    const auto repo = repo_config("local", {url});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    expect_fixture_packages(md, url);
    const auto path = leo::repo::download_package(repo, find(md, "fake_bash"), SystemRoot(dest.path()), "/");
    EXPECT_EQ(leo::fs::read_file(path), leo::fs::read_file(repo_02() / k_fake_bash));
}

TEST(RepoFile, MissingFileRepository) {
    TempDir cache;
    TempDir empty;
    const std::string url = "file://" + (empty.path() / "nothing").string();
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("gone", {url}), SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository gone"));
    EXPECT_TRUE(Contains(message, url + "/repodata/repomd.xml"));
    EXPECT_TRUE(Contains(message, "check baseurl in /etc/yum.repos.d/test.repo"));
}

TEST(RepoHttp, FetchUrl) {
    HttpServer server(repo_02());
    const auto repo = repo_config("fixture", {server.url()});
    EXPECT_EQ(leo::repo::fetch_url(repo, server.url() + "/repodata/repomd.xml"),
              leo::fs::read_file(repo_02() / "repodata/repomd.xml"));
    const std::string message = repo_error([&] { (void)leo::repo::fetch_url(repo, server.url() + "/no.key"); });
    EXPECT_TRUE(Contains(message, "HTTP 404 for " + server.url() + "/no.key"));
    EXPECT_TRUE(Contains(message, "check gpgkey in /etc/yum.repos.d/test.repo"));
}

TEST(RepoHttp, FallsBackToTheNextBaseurl) {
    HttpServer server(repo_02());
    TempDir cache;
    const Metadata md =
        leo::repo::load_metadata(repo_config("two", {closed_port_url(), server.url()}), SystemRoot(cache.path()), "/");
    ASSERT_EQ(md.packages.size(), 2u);
    EXPECT_EQ(md.packages[0].base_url, server.url());
}

// ---- bad input: one clear message, nothing left behind -------------------------------------

TEST(RepoErrors, Unreachable) {
    TempDir cache;
    const std::string url = closed_port_url();
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("down", {url}), SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository down"));
    EXPECT_TRUE(Contains(message, "cannot fetch " + url + "/repodata/repomd.xml"));
    EXPECT_TRUE(Contains(message, "check baseurl in /etc/yum.repos.d/test.repo"));
}

TEST(RepoErrors, EveryBaseurlFailed) {
    TempDir cache;
    const std::string a = closed_port_url();
    HttpServer server(repo_02());
    server.fail("repomd.xml", 503);
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("both", {a, server.url()}), SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "every baseurl failed"));
    EXPECT_TRUE(Contains(message, a + "/repodata/repomd.xml"));
    EXPECT_TRUE(Contains(message, "HTTP 503 for " + server.url() + "/repodata/repomd.xml"));
}

TEST(RepoErrors, RepomdNotFound) {
    HttpServer server(repo_02());
    server.fail("repomd.xml", 404);
    TempDir cache;
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("r404", {server.url()}), SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository r404"));
    EXPECT_TRUE(Contains(message, "HTTP 404 for " + server.url() + "/repodata/repomd.xml"));
    EXPECT_TRUE(Contains(message, "check baseurl in /etc/yum.repos.d/test.repo"));
}

TEST(RepoErrors, MalformedRepomd) {
    TempDir tmp;
    const auto dir = copy_repo_02(tmp);
    const std::string good = leo::fs::read_file(dir / "repodata/repomd.xml");
    leo::fs::write_file_atomic(dir / "repodata/repomd.xml", good.substr(0, good.find("<data type=\"primary\">") + 30));
    HttpServer server(dir);
    TempDir cache;
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("bad", {server.url()}), SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository bad: repodata/repomd.xml from " + server.url() +
                                      "/repodata/repomd.xml is not valid repomd XML: "));
    EXPECT_TRUE(Contains(message, "(line "));
}

TEST(RepoErrors, RepomdOfTheWrongKind) {
    TempDir tmp;
    const auto dir = copy_repo_02(tmp);
    HttpServer server(dir);
    TempDir cache;
    const auto repo = repo_config("odd", {server.url()});
    leo::fs::write_file_atomic(dir / "repodata/repomd.xml", "<html><body>Not here</body></html>\n");
    EXPECT_TRUE(Contains(repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); }),
                         "the root element is <html>, expected <repomd>"));
    leo::fs::write_file_atomic(dir / "repodata/repomd.xml", "");
    EXPECT_TRUE(Contains(repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); }),
                         "is not valid repomd XML"));
    leo::fs::write_file_atomic(dir / "repodata/repomd.xml",
                               "<repomd xmlns=\"http://linux.duke.edu/metadata/repo\"><revision>1</revision>"
                               "<data type=\"other\"><location href=\"repodata/o.xml.gz\"/></data></repomd>");
    EXPECT_TRUE(Contains(repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); }),
                         "lists no primary metadata"));
}

TEST(RepoErrors, PrimaryChecksumMismatch) {
    HttpServer server(repo_02());
    server.corrupt(primary_name(), 100);
    TempDir cache;
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("sum", {server.url()}), SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository sum: primary metadata " + primary_name() + " from " + server.url() +
                                      "/repodata/" + primary_name()));
    EXPECT_TRUE(Contains(message, "checksum mismatch: expected sha256:" + primary_sha256() + ", got sha256:"));
    EXPECT_FALSE(Contains(message, "got sha256:" + primary_sha256()));
    EXPECT_EQ(list_dir(cache.path() / "sum"), (std::vector<std::string>{"repomd.xml"})) << "the bad file is removed";
}

TEST(RepoErrors, PrimaryTruncatedInTransfer) {
    HttpServer server(repo_02());
    server.truncate(primary_name(), 300);
    TempDir cache;
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("cut", {server.url()}), SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository cut: primary metadata " + primary_name()));
    EXPECT_TRUE(Contains(message, "cannot fetch " + server.url() + "/repodata/" + primary_name()));
    EXPECT_EQ(list_dir(cache.path() / "cut"), (std::vector<std::string>{"repomd.xml"}));
}

/// Replace primary with `bytes` and make repomd.xml's checksum and size agree with it,
/// so that the error comes from decompression or XML parsing.
void replace_primary(const stdfs::path& dir, const std::string& bytes) {
    leo::fs::write_file_atomic(dir / "repodata" / primary_name(), bytes);
    std::string repomd = leo::fs::read_file(dir / "repodata/repomd.xml");
    const std::string digest = leo::crypto::digest_hex("sha256", bytes);
    const auto at = repomd.find(">" + primary_sha256() + "</checksum>");
    repomd.replace(at + 1, primary_sha256().size(), digest);
    leo::fs::write_file_atomic(dir / "repodata/repomd.xml", repomd);
}

TEST(RepoErrors, PrimaryGzipTruncatedAtTheSource) {
    // cut in the gzip header's first block, and near the end of the stream
    for (const double fraction : {0.5, 0.9}) {
        TempDir tmp;
        const auto dir = copy_repo_02(tmp);
        const std::string gz = leo::fs::read_file(dir / "repodata" / primary_name());
        replace_primary(dir, gz.substr(0, static_cast<std::size_t>(static_cast<double>(gz.size()) * fraction)));
        HttpServer server(dir);
        TempDir cache;
        const std::string message =
            repo_error([&] { (void)leo::repo::load_metadata(repo_config("half", {server.url()}), SystemRoot(cache.path()), "/"); });
        EXPECT_TRUE(Contains(message, "repository half: primary metadata " + primary_name() + " from " +
                                          server.url() + "/repodata/" + primary_name() + ": is truncated"));
    }
}

TEST(RepoErrors, PrimaryNotXml) {
    TempDir tmp;
    const auto dir = copy_repo_02(tmp);
    replace_primary(dir, "<metadata><package type=\"rpm\"><name>x</name></metadata>");  // uncompressed, bad
    HttpServer server(dir);
    TempDir cache;
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("notxml", {server.url()}), SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "truncated or not valid XML: it ends inside package #1")) << message;
}

TEST(RepoErrors, PrimaryPackageWithoutChecksum) {
    TempDir tmp;
    const auto dir = copy_repo_02(tmp);
    replace_primary(dir, "<metadata packages=\"1\"><package type=\"rpm\"><name>x</name><arch>noarch</arch>"
                         "<version epoch=\"0\" ver=\"1\" rel=\"1\"/><location href=\"x.rpm\"/></package></metadata>");
    HttpServer server(dir);
    TempDir cache;
    EXPECT_TRUE(Contains(
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("nosum", {server.url()}), SystemRoot(cache.path()), "/"); }),
        "package x (#1): no usable <checksum>"));
}

TEST(RepoErrors, PackageChecksumMismatch) {
    TempDir tmp;
    const auto dir = copy_repo_02(tmp);
    std::string rpm = leo::fs::read_file(dir / k_fake_bash);
    std::reverse(rpm.begin() + 100, rpm.begin() + 200);  // same size, other bytes
    leo::fs::write_file_atomic(dir / k_fake_bash, rpm);
    HttpServer server(dir);
    TempDir cache;
    TempDir dest;
    const auto repo = repo_config("pkgsum", {server.url()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    const PackageEntry& p = find(md, "fake_bash");
    const std::string message = repo_error([&] { (void)leo::repo::download_package(repo, p, SystemRoot(dest.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository pkgsum: package fake_bash-1.1.1-1.x86_64 from " + server.url() + "/" +
                                      k_fake_bash + ": checksum mismatch: expected sha256:" + p.checksum +
                                      ", got sha256:" + leo::crypto::digest_hex("sha256", rpm)));
    EXPECT_TRUE(list_dir(dest.path()).empty());
}

TEST(RepoErrors, PackageCorruptedInTransfer) {
    HttpServer server(repo_02());
    TempDir cache;
    TempDir dest;
    const auto repo = repo_config("flip", {server.url()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    server.corrupt(k_super_kernel, 1000);
    const std::string message =
        repo_error([&] { (void)leo::repo::download_package(repo, find(md, "super_kernel"), SystemRoot(dest.path()), "/"); });
    EXPECT_TRUE(Contains(message, "checksum mismatch"));
    EXPECT_TRUE(list_dir(dest.path()).empty());
}

TEST(RepoErrors, PackageTruncatedMidDownload) {
    HttpServer server(repo_02());
    TempDir cache;
    TempDir dest;
    const auto repo = repo_config("trunc", {server.url()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    server.truncate(k_super_kernel, 1000);
    const std::string message =
        repo_error([&] { (void)leo::repo::download_package(repo, find(md, "super_kernel"), SystemRoot(dest.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository trunc: package super_kernel-6.0.1-2.x86_64: cannot fetch " +
                                      server.url() + "/" + k_super_kernel));
    EXPECT_TRUE(list_dir(dest.path()).empty()) << "no partial file is left";
}

TEST(RepoErrors, AWriteThatFailsStopsTheDownloadAndLeavesNothing) {
    // The package is written behind the transfer (repo/src/write_behind.hpp): a write that
    // fails there (here EFBIG, from a file size limit below the package's size, as ENOSPC
    // from a full disk) is reported with the file's path, and the partial file is removed.
    HttpServer server(repo_02());
    TempDir cache;
    TempDir dest;
    const auto repo = repo_config("full", {server.url()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    const PackageEntry& p = find(md, "super_kernel");
    ASSERT_GT(p.size, 2048u);
    rlimit before{};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &before), 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG
    rlimit small = before;
    small.rlim_cur = 2048;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    std::string message;
    try {
        (void)leo::repo::download_package(repo, p, SystemRoot(dest.path()), "/");
    } catch (const leo::Error& e) {
        message = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &before);
    std::signal(SIGXFSZ, old_handler);
    EXPECT_TRUE(Contains(message, "cannot write " + (dest.path() / (std::string(k_super_kernel) + ".part")).string() +
                                      ": File too large"))
        << message;
    EXPECT_TRUE(list_dir(dest.path()).empty()) << "no partial file is left";
}

TEST(RepoErrors, PackageNotFound) {
    HttpServer server(repo_02());
    TempDir cache;
    TempDir dest;
    const auto repo = repo_config("gone", {server.url()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    server.fail(k_fake_bash, 404);
    const std::string message =
        repo_error([&] { (void)leo::repo::download_package(repo, find(md, "fake_bash"), SystemRoot(dest.path()), "/"); });
    EXPECT_TRUE(Contains(message, "HTTP 404 for " + server.url() + "/" + k_fake_bash));
    EXPECT_TRUE(Contains(message, "metadata may be stale"));
    EXPECT_TRUE(list_dir(dest.path()).empty());
}

TEST(RepoErrors, PackageSizeDiffersFromMetadata) {
    HttpServer server(repo_02());
    TempDir cache;
    TempDir dest;
    const auto repo = repo_config("size", {server.url()});
    Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    PackageEntry p = find(md, "fake_bash");
    p.size += 1;
    EXPECT_TRUE(Contains(repo_error([&] { (void)leo::repo::download_package(repo, p, SystemRoot(dest.path()), "/"); }),
                         "size mismatch: expected " + std::to_string(p.size) + " bytes, got " +
                             std::to_string(p.size - 1)));
    EXPECT_TRUE(list_dir(dest.path()).empty());
}

TEST(RepoErrors, ProgressCallbackThrowingStopsTheDownload) {
    HttpServer server(repo_02());
    TempDir cache;
    TempDir dest;
    const auto repo = repo_config("cancel", {server.url()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    EXPECT_THROW((void)leo::repo::download_package(repo, md.packages[0], SystemRoot(dest.path()), "/",
                                                   [](std::uint64_t done, std::uint64_t) {
                                                       if (done > 0) {
                                                           throw std::runtime_error("cancelled");
                                                       }
                                                   }),
                 std::runtime_error);
    EXPECT_TRUE(list_dir(dest.path()).empty());
}

// ---- what a remote server controls: sizes, redirects, secrets ------------------------------

TEST(RepoLimits, PackageLargerThanPrimaryDeclaresIsStopped) {
    TempDir tmp;
    const auto dir = copy_repo_02(tmp);
    HttpServer server(dir);
    TempDir cache;
    TempDir dest;
    const auto repo = repo_config("big", {server.url()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    const PackageEntry& p = find(md, "fake_bash");
    // the server now sends more than primary declares
    leo::fs::write_file_atomic(dir / k_fake_bash, slurp(dir / k_fake_bash) + std::string(1 << 20, 'x'));
    leo::fs::write_file_atomic(dest.path() / "kept.txt", "unrelated");
    const std::string message =
        repo_error([&] { (void)leo::repo::download_package(repo, p, SystemRoot(dest.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository big: package fake_bash-1.1.1-1.x86_64 from " + server.url() + "/" +
                                      k_fake_bash));
    EXPECT_TRUE(Contains(message, "more than the " + std::to_string(p.size) +
                                      " bytes that primary's <size package> declares"));
    EXPECT_TRUE(Contains(message, std::to_string(p.size + (1 << 20)))) << "both sizes are named";
    EXPECT_TRUE(Contains(message, "the partial file was removed"));
    EXPECT_EQ(list_dir(dest.path()), (std::vector<std::string>{"kept.txt"}));
    EXPECT_EQ(slurp(dest.path() / "kept.txt"), "unrelated");
}

TEST(RepoLimits, FileBaseurlPackageLargerThanDeclaredIsStopped) {
    TempDir tmp;
    const auto dir = copy_repo_02(tmp);
    TempDir cache;
    TempDir dest;
    const auto repo = repo_config("local", {"file://" + dir.string()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    PackageEntry p = find(md, "super_kernel");
    p.size = 1000;  // primary says 1000 bytes; the file holds more
    const std::string message =
        repo_error([&] { (void)leo::repo::download_package(repo, p, SystemRoot(dest.path()), "/"); });
    EXPECT_TRUE(Contains(message, "more than the 1000 bytes that primary's <size package> declares"));
    EXPECT_TRUE(list_dir(dest.path()).empty()) << "no partial file is left";
}

TEST(RepoLimits, RepomdLargerThanTheCapIsStopped) {
    TempDir tmp;
    const auto dir = copy_repo_02(tmp);
    std::string repomd = slurp(dir / "repodata/repomd.xml");
    repomd += "<!-- " + std::string(leo::repo::k_repomd_limit, 'x') + " -->\n";
    leo::fs::write_file_atomic(dir / "repodata/repomd.xml", repomd);
    HttpServer server(dir);
    TempDir cache;
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("huge", {server.url()}), SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository huge: repodata/repomd.xml from " + server.url() +
                                      "/repodata/repomd.xml: the server announces " + std::to_string(repomd.size()) +
                                      " bytes, more than the 10485760 bytes of the cap for repomd.xml"));
    EXPECT_FALSE(stdfs::exists(cache.path() / "huge/repomd.xml"));
}

TEST(RepoLimits, PrimaryLargerThanRepomdDeclaresIsStopped) {
    TempDir tmp;
    const auto dir = copy_repo_02(tmp);
    std::string repomd = slurp(dir / "repodata/repomd.xml");
    const auto primary_at = repomd.find("<data type=\"primary\">");
    const auto size_at = repomd.find("<size>", primary_at);
    repomd.replace(size_at, repomd.find("</size>", size_at) - size_at, "<size>100");
    leo::fs::write_file_atomic(dir / "repodata/repomd.xml", repomd);
    HttpServer server(dir);
    TempDir cache;
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("sz", {server.url()}), SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "more than the 100 bytes that repomd.xml's <size> declares")) << message;
    EXPECT_EQ(list_dir(cache.path() / "sz"), (std::vector<std::string>{"repomd.xml"})) << "no partial file is left";
}

TEST(RepoLimits, GzipPrimaryInflatingPastItsOpenSizeIsStopped) {
    // a gzip bomb: 64 MiB of blanks inside <metadata>, about 64 KiB compressed, declared as 4 KiB
    TempDir tmp;
    const auto dir = copy_repo_02(tmp);
    const auto plain = tmp.path() / "bomb.xml";
    leo::fs::write_file_atomic(plain, "<metadata>" + std::string(std::size_t{64} << 20, ' ') + "</metadata>");
    leo::test::run_ok({"gzip", "-9", "-n", plain.string()});
    const std::string gz = slurp(tmp.path() / "bomb.xml.gz");
    replace_primary(dir, gz);
    std::string repomd = slurp(dir / "repodata/repomd.xml");
    const auto primary_at = repomd.find("<data type=\"primary\">");
    const auto size_at = repomd.find("<size>", primary_at);
    repomd.replace(size_at, repomd.find("</size>", size_at) - size_at, "<size>" + std::to_string(gz.size()));
    const auto open_at = repomd.find("<open-size>", primary_at);
    repomd.replace(open_at, repomd.find("</open-size>", open_at) - open_at, "<open-size>4096");
    leo::fs::write_file_atomic(dir / "repodata/repomd.xml", repomd);
    HttpServer server(dir);
    TempDir cache;
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("bomb", {server.url()}), SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository bomb: primary metadata " + primary_name()));
    EXPECT_TRUE(Contains(message, "decompresses to more than the 4096 bytes that repomd.xml's <open-size> declares"))
        << message;
}

TEST(RepoSafety, RedirectToFileIsRefused) {
    HttpServer server(repo_02());
    server.redirect("/repodata/repomd.xml", "file:///etc/passwd");
    TempDir cache;
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("redir", {server.url()}), SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "refusing the redirect from " + server.url() + "/repodata/repomd.xml to "
                                      "file:///etc/passwd"));
    // a package redirected to a local file, even the right one, is refused as well
    server.clear_faults();
    TempDir dest;
    const auto repo = repo_config("redir", {server.url()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    server.redirect(k_fake_bash, "file://" + (repo_02() / k_fake_bash).string());
    EXPECT_TRUE(Contains(
        repo_error([&] { (void)leo::repo::download_package(repo, find(md, "fake_bash"), SystemRoot(dest.path()), "/"); }),
        "refusing the redirect"));
    EXPECT_TRUE(list_dir(dest.path()).empty());
}

TEST(RepoSafety, PasswordsNeverInMessages) {
    HttpServer server(repo_02());
    server.fail("repomd.xml", 404);
    TempDir cache;
    const std::string url = "http://user:secretpw@127.0.0.1:" + std::to_string(server.port()) + "/repo";
    std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo_config("auth", {url}), SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "HTTP 404 for http://user:***@127.0.0.1:"));
    EXPECT_FALSE(Contains(message, "secretpw"));
    // two baseurls, a proxy with a password in its URL and proxy_password: nothing shows
    RepoConfig repo = repo_config("proxied", {url, "https://u2:secretpw2@127.0.0.1:1/"});
    repo.proxy = "http://pu:proxysecret@127.0.0.1:" + std::to_string(server.port());
    repo.proxy_username = "pu";
    repo.proxy_password = "proxypass3";
    message = repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    for (const char* secret : {"secretpw", "proxysecret", "proxypass3"}) {
        EXPECT_FALSE(Contains(message, secret)) << message;
    }
    message = repo_error([&] { (void)leo::repo::fetch_url(repo_config("k", {url}), url + "/no.key"); });
    EXPECT_FALSE(Contains(message, "secretpw"));
}

// ---- the cache: planted files and links are never written through ------------------------

TEST(RepoCache, PlantedPartLinkInAnotherUsersDirectoryIsRemovedNotFollowed) {
    HttpServer server(repo_02());
    TempDir outside;
    const auto victim = outside.path() / "victim";
    leo::fs::write_file_atomic(victim, "precious bytes");
    ASSERT_EQ(::chmod(victim.c_str(), 0600), 0);
    TempDir root_dir;
    const auto packages = root_dir.path() / "var/cache/leo-installer/packages";
    stdfs::create_directories(packages);
    // another user owns the cache directory and plants the partial download as a link
    ASSERT_EQ(::chown(packages.c_str(), 54321, 54321), 0);
    ASSERT_EQ(::chmod(packages.c_str(), 0777), 0);
    stdfs::create_symlink(victim, packages / (k_fake_bash + ".part"));
    ASSERT_EQ(::lchown((packages / (k_fake_bash + ".part")).c_str(), 54321, 54321), 0);
    leo::fs::write_file_atomic(packages / (k_super_kernel + ".part"), "garbage left by someone");
    ASSERT_EQ(::chown((packages / (k_super_kernel + ".part")).c_str(), 54321, 54321), 0);

    const auto repo = repo_config("fixture", {server.url()});
    const SystemRoot root(root_dir.path());
    const Metadata md = leo::repo::load_metadata(repo, root, "/var/cache/leo-installer/metadata");
    for (const auto& p : md.packages) {
        const auto path = leo::repo::download_package(repo, p, root, "/var/cache/leo-installer/packages");
        EXPECT_EQ(slurp(path), slurp(repo_02() / p.location_href));
        EXPECT_EQ(mode_of(path), 0644u);
        EXPECT_EQ(owner_of(path), 0u);
    }
    EXPECT_EQ(slurp(victim), "precious bytes");
    EXPECT_EQ(mode_of(victim), 0600u);
    EXPECT_EQ(mode_of(packages), 0755u) << "the directory is brought back to root's";
    EXPECT_EQ(owner_of(packages), 0u);
    EXPECT_EQ(list_dir(packages), (std::vector<std::string>{k_fake_bash, k_super_kernel}));
}

TEST(RepoCache, LinkedCacheDirectoryInAWorldWritableParentIsRefused) {
    HttpServer server(repo_02());
    TempDir outside;
    TempDir root_dir;
    stdfs::create_directories(root_dir.path() / "var/cache");
    ASSERT_EQ(::chmod((root_dir.path() / "var/cache").c_str(), 01777), 0);
    stdfs::create_directory_symlink(outside.path(), root_dir.path() / "var/cache/leo-installer");
    try {
        (void)leo::repo::load_metadata(repo_config("fixture", {server.url()}), SystemRoot(root_dir.path()),
                                       "/var/cache/leo-installer/metadata");
        ADD_FAILURE() << "followed the link";
    } catch (const leo::SystemError& e) {
        EXPECT_TRUE(Contains(e.what(), (root_dir.path() / "var/cache/leo-installer").string()));
        EXPECT_TRUE(Contains(e.what(), "symbolic link"));
    }
    EXPECT_TRUE(list_dir(outside.path()).empty());
}

// ---- repositories made by createrepo_c from broker RPMs built from our spec ----------------

/// The broker RPMs of five versions (built once for the suite).
class BrokerRepo : public ::testing::TestWithParam<std::string> {
protected:
    static inline TempDir* s_rpms = nullptr;

    static void SetUpTestSuite() {
        s_rpms = new TempDir();
        for (const std::string version : {"9.0.7", "9.1.2", "9.1.10", "9.2.0~rc1", "9.2.0"}) {
            leo::test::build_broker_rpm(version, s_rpms->path());
        }
    }
    static void TearDownTestSuite() {
        delete s_rpms;
        s_rpms = nullptr;
    }
};

TEST_P(BrokerRepo, ListsAllFiveVersionsAndDownloadsThem) {
    const std::string compression = GetParam();
    TempDir tmp;
    const auto dir = tmp.path() / "broker";
    stdfs::copy(s_rpms->path(), dir, stdfs::copy_options::recursive);
    leo::test::run_ok({"createrepo_c", "--no-database", "--general-compress-type=" + compression, dir.string()});
    bool found_primary = false;
    for (const auto& e : stdfs::directory_iterator(dir / "repodata")) {
        found_primary |= e.path().filename().string().ends_with("-primary.xml." + compression);
    }
    ASSERT_TRUE(found_primary) << "createrepo_c wrote a ." << compression << " primary";

    HttpServer server(dir);
    TempDir cache;
    TempDir dest;
    const auto repo = repo_config("leostream", {server.url()});
    Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/",
                                           [](const std::string& name) { return name == "leostream-broker"; });
    ASSERT_EQ(md.packages.size(), 5u);
    std::sort(md.packages.begin(), md.packages.end(), [](const PackageEntry& a, const PackageEntry& b) {
        return leo::rpm::compare_evr({a.epoch, a.version, a.release}, {b.epoch, b.version, b.release}) < 0;
    });
    std::vector<std::string> nevras;
    for (const auto& p : md.packages) {
        nevras.push_back(p.nevra());
        EXPECT_EQ(p.epoch, 0u);
        EXPECT_EQ(p.checksum, leo::crypto::file_digest_hex(p.checksum_type, dir / p.location_href)) << p.nevra();
        EXPECT_EQ(p.size, stdfs::file_size(dir / p.location_href));
    }
    const std::string arch = md.packages[0].arch;
    EXPECT_EQ(nevras, (std::vector<std::string>{
                          "leostream-broker-9.0.7-1." + arch, "leostream-broker-9.1.2-1." + arch,
                          "leostream-broker-9.1.10-1." + arch, "leostream-broker-9.2.0~rc1-1." + arch,
                          "leostream-broker-9.2.0-1." + arch}));
    // the release candidate, tilde and all, downloads and verifies
    const auto path = leo::repo::download_package(repo, md.packages[3], SystemRoot(dest.path()), "/");
    EXPECT_EQ(path.filename(), "leostream-broker-9.2.0~rc1-1." + arch + ".rpm");
    EXPECT_EQ(leo::fs::read_file(path), leo::fs::read_file(dir / md.packages[3].location_href));
    // and file:// gives the same list
    Metadata local = leo::repo::load_metadata(repo_config("local", {"file://" + dir.string()}), SystemRoot(cache.path()), "/");
    EXPECT_EQ(local.packages.size(), 5u);
}

INSTANTIATE_TEST_SUITE_P(Compression, BrokerRepo, ::testing::Values("gz", "xz", "bz2"));

} // namespace
