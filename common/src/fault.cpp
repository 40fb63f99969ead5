#include "leo/common/fault.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

namespace leo::fault {

void point(std::string_view name) {
    const char* wanted = std::getenv(k_env);
    if (wanted == nullptr || name != wanted) return;
    if (const char* sleep_s = std::getenv(k_sleep_env); sleep_s != nullptr && *sleep_s != '\0') {
        if (const char* reached = std::getenv(k_reached_env); reached != nullptr && *reached != '\0') {
            const int fd = ::open(reached, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);  // not-under-root: a test's marker
            if (fd >= 0) ::close(fd);
        }
        std::this_thread::sleep_for(std::chrono::seconds(std::atoi(sleep_s)));
        return;
    }
    int sig = SIGKILL;
    if (const char* given = std::getenv(k_signal_env); given != nullptr && *given != '\0') sig = std::atoi(given);
    ::kill(::getpid(), sig);  // through the kernel, to the handler the run has
}

} // namespace leo::fault
