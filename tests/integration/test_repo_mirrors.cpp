// Mirrors and failover of leo::repo against real HTTP servers on loopback: a lagging mirror,
// a mirror that stalls, a corrupt package, a mirrorlist server, a metalink with good and
// wrong hashes, retries of transient failures, and the one message when every mirror fails.
#include "http_server.hpp"
#include "repo_mirror_support.hpp"

#include "leo/common/crypto.hpp"
#include "leo/common/fs.hpp"
#include "leo/repo/metadata.hpp"

#include <chrono>

#include <gtest/gtest.h>

namespace {
namespace stdfs = std::filesystem;
using namespace leo::test::mirrors;

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---- failover for packages ------------------------------------------------------------------

TEST(RepoMirrors, LaggingMirrorServesMetadataButNotThePackage) {
    HttpServer lagging(repo_02());
    HttpServer good(repo_02());
    lagging.fail(k_fake_bash, 404);
    TempDir cache;
    TempDir dest;
    const auto repo = make_repo("lag", {lagging.url(), good.url()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    EXPECT_EQ(md.mirrors, (std::vector<std::string>{lagging.url(), good.url()}));
    const auto& bash = find(md, "fake_bash");
    EXPECT_EQ(bash.base_url, lagging.url()) << "the mirror that served the metadata comes first";
    ASSERT_TRUE(bash.mirrors);
    const auto path = leo::repo::download_package(repo, bash, SystemRoot(dest.path()), "/pkgs");
    EXPECT_EQ(path, dest.path() / "pkgs" / k_fake_bash);
    EXPECT_EQ(leo::crypto::file_digest_hex("sha256", path), bash.checksum);
    EXPECT_EQ(lagging.request_count(k_fake_bash), 1u) << "a 404 is never retried";
    EXPECT_EQ(good.request_count(k_fake_bash), 1u);
    EXPECT_EQ(list_dir(dest.path() / "pkgs"), (std::vector<std::string>{k_fake_bash}));
}

TEST(RepoMirrors, CorruptPackageOnTheFirstMirror) {
    HttpServer bad(repo_02());
    HttpServer good(repo_02());
    bad.corrupt(k_fake_bash, 500);
    TempDir cache;
    TempDir dest;
    const auto repo = make_repo("corrupt", {bad.url(), good.url()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    const auto path = leo::repo::download_package(repo, find(md, "fake_bash"), SystemRoot(dest.path()), "/pkgs");
    EXPECT_EQ(leo::crypto::file_digest_hex("sha256", path), find(md, "fake_bash").checksum);
    EXPECT_EQ(bad.request_count(k_fake_bash), 1u) << "a checksum mismatch is not retried on the same mirror";
    EXPECT_EQ(list_dir(dest.path() / "pkgs"), (std::vector<std::string>{k_fake_bash})) << "no .part left";
}

TEST(RepoMirrors, EveryMirrorFailedForAPackage) {
    HttpServer a(repo_02());
    HttpServer b(repo_02());
    a.fail(k_fake_bash, 404);
    b.corrupt(k_fake_bash, 10);
    TempDir cache;
    TempDir dest;
    const auto repo = make_repo("nopkg", {a.url(), b.url()});
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    const auto before = leo::test::snapshot_tree(dest.path());
    const std::string message = repo_error(
        [&] { (void)leo::repo::download_package(repo, find(md, "fake_bash"), SystemRoot(dest.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository nopkg: every baseurl failed (2 tried): package fake_bash-1.1.1-1.x86_64: "
                                  "HTTP 404 for " +
                                      a.url() + "/" + k_fake_bash));
    EXPECT_TRUE(Contains(message, "; package fake_bash-1.1.1-1.x86_64 from " + b.url() + "/" + k_fake_bash +
                                      ": checksum mismatch"));
    EXPECT_EQ(leo::test::snapshot_tree(dest.path()), before) << "nothing left behind";
}

// ---- failover for metadata ------------------------------------------------------------------

TEST(RepoMirrors, StallingMirrorIsLeftAfterTimeout) {
    HttpServer stalled(repo_02());
    HttpServer good(repo_02());
    stalled.stall("repomd.xml");
    TempDir cache;
    auto repo = make_repo("stall", {stalled.url(), good.url()});
    repo.timeout = 1;
    const auto start = std::chrono::steady_clock::now();
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    EXPECT_LT(seconds_since(start), 4.0) << "one timeout, then the next mirror";
    EXPECT_EQ(md.packages.at(0).base_url, good.url());
    EXPECT_EQ(md.mirrors, (std::vector<std::string>{good.url(), stalled.url()}));
    EXPECT_EQ(stalled.request_count("repomd.xml"), 1u) << "a stall of `timeout` is not retried";
    // alone, the stalled mirror's error says what happened and which settings decide it
    TempDir cache2;
    auto alone = make_repo("stall", {stalled.url()});
    alone.timeout = 1;
    alone.minrate = 100;
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(alone, SystemRoot(cache2.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository stall: repodata/repomd.xml: cannot fetch " + stalled.url() +
                                      "/repodata/repomd.xml: "));
    EXPECT_TRUE(Contains(message, "(stalled: less than 100 bytes/s for 1 s; see timeout and minrate in "
                                  "/etc/yum.repos.d/test.repo)"));
    EXPECT_TRUE(leo::test::snapshot_tree(cache2.path()).empty());
}

TEST(RepoMirrors, PackageStallingAfterHeaders) {
    HttpServer stalled(repo_02());
    HttpServer good(repo_02());
    TempDir cache;
    TempDir dest;
    auto repo = make_repo("stall2", {stalled.url(), good.url()});
    repo.timeout = 1;
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    stalled.stall(k_fake_bash, true);
    const auto start = std::chrono::steady_clock::now();
    const auto path = leo::repo::download_package(repo, find(md, "fake_bash"), SystemRoot(dest.path()), "/p");
    EXPECT_LT(seconds_since(start), 4.0);
    EXPECT_EQ(leo::crypto::file_digest_hex("sha256", path), find(md, "fake_bash").checksum);
    EXPECT_EQ(list_dir(dest.path() / "p"), (std::vector<std::string>{k_fake_bash}));
}

TEST(RepoMirrors, TransientFailuresAreRetriedOnTheSameUrl) {
    HttpServer server(repo_02());
    server.fail("repomd.xml", 503);
    TempDir cache;
    auto repo = make_repo("retry", {server.url()});
    repo.retries = 3;
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "HTTP 503 for " + server.url() + "/repodata/repomd.xml"));
    EXPECT_TRUE(Contains(message, "(3 attempts)"));
    EXPECT_EQ(server.request_count("repomd.xml"), 3u);
    server.fail("repomd.xml", 404);
    (void)repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    EXPECT_EQ(server.request_count("repomd.xml"), 4u) << "a 404 is not retried";
}

TEST(RepoMirrors, EveryMirrorFailedNamesEachAndRedactsPasswords) {
    HttpServer missing(repo_02());
    HttpServer broken(repo_02());
    missing.fail("repomd.xml", 404);
    broken.fail("repomd.xml", 500);
    TempDir cache;
    const std::string closed = closed_port_url();
    const std::string with_password = "http://admin:s3cr3tpw@127.0.0.1:" + std::to_string(missing.port());
    auto repo = make_repo("all", {closed, with_password, broken.url()});
    repo.retries = 1;
    const auto before = leo::test::snapshot_tree(cache.path());
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository all: every baseurl failed (3 tried): "));
    EXPECT_TRUE(Contains(message, "cannot fetch " + closed + "/repodata/repomd.xml"));
    EXPECT_TRUE(Contains(message, "HTTP 404 for http://admin:***@127.0.0.1:" + std::to_string(missing.port()) +
                                      "/repodata/repomd.xml"));
    EXPECT_TRUE(Contains(message, "HTTP 500 for " + broken.url() + "/repodata/repomd.xml"));
    EXPECT_FALSE(Contains(message, "s3cr3tpw"));
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one message, one line";
    EXPECT_EQ(leo::test::snapshot_tree(cache.path()), before);
}

// ---- mirrorlist -------------------------------------------------------------------------------

TEST(RepoMirrorlist, MirrorsFromAMirrorlistServer) {
    HttpServer a(repo_02());
    HttpServer b(repo_02());
    TempDir lists;
    a.fail("repomd.xml", 404); // the first mirror is not in sync
    leo::fs::write_file_atomic(lists.path() / "mirrorlist",
                               "# mirrors of the test repository\n\n" + a.url() + "/\n   " + b.url() + "/  \n");
    HttpServer list_server(lists.path());
    TempDir cache;
    auto repo = make_repo("ml", {});
    repo.mirrorlist = list_server.url() + "/mirrorlist?release=7&arch=x86_64";
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    EXPECT_EQ(md.packages.at(0).base_url, b.url() + "/");
    EXPECT_EQ(md.mirrors, (std::vector<std::string>{b.url() + "/", a.url() + "/"}));
    EXPECT_TRUE(md.warnings.empty());
    // the package failover uses the mirrorlist's mirrors too
    b.fail(k_fake_bash, 404);
    a.clear_faults();
    TempDir dest;
    const auto path = leo::repo::download_package(repo, find(md, "fake_bash"), SystemRoot(dest.path()), "/");
    EXPECT_EQ(a.request_count(k_fake_bash), 1u);
    EXPECT_TRUE(stdfs::exists(path));
}

TEST(RepoMirrorlist, BaseurlFirstThenMirrorlist) {
    HttpServer base(repo_02());
    HttpServer mirror(repo_02());
    TempDir lists;
    leo::fs::write_file_atomic(lists.path() / "mirrorlist", mirror.url() + "\n");
    HttpServer list_server(lists.path());
    TempDir cache;
    auto repo = make_repo("both", {base.url()});
    repo.mirrorlist = list_server.url() + "/mirrorlist";
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    EXPECT_EQ(md.mirrors, (std::vector<std::string>{base.url(), mirror.url()}));
    EXPECT_EQ(mirror.request_count(), 0u);
}

TEST(RepoMirrorlist, FileEntryInARemoteMirrorlistIsRefused) {
    TempDir local;
    const auto planted = copy_repo_02(local.path() / "planted");
    TempDir lists;
    leo::fs::write_file_atomic(lists.path() / "mirrorlist", "file://" + planted.string() + "/\n");
    HttpServer list_server(lists.path());
    TempDir cache;
    auto repo = make_repo("evil", {});
    repo.mirrorlist = list_server.url() + "/mirrorlist";
    const auto before = leo::test::snapshot_tree(cache.path());
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository evil: mirrorlist " + list_server.url() +
                                      "/mirrorlist lists no usable mirror (file://" + planted.string() +
                                      "/: a file:// mirror from a remote list is refused: a server may not make root "
                                      "read local files)"));
    EXPECT_EQ(leo::test::snapshot_tree(cache.path()), before);
    // beside a usable mirror, the file entry is skipped with a warning, never read
    HttpServer good(repo_02());
    leo::fs::write_file_atomic(lists.path() / "mirrorlist", "file://" + planted.string() + "/\n" + good.url() + "/\n");
    stdfs::remove(planted / "repodata/repomd.xml"); // were it read, the load would fail
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    EXPECT_EQ(md.mirrors, (std::vector<std::string>{good.url() + "/"}));
    ASSERT_EQ(md.warnings.size(), 1u);
    EXPECT_TRUE(Contains(md.warnings[0], "entry refused: file://" + planted.string()));
}

TEST(RepoMirrorlist, RedirectToAFileIsRefused) {
    TempDir lists;
    HttpServer list_server(lists.path());
    list_server.redirect("/mirrorlist", "file:///etc/passwd");
    TempDir cache;
    auto repo = make_repo("redir", {});
    repo.mirrorlist = list_server.url() + "/mirrorlist";
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository redir: mirrorlist: refusing the redirect from " + list_server.url() +
                                      "/mirrorlist to file:///etc/passwd: a repository may redirect only to http:// "
                                      "or https://"));
    EXPECT_TRUE(leo::test::snapshot_tree(cache.path()).empty());
}

TEST(RepoMirrorlist, LocalMirrorlistMayNameLocalMirrors) {
    TempDir local;
    const auto mirror = copy_repo_02(local.path() / "mirror");
    leo::fs::write_file_atomic(local.path() / "mirrorlist", "file://" + mirror.string() + "/\n");
    TempDir cache;
    auto repo = make_repo("local", {});
    repo.mirrorlist = "file://" + (local.path() / "mirrorlist").string();
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    EXPECT_EQ(md.packages.size(), 2u);
    EXPECT_EQ(md.mirrors, (std::vector<std::string>{"file://" + mirror.string() + "/"}));
}

TEST(RepoMirrorlist, UnreachableMirrorlistWithoutBaseurl) {
    TempDir cache;
    auto repo = make_repo("nolist", {});
    const std::string closed = closed_port_url();
    repo.mirrorlist = closed + "/mirrorlist";
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository nolist: mirrorlist: cannot fetch " + closed + "/mirrorlist"));
    EXPECT_TRUE(Contains(message, "check mirrorlist in /etc/yum.repos.d/test.repo"));
    EXPECT_TRUE(leo::test::snapshot_tree(cache.path()).empty());
}

// ---- metalink ---------------------------------------------------------------------------------

std::string metalink(const std::string& repomd, const std::vector<std::pair<std::string, int>>& mirrors) {
    std::string urls;
    for (const auto& m : mirrors) {
        urls += "<url protocol=\"http\" type=\"http\" location=\"US\" preference=\"" + std::to_string(m.second) +
                "\">" + m.first + "/repodata/repomd.xml</url>\n";
    }
    return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<metalink version=\"3.0\" xmlns=\"http://www.metalinker.org/\" "
           "xmlns:mm0=\"http://fedorahosted.org/mirrormanager\" type=\"dynamic\">\n<files>\n<file "
           "name=\"repomd.xml\">\n"
           "<mm0:timestamp>1334670929</mm0:timestamp>\n<size>" +
           std::to_string(repomd.size()) + "</size>\n<verification>\n<hash type=\"md5\">" +
           leo::crypto::digest_hex("md5", repomd) + "</hash>\n<hash type=\"sha256\">" +
           leo::crypto::digest_hex("sha256", repomd) + "</hash>\n</verification>\n<resources maxconnections=\"1\">\n" +
           urls + "</resources>\n</file>\n</files>\n</metalink>\n";
}

TEST(RepoMetalink, RepomdMustMatchTheMetalink) {
    TempDir tmp;
    // mirror "stale" serves a repomd.xml that differs from the one the metalink lists
    const auto stale_dir = copy_repo_02(tmp.path() / "stale");
    leo::fs::write_file_atomic(stale_dir / "repodata/repomd.xml",
                               leo::fs::read_file(repo_02() / "repodata/repomd.xml") + "<!-- altered -->\n");
    HttpServer stale(stale_dir);
    HttpServer good(repo_02());
    TempDir lists;
    const std::string repomd = leo::fs::read_file(repo_02() / "repodata/repomd.xml");
    leo::fs::write_file_atomic(lists.path() / "metalink", metalink(repomd, {{good.url(), 50}, {stale.url(), 100}}));
    HttpServer list_server(lists.path());
    TempDir cache;
    auto repo = make_repo("meta", {});
    repo.metalink = list_server.url() + "/metalink?repo=epel-7&arch=x86_64";
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    EXPECT_EQ(stale.request_count("repomd.xml"), 1u) << "the preferred mirror is tried first";
    EXPECT_EQ(md.packages.at(0).base_url, good.url() + "/");
    EXPECT_EQ(md.mirrors, (std::vector<std::string>{good.url() + "/", stale.url() + "/"}));

    // every mirror serves a wrong repomd.xml: one message, each mirror and why
    leo::fs::write_file_atomic(lists.path() / "metalink",
                               metalink(repomd + " ", {{stale.url(), 100}, {good.url(), 1}}));
    TempDir cache2;
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache2.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository meta: every mirror failed (2 tried): repodata/repomd.xml from " +
                                      stale.url() + "/repodata/repomd.xml does not match the metalink: it is "));
    EXPECT_TRUE(Contains(
        message, "repodata/repomd.xml from " + good.url() + "/repodata/repomd.xml does not match the metalink: it is " +
                     std::to_string(repomd.size()) + " bytes, the metalink says " + std::to_string(repomd.size() + 1)));
    EXPECT_TRUE(list_dir(cache2.path()).empty() || list_dir(cache2.path()) == std::vector<std::string>{"meta"})
        << "no metadata kept from a mirror that failed";
}

TEST(RepoMetalink, WrongHashIsRefused) {
    HttpServer good(repo_02());
    TempDir lists;
    std::string repomd = leo::fs::read_file(repo_02() / "repodata/repomd.xml");
    std::string other = repomd;
    other[other.size() / 2] ^= 1; // same size, another hash
    leo::fs::write_file_atomic(lists.path() / "metalink", metalink(other, {{good.url(), 100}}));
    HttpServer list_server(lists.path());
    TempDir cache;
    auto repo = make_repo("hash", {});
    repo.metalink = list_server.url() + "/metalink";
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "does not match the metalink: its sha256 is " +
                                      leo::crypto::digest_hex("sha256", repomd) + ", the metalink says " +
                                      leo::crypto::digest_hex("sha256", other)));
    EXPECT_EQ(good.request_count(std::string("primary.xml.gz")), 0u) << "nothing read past repomd.xml";
}

TEST(RepoMetalink, FileUrlInARemoteMetalinkIsRefused) {
    TempDir local;
    const auto planted = copy_repo_02(local.path() / "planted");
    TempDir lists;
    const std::string repomd = leo::fs::read_file(repo_02() / "repodata/repomd.xml");
    leo::fs::write_file_atomic(lists.path() / "metalink", metalink(repomd, {{"file://" + planted.string(), 100}}));
    HttpServer list_server(lists.path());
    TempDir cache;
    auto repo = make_repo("fileml", {});
    repo.metalink = list_server.url() + "/metalink";
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "lists no usable mirror (file://" + planted.string() +
                                      "/repodata/repomd.xml: a file:// mirror from a remote list is refused"));
    EXPECT_TRUE(leo::test::snapshot_tree(cache.path()).empty());
}

// ---- transport rules ---------------------------------------------------------------------------

TEST(RepoTransport, XmlBaseOfFileIsRefused) {
    TempDir tmp;
    const auto dir = copy_repo_02(tmp.path() / "repo");
    // a primary whose packages point at the local file system through xml:base
    const auto primary_gz = primary_of(dir);
    const std::string xml = leo::test::run_ok({"zcat", primary_gz.string()});
    std::string evil = xml;
    for (std::size_t at = 0; (at = evil.find("<location href=", at)) != std::string::npos; at += 20) {
        evil.replace(at, 15, "<location xml:base=\"file:///etc/\" href=");
    }
    ASSERT_NE(evil, xml);
    leo::fs::write_file_atomic(dir / "evil-primary.xml", evil);
    std::string repomd = leo::fs::read_file(dir / "repodata/repomd.xml");
    const auto data = repomd.find("<data type=\"primary\">");
    const auto end = repomd.find("</data>", data);
    repomd.replace(data, end - data,
                   "<data type=\"primary\"><checksum type=\"sha256\">" + leo::crypto::digest_hex("sha256", evil) +
                       "</checksum><location href=\"evil-primary.xml\"/>");
    leo::fs::write_file_atomic(dir / "repodata/repomd.xml", repomd);
    HttpServer server(dir);
    TempDir cache;
    TempDir dest;
    const auto repo = make_repo("xmlbase", {server.url()});
    const std::string message = repo_error([&] {
        const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
        (void)leo::repo::download_package(repo, find(md, "fake_bash"), SystemRoot(dest.path()), "/");
    });
    EXPECT_TRUE(Contains(message, "xml:base \"file:///etc/\" is refused: a file:// URL is only accepted where the "
                                  "administrator wrote it"));
    EXPECT_TRUE(list_dir(dest.path()).empty());
}

TEST(RepoTransport, ClientCertificateThatCannotBeRead) {
    HttpServer server(repo_02());
    TempDir cache;
    auto repo = make_repo("cert", {server.url()});
    repo.sslclientcert = (cache.path() / "missing.pem").string();
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    EXPECT_EQ(message,
              "repository cert: sslclientcert " + repo.sslclientcert +
                  " cannot be read (No such file or directory); fix sslclientcert in /etc/yum.repos.d/test.repo");
    EXPECT_EQ(server.request_count(), 0u);
    repo.sslclientcert.clear();
    repo.sslclientkey = cache.path().string();
    EXPECT_TRUE(Contains(repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); }),
                         "repository cert: sslclientkey " + cache.path().string() + " is not a file"));
}

} // namespace
