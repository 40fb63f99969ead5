// leo-installer verify: check a package file's digests and signature against the given or imported keys.
#include "command.hpp"

#include "leo/rpm/package.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leo::cli {
namespace stdfs = std::filesystem;

namespace {

class VerifyCommand final : public Command {
public:
    [[nodiscard]] bool needs_root() const override { return false; }  // read-only for every user
    void setup(CLI::App& sub) override {
        add_root(sub);
        add_json(sub);
        sub.add_option("--rpm", m_rpm, "The package file")->required()->option_text("FILE");
        sub.add_option("--gpgkey", m_keys, "Armored public key file (repeatable)")->option_text("FILE");
    }
    int run() override {
        std::vector<stdfs::path> keys(m_keys.begin(), m_keys.end());
        const auto r = root();
        const auto v = rpm::verify_package(m_rpm, rpm::Keys{r, keys, {}});
        // Why the package is not accepted ("" when it is).
        std::string error;
        switch (v.signature) {
        case rpm::SignatureState::ok: break;
        case rpm::SignatureState::nokey:
            error = fmt::format("{}: NOKEY: key {} is neither in a --gpgkey file nor imported in the rpmdb of {}; "
                                "pass the signer's public key with --gpgkey FILE",
                                m_rpm, v.key_id, r.string());
            break;
        case rpm::SignatureState::unsigned_: error = fmt::format("{} is not signed", m_rpm); break;
        case rpm::SignatureState::nottrusted: error = fmt::format("{}: key {} is not trusted", m_rpm, v.key_id); break;
        case rpm::SignatureState::bad: error = fmt::format("{} is corrupt or was changed; download it again", m_rpm); break;
        }
        if (m_json) {
            nlohmann::json j{{"file", m_rpm},
                             {"nevra", v.package.nevra()},
                             {"arch", v.package.arch},
                             {"digests", v.digests_ok ? "ok" : "bad"},
                             {"signature", rpm::to_string(v.signature)},
                             {"key_id", v.key_id},
                             {"sha256", v.sha256},
                             {"detail", v.detail}};
            // The same shape as every command's error with --json.
            if (!error.empty()) j["error"] = {{"message", error}, {"exit_code", 1}, {"command", "verify"}};
            print_json(j);
        } else {
            std::cout << fmt::format("{}: {}\n  digests:   {}\n  signature: {}{}\n  sha256:    {}\n", m_rpm,
                                     v.package.name.empty() ? "(unreadable package header)" : v.package.nevra(), v.digests_ok ? "OK" : "BAD",
                                     rpm::to_string(v.signature),
                                     v.key_id.empty() ? "" : " (key " + v.key_id + ")", v.sha256);
            if (!v.detail.empty()) std::cout << "  detail:    " << v.detail << "\n";
        }
        if (!error.empty()) std::cerr << k_prog << ": error: " << error << "\n";
        return v.signature == rpm::SignatureState::ok ? 0 : 1;
    }

private:
    std::string m_rpm;
    std::vector<std::string> m_keys;
};

} // namespace

std::unique_ptr<Command> make_verify_command() { return std::make_unique<VerifyCommand>(); }

} // namespace leo::cli
