#pragma once
/// The console Administration Menu (leo-menu) in a real terminal, shared by the menu's
/// test files: a sandbox root with the broker 9.0.7 installed and its components under the
/// supervisor (Maintenance), and leo-menu started on it in tmux (TerminalSession).

#include "maintenance_support.hpp"
#include "terminal_session.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

/// Wait (60 s) for `text` on the session's screen; the screen in the failure message.
#define EXPECT_SCREEN(session, text)                                                                 \
    do {                                                                                              \
        std::string screen_;                                                                          \
        ASSERT_TRUE((session).wait_for((text), std::chrono::seconds(60), &screen_))                   \
            << "waited for \"" << (text) << "\" on:\n" << screen_;                                    \
    } while (0)

/// Wait (60 s) until `text` is gone from the screen: newt draws a sub-menu over its parents,
/// whose titles stay visible, so leaving a sub-menu is seen by its own title going away.
#define EXPECT_GONE(session, text)                                                                   \
    do {                                                                                              \
        const auto deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(60);          \
        while ((session).screen().find(text) != std::string::npos &&                                 \
               std::chrono::steady_clock::now() < deadline_)                                          \
            std::this_thread::sleep_for(std::chrono::milliseconds(100));                              \
        ASSERT_EQ((session).screen().find(text), std::string::npos)                                  \
            << "\"" << (text) << "\" still on:\n" << (session).screen();                               \
    } while (0)

namespace leo::test {

/// A broker root (maintenance_support.hpp) and the menu opened on it as root.
class MenuFixture : public maintenance::Maintenance {
protected:
    /// leo-menu --root ROOT [extra...] in a cols x rows terminal.
    std::unique_ptr<TerminalSession> open(int cols = 80, int rows = 25, const std::vector<std::string>& extra = {}) {
        std::vector<std::string> argv{LEO_MENU_BIN, "--root", root.string()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return std::make_unique<TerminalSession>(argv, cols, rows);
    }
    bool components_run() const {
        return maintenance::running(pid_of("httpd")) && maintenance::running(pid_of("queue"));
    }
};

} // namespace leo::test
