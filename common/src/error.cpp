#include "leo/common/error.hpp"

#include <cstring>

namespace leo {
namespace {
void walk(const std::exception& e, std::string& out, ExitCode& code, bool& first) {
    if (!out.empty()) out += ": ";
    out += e.what();
    if (const auto* le = dynamic_cast<const Error*>(&e)) {
        if (first) {
            code = le->code();
            first = false;
        }
        const bool interrupted = static_cast<int>(code) > 128;
        if (dynamic_cast<const InterruptedError*>(le) != nullptr) code = le->code();
        else if (!interrupted && (le->code() == ExitCode::refused || le->code() == ExitCode::usage)) code = le->code();
    }
    try {
        std::rethrow_if_nested(e);
    } catch (const std::exception& inner) {
        walk(inner, out, code, first);
    } catch (...) {
        out += ": unknown error";
    }
}
} // namespace

std::string describe(const std::exception& e) {
    std::string out;
    ExitCode code = ExitCode::error;
    bool first = true;
    walk(e, out, code, first);
    return out;
}

ExitCode exit_code(const std::exception& e) {
    std::string out;
    ExitCode code = ExitCode::error;
    bool first = true;
    walk(e, out, code, first);
    return code;
}

SystemError system_error(const std::string& what, int errnum) {
    return SystemError(what + ": " + std::strerror(errnum));
}

} // namespace leo
