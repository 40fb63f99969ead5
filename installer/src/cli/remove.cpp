// leo-installer remove [--purge-data]: erase the broker package, its data kept (dnf remove).
#include "command.hpp"

#include "leo/common/log.hpp"
#include "leo/installer/remove.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {

namespace {

class RemoveCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_wait(sub);
        add_json(sub);
        add_assumeyes(sub);
        sub.add_flag("--purge-data", m_purge,
                     "Also delete the internal database and the restore points (asked a second time; -y answers "
                     "both questions)");
        sub.add_flag("--components-stopped", m_components_stopped,
                     "The broker's components are stopped already: do not stop them");
        // dnf remove NAME: the one package this command removes may be named.
        sub.add_option("package", m_package, "leostream-broker (the only package remove acts on)")
            ->check(CLI::IsMember({"leostream-broker"}));
    }
    int run() override {
        installer::RemoveRequest req;
        req.root = root();
        req.purge = m_purge ? installer::PurgeData::yes : installer::PurgeData::no;
        req.components_stopped = m_components_stopped;
        open_log(req.root);
        log::info("remove{} --root {}", m_purge ? " --purge-data" : "", req.root.string());
        installer::RemoveCallbacks cb;
        std::ostream& steps = m_json ? std::cerr : std::cout;
        cb.on_step = [&steps](const std::string& s) { steps << "==> " << s << "\n" << std::flush; };
        cb.confirm = [this](const std::string& q) { return ask(q); };
        const auto out = installer::remove_broker(req, cb);
        if (m_json) {
            print_json({{"removed", out.removed}, {"nevra", out.nevra}, {"kept", out.kept}, {"purged", out.purged}});
            return 0;
        }
        if (!out.removed) {
            std::cout << fmt::format("leostream-broker is not installed in {}: nothing to do\n", req.root.string());
            return 0;
        }
        std::cout << fmt::format("removed {} from {}\n", out.nevra, req.root.string());
        for (const auto& k : out.kept) std::cout << "  kept " << k << "\n";
        for (const auto& p : out.purged) std::cout << "  deleted " << p << "\n";
        return 0;
    }

private:
    bool m_purge = false;
    bool m_components_stopped = false;
    std::string m_package;
};

} // namespace

std::unique_ptr<Command> make_remove_command() { return std::make_unique<RemoveCommand>(); }

} // namespace leo::cli
