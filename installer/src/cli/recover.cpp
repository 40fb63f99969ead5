// leo-installer recover: finish or undo a run that was interrupted (crash, kill, power loss).
#include "command.hpp"

#include "leo/common/log.hpp"
#include "leo/installer/upgrade.hpp"

#include <iostream>

#include <CLI/CLI.hpp>

namespace leo::cli {

namespace {

class RecoverCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_assumeyes(sub);
    }
    int run() override {
        const auto r = root();
        log::open_log(r);
        const auto out = installer::recover(r, [](const std::string& s) { std::cout << "==> " << s << "\n" << std::flush; });
        std::cout << out.message << "\n";
        return 0;
    }
};

} // namespace

std::unique_ptr<Command> make_recover_command() { return std::make_unique<RecoverCommand>(); }

} // namespace leo::cli
