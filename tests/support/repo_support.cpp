#include "repo_support.hpp"

#include "test_support.hpp"

#include "leo/common/error.hpp"

#include <algorithm>
#include <fstream>
#include <stdexcept>

namespace leo::test {
namespace stdfs = std::filesystem;

repo::RepoConfig repo_config(const std::string& id, std::vector<std::string> baseurls) {
    repo::RepoConfig r;
    r.id = id;
    r.name = id;
    r.baseurls = std::move(baseurls);
    r.source = "/etc/yum.repos.d/test.repo";
    return r;
}

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
    if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

std::string repo_error(const std::function<void()>& f) {
    try {
        f();
    } catch (const leo::RepoError& e) {
        return e.what();
    }
    ADD_FAILURE() << "no leo::RepoError thrown";
    return {};
}

std::vector<std::string> list_dir(const stdfs::path& dir) {
    std::vector<std::string> names;
    if (stdfs::exists(dir)) {
        for (const auto& e : stdfs::recursive_directory_iterator(dir)) names.push_back(stdfs::relative(e.path(), dir).string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

const repo::PackageEntry& find_package(const repo::Metadata& md, const std::string& name) {
    for (const auto& p : md.packages) {
        if (p.name == name) return p;
    }
    throw std::runtime_error("no package " + name);
}

std::string closed_port_url() { return "http://127.0.0.1:" + std::to_string(free_port()); }

void write_repo_file(const stdfs::path& root, const std::string& id, const std::string& lines) {
    stdfs::create_directories(root / "etc/yum.repos.d");
    std::ofstream(root / "etc/yum.repos.d" / (id + ".repo")) << "[" << id << "]\n" << lines;
}

std::string signed_repo_lines(const stdfs::path& root, const std::string& baseurl, const std::string& name_suffix,
                              bool gpgcheck) {
    std::string lines = "name=Broker" + (name_suffix.empty() ? "" : " " + name_suffix) + "\n";
    if (!baseurl.empty()) lines += "baseurl=" + baseurl + "\n";
    lines += std::string("enabled=1\ngpgcheck=") + (gpgcheck ? "1" : "0") + "\ngpgkey=" +
             key_in_root(root, test_packages_dir() / "RPM-GPG-KEY-leo-test") + "\n";
    return lines;
}

} // namespace leo::test
