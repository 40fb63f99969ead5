// Benchmark of the migration engine against psql (the floor), on the internal PostgreSQL
// of a sandbox root (started and stopped here). Not a test: timings are printed, never
// asserted. Built as leo-bench-migrations (migrations/CMakeLists.txt, with LEO_BUILD_TESTS);
// run by bench/migrations.sh.
//
//  1. validate: a history of N applied migrations (default 1000) against the same N files:
//     load_migrations + read_schema_state + validate, and a whole migrate() that finds
//     nothing to do (cluster lock on its own connection, pooler probe, read, validate).
//  2. apply: M small migrations (default 500; each creates a table and inserts two rows)
//     with migrate(), against `psql -X -q -v ON_ERROR_STOP=1 -f` of the same SQL
//     concatenated (the floor; autocommit per statement), and `psql -1 -f` (one
//     transaction for everything) for reference. Each on a fresh database, median of R
//     runs (default 3).
//
// usage: leo-bench-migrations [N_VALIDATE] [N_APPLY] [RUNS]
#include "leo/migrations/connection.hpp"
#include "leo/migrations/engine.hpp"
#include "leo/migrations/internal_db.hpp"

#include "leo/common/subprocess.hpp"
#include "test_support.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace leo;
using namespace leo::migrations;
namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

void write(const stdfs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
}

std::string small_migration(int i) {
    return fmt::format("-- bench migration {0}\nCREATE TABLE bench_{0} (id integer PRIMARY KEY, name text NOT NULL);\n"
                       "INSERT INTO bench_{0} (id, name) VALUES (1, 'one'), (2, 'two');\n",
                       i);
}

std::string conninfo_for(const InternalDatabase& db, const std::string& dbname) { return db.conninfo(dbname); }

void recreate_database(Connection& admin, const std::string& name) {
    admin.exec(fmt::format("DROP DATABASE IF EXISTS {}", name));
    admin.exec(fmt::format("CREATE DATABASE {} OWNER leo", name));
}

std::string psql_path() {
    try {
        const auto p = find_pg_bindir() / "psql";
        if (stdfs::exists(p))
            return p.string();
    } catch (const std::exception&) {
    }
    return "psql";
}

double run_psql(const InternalDatabase& db, const std::string& dbname, const stdfs::path& file, bool single) {
    std::vector<std::string> argv{psql_path(), "-X",  "-q", "-v",  "ON_ERROR_STOP=1", "-h", db.socket_dir().string(),
                                  "-U",        "leo", "-d", dbname};
    if (single)
        argv.emplace_back("-1");
    argv.emplace_back("-f");
    argv.push_back(file.string());
    const auto t = Clock::now();
    const auto r = subprocess::run(argv);
    const double s = seconds_since(t);
    if (!r.ok())
        throw std::runtime_error("psql failed: " + subprocess::last_line(r.err));
    return s;
}

} // namespace

int main(int argc, char** argv) {
    const int n_validate = argc > 1 ? std::atoi(argv[1]) : 1000;
    const int n_apply = argc > 2 ? std::atoi(argv[2]) : 500;
    const int runs = argc > 3 ? std::max(1, std::atoi(argv[3])) : 3;

    test::TempDir tmp;
    const auto root = tmp.path() / "r";
    test::make_sandbox_root(root);
    test::create_leo_user(root);
    auto db = std::make_unique<InternalDatabase>(root);
    db->init();
    db->start();
    int rc = 0;
    try {
        auto admin = Connection::open(conninfo_for(*db, "postgres"));
        std::cout << fmt::format("PostgreSQL server_version_num {}\n", admin.server_version_num());

        // 1. validation of a long history
        const auto vdir = tmp.path() / "validate";
        stdfs::create_directories(vdir);
        for (int i = 1; i <= n_validate; ++i)
            write(vdir / fmt::format("V9.{}.{}.{}__v.sql", i / 100, (i / 10) % 10, i % 10),
                  fmt::format("CREATE TABLE v_{} (x integer);\n", i));
        recreate_database(admin, "bench_validate");
        auto vconn = Connection::open(conninfo_for(*db, "bench_validate"));
        (void)migrate(vconn, load_migrations(vdir), "9.9.9");
        std::vector<double> t_validate;
        std::vector<double> t_noop;
        for (int r = 0; r < std::max(runs, 5); ++r) {
            auto t = Clock::now();
            const auto files = load_migrations(vdir);
            const auto state = read_schema_state(vconn);
            const auto v = validate(state, files, "9.9.9");
            t_validate.push_back(seconds_since(t));
            if (!v.ok() || !v.pending.empty() || state.applied.size() != static_cast<size_t>(n_validate))
                throw std::runtime_error("validation bench: unexpected result " + v.message());
            t = Clock::now();
            const auto result = migrate(vconn, load_migrations(vdir), "9.9.9");
            t_noop.push_back(seconds_since(t));
            if (!result.applied.empty())
                throw std::runtime_error("validation bench: migrate applied something");
        }
        std::cout << fmt::format("validate {} applied migrations (load files + read history + validate): median "
                                 "{:.1f} ms\n",
                                 n_validate, median(t_validate) * 1000);
        std::cout << fmt::format("migrate() with {} applied and nothing to do (lock + probe + validate): median "
                                 "{:.1f} ms\n",
                                 n_validate, median(t_noop) * 1000);

        // 2. applying small migrations against psql -f
        const auto adir = tmp.path() / "apply";
        stdfs::create_directories(adir);
        std::string all;
        for (int i = 1; i <= n_apply; ++i) {
            const auto text = small_migration(i);
            write(adir / fmt::format("V{}__small.sql", i), text);
            all += text;
        }
        write(tmp.path() / "all.sql", all);
        const auto files = load_migrations(adir);
        std::vector<double> t_engine;
        std::vector<double> t_psql;
        std::vector<double> t_psql1;
        for (int r = 0; r < runs; ++r) {
            recreate_database(admin, "bench_engine");
            {
                auto conn = Connection::open(conninfo_for(*db, "bench_engine"));
                const auto t = Clock::now();
                const auto result = migrate(conn, files, "9.9.9");
                t_engine.push_back(seconds_since(t));
                if (result.applied.size() != static_cast<size_t>(n_apply))
                    throw std::runtime_error("apply bench: not everything applied");
            }
            recreate_database(admin, "bench_psql");
            t_psql.push_back(run_psql(*db, "bench_psql", tmp.path() / "all.sql", false));
            recreate_database(admin, "bench_psql");
            t_psql1.push_back(run_psql(*db, "bench_psql", tmp.path() / "all.sql", true));
        }
        const double engine = median(t_engine);
        const double psql = median(t_psql);
        const double psql1 = median(t_psql1);
        std::cout << fmt::format("apply {} small migrations: leo migrate() {:.3f} s, psql -f {:.3f} s, psql -1 -f "
                                 "{:.3f} s (medians of {})\n",
                                 n_apply, engine, psql, psql1, runs);
        std::cout << fmt::format("ratio migrate()/psql -f = {:.2f}; migrate()/psql -1 -f = {:.2f}\n", engine / psql,
                                 engine / psql1);
    } catch (const std::exception& e) {
        std::cerr << "bench failed: " << e.what() << "\n";
        rc = 1;
    }
    db->stop();
    return rc;
}
