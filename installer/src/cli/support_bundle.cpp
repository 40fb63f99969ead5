// leo-installer support-bundle [--output DIR] [--json]: the support ZIP, secrets redacted; prints its path.
#include "command.hpp"

#include "leo/common/log.hpp"
#include "leo/common/redact.hpp"
#include "leo/installer/support_bundle.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {

namespace {

class SupportBundleCommand final : public Command {
public:
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
        sub.add_option("-o,--output", m_output, "Write the ZIP into DIR, a directory on this host (default: /home/leo "
                                                "under the root)")
            ->option_text("DIR");
    }
    int run() override {
        installer::SupportBundleOptions o;
        o.root = root();
        if (!m_output.empty()) o.output_dir = m_output;
        open_log(o.root);
        const auto b = installer::create_support_bundle(o);
        log::info("support-bundle: wrote {} ({} bytes, {} entries, {} not collected)", b.file.string(), b.size,
                  b.entries.size(), b.omitted.size());
        if (m_json) {
            print_json(installer::to_json(b));
            return 0;
        }
        for (const auto& om : b.omitted)
            std::cerr << fmt::format("{}: note: not collected: {}: {}\n", k_prog, printable(om.what), printable(om.why));
        std::cout << b.file.string() << "\n";
        return 0;
    }

private:
    std::string m_output;
};

} // namespace

std::unique_ptr<Command> make_support_bundle_command() { return std::make_unique<SupportBundleCommand>(); }

} // namespace leo::cli
