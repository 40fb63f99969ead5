// leo-bench-repo: the download path of leo-installer alone, for bench/repo.sh.
//   leo-bench-repo download BASEURL FILE SHA256 SIZE DESTDIR
// downloads BASEURL/FILE into DESTDIR (a fresh directory: nothing to reuse) through
// leo::repo::download_package (libcurl, hashing as it arrives, the size and checksum
// checks, the atomic rename) and prints the seconds it took.
#include "leo/common/system_root.hpp"
#include "leo/repo/config.hpp"
#include "leo/repo/metadata.hpp"

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

int main(int argc, char** argv) {
    if (argc != 7 || std::string(argv[1]) != "download") {
        std::fputs("usage: leo-bench-repo download BASEURL FILE SHA256 SIZE DESTDIR\n", stderr);
        return 2;
    }
    try {
        leo::repo::RepoConfig repo;
        repo.id = "bench";
        repo.baseurls = {argv[2]};
        leo::repo::PackageEntry entry;
        entry.name = "bench";
        entry.version = "1";
        entry.release = "1";
        entry.arch = "noarch";
        entry.location_href = argv[3];
        entry.base_url = argv[2];
        entry.checksum_type = "sha256";
        entry.checksum = argv[4];
        entry.size = std::stoull(argv[5]);
        const auto start = std::chrono::steady_clock::now();
        const auto path = leo::repo::download_package(repo, entry, leo::fs::SystemRoot(argv[6]), "/");
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        std::printf("%.3f %s\n", took.count(), path.c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "leo-bench-repo: %s\n", e.what());
        return 1;
    }
}
