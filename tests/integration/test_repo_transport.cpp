// Transfer settings of leo::repo against real components: a TLS server with a CA the test
// makes (openssl req / x509), sslcacert good and bad, a client certificate the server
// requires (sslclientcert / sslclientkey), sslverify=0, the refused https -> http redirect,
// and a real proxy on loopback (Debian's tinyproxy) with and without BasicAuth.
#include "http_server.hpp"
#include "repo_mirror_support.hpp"
#include "tinyproxy.hpp"

#include "leo/common/fs.hpp"
#include "leo/repo/metadata.hpp"

#include <gtest/gtest.h>

namespace {
namespace stdfs = std::filesystem;
using namespace leo::test::mirrors;
using leo::test::run_ok;
using leo::test::Tinyproxy;
using leo::test::TlsOptions;

/// A CA, a server certificate for 127.0.0.1 and a client certificate it signed, and a
/// second CA that signed nothing here, made with the openssl command line.
struct Pki {
    explicit Pki(const stdfs::path& where) : dir(where) {
        const auto key = [&](const std::string& name) {
            return std::vector<std::string>{"-newkey",
                                            "ec",
                                            "-pkeyopt",
                                            "ec_paramgen_curve:prime256v1",
                                            "-nodes",
                                            "-keyout",
                                            (dir / (name + ".key")).string()};
        };
        const auto ca = [&](const std::string& name) {
            auto argv = std::vector<std::string>{"openssl", "req", "-x509", "-days", "2", "-subj", "/CN=" + name};
            for (auto& a : key(name))
                argv.push_back(a);
            argv.push_back("-out");
            argv.push_back((dir / (name + ".pem")).string());
            run_ok(argv);
        };
        ca("ca");
        ca("other-ca");
        const auto leaf = [&](const std::string& name, const std::string& extension) {
            auto argv = std::vector<std::string>{"openssl",     "req",  "-subj",
                                                 "/CN=" + name, "-out", (dir / (name + ".csr")).string()};
            for (auto& a : key(name))
                argv.push_back(a);
            run_ok(argv);
            leo::fs::write_file_atomic(dir / (name + ".ext"), extension + "\n");
            run_ok({"openssl", "x509", "-req", "-days", "2", "-in", (dir / (name + ".csr")).string(), "-CA",
                    (dir / "ca.pem").string(), "-CAkey", (dir / "ca.key").string(), "-CAcreateserial", "-out",
                    (dir / (name + ".pem")).string(), "-extfile", (dir / (name + ".ext")).string()});
        };
        leaf("server", "subjectAltName=IP:127.0.0.1");
        leaf("client", "extendedKeyUsage=clientAuth");
    }
    [[nodiscard]] std::string file(const std::string& name) const { return (dir / name).string(); }
    stdfs::path dir;
};

class RepoTls : public ::testing::Test {
  protected:
    TempDir tmp;
    Pki pki{tmp.path()};
    TempDir cache;
};

TEST_F(RepoTls, SslcacertOfTheServersCa) {
    HttpServer server(repo_02(), TlsOptions{pki.dir / "server.pem", pki.dir / "server.key", {}});
    auto repo = make_repo("tls", {server.url()});
    repo.sslcacert = pki.file("ca.pem");
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    EXPECT_EQ(md.packages.size(), 2u);
    EXPECT_TRUE(md.warnings.empty());
}

TEST_F(RepoTls, AnotherCaIsRefused) {
    HttpServer server(repo_02(), TlsOptions{pki.dir / "server.pem", pki.dir / "server.key", {}});
    auto repo = make_repo("badca", {server.url()});
    const auto before = leo::test::snapshot_tree(cache.path());
    for (const std::string& ca : {pki.file("other-ca.pem"), std::string()}) { // another CA; the system's CAs
        repo.sslcacert = ca;
        const std::string message =
            repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
        EXPECT_TRUE(Contains(message, "repository badca: repodata/repomd.xml: cannot fetch " + server.url() +
                                          "/repodata/repomd.xml: "));
        EXPECT_TRUE(Contains(message, "certificate")) << message;
        EXPECT_EQ(server.request_count(), 0u);
    }
    EXPECT_EQ(leo::test::snapshot_tree(cache.path()), before);
    // sslverify=0 accepts it, and says so
    repo.sslcacert.clear();
    repo.sslverify = false;
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    ASSERT_EQ(md.warnings.size(), 1u);
    EXPECT_TRUE(Contains(md.warnings[0], "repository badca: sslverify=0 in /etc/yum.repos.d/test.repo: the servers' "
                                         "certificates are not checked"));
}

TEST_F(RepoTls, ClientCertificateRequiredByTheServer) {
    HttpServer server(repo_02(), TlsOptions{pki.dir / "server.pem", pki.dir / "server.key", pki.dir / "ca.pem"});
    auto repo = make_repo("mtls", {server.url()});
    repo.sslcacert = pki.file("ca.pem");
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(Contains(message, "repository mtls: repodata/repomd.xml: cannot fetch " + server.url()));
    EXPECT_GE(server.failed_handshakes(), 1u);
    EXPECT_TRUE(list_dir(cache.path()).empty());
    repo.sslclientcert = pki.file("client.pem");
    repo.sslclientkey = pki.file("client.key");
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    EXPECT_EQ(md.packages.size(), 2u);
    TempDir dest;
    EXPECT_TRUE(stdfs::exists(leo::repo::download_package(repo, find(md, "fake_bash"), SystemRoot(dest.path()), "/")));
}

TEST_F(RepoTls, RedirectFromHttpsToHttpIsRefused) {
    HttpServer plain(repo_02());
    HttpServer server(repo_02(), TlsOptions{pki.dir / "server.pem", pki.dir / "server.key", {}});
    server.redirect("/repodata/repomd.xml", plain.url() + "/repodata/repomd.xml");
    auto repo = make_repo("down", {server.url()});
    repo.sslcacert = pki.file("ca.pem");
    const std::string message =
        repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    EXPECT_TRUE(
        Contains(message, "repository down: repodata/repomd.xml: refusing the redirect from " + server.url() +
                              "/repodata/repomd.xml to " + plain.url() +
                              "/repodata/repomd.xml: a repository "
                              "may redirect only to http:// or https://, and an https:// one only to https://"));
    EXPECT_EQ(plain.request_count(), 0u) << "the plain http server was never asked";
    EXPECT_TRUE(list_dir(cache.path()).empty());
}

// ---- a real proxy: tinyproxy on loopback ----------------------------------------------------

TEST(RepoProxy, MetadataAndPackagesGoThroughTheProxy) {
    TempDir tmp;
    Tinyproxy proxy(tmp.path(), "");
    HttpServer server(repo_02());
    TempDir cache;
    TempDir dest;
    auto repo = make_repo("viaproxy", {server.url()});
    repo.proxy = proxy.url();
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    (void)leo::repo::download_package(repo, find(md, "fake_bash"), SystemRoot(dest.path()), "/");
    const std::string log = proxy.log();
    EXPECT_TRUE(Contains(log, "GET " + server.url() + "/repodata/repomd.xml"));
    EXPECT_TRUE(Contains(log, "GET " + server.url() + "/" + k_fake_bash));
}

TEST(RepoProxy, BasicAuthAndThePasswordNeverShown) {
    TempDir tmp;
    const std::string password = "Pr0xyPa55word";
    Tinyproxy proxy(tmp.path(), "leoproxy " + password);
    HttpServer server(repo_02());
    TempDir cache;
    auto repo = make_repo("authproxy", {server.url()});
    repo.proxy = proxy.url();
    // no credentials, then wrong ones: HTTP 407, nothing fetched, no secret in the message
    std::string message = repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    EXPECT_EQ(message, "repository authproxy: repodata/repomd.xml: HTTP 407 for " + server.url() +
                           "/repodata/repomd.xml: the proxy requires other credentials (check proxy, proxy_username "
                           "and proxy_password in /etc/yum.repos.d/test.repo)");
    repo.proxy_username = "leoproxy";
    repo.proxy_password = password + "-wrong";
    message = repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    // tinyproxy 1.11 answers wrong credentials with 401
    EXPECT_TRUE(Contains(message, "HTTP 401 for " + server.url() +
                                      "/repodata/repomd.xml: credentials refused (check "
                                      "username and password, and proxy_username and proxy_password for the proxy in "
                                      "/etc/yum.repos.d/test.repo)"));
    EXPECT_FALSE(Contains(message, password));
    // credentials in the proxy URL are redacted too
    repo.proxy_username.clear();
    repo.proxy_password.clear();
    repo.proxy = "http://leoproxy:" + password + "-x@127.0.0.1:" + proxy.url().substr(proxy.url().rfind(':') + 1);
    message = repo_error([&] { (void)leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/"); });
    EXPECT_FALSE(Contains(message, password)) << message;
    EXPECT_EQ(server.request_count(), 0u) << "the proxy let nothing through";
    EXPECT_TRUE(list_dir(cache.path()).empty() || list_dir(cache.path()) == std::vector<std::string>{"authproxy"});
    // the right credentials
    repo.proxy = proxy.url();
    repo.proxy_username = "leoproxy";
    repo.proxy_password = password;
    const Metadata md = leo::repo::load_metadata(repo, SystemRoot(cache.path()), "/");
    EXPECT_EQ(md.packages.size(), 2u);
    EXPECT_TRUE(Contains(proxy.log(), "GET " + server.url() + "/repodata/repomd.xml"));
}

} // namespace
