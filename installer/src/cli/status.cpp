// leo-installer status: print the installed version, schema version and database state (text or --json).
#include "command.hpp"

#include "leo/installer/status.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace leo::cli {

namespace {

class StatusCommand final : public Command {
public:
    [[nodiscard]] bool needs_root() const override { return false; }  // read-only for every user
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
    }
    int run() override {
        const auto s = installer::gather_status(root());
        if (m_json) print_json(installer::to_json(s));
        else std::cout << installer::to_text(s);
        return static_cast<int>(installer::status_code(s));
    }
};

} // namespace

std::unique_ptr<Command> make_status_command() { return std::make_unique<StatusCommand>(); }

} // namespace leo::cli
