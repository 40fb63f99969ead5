// load_yum_config: yum.conf / dnf.conf [main] defaults, reposdir, yum's variables, and the
// stock CentOS 7.9 files (tests/fixtures/centos7).
#include "leo/common/error.hpp"
#include "leo/common/fs.hpp"
#include "leo/repo/config.hpp"
#include "leo/repo/yum_vars.hpp"
#include "repo_support.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

namespace {
namespace stdfs = std::filesystem;
using leo::repo::load_yum_config;
using leo::repo::RepoConfig;
using leo::repo::YumConfig;
using leo::test::Contains;
using Strings = std::vector<std::string>;

std::string joined(const Strings& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

class YumConfigTest : public ::testing::Test {
protected:
    leo::test::TempDir m_tmp;
    const stdfs::path& root() const { return m_tmp.path(); }

    void SetUp() override { write("etc/os-release", "NAME=\"CentOS Linux\"\nVERSION_ID=\"7\"\n"); }

    stdfs::path write(const std::string& inside, const std::string& text) {
        const auto path = root() / inside;
        stdfs::create_directories(path.parent_path());
        leo::fs::write_file_atomic(path, text);
        return path;
    }
    YumConfig load() { return load_yum_config(leo::fs::SystemRoot(root())); }
    /// The message of the RepoError load_yum_config throws ("" when none).
    std::string error() {
        try {
            (void)load();
        } catch (const leo::RepoError& e) {
            return e.what();
        }
        return {};
    }
    static const RepoConfig& by_id(const YumConfig& c, const std::string& id) {
        for (const auto& r : c.repos)
            if (r.id == id) return r;
        throw std::runtime_error("no repository " + id);
    }
    void copy_centos7() {
        stdfs::copy(leo::test::source_dir() / "tests/fixtures/centos7/etc", root() / "etc",
                    stdfs::copy_options::recursive | stdfs::copy_options::overwrite_existing);
    }
};

TEST_F(YumConfigTest, StockCentOS7LoadsWithoutAWarningAndSubstitutesItsVariables) {
    copy_centos7();
    const auto c = load();
    EXPECT_TRUE(c.warnings.empty()) << joined(c.warnings);
    for (const auto& r : c.repos) EXPECT_TRUE(r.warnings.empty()) << r.id << ": " << joined(r.warnings);
    // 4 Base + CR + Debuginfo + fasttrack + Media + 4 Sources + 45 Vault + 2 kernel
    EXPECT_EQ(c.repos.size(), 59u);
    Strings enabled;
    for (const auto& r : c.repos)
        if (r.enabled) enabled.push_back(r.id);
    EXPECT_EQ(enabled, (Strings{"base", "updates", "extras"}));
    const auto& base = by_id(c, "base");
    EXPECT_EQ(base.name, "CentOS-7 - Base");
    EXPECT_EQ(base.mirrorlist, "http://mirrorlist.centos.org/?release=7&arch=x86_64&repo=os&infra=stock");
    EXPECT_TRUE(base.baseurls.empty()) << "the baseurl line is a comment";
    EXPECT_TRUE(base.gpgcheck);
    EXPECT_EQ(base.gpgkeys, (Strings{"file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7"}));
    EXPECT_EQ(base.source, (root() / "etc/yum.repos.d/CentOS-Base.repo").string());
    EXPECT_EQ(by_id(c, "c7-media").baseurls,
              (Strings{"file:///media/CentOS/", "file:///media/cdrom/", "file:///media/cdrecorder/"}));
    EXPECT_EQ(by_id(c, "cr").baseurls, (Strings{"http://mirror.centos.org/centos/7/cr/x86_64/"}));
    EXPECT_EQ(by_id(c, "C7.8.2003-base").baseurls, (Strings{"http://vault.centos.org/7.8.2003/os/x86_64/"}));
    EXPECT_EQ(by_id(c, "centos-kernel").name, "CentOS LTS Kernels for x86_64");
    EXPECT_EQ(c.vars.at("infra"), "stock");
    EXPECT_EQ(c.vars.at("contentdir"), "centos");
    EXPECT_EQ(c.vars.at("releasever"), "7") << "VERSION_ID of os-release (no rpmdb in this root)";
    EXPECT_EQ(c.reposdirs, (Strings{"/etc/yum.repos.d", "/etc/yum/repos.d"}));
}

TEST_F(YumConfigTest, UuidIsReadFromYumsPersistdirAndOtherwiseLeftUndefined) {
    write("etc/yum.repos.d/a.repo", "[a]\nbaseurl=http://h/$uuid/\n");
    auto c = load();
    EXPECT_FALSE(c.vars.contains("uuid"));
    EXPECT_EQ(c.repos.at(0).baseurls, (Strings{"http://h/$uuid/"}));
    EXPECT_TRUE(Contains(joined(c.repos.at(0).warnings), "unknown variable $uuid")) << joined(c.repos.at(0).warnings);
    write("var/lib/yum/uuid", "6f1c2d3e-0a4b-4c5d-8e9f-001122334455\n");
    c = load();
    EXPECT_EQ(c.vars.at("uuid"), "6f1c2d3e-0a4b-4c5d-8e9f-001122334455");
    EXPECT_EQ(c.repos.at(0).baseurls, (Strings{"http://h/6f1c2d3e-0a4b-4c5d-8e9f-001122334455/"}));
}

TEST_F(YumConfigTest, MainDefaultsApplyToEveryRepositoryBeforeItsOwnValues) {
    write("etc/yum.conf", "[main]\ngpgcheck=0\nrepo_gpgcheck=1\nexclude=leostream-broker-9.2*\nincludepkgs=leo*\n"
                          "skip_if_unavailable=1\nmetadata_expire=1h\ntimeout=5\nretries=2\nminrate=2k\nsslverify=0\n"
                          "sslcacert=/ca.pem\nsslclientcert=/c.pem\nsslclientkey=/k.pem\nproxy=http://proxy:3128\n"
                          "proxy_username=pu\nproxy_password=pp\nusername=u\npassword=p\n");
    write("etc/yum.repos.d/a.repo", "[plain]\nbaseurl=http://h/a/\n"
                                    "[own]\nbaseurl=http://h/b/\ngpgcheck=1\nexcludepkgs=other\nincludepkgs=x\n"
                                    "skip_if_unavailable=0\ntimeout=60\nproxy=_none_\nsslverify=1\n");
    const auto c = load();
    EXPECT_TRUE(c.warnings.empty()) << joined(c.warnings);
    const auto& plain = by_id(c, "plain");
    EXPECT_FALSE(plain.gpgcheck);
    EXPECT_TRUE(plain.repo_gpgcheck);
    EXPECT_EQ(plain.excludes, (Strings{"leostream-broker-9.2*"}));
    EXPECT_EQ(plain.includepkgs, (Strings{"leo*"}));
    ASSERT_TRUE(plain.skip_if_unavailable.has_value());
    EXPECT_TRUE(*plain.skip_if_unavailable);
    EXPECT_EQ(plain.metadata_expire, 3600);
    EXPECT_EQ(plain.timeout, 5);
    EXPECT_EQ(plain.retries, 2u);
    EXPECT_EQ(plain.minrate, 2048u);
    EXPECT_FALSE(plain.sslverify);
    EXPECT_EQ(plain.sslcacert, "/ca.pem");
    EXPECT_EQ(plain.sslclientcert, "/c.pem");
    EXPECT_EQ(plain.sslclientkey, "/k.pem");
    EXPECT_EQ(plain.proxy, "http://proxy:3128");
    EXPECT_EQ(plain.proxy_username, "pu");
    EXPECT_EQ(plain.proxy_password, "pp");
    EXPECT_EQ(plain.username, "u");
    EXPECT_EQ(plain.password, "p");
    const auto& own = by_id(c, "own");
    EXPECT_TRUE(own.gpgcheck);
    EXPECT_EQ(own.excludes, (Strings{"leostream-broker-9.2*", "other"})) << "[main]'s exclude is added";
    EXPECT_EQ(own.includepkgs, (Strings{"x"})) << "the section's includepkgs replaces [main]'s";
    EXPECT_FALSE(*own.skip_if_unavailable);
    EXPECT_EQ(own.timeout, 60);
    EXPECT_EQ(own.proxy, "");
    EXPECT_TRUE(own.sslverify);
}

TEST_F(YumConfigTest, YumConfWinsOverDnfConfWhereBothSetAKey) {
    write("etc/dnf/dnf.conf", "[main]\ntimeout=7\nretries=3\nbest=True\ninstall_weak_deps=False\n");
    write("etc/yum.conf", "[main]\ntimeout=9\n");
    write("etc/yum.repos.d/a.repo", "[a]\nbaseurl=http://h/\n");
    const auto c = load();
    EXPECT_TRUE(c.warnings.empty()) << joined(c.warnings);
    EXPECT_EQ(by_id(c, "a").timeout, 9);
    EXPECT_EQ(by_id(c, "a").retries, 3u);
}

TEST_F(YumConfigTest, RepositorySectionsOfYumConfAreReadFirst) {
    const auto conf = write("etc/yum.conf", "[main]\ngpgcheck=1\n[inconf]\nbaseurl=http://h/c/\n");
    write("etc/yum.repos.d/a.repo", "[a]\nbaseurl=http://h/a/\n");
    write("etc/yum/repos.d/b.repo", "[b]\nbaseurl=http://h/b/\n");
    const auto c = load();
    ASSERT_EQ(c.repos.size(), 3u);
    EXPECT_EQ(c.repos[0].id, "inconf");
    EXPECT_EQ(c.repos[0].source, conf.string());
    EXPECT_EQ(c.repos[1].id, "a");
    EXPECT_EQ(c.repos[2].id, "b") << "yum also reads /etc/yum/repos.d";
}

TEST_F(YumConfigTest, DnfConfRepositoriesAreNamedWhenYumConfExists) {
    write("etc/yum.conf", "[main]\n");
    const auto dnf = write("etc/dnf/dnf.conf", "[main]\n[d]\nbaseurl=http://h/d/\n");
    const auto c = load();
    EXPECT_TRUE(c.repos.empty());
    ASSERT_EQ(c.warnings.size(), 1u);
    EXPECT_TRUE(Contains(c.warnings[0], dnf.string() + ":2: [d] a repository in dnf.conf is not read"));
}

TEST_F(YumConfigTest, AMainOptionWeDoNotActOnIsNamedWithFileAndLine) {
    const auto conf = write("etc/yum.conf", "[main]\nkeepcache=0\nip_resolve=4\nbaseurl=http://h/\n");
    const auto c = load();
    EXPECT_EQ(c.warnings, (Strings{conf.string() + ":4: [main] option 'baseurl' is not supported; ignored",
                                   conf.string() + ":3: [main] option 'ip_resolve' is not supported; ignored"}));
}

TEST_F(YumConfigTest, ABadMainValueNamesFileLineAndRule) {
    const auto conf = write("etc/yum.conf", "[main]\ngpgcheck=1\ntimeout=soon\n");
    write("etc/yum.repos.d/a.repo", "[a]\nbaseurl=http://h/\n");
    EXPECT_TRUE(Contains(error(), conf.string() + ":3: [main] timeout=soon: not a timeout"));
    write("etc/yum.conf", "[main]\ngpgcheck=maybe\n");
    EXPECT_TRUE(Contains(error(), conf.string() + ":2: [main] gpgcheck=maybe: not a boolean"));
    const auto dnf = write("etc/dnf/dnf.conf", "[main]\nretries=many\n");
    write("etc/yum.conf", "[main]\n");
    EXPECT_TRUE(Contains(error(), dnf.string() + ":2: [main] retries=many: not a number of retries"));
}

TEST_F(YumConfigTest, ReposdirReplacesTheDefaultDirectories) {
    write("etc/yum.conf", "[main]\nreposdir=/srv/repos, /srv/missing\n");
    write("etc/yum.repos.d/a.repo", "[a]\nbaseurl=http://h/a/\n");
    write("srv/repos/s.repo", "[s]\nbaseurl=http://h/s/\n");
    const auto c = load();
    ASSERT_EQ(c.repos.size(), 1u);
    EXPECT_EQ(c.repos[0].id, "s");
    EXPECT_EQ(c.reposdirs, (Strings{"/srv/repos", "/srv/missing"}));
}

TEST_F(YumConfigTest, ABadReposdirIsRefusedNamingIt) {
    const auto conf = write("etc/yum.conf", "[main]\nreposdir=etc/yum.repos.d\n");
    EXPECT_TRUE(Contains(error(), conf.string() + ":2: [main] reposdir=etc/yum.repos.d: etc/yum.repos.d is not an "
                                                  "absolute path"));
    write("etc/yum.conf", "[main]\nreposdir=/etc/../../outside\n");
    EXPECT_TRUE(Contains(error(), "/etc/../../outside is not an absolute path without \"..\""));
    write("etc/yum.conf", "[main]\nreposdir=/etc/os-release\n");
    EXPECT_TRUE(Contains(error(), (root() / "etc/os-release").string() + ": reposdir is not a directory"));
}

TEST_F(YumConfigTest, VariablesFromFilesEnvironmentAndBuiltins) {
    write("etc/yum/vars/infra", "genclo\nsecond line ignored\n");
    write("etc/yum/vars/releasever", "7.9.2009\n");
    write("etc/dnf/vars/infra", "from-dnf\n");
    write("etc/dnf/vars/stream", "8-stream\n");
    ::setenv("YUM3", "from-env", 1);
    write("etc/yum.repos.d/v.repo", "[v]\nbaseurl=http://h/$releasever/${infra}/$BASEARCH/$stream/$YUM3/$arch/\n"
                                    "name=costs $ 5 and $$\n");
    const auto c = load();
    ::unsetenv("YUM3");
    EXPECT_TRUE(c.warnings.empty()) << joined(c.warnings);
    const auto& v = by_id(c, "v");
    EXPECT_TRUE(v.warnings.empty()) << joined(v.warnings);
    EXPECT_EQ(v.baseurls, (Strings{"http://h/7.9.2009/genclo/x86_64/8-stream/from-env/x86_64/"}));
    EXPECT_EQ(v.name, "costs $ 5 and $$");
}

TEST_F(YumConfigTest, AnUnknownVariableIsLeftAsWrittenAndNamed) {
    const auto file = write("etc/yum.repos.d/u.repo", "[u]\nname=U\nbaseurl=http://h/$nosuch/${other}/$basearch/\n"
                                                      "password=pa$word\n");
    const auto conf = write("etc/yum.conf", "[main]\nproxy=http://$proxyhost:3128\n");
    const auto c = load();
    const auto& u = by_id(c, "u");
    EXPECT_EQ(u.baseurls, (Strings{"http://h/$nosuch/${other}/x86_64/"}));
    EXPECT_EQ(u.warnings, (Strings{file.string() + ":3: [u] unknown variable $nosuch in baseurl; left as written",
                                   file.string() + ":3: [u] unknown variable ${other} in baseurl; left as written"}));
    EXPECT_EQ(u.password, "pa$word") << "left as written, and not quoted in a warning";
    EXPECT_EQ(c.warnings,
              (Strings{conf.string() + ":2: [main] unknown variable $proxyhost in proxy; left as written"}));
    EXPECT_EQ(u.proxy, "http://$proxyhost:3128");
}

TEST_F(YumConfigTest, ReleaseverFallsBackToSevenWithAWarning) {
    stdfs::remove(root() / "etc/os-release");
    write("etc/yum.repos.d/a.repo", "[a]\nbaseurl=http://h/$releasever/\n");
    const auto c = load();
    EXPECT_EQ(c.repos.at(0).baseurls, (Strings{"http://h/7/"}));
    ASSERT_EQ(c.warnings.size(), 1u);
    EXPECT_TRUE(Contains(c.warnings[0], "releasever: no package in the rpmdb of"));
    EXPECT_TRUE(Contains(c.warnings[0], "using 7"));
}

TEST_F(YumConfigTest, ReleaseverIsTheMajorOfVersionId) {
    write("etc/os-release", "NAME=\"Red Hat Enterprise Linux Server\"\nVERSION_ID=\"7.9\"\n");
    write("etc/yum.repos.d/a.repo", "[a]\nbaseurl=http://h/$releasever/\n");
    EXPECT_EQ(load().repos.at(0).baseurls, (Strings{"http://h/7/"}));
}

TEST_F(YumConfigTest, ConfigErrorsChangeNothing) {
    write("etc/yum.conf", "[main]\ntimeout=x\n");
    write("etc/yum.repos.d/a.repo", "[a]\nbaseurl=http://h/\n");
    const std::string before = leo::test::snapshot_tree(root());
    EXPECT_FALSE(error().empty());
    EXPECT_EQ(leo::test::snapshot_tree(root()), before);
}

TEST(SubstituteVars, FormsAndUnknowns) {
    const leo::repo::YumVars vars{{"basearch", "x86_64"}, {"releasever", "7"}};
    Strings unknown;
    EXPECT_EQ(leo::repo::substitute_vars("$basearch-${releasever}-$BaseArch", vars, &unknown), "x86_64-7-x86_64");
    EXPECT_EQ(leo::repo::substitute_vars("$basearch_x ${basearch ${} $ $1x", vars, &unknown),
              "$basearch_x ${basearch ${} $ $1x");
    EXPECT_EQ(unknown, (Strings{"$basearch_x", "$1x"}));
    unknown.clear();
    EXPECT_EQ(leo::repo::substitute_vars("$a$a${a}", vars, &unknown), "$a$a${a}");
    EXPECT_EQ(unknown, (Strings{"$a", "${a}"})) << "each once";
}

} // namespace

namespace {

// Files of yum's configuration that a user other than root can change (yum reads them anyway;
// root must not: they choose the servers, gpgcheck and reposdir).
TEST_F(YumConfigTest, ARepoFileAnotherUserCanChangeIsIgnoredWithAWarning) {
    const auto ours = write("etc/yum.repos.d/ours.repo", "[ours]\nbaseurl=http://a.example/\n");
    const auto theirs = write("etc/yum.repos.d/theirs.repo", "[theirs]\nbaseurl=http://b.example/\ngpgcheck=0\n");
    ASSERT_EQ(::chmod(ours.c_str(), 0644), 0);
    for (const auto& [mode, owner] : {std::pair{mode_t{0666}, uid_t{0}}, std::pair{mode_t{0664}, uid_t{0}},
                                      std::pair{mode_t{0644}, uid_t{54321}}}) {
        ASSERT_EQ(::chmod(theirs.c_str(), mode), 0);
        ASSERT_EQ(::chown(theirs.c_str(), owner, owner), 0);
        const auto c = load();
        ASSERT_EQ(c.repos.size(), 1u);
        EXPECT_EQ(c.repos.front().id, "ours");
        EXPECT_TRUE(Contains(joined(c.warnings), fmt::format("{} can be changed by a user other than root (owner uid "
                                                             "{}, mode {:04o}): its repositories are ignored",
                                                             theirs.string(), owner, mode)));
    }
}

TEST_F(YumConfigTest, AYumConfAnotherUserCanChangeIsRefused) {
    const auto conf = write("etc/yum.conf", "[main]\ngpgcheck=1\n");
    ASSERT_EQ(::chmod(conf.c_str(), 0666), 0);
    EXPECT_EQ(error(), fmt::format("{} can be changed by a user other than root (owner uid 0, mode 0666): refusing to "
                                   "read yum's configuration from it; make it root's and writable by root alone "
                                   "(chown root:root, chmod go-w)",
                                   conf.string()));
    ASSERT_EQ(::chmod(conf.c_str(), 0644), 0);
    EXPECT_EQ(error(), "");
}

TEST_F(YumConfigTest, AVariableFileAnotherUserCanChangeDefinesNothing) {
    const auto var = write("etc/yum/vars/site", "evil.example\n");
    ASSERT_EQ(::chown(var.c_str(), 54321, 54321), 0);
    write("etc/yum.repos.d/r.repo", "[r]\nbaseurl=http://$site/\n");
    const auto c = load();
    EXPECT_FALSE(c.vars.contains("site"));
    EXPECT_TRUE(Contains(joined(c.warnings), fmt::format("{} can be changed by a user other than root (owner uid 54321, "
                                                         "mode {:04o}): the variable $site is not defined from it",
                                                         var.string(), leo::test::mode_of(var))));
}

} // namespace
