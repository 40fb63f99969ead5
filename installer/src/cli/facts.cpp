// leo-installer facts: gather the host facts that preflight judges and print them (text or --json).
#include "command.hpp"

#include "leo/preflight/facts.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {

namespace {

class FactsCommand final : public Command {
public:
    [[nodiscard]] bool needs_root() const override { return false; }  // read-only for every user
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
    }
    int run() override {
        const auto facts = preflight::gather_facts(root());
        const auto j = preflight::to_json(facts);
        if (m_json) {
            print_json(j);
        } else {
            std::cout << fmt::format("os:        {} (ID={}, VERSION_ID={}) from {}\n", facts.os.pretty_name,
                                     facts.os.id, facts.os.version_id,
                                     facts.os.source.empty() ? "nowhere: " + facts.os.error : facts.os.source);
            std::cout << fmt::format("arch:      {}\n", facts.arch);
            std::cout << fmt::format("vcpus:     {} ({})\n", facts.vcpus, facts.vcpus_source);
            std::cout << fmt::format("memory:    {} KiB MemTotal ({})\n", facts.mem_total_kib, facts.mem_source);
            std::cout << fmt::format("/home/leo: {} on {} ({}, source {}), {} bytes total, {} available\n",
                                     facts.home.path, facts.home.mount_point, facts.home.fstype,
                                     facts.home.mount_source, facts.home.total_bytes, facts.home.available_bytes);
        }
        return 0;
    }
};

} // namespace

std::unique_ptr<Command> make_facts_command() { return std::make_unique<FactsCommand>(); }

} // namespace leo::cli
