// check-update's warm answer through the built launcher (installer/warm_answer.hpp): the
// full program keeps its answer; the launcher gives it again, byte for byte, while nothing
// it was computed from changed, and runs the full program as soon as anything did (the
// .repo files, yum.conf, the rpmdb, repomd.xml on the server, the environment, the command
// line). Who answered is told by the kept file: the full program writes it anew (a new
// inode), the launcher writes nothing. What was fetched is counted by the loopback server.
#include "http_server.hpp"
#include "repo_support.hpp"
#include "sandbox_root.hpp"
#include "served_repo_support.hpp"
#include "test_support.hpp"

#include "leo/common/fs.hpp"
#include "../../installer/src/warm_get.hpp"

#include <curl/curl.h>
#include <dlfcn.h>

#include <fstream>

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
namespace stdfs = std::filesystem;
using leo::test::run_installer;

const std::string k_new = "leostream-broker-9.2.0-1.x86_64";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class WarmAnswer : public leo::test::ServedRepoTest {
protected:
    void write_repo(const std::string& expire, const std::string& extra = {}) {
        leo::test::write_repo_file(root, "leo",
                                   "name=Broker\nbaseurl=" + server->url() + "/repo\nenabled=1\ngpgcheck=0\n"
                                   "metadata_expire=" + expire + "\n" + extra);
    }
    leo::subprocess::Result check(std::vector<std::string> extra = {}, const leo::subprocess::Options& o = {}) {
        std::vector<std::string> args{"check-update", "--root", root.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_installer(args, o);
    }
    stdfs::path answers() const { return root / "var/cache/leo-installer/answers"; }
    /// The kept answers: file name -> "inode:mtime" (a new one each time the full program keeps it).
    std::map<std::string, std::string> kept() const {
        std::map<std::string, std::string> out;
        if (!stdfs::exists(answers())) return out;
        for (const auto& e : stdfs::directory_iterator(answers())) {
            struct stat st {};
            EXPECT_EQ(::stat(e.path().c_str(), &st), 0);
            out[e.path().filename().string()] =
                std::to_string(st.st_ino) + ":" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
        }
        return out;
    }
    /// Run check-update twice more after a first run kept its answer; expect the launcher
    /// to answer both (the kept file untouched) with the first run's bytes.
    void expect_launcher_answers(const leo::subprocess::Result& first, std::vector<std::string> extra = {}) {
        const auto before = kept();
        ASSERT_FALSE(before.empty()) << "the full program kept no answer: " << first.err;
        for (int i = 0; i < 2; ++i) {
            const auto again = check(extra);
            EXPECT_EQ(again.exit_code, first.exit_code);
            EXPECT_EQ(again.out, first.out);
            EXPECT_EQ(again.err, first.err);
            EXPECT_EQ(kept(), before) << "the launcher answered: nothing is written";
        }
    }
    /// After a change: the next run is the full program's (the kept answer is written anew).
    leo::subprocess::Result expect_full_program(const std::string& why) {
        const auto before = kept();
        auto r = check();
        EXPECT_NE(kept(), before) << why << ": the full program must answer (it keeps a new answer)\n" << r.err;
        return r;
    }
};

TEST_F(WarmAnswer, KeptAnswerIsGivenAgainByTheLauncherAfterOneGetOfRepomd) {
    write_repo("0");
    const auto first = check();
    ASSERT_EQ(first.exit_code, 100) << first.err;
    EXPECT_TRUE(contains(first.out, "update available: " + k_new)) << first.out;
    EXPECT_EQ(server->request_count("repomd.xml"), 1u);
    EXPECT_EQ(server->request_count("-primary.xml.gz"), 1u);
    // Kept privately: the directory 0700, the answer 0600, root's.
    EXPECT_EQ(stdfs::status(answers()).permissions() & stdfs::perms::all, stdfs::perms::owner_all);
    for (const auto& e : stdfs::directory_iterator(answers())) {
        EXPECT_EQ(stdfs::status(e.path()).permissions() & stdfs::perms::all,
                  stdfs::perms::owner_read | stdfs::perms::owner_write);
        EXPECT_EQ(leo::test::owner_of(e.path()), 0u);
    }
    expect_launcher_answers(first);
    EXPECT_EQ(server->request_count("repomd.xml"), 3u) << "past metadata_expire=0 each answer asks for repomd.xml";
    EXPECT_EQ(server->request_count("-primary.xml.gz"), 1u);
    EXPECT_EQ(server->request_count(), 4u);
}

TEST_F(WarmAnswer, WithinMetadataExpireTheLauncherAsksNothing) {
    write_repo("1h");
    const auto first = check({"--json"});
    ASSERT_EQ(first.exit_code, 100) << first.err;
    const std::size_t requests = server->request_count();
    expect_launcher_answers(first, {"--json"});
    EXPECT_EQ(server->request_count(), requests);
    EXPECT_EQ(nlohmann::json::parse(first.out).value("update", ""), k_new);
}

TEST_F(WarmAnswer, AChangedRepomdOnTheServerIsAnsweredByTheFullProgram) {
    write_repo("0");
    ASSERT_EQ(check().exit_code, 100);
    stdfs::remove(docroot / "repo" / (k_new + ".rpm"));
    leo::test::run_ok({"createrepo_c", "--quiet", "--no-database", (docroot / "repo").string()});
    const auto r = expect_full_program("repomd.xml changed");
    EXPECT_TRUE(contains(r.out, "leostream-broker-9.2.0~rc1-1.x86_64")) << r.out;
    EXPECT_EQ(server->request_count("-primary.xml.gz"), 2u);
    expect_launcher_answers(r);
}

TEST_F(WarmAnswer, AnEditedRepoFileANewOneAndYumConfAreInputs) {
    write_repo("1h");
    ASSERT_EQ(check().exit_code, 100);
    // exclude= in the .repo file: 9.2.0 is left out.
    write_repo("1h", "exclude=leostream-broker-9.2.0-*\n");
    auto r = expect_full_program("the .repo file changed");
    EXPECT_TRUE(contains(r.out, "leostream-broker-9.2.0~rc1-1.x86_64")) << r.out;
    // A new (disabled) .repo file in the directory.
    leo::test::write_repo_file(root, "other", "name=Other\nbaseurl=" + server->url() + "/nothing\nenabled=0\n");
    expect_full_program("a .repo file was added");
    // /etc/yum.conf appears with a global exclude of every broker package but 9.1.x.
    {
        std::ofstream(root / "etc/yum.conf") << "[main]\nexclude=leostream-broker-9.2*\n";
    }
    write_repo("1h");
    r = expect_full_program("yum.conf appeared");
    EXPECT_TRUE(contains(r.out, "leostream-broker-9.1.10-1.x86_64")) << r.out;
    expect_launcher_answers(r);
}

TEST_F(WarmAnswer, TheRpmdbIsAnInput) {
    write_repo("1h");
    ASSERT_EQ(check().exit_code, 100);
    install_justdb("9.2.0");
    const auto r = expect_full_program("the rpmdb changed");
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "no update: " + k_new)) << r.out;
    expect_launcher_answers(r);
}

TEST_F(WarmAnswer, TheEnvironmentAndTheCommandLineAreInputs) {
    write_repo("1h");
    ASSERT_EQ(check().exit_code, 100);
    const auto one = kept();
    // Another variable in the environment: the full program answers (and keeps it anew).
    leo::subprocess::Options o;
    o.env["LEO_WARM_ANSWER_TEST"] = "1";
    auto r = check({}, o);
    EXPECT_EQ(r.exit_code, 100);
    EXPECT_NE(kept(), one);
    EXPECT_EQ(kept().size(), 2u) << "one answer per environment";
    // Another command line (--json) has an answer of its own.
    r = check({"--json"});
    EXPECT_EQ(r.exit_code, 100);
    EXPECT_EQ(kept().size(), 3u);
    EXPECT_EQ(nlohmann::json::parse(r.out).value("update", ""), k_new);
}

TEST_F(WarmAnswer, NotKeptWhenARepositoryIsSkippedUsesAMirrorlistOrCredentials) {
    // An enabled repository that cannot be read is skipped with a warning: no answer kept
    // (it may be back the next time).
    write_repo("1h");
    leo::test::write_repo_file(root, "down", "name=Down\nbaseurl=http://127.0.0.1:1/repo\nenabled=1\ngpgcheck=0\n");
    auto r = check();
    EXPECT_EQ(r.exit_code, 100) << r.err;
    EXPECT_TRUE(contains(r.err, "repository down is skipped")) << r.err;
    EXPECT_TRUE(kept().empty());
    stdfs::remove(root / "etc/yum.repos.d/down.repo");
    // Credentials are never written into an answer.
    write_repo("1h", "username=monitor\npassword=s3cret-pass\n");
    r = check();
    EXPECT_EQ(r.exit_code, 100) << r.err;
    EXPECT_TRUE(kept().empty());
    // ... nor credentials in the baseurl itself.
    const std::string with_password = "http://monitor:s3cret-url@" + server->url().substr(7) + "/repo";
    leo::test::write_repo_file(root, "leo", "name=Broker\nbaseurl=" + with_password +
                                                "\nenabled=1\ngpgcheck=0\nmetadata_expire=1h\n");
    r = check();
    EXPECT_EQ(r.exit_code, 100) << r.err;
    EXPECT_TRUE(kept().empty());
    for (const auto& e : stdfs::recursive_directory_iterator(root / "var/cache"))
        if (e.is_regular_file()) {
            EXPECT_FALSE(contains(leo::test::slurp(e.path()), "s3cret")) << e.path();
        }
    // A mirrorlist is read again by the full program each time.
    std::ofstream(docroot / "mirrors.txt") << server->url() << "/repo\n";
    leo::test::write_repo_file(root, "leo", "name=Broker\nmirrorlist=" + server->url() +
                                                "/mirrors.txt\nenabled=1\ngpgcheck=0\nmetadata_expire=1h\n");
    r = check();
    EXPECT_EQ(r.exit_code, 100) << r.err;
    EXPECT_TRUE(kept().empty());
}

TEST_F(WarmAnswer, AnAnswerOthersCouldHaveWrittenIsNotUsed) {
    write_repo("1h");
    const auto first = check();
    ASSERT_EQ(first.exit_code, 100);
    ASSERT_EQ(kept().size(), 1u);
    const auto file = answers() / kept().begin()->first;
    // A false answer in the file, owned by another user: ignored, the real answer is given.
    auto text = leo::test::slurp(file);
    auto j = nlohmann::json::parse(text);
    j["out"] = "no update: forged\n";
    j["exit"] = 0;
    std::ofstream(file) << j.dump();
    ASSERT_EQ(::chown(file.c_str(), 54321, 54321), 0);
    auto r = check();
    EXPECT_EQ(r.exit_code, 100);
    EXPECT_EQ(r.out, first.out);
    // Writable by others: ignored too.
    std::ofstream(file) << j.dump();
    ASSERT_EQ(::chown(file.c_str(), 0, 0), 0);
    ASSERT_EQ(::chmod(file.c_str(), 0666), 0);
    r = check();
    EXPECT_EQ(r.exit_code, 100);
    EXPECT_EQ(r.out, first.out);
}

TEST_F(WarmAnswer, AServerThatStopsAnsweringGetsTheFullProgramsError) {
    write_repo("0");
    ASSERT_EQ(check().exit_code, 100);
    const auto before = kept();
    server.reset();
    const auto r = check();
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "repodata/repomd.xml")) << r.err;
    EXPECT_EQ(kept(), before) << "a failed run keeps nothing";
}

TEST_F(WarmAnswer, AMalformedKeptAnswerPrintsNothingBeforeTheFullProgramAnswers) {
    write_repo("1h");
    const auto first = check();
    ASSERT_EQ(first.exit_code, 100) << first.err;
    ASSERT_EQ(kept().size(), 1u);
    const auto file = answers() / kept().begin()->first;
    // root's own file (0600), every input unchanged, but its exit code is not a number: the
    // launcher must give nothing of it (not its stdout, then the full program's again).
    auto j = nlohmann::json::parse(leo::test::slurp(file));
    j["err"] = "kept stderr\n";
    j["exit"] = "one hundred";
    std::ofstream(file, std::ios::trunc) << j.dump();
    auto r = check();
    EXPECT_EQ(r.exit_code, 100);
    EXPECT_EQ(r.out, first.out) << "printed once, by the full program";
    EXPECT_EQ(r.err, first.err);
    // An exit code check-update never keeps (only 0 and 100 are answers): not given either.
    j = nlohmann::json::parse(leo::test::slurp(file));
    j["exit"] = 3;
    j["out"] = "not an answer\n";
    std::ofstream(file, std::ios::trunc) << j.dump();
    r = check();
    EXPECT_EQ(r.exit_code, 100);
    EXPECT_EQ(r.out, first.out);
}

TEST_F(WarmAnswer, WithRepoGpgcheckASignatureGoneBadPastExpireIsTheFullProgramsError) {
    // repo_gpgcheck=1, the key a file in the root (answerable), metadata_expire=0: the full
    // program fetches repomd.xml and repomd.xml.asc each time and verifies the signature.
    leo::test::run_ok({"rpm", "--root", root.string(), "--dbpath", "/var/lib/rpm", "--import", key().string()});
    write_repo("0", "repo_gpgcheck=1\ngpgkey=" + leo::test::key_in_root(root, key()) + "\n");
    leo::subprocess::Options o;
    o.env["GNUPGHOME"] = (pkgs / "gnupg").string();
    const auto repomd = docroot / "repo/repodata/repomd.xml";
    auto signed_ = leo::subprocess::run(
        {"gpg", "--batch", "--yes", "--local-user", "leo-test", "--detach-sign", "--armor", repomd.string()}, o);
    (void)leo::subprocess::run({"gpgconf", "--kill", "gpg-agent"}, o);
    ASSERT_TRUE(signed_.ok()) << signed_.err;
    const auto first = check();
    ASSERT_EQ(first.exit_code, 100) << first.err;
    ASSERT_EQ(kept().size(), 1u) << "the answer was kept";
    // The signature is gone from the server; repomd.xml is the same bytes.
    stdfs::remove(docroot / "repo/repodata/repomd.xml.asc");
    const auto r = check();
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "repo_gpgcheck=1, but repodata/repomd.xml.asc is missing")) << r.err;
    EXPECT_EQ(r.out, "") << "no kept answer given";
}

TEST_F(WarmAnswer, AnotherUserKeepsAnswersInItsOwnCacheAndTheRootIsUntouched) {
    write_repo("0");
    const auto as_user = as_other_user();
    const auto home = tmp.path() / "home";
    const auto snapshot = leo::test::snapshot_tree(root, {});
    const auto first = check({}, as_user);
    ASSERT_EQ(first.exit_code, 100) << first.err;
    std::vector<stdfs::path> dirs;
    for (const auto& e : stdfs::directory_iterator(home / ".cache/leo-installer")) dirs.push_back(e.path());
    ASSERT_EQ(dirs.size(), 1u);
    const auto kept_dir = dirs[0] / "answers";
    ASSERT_TRUE(stdfs::is_directory(kept_dir));
    const auto stamp = [&] {
        std::string s;
        for (const auto& e : stdfs::directory_iterator(kept_dir)) {
            struct stat st {};
            ::stat(e.path().c_str(), &st);
            s += e.path().filename().string() + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_mtim.tv_sec) +
                 "." + std::to_string(st.st_mtim.tv_nsec) + ";";
            EXPECT_EQ(st.st_uid, k_other_user);
        }
        return s;
    };
    const auto before = stamp();
    ASSERT_FALSE(before.empty()) << "the full program kept the user's answer";
    for (int i = 0; i < 2; ++i) {
        const auto r = check({}, as_user);
        EXPECT_EQ(r.exit_code, 100);
        EXPECT_EQ(r.out, first.out);
    }
    EXPECT_EQ(stamp(), before) << "the launcher answered";
    EXPECT_EQ(server->request_count("-primary.xml.gz"), 1u);
    EXPECT_EQ(leo::test::snapshot_tree(root, {}), snapshot) << "nothing under the root changed";
}

TEST_F(WarmAnswer, CleanMetadataRemovesTheKeptAnswers) {
    write_repo("1h");
    ASSERT_EQ(check().exit_code, 100);
    ASSERT_EQ(kept().size(), 1u);
    const auto r = run_installer({"clean", "metadata", "--root", root.string(), "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "/var/cache/leo-installer/answers")) << r.out;
    EXPECT_FALSE(stdfs::exists(answers()));
    const std::size_t primaries = server->request_count("-primary.xml.gz");
    EXPECT_EQ(check().exit_code, 100);
    EXPECT_EQ(server->request_count("-primary.xml.gz"), primaries + 1) << "the full program fetched again";
    EXPECT_EQ(kept().size(), 1u);
}

TEST_F(WarmAnswer, AFileRewrittenWithinOneClockTickIsToldByItsBytes) {
    // A .repo file rewritten at the same size within one tick of the kernel's clock keeps its
    // times: the kept answer also holds the digest of the bytes the run read. Simulated here:
    // the file is edited, and the kept answer is made to carry the new file's times with the
    // old bytes' digest (what a racy run would have kept).
    write_repo("1h");
    const auto first = check();
    ASSERT_EQ(first.exit_code, 100);
    ASSERT_EQ(kept().size(), 1u);
    const auto file = answers() / kept().begin()->first;
    write_repo("1h", "exclude=leostream-broker-9.2.0-*\n");
    auto j = nlohmann::json::parse(leo::test::slurp(file));
    bool found = false;
    for (auto& in : j["inputs"]) {
        if (in[1] != "/etc/yum.repos.d/leo.repo") continue;
        struct stat st {};
        ASSERT_EQ(::stat((root / "etc/yum.repos.d/leo.repo").c_str(), &st), 0);
        char id[256];
        std::snprintf(id, sizeof id, "%lu:%lu:%ld:%ld.%09ld:%ld.%09ld:%o:%u", static_cast<unsigned long>(st.st_dev),
                      static_cast<unsigned long>(st.st_ino), static_cast<long>(st.st_size),
                      static_cast<long>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec, static_cast<long>(st.st_ctim.tv_sec),
                      st.st_ctim.tv_nsec, st.st_mode, st.st_uid);
        in[2] = id;
        EXPECT_FALSE(in[3].get<std::string>().empty()) << "the digest of the bytes read is kept";
        found = true;
    }
    ASSERT_TRUE(found) << j["inputs"].dump(1);
    {
        std::ofstream(file) << j.dump();
    }
    const auto r = check();
    EXPECT_TRUE(contains(r.out, "leostream-broker-9.2.0~rc1-1.x86_64")) << "the full program answered: " << r.out;
}

TEST_F(WarmAnswer, ARootWithATrailingSlashIsAnsweredAndEachEnvironmentHasItsOwnAnswer) {
    write_repo("1h");
    // --root R/ (what a shell's completion writes) names the same root: answered again.
    const std::vector<std::string> slash{"check-update", "--root", root.string() + "/"};
    const auto first = run_installer(slash);
    ASSERT_EQ(first.exit_code, 100) << first.err;
    const auto one = kept();
    ASSERT_EQ(one.size(), 1u);
    const auto again = run_installer(slash);
    EXPECT_EQ(again.out, first.out);
    EXPECT_EQ(kept(), one) << "the launcher answered --root R/";
    // Two environments running the same command keep one answer each, not one in turns.
    leo::subprocess::Options agent;
    agent.env["LEO_WARM_ANSWER_TEST"] = "agent";
    const auto before = kept().size();
    ASSERT_EQ(check({}, agent).exit_code, 100);
    ASSERT_EQ(check().exit_code, 100);
    EXPECT_EQ(kept().size(), before + 2);
    const auto both = kept();
    ASSERT_EQ(check({}, agent).exit_code, 100);
    ASSERT_EQ(check().exit_code, 100);
    EXPECT_EQ(kept(), both) << "each answered by the launcher from its own answer";
}

TEST_F(WarmAnswer, ALocalRepositoryIsReadInPlaceEachTime) {
    // A directory given with --repofrompath (file://) is read where it is, as dnf does: an
    // edit of the directory shows at once, metadata_expire or not.
    const auto local = tmp.path() / "local";
    stdfs::copy(pkgs / "repo", local, stdfs::copy_options::recursive);
    const std::vector<std::string> args{"--repofrompath", "l," + local.string(), "--repo", "l"};
    auto r = check(args);
    ASSERT_EQ(r.exit_code, 100) << r.err;
    EXPECT_TRUE(contains(r.out, k_new)) << r.out;
    expect_launcher_answers(r, args);
    stdfs::remove(local / (k_new + ".rpm"));
    leo::test::run_ok({"createrepo_c", "--quiet", "--no-database", local.string()});
    r = check(args);
    EXPECT_EQ(r.exit_code, 100);
    EXPECT_TRUE(contains(r.out, "leostream-broker-9.2.0~rc1-1.x86_64")) << r.out;
    expect_launcher_answers(r, args);
}

TEST_F(WarmAnswer, NoUpdateSaysWhenTheInstalledPackageIsNoLongerOffered) {
    write_repo("1h", "exclude=leostream-broker-9.2.0-*\n");
    install_justdb("9.2.0");
    const auto r = check();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "no update: " + k_new + " is installed; the newest available is the older "
                                "leostream-broker-9.2.0~rc1-1.x86_64 from leo"))
        << r.out;
}

} // namespace

// The launcher loads libcurl only for a GET (installer/src/warm_get.hpp): it is not among the
// libraries it needs, and without its GET module it still answers within metadata_expire;
// past it, with the module missing or not a module, the full program answers, rightly.
class WarmAnswerGetModule : public WarmAnswer {
protected:
    /// A copy of the launcher in TREE/installer, the full program linked at
    /// TREE/libexec/leo-installer/leo-installer and `module` (if any) as its GET module.
    stdfs::path launcher_tree(const std::string& name, const std::optional<std::string>& module) {
        const stdfs::path tree = tmp.path() / name;
        const stdfs::path built = LEO_INSTALLER_BIN;
        stdfs::create_directories(tree / "installer");
        stdfs::create_directories(tree / "libexec/leo-installer");
        stdfs::copy_file(built, tree / "installer/leo-installer");
        stdfs::create_symlink(built.parent_path().parent_path() / "libexec/leo-installer/leo-installer",
                              tree / "libexec/leo-installer/leo-installer");
        if (module) leo::fs::write_file_atomic(tree / "libexec/leo-installer/leo-installer-get.so", *module);
        return tree / "installer/leo-installer";
    }
    leo::subprocess::Result check_with(const stdfs::path& launcher) {
        return leo::subprocess::run({launcher.string(), "check-update", "--root", root.string()});
    }
};

TEST_F(WarmAnswerGetModule, TheLauncherDoesNotLinkLibcurl) {
    const std::string needed = leo::test::run_ok({"readelf", "-d", LEO_INSTALLER_BIN});
    EXPECT_TRUE(contains(needed, "libcrypto")) << needed;  // what it needs is listed
    EXPECT_FALSE(contains(needed, "libcurl")) << needed;
    const stdfs::path module =
        stdfs::path(LEO_INSTALLER_BIN).parent_path().parent_path() / "libexec/leo-installer/leo-installer-get.so";
    EXPECT_TRUE(contains(leo::test::run_ok({"readelf", "-d", module.string()}), "libcurl")) << module;
}

// The module's C interface as the launcher uses it: a request of this build's size gets the
// body through the sink; one of another size (a launcher of another build, met while rpm
// replaces the package's files one after the other) is refused before anything is sent.
TEST_F(WarmAnswerGetModule, ARequestOfAnotherBuildsSizeIsRefused) {
    const stdfs::path module = stdfs::path(LEO_INSTALLER_BIN).parent_path().parent_path() /
                               "libexec/leo-installer" / leo::installer::warm::k_get_module;
    void* handle = ::dlopen(module.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle, nullptr) << ::dlerror();
    const auto init = reinterpret_cast<leo::installer::warm::GetInit>(::dlsym(handle, leo::installer::warm::k_get_init_symbol));
    const auto get = reinterpret_cast<leo::installer::warm::GetFunction>(::dlsym(handle, leo::installer::warm::k_get_symbol));
    ASSERT_NE(init, nullptr);
    ASSERT_NE(get, nullptr);
    ASSERT_TRUE(init());
    const std::string url = server->url() + "/repo/repodata/repomd.xml";
    std::string body;
    leo::installer::warm::GetRequest request{};
    request.size = sizeof request;
    request.url = url.c_str();
    request.protocols = "http,https";
    request.redirect_protocols = "http,https";
    request.protocol_mask = CURLPROTO_HTTP | CURLPROTO_HTTPS;
    request.redirect_mask = CURLPROTO_HTTP | CURLPROTO_HTTPS;
    request.timeout = 30;
    request.proxy = request.sslcacert = request.sslclientcert = request.sslclientkey = "";
    request.limit = std::uint64_t{1} << 20;
    request.sink = [](void* context, const char* data, std::size_t size) {
        static_cast<std::string*>(context)->append(data, size);
        return true;
    };
    request.context = &body;
    EXPECT_TRUE(get(&request));
    EXPECT_EQ(body, leo::fs::read_file(docroot / "repo/repodata/repomd.xml"));
    EXPECT_EQ(server->request_count("repomd.xml"), 1u);
    body.clear();
    request.size = sizeof request - sizeof(void*);
    EXPECT_FALSE(get(&request));
    EXPECT_TRUE(body.empty());
    EXPECT_EQ(server->request_count("repomd.xml"), 1u) << "nothing was asked";
    // A body over the limit fails the GET.
    request.size = sizeof request;
    request.limit = 16;
    EXPECT_FALSE(get(&request));
    ::dlclose(handle);
}

TEST_F(WarmAnswerGetModule, WithoutItTheLauncherAnswersWithinExpireAndTheFullProgramPastIt) {
    const auto bare = launcher_tree("bare", std::nullopt);
    const auto broken = launcher_tree("broken", std::string("not a shared object\n"));
    write_repo("1h");
    const auto first = check();
    ASSERT_EQ(first.exit_code, 100) << first.err;
    const auto within = kept();
    const std::size_t requests = server->request_count();
    for (const auto& launcher : {bare, broken}) {
        const auto r = check_with(launcher);
        EXPECT_EQ(r.exit_code, 100) << r.err;
        EXPECT_EQ(r.out, first.out);
        EXPECT_EQ(kept(), within) << launcher << ": the launcher answered within metadata_expire";
    }
    EXPECT_EQ(server->request_count(), requests) << "nothing was asked within metadata_expire";

    write_repo("0");
    const auto past = check();
    ASSERT_EQ(past.exit_code, 100) << past.err;
    for (const auto& launcher : {bare, broken}) {
        const auto before = kept();
        const auto r = check_with(launcher);
        EXPECT_EQ(r.exit_code, 100) << r.err;
        EXPECT_EQ(r.out, past.out);
        EXPECT_EQ(r.err, past.err);
        EXPECT_NE(kept(), before) << launcher << ": no GET module, the full program answers past metadata_expire";
    }
    // The built launcher, with its module, answers past metadata_expire with its one GET.
    const std::size_t repomd = server->request_count("repomd.xml");
    expect_launcher_answers(past);
    EXPECT_EQ(server->request_count("repomd.xml"), repomd + 2);
}

// An answer that cannot be written (a full disk, past ulimit -f) is an error on stderr and
// exit 1, from the full program and from the launcher alike; not a kill by SIGXFSZ, not a
// silent exit 100 with nothing written. A closed pipe is not an error of ours.
TEST_F(WarmAnswer, AnAnswerThatCannotBeWrittenIsAnErrorFromEitherProgram) {
    write_repo("1h");
    const auto to = [&](const std::string& redirect, const std::string& limit = "unlimited") {
        return leo::subprocess::run({"bash", "-c", "ulimit -f " + limit + "; exec \"$0\" \"$@\" " + redirect,
                                     LEO_INSTALLER_BIN, "check-update", "--root", root.string()});
    };
    const auto full = to(">/dev/full");  // no answer kept yet: the full program answers
    EXPECT_EQ(full.signal, 0);
    EXPECT_EQ(full.exit_code, 1) << full.err;
    EXPECT_TRUE(contains(full.err, "leo-installer: error: cannot write the output")) << full.err;
    const auto first = check();
    ASSERT_EQ(first.exit_code, 100) << first.err;
    const auto before = kept();
    ASSERT_FALSE(before.empty());
    const auto warm = to(">/dev/full");
    EXPECT_EQ(warm.exit_code, 1) << warm.err;
    EXPECT_TRUE(contains(warm.err, "leo-installer: error: cannot write the output: No space left on device")) << warm.err;
    // Past a file-size limit: the output file already holds more than the limit.
    const auto out = tmp.path() / "monitor.log";
    leo::fs::write_file_atomic(out, std::string(8192, 'x'));
    const auto limited = to(">>" + out.string(), "4");
    EXPECT_EQ(limited.signal, 0) << "killed by signal " << limited.signal;
    EXPECT_EQ(limited.exit_code, 1) << limited.err;
    EXPECT_TRUE(contains(limited.err, "cannot write the output: File too large")) << limited.err;
    EXPECT_EQ(kept(), before) << "the launcher answered each time";
    EXPECT_EQ(stdfs::file_size(out), 8192u);
    // A reader that closes the pipe early: the kept answer's exit code, no error message.
    const auto piped = leo::subprocess::run({"bash", "-c", "\"$0\" \"$@\" | head -c 1 >/dev/null; exit ${PIPESTATUS[0]}",
                                            LEO_INSTALLER_BIN, "check-update", "--root", root.string()});
    EXPECT_TRUE(piped.exit_code == 100 || piped.exit_code == 141) << piped.exit_code << piped.err;
    EXPECT_FALSE(contains(piped.err, "cannot write")) << piped.err;
}

// The launcher's GET refuses a repomd.xml announced larger than its cap before any body
// comes, as the full program does: a server announcing 100 MB and sending nothing does not
// hold the answer for the repository's timeout (30 s here) before the full program's error.
TEST_F(WarmAnswer, ARepomdAnnouncedOverItsCapIsRefusedAtOnceByTheLauncherToo) {
    write_repo("0", "timeout=30\n");
    ASSERT_EQ(check().exit_code, 100);
    const auto before = kept();
    server->announce("repomd.xml", 100000000);
    leo::subprocess::Options bounded;
    bounded.timeout = std::chrono::seconds(20);
    const auto r = run_installer({"check-update", "--root", root.string()}, bounded);
    EXPECT_FALSE(r.timed_out) << "the announced size was not refused: the GET waited for the body";
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "100000000")) << r.err;  // the full program's message names it
    EXPECT_EQ(server->request_count("repomd.xml"), 3u) << "the first run, the launcher's GET, the full program's";
    EXPECT_EQ(kept(), before) << "a failed run keeps nothing";
}
