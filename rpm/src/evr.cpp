#include "leo/rpm/evr.hpp"

#include "leo/common/error.hpp"
#include "leo/rpm/rpmlib.hpp"

#include <charconv>

#include <rpm/rpmver.h>

namespace leo::rpm {

int compare_versions(const std::string& a, const std::string& b) {
    const int r = rpmvercmp(a.c_str(), b.c_str());
    return r < 0 ? -1 : (r > 0 ? 1 : 0);
}

Evr parse_evr(const std::string& text) {
    Evr evr;
    std::string rest = text;
    if (auto colon = rest.find(':'); colon != std::string::npos) {
        const std::string e = rest.substr(0, colon);
        auto [ptr, ec] = std::from_chars(e.data(), e.data() + e.size(), evr.epoch);
        if (e.empty() || ec != std::errc() || ptr != e.data() + e.size())
            throw RpmError("invalid EVR '" + text + "': the epoch must be a non-negative integer");
        rest = rest.substr(colon + 1);
    }
    if (auto dash = rest.rfind('-'); dash != std::string::npos) {
        evr.version = rest.substr(0, dash);
        evr.release = rest.substr(dash + 1);
    } else {
        evr.version = rest;
    }
    if (evr.version.empty()) throw RpmError("invalid EVR '" + text + "': the version is empty");
    return evr;
}

int compare_evr(const Evr& a, const Evr& b) {
    if (a.epoch != b.epoch) return a.epoch < b.epoch ? -1 : 1;
    if (int v = compare_versions(a.version, b.version); v != 0) return v;
    if (a.release.empty() || b.release.empty()) return 0;
    return compare_versions(a.release, b.release);
}

} // namespace leo::rpm
