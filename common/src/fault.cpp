#include "leo/common/fault.hpp"

#include <csignal>
#include <cstdlib>

#include <unistd.h>

namespace leo::fault {

void point(std::string_view name) {
    const char* wanted = std::getenv(k_env);
    if (wanted != nullptr && name == wanted) ::kill(::getpid(), SIGKILL);
}

} // namespace leo::fault
