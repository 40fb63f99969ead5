// leo-installer: the launcher. It gives check-update's kept answer again when nothing it was
// computed from has changed (warm_answer.hpp), loading libcrypto and little else (libcurl only
// when a GET is needed: the module leo-installer-get.so beside the full program, warm_get.hpp);
// otherwise it executes the full program, ../libexec/leo-installer/leo-installer beside it,
// with the same arguments (argv[0] too: switch_database.pl is known by its name) and environment.
#include "leo/installer/warm_answer.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <signal.h>
#include <unistd.h>

namespace {

/// Where the installed package puts the full program (rpm/specs/leo-installer.spec), used
/// when /proc is not mounted (a chroot that rpm runs scriptlets in).
constexpr const char* k_installed_program = "/usr/libexec/leo-installer/leo-installer";

std::filesystem::path full_program() {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return k_installed_program;
    return self.parent_path().parent_path() / "libexec" / "leo-installer" / "leo-installer";
}

} // namespace

int main(int argc, char** argv) {
    // As the full program (cli.cpp): a write past ulimit -f is an error it reports, not a kill.
    ::signal(SIGXFSZ, SIG_IGN);
    const auto program = full_program();
    // The answer is written with write(2): nothing is buffered, and nothing needs tearing
    // down (OpenSSL's and libcurl's exit handlers are most of an answer's exit).
    if (const auto code = leo::installer::warm::answer(argc, argv, program)) ::_exit(*code);
    ::execv(program.c_str(), argv);
    std::fprintf(stderr, "leo-installer: error: cannot run the program %s: %s; reinstall the leo-installer package\n",
                 program.c_str(), std::strerror(errno));
    // _exit: the thread loading the GET module (warm_answer.cpp) may still run; stderr is unbuffered.
    ::_exit(1);
}
