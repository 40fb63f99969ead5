#include "leo/rpm/rpmlib.hpp"

#include "leo/common/error.hpp"
#include "leo/common/log.hpp"
#include "leo/rpm/handles.hpp"

#include <mutex>

#include <rpm/rpmlib.h>
#include <rpm/rpmlog.h>
#include <rpm/rpmmacro.h>

namespace leo::rpm {
namespace {
std::once_flag g_init_once;
thread_local LogCapture* t_capture = nullptr;

std::string trim(const char* s) {
    std::string m = s != nullptr ? s : "";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    return m;
}

int log_callback(rpmlogRec rec, rpmlogCallbackData) {
    const rpmlogLvl lvl = rpmlogRecPriority(rec);
    std::string msg = trim(rpmlogRecMessage(rec));
    if (lvl <= RPMLOG_WARNING) {
        if (t_capture != nullptr) t_capture->add(msg);
        log::write(lvl <= RPMLOG_ERR ? log::Level::error : log::Level::warning, "librpm: " + msg);
    } else {
        log::write(log::Level::debug, "librpm: " + msg);
    }
    return 0;  // never print: libraries do not write to the terminal
}
} // namespace

void initialize() {
    std::call_once(g_init_once, [] {
        rpmlogSetCallback(log_callback, nullptr);
        if (rpmReadConfigFiles(nullptr, nullptr) != 0) throw RpmError("cannot read rpm's configuration (rpmrc, macros)");
#ifdef LEO_HAVE_RPMPUSHMACRO
        rpmPushMacro(nullptr, "_dbpath", nullptr, k_dbpath, RMIL_CMDLINE);
#else
        addMacro(nullptr, "_dbpath", nullptr, k_dbpath, RMIL_CMDLINE);
#endif
    });
}

LogCapture::LogCapture() : m_previous(t_capture) { t_capture = this; }
LogCapture::~LogCapture() { t_capture = m_previous; }

std::string LogCapture::joined() const {
    std::string out;
    for (const auto& m : m_messages) {
        if (!out.empty()) out += "; ";
        out += m;
    }
    return out;
}

TsPtr make_ts(const char* root) {
    initialize();
    TsPtr ts(rpmtsCreate());
    if (!ts) throw RpmError("cannot create an rpm transaction set");
    if (rpmtsSetRootDir(ts.get(), root) != 0)
        throw RpmError(std::string("invalid rpm root '") + root + "': it must be an absolute path");
    return ts;
}

} // namespace leo::rpm
