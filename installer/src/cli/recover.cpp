// leo-installer recover: finish or undo a run that was interrupted (crash, kill, power loss).
#include "command.hpp"

#include "leo/common/log.hpp"
#include "leo/installer/recover.hpp"

#include <iostream>

#include <CLI/CLI.hpp>

namespace leo::cli {

namespace {

class RecoverCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        add_assumeyes(sub);
        sub.add_flag("--dry-run", m_dry_run, "Say what recover would do and why; change nothing");
    }
    int run() override {
        const auto r = root();
        if (m_dry_run) {
            const auto plan = installer::plan_recover(r);
            print(plan);
            if (plan.action != installer::RecoverPlan::Action::nothing || !plan.leftovers.empty())
                std::cout << "dry run: nothing was changed; run `" << k_prog << " recover` to do it\n";
            return 0;
        }
        open_log(r);
        const auto out = installer::recover(
            r, [](const std::string& s) { std::cout << "==> " << s << "\n" << std::flush; },
            [this](const installer::RecoverPlan& plan) {
                print(plan);
                return ask("Proceed?");
            });
        std::cout << out.message << "\n";
        return 0;
    }

private:
    static void print(const installer::RecoverPlan& plan) {
        if (plan.action == installer::RecoverPlan::Action::nothing) {
            std::cout << plan.what << "\n";
            for (const auto& l : plan.leftovers) std::cout << "leftover:        " << l << "\n";
            return;
        }
        for (const auto& l : plan.leftovers) std::cout << "leftover:        " << l << "\n";
        std::cout << "interrupted run: " << plan.command << " (run " << plan.run << ")\n";
        if (!plan.last_step.empty()) std::cout << "last step:       " << plan.last_step << "\n";
        std::cout << "why:             " << plan.why << "\n";
        std::cout << (plan.action == installer::RecoverPlan::Action::forward   ? "forward:         "
                      : plan.action == installer::RecoverPlan::Action::give_up ? "give up:         "
                                                                               : "back:            ")
                  << plan.what << "\n";
    }
    bool m_dry_run = false;
};

} // namespace

std::unique_ptr<Command> make_recover_command() { return std::make_unique<RecoverCommand>(); }

} // namespace leo::cli
