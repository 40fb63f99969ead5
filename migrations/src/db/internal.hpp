// What the internal PostgreSQL's files share (private to migrations/src/db/): paths, limits, the Runner, server control.
#pragma once

#include "leo/common/accounts.hpp"
#include "leo/common/subprocess.hpp"
#include "leo/common/system_root.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace leo::migrations::detail {

constexpr const char* k_user = "leo";
constexpr int k_port = 5432;
/// sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
constexpr size_t k_max_socket_path = 108;
/// How long start() waits for the server to accept connections, and stop() for it to end.
constexpr auto k_server_wait = std::chrono::seconds(60);
/// How much of the server log an error quotes from (its last lines).
constexpr off_t k_log_tail_bytes = 64 * 1024;

// Paths inside the root (fs::SystemRoot names them so).
inline const std::filesystem::path k_pgsql_in{fs::SystemRoot::k_pgsql};
inline const std::filesystem::path k_data_in = k_pgsql_in / "data";
inline const std::filesystem::path k_staging_in = k_pgsql_in / "data.init";
inline const std::filesystem::path k_log_in = k_pgsql_in / "postgresql.log";
constexpr auto k_subprocess_timeout = std::chrono::seconds(180);

// ---- pg_programs.cpp ----

/// `s` without leading and trailing blanks (space, tab, CR, LF).
std::string trim(const std::string& s);

std::optional<std::filesystem::path> find_nss_wrapper();

bool is_host_root(const std::filesystem::path& root);

/// How to run PostgreSQL's programs for one root: as leo, with nss_wrapper in a sandbox.
struct Runner {
    std::filesystem::path bindir;
    accounts::User user;
    subprocess::Options options;

    subprocess::Result run(const std::string& program, std::vector<std::string> args) const {
        args.insert(args.begin(), (bindir / program).string());
        return subprocess::run(args, options);
    }
};

/// The root's user leo; throws leo::DatabaseError when it is missing or has uid 0.
accounts::User leo_user(const std::filesystem::path& root);

Runner make_runner(const std::filesystem::path& root);

/// One line saying how a program ended: its last line of output, a timeout or a signal.
std::string output_of(const subprocess::Result& r);

// ---- server_process.cpp ----

/// The pid of the postmaster running in `data_in` (a data directory inside the root),
/// after checking that it really is (is_postmaster_of), or nullopt.
std::optional<pid_t> running_postmaster(const fs::SystemRoot& sys, const std::filesystem::path& data_in,
                                        const std::optional<accounts::User>& leo);

/// Start `postgres -D DATA` as leo, detached, output appended to the log; wait until it
/// accepts connections. Returns its pid.
pid_t start_server(const Runner& runner, const fs::SystemRoot& sys, const std::filesystem::path& data_in);

/// Fast shutdown (SIGINT) of the postmaster `pid` (checked by running_postmaster()), and
/// wait for it to end.
void stop_server(const fs::SystemRoot& sys, const std::filesystem::path& data_in, pid_t pid);

} // namespace leo::migrations::detail
