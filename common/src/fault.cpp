#include "leo/common/fault.hpp"

#include <csignal>
#include <cstdlib>
#include <string>
#include <chrono>
#include <thread>

#include <unistd.h>

namespace leo::fault {

void point(std::string_view name) {
    const char* wanted = std::getenv(k_env);
    if (wanted == nullptr || name != wanted) return;
    if (const char* sleep_s = std::getenv(k_sleep_env); sleep_s != nullptr && *sleep_s != '\0') {
        std::this_thread::sleep_for(std::chrono::seconds(std::atoi(sleep_s)));
        return;
    }
    int sig = SIGKILL;
    if (const char* given = std::getenv(k_signal_env); given != nullptr && *given != '\0') sig = std::atoi(given);
    ::kill(::getpid(), sig);  // through the kernel, to the handler the run has
}

} // namespace leo::fault
