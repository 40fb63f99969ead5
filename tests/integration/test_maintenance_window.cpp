// The maintenance-window upgrade end to end: the broker's components (the example
// package's web server and work-queue worker, started by the supervisor as the root's leo
// user) are started, stopped during the upgrade and started again; the gates refuse with
// nothing changed; a failing spot-check rolls back; a killed upgrade is recovered with the
// components running again. Real PostgreSQL, real rpm transactions, the real binary.
//
// Every root gets a free health_port of its own (the tests run in parallel) and its
// components and database are stopped at the end (`service stop`).
#include "maintenance_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
using namespace leo::test::maintenance;

TEST_F(Maintenance, ServiceStartStatusStop) {
    auto before = run_installer(args({"service", "status"}));
    EXPECT_EQ(before.exit_code, 3) << before.out << before.err;
    EXPECT_TRUE(contains(before.out, "httpd  stopped")) << before.out;
    EXPECT_TRUE(contains(before.out, "queue  stopped")) << before.out;
    EXPECT_TRUE(contains(before.out, "(supervisor)")) << before.out;
    EXPECT_EQ(health().connect_errno, ECONNREFUSED);

    auto start = run_installer(args({"service", "start"}));
    ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
    EXPECT_TRUE(contains(start.out, "started the web server")) << start.out;
    EXPECT_TRUE(contains(start.out, "started the work-queue worker")) << start.out;

    // Pid files (root's, 0644): "PID STARTTIME" of live processes run by leo.
    for (const std::string c : {"httpd", "queue"}) {
        ASSERT_TRUE(stdfs::exists(pid_file(c))) << c;
        EXPECT_EQ(leo::test::owner_of(pid_file(c)), 0u);
        EXPECT_EQ(leo::test::mode_of(pid_file(c)), 0644u);
        expect_component_runs(c);
        std::istringstream in(slurp(pid_file(c)));
        std::string pid, start_time;
        in >> pid >> start_time;
        EXPECT_EQ(start_time, start_time_of(pid_of(c))) << c << ": the pid file's start time is the process's";
        EXPECT_TRUE(contains(slurp(root / "home/leo/logs" / (c + ".log")), "version 9.0.7"))
            << slurp(root / "home/leo/logs" / (c + ".log"));
    }
    EXPECT_TRUE(contains(slurp(root / "home/leo/logs/httpd.log"), "listening on 127.0.0.1:" + std::to_string(port)));
    // The health endpoint answers the installed version and the schema.
    const auto h = health();
    ASSERT_EQ(h.status, 200) << h;
    EXPECT_EQ(h.version(), "9.0.7");
    EXPECT_EQ(h.json()["database"], "leo") << h;
    EXPECT_EQ(h.json()["schema_version"], "9.0.0.2") << h;
    // The worker's heartbeat is fresh, written by leo.
    const auto beat = root / "home/leo/run/queue.heartbeat";
    ASSERT_TRUE(wait_for_file(beat, 5s));
    EXPECT_EQ(leo::test::owner_of(beat), static_cast<uid_t>(leo_uid));
    struct stat st {};
    ASSERT_EQ(::stat(beat.c_str(), &st), 0);
    EXPECT_LT(std::difftime(std::time(nullptr), st.st_mtime), 5.0);

    auto status = run_installer(args({"service", "status"}));
    EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
    EXPECT_TRUE(contains(status.out, "httpd  running (pid " + std::to_string(pid_of("httpd")) + " since "))
        << status.out;
    EXPECT_TRUE(contains(status.out, "queue  running (pid " + std::to_string(pid_of("queue")) + " since "))
        << status.out;
    EXPECT_TRUE(contains(status.out, "db     running")) << status.out;
    auto js = run_installer(args({"service", "status", "--json"}));
    EXPECT_EQ(js.exit_code, 0) << js.err;
    const auto j = nlohmann::json::parse(js.out);
    EXPECT_EQ(j["manager"], "supervisor");
    ASSERT_EQ(j["components"].size(), 3u) << j.dump(2);
    EXPECT_EQ(j["components"][0]["component"], "db");
    EXPECT_EQ(j["components"][1]["component"], "httpd");
    EXPECT_EQ(j["components"][2]["component"], "queue");
    for (const auto& c : j["components"])
        EXPECT_EQ(c["state"], "running") << j.dump(2);
    EXPECT_TRUE(contains(j["components"][1]["detail"].get<std::string>(), "pid " + std::to_string(pid_of("httpd"))));

    // A second start changes nothing.
    const pid_t httpd = pid_of("httpd");
    const pid_t queue = pid_of("queue");
    auto again = run_installer(args({"service", "start"}));
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_TRUE(contains(again.out, "already running: the web server")) << again.out;
    EXPECT_TRUE(contains(again.out, "already running: the work-queue worker")) << again.out;
    EXPECT_EQ(pid_of("httpd"), httpd);
    EXPECT_EQ(pid_of("queue"), queue);

    // One component: the web server stops, the worker goes on.
    auto stop_httpd = run_installer(args({"service", "stop", "httpd"}));
    EXPECT_EQ(stop_httpd.exit_code, 0) << stop_httpd.err;
    EXPECT_TRUE(contains(stop_httpd.out, "stopped the web server")) << stop_httpd.out;
    EXPECT_FALSE(stdfs::exists(pid_file("httpd")));
    EXPECT_TRUE(ended_within(httpd, 10s));
    EXPECT_EQ(health().connect_errno, ECONNREFUSED) << health();
    EXPECT_TRUE(running(queue));
    EXPECT_EQ(run_installer(args({"service", "status", "httpd"})).exit_code, 3);
    EXPECT_EQ(run_installer(args({"service", "status", "queue"})).exit_code, 0);
    auto partial = run_installer(args({"service", "status", "--json"}));
    EXPECT_EQ(partial.exit_code, 3);
    EXPECT_EQ(nlohmann::json::parse(partial.out)["components"][1]["state"], "stopped") << partial.out;

    // restart: a new worker process.
    auto restart = run_installer(args({"service", "restart", "queue"}));
    EXPECT_EQ(restart.exit_code, 0) << restart.out << restart.err;
    EXPECT_TRUE(contains(restart.out, "stopped the work-queue worker")) << restart.out;
    EXPECT_TRUE(contains(restart.out, "started the work-queue worker")) << restart.out;
    EXPECT_TRUE(ended_within(queue, 10s));
    EXPECT_NE(pid_of("queue"), queue);
    expect_component_runs("queue");

    // Everything stops: pid files gone, processes ended, the database too.
    const pid_t queue2 = pid_of("queue");
    auto stop = run_installer(args({"service", "stop"}));
    EXPECT_EQ(stop.exit_code, 0) << stop.out << stop.err;
    EXPECT_TRUE(contains(stop.out, "stopped the work-queue worker")) << stop.out;
    EXPECT_TRUE(contains(stop.out, "not running: the web server")) << stop.out;
    EXPECT_TRUE(contains(stop.out, "stopped the database")) << stop.out;
    expect_components_stopped({httpd, queue, queue2});
    EXPECT_FALSE(stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"));
    auto after = run_installer(args({"service", "status"}));
    EXPECT_EQ(after.exit_code, 3) << after.out;
    EXPECT_TRUE(contains(after.out, "db     stopped")) << after.out;
    auto after_json = run_installer(args({"service", "status", "--json"}));
    EXPECT_EQ(after_json.exit_code, 3);
    for (const auto& c : nlohmann::json::parse(after_json.out)["components"])
        EXPECT_EQ(c["state"], "stopped");
}

// ---- 2. the components are really stopped during the upgrade ---------------------------

TEST_F(Maintenance, ComponentsAreStoppedDuringTheUpgradeAndRunTheNewVersionAfter) {
    start_components();
    const pid_t httpd = pid_of("httpd");
    const pid_t queue = pid_of("queue");
    ASSERT_EQ(health().version(), "9.0.7") << health();

    // The run stops itself (SIGSTOP) right after stopping the components.
    child = start_child(args({"upgrade", "-y", "--json"}),
                        {{"LEO_FAULT_INJECT", "upgrade.after_stop"}, {"LEO_FAULT_SIGNAL", std::to_string(SIGSTOP)}},
                        tmp.path(), "upgrade");
    ASSERT_TRUE(child.wait_stopped(120s))
        << "the run did not reach upgrade.after_stop (exit " << child.exited << "): " << slurp(child.err);
    const auto held_since = std::chrono::steady_clock::now();
    expect_components_stopped({httpd, queue});
    EXPECT_EQ(slurp(marker()), "httpd\nqueue\n") << "what a recover would start again";
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(run_installer(args({"service", "status", "httpd"})).exit_code, 3);
    std::this_thread::sleep_for(500ms); // a downtime the report must include
    const double held = std::chrono::duration<double>(std::chrono::steady_clock::now() - held_since).count();

    ASSERT_EQ(::kill(child.pid, SIGCONT), 0);
    ASSERT_EQ(child.wait_exit(), 0) << slurp(child.out) << slurp(child.err);
    const std::string err = slurp(child.err);
    EXPECT_TRUE(contains(err, "==> stopped the web server (supervisor)")) << err;
    EXPECT_TRUE(contains(err, "==> stopped the work-queue worker (supervisor)")) << err;
    EXPECT_TRUE(contains(err, "==> started the web server (supervisor)")) << err;
    EXPECT_TRUE(contains(err, "==> spot-check: the health endpoint answers version 9.2.0")) << err;
    EXPECT_TRUE(contains(err, "==> spot-check: the work-queue worker is alive")) << err;

    // The report: stdout holds the JSON alone.
    const auto j = nlohmann::json::parse(slurp(child.out));
    EXPECT_EQ(j["outcome"], "upgraded");
    EXPECT_EQ(j["from"], k_old);
    EXPECT_EQ(j["to"], k_new);
    EXPECT_EQ(j["service_manager"], "supervisor");
    EXPECT_EQ(j["components_stopped"], nlohmann::json::array({"httpd", "queue"})) << j.dump(2);
    ASSERT_TRUE(j["downtime_seconds"].is_number()) << j.dump(2);
    EXPECT_GT(j["downtime_seconds"].get<double>(), 0.0);
    EXPECT_GE(j["downtime_seconds"].get<double>(), held) << "the time the run was held stopped is downtime";
    std::vector<std::string> steps;
    double total = 0;
    for (const auto& s : j["steps"]) {
        steps.push_back(s["step"]);
        EXPECT_GE(s["seconds"].get<double>(), 0.0) << s;
        total += s["seconds"].get<double>();
    }
    EXPECT_EQ(steps,
              (std::vector<std::string>{"stop", "restore_point", "transaction", "migrate", "start", "spot_check"}));
    EXPECT_GE(total, held);
    ASSERT_EQ(j["gates"].size(), 5u) << j.dump(2);
    for (const auto& g : j["gates"])
        EXPECT_EQ(g["state"], "passed") << g;

    // The new version runs: new processes, the health endpoint answers 9.2.0.
    EXPECT_EQ(installed(), k_new + "\n");
    expect_component_runs("httpd");
    expect_component_runs("queue");
    EXPECT_NE(pid_of("httpd"), httpd);
    EXPECT_NE(pid_of("queue"), queue);
    const auto h = health();
    ASSERT_EQ(h.status, 200) << h;
    EXPECT_EQ(h.version(), "9.2.0");
    EXPECT_EQ(h.json()["schema_version"], "9.1.0.2") << h;
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());
    EXPECT_EQ(run_installer(args({"service", "status"})).exit_code, 0);

    // `rollback` stops them too, and starts the old version's.
    const pid_t httpd_new = pid_of("httpd");
    auto rb = run_installer(args({"rollback", "-y"}));
    ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
    EXPECT_TRUE(contains(rb.out, "stopped the web server (supervisor)")) << rb.out;
    EXPECT_TRUE(contains(rb.out, "started the web server (supervisor)")) << rb.out;
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_TRUE(ended_within(httpd_new, 10s));
    expect_component_runs("httpd");
    expect_component_runs("queue");
    EXPECT_EQ(health().version(), "9.0.7") << health();
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());
}

// ---- 3. the gates: exit 3, nothing changed ------------------------------------------------

/// A maintenance window that excludes now: one hour, twelve hours from now (UTC).

// ---- 4. a failing probe rolls back ------------------------------------------------------

TEST_F(Maintenance, AFailingSpotCheckRollsBackAndTheOldVersionRunsAgain) {
    // A broken 9.2.0: its health endpoint says 9.1.99.
    const auto broken = build_package("9.2.0", {{"HEALTH_VERSION", "9.1.99"}}, "broken");
    write_installer_conf("[spot_check]\ntimeout = 3\n");
    start_components();
    const std::string tables = leo::test::table_checksums(root);

    const auto began = std::chrono::steady_clock::now();
    auto up = run_installer(args({"upgrade", "--rpm", broken.string(), "--nogpgcheck", "-y"}));
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    EXPECT_EQ(up.exit_code, 1) << up.out << up.err;
    EXPECT_TRUE(
        contains(up.err, "upgrade " + k_old + " -> " + k_new +
                             " failed: spot-check: the health endpoint "
                             "http://127.0.0.1:" +
                             std::to_string(port) +
                             "/health: it answers version 9.1.99, expected 9.2.0 (for 3 s, [spot_check] timeout)"))
        << up.err;
    EXPECT_TRUE(contains(up.err, "rolled back to " + k_old)) << up.err;
    EXPECT_TRUE(contains(up.out, "rolling back to restore point")) << up.out;
    EXPECT_LT(took, 60.0) << "[spot_check] timeout = 3 was not used";

    // The old version is back, and runs.
    EXPECT_EQ(installed(), k_old + "\n");
    EXPECT_EQ(schema(), "9.0.0.2");
    EXPECT_EQ(leo::test::table_checksums(root), tables);
    expect_component_runs("httpd");
    expect_component_runs("queue");
    const auto h = health();
    ASSERT_EQ(h.status, 200) << h;
    EXPECT_EQ(h.version(), "9.0.7");
    EXPECT_EQ(h.json()["schema_version"], "9.0.0.2") << h;
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());
    EXPECT_EQ(run_installer(args({"service", "status"})).exit_code, 0);
    EXPECT_EQ(run_installer(args({"status"})).exit_code, 0) << "no unfinished run";
}

// ---- 5. --components-stopped ------------------------------------------------------------

TEST_F(Maintenance, ComponentsStoppedLeavesThemStoppedAndReportsNoDowntime) {
    ASSERT_EQ(run_installer(args({"service", "status", "httpd"})).exit_code, 3);
    ASSERT_EQ(run_installer(args({"service", "status", "queue"})).exit_code, 3);
    auto up = run_installer(args({"upgrade", "-y", "--json", "--components-stopped"}));
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    EXPECT_TRUE(contains(up.err, "==> the broker components were stopped by the administrator (--components-stopped)"))
        << up.err;
    EXPECT_TRUE(contains(up.err, "spot-check: the components were stopped by the administrator")) << up.err;
    EXPECT_FALSE(contains(up.err, "started the")) << up.err;
    const auto j = nlohmann::json::parse(up.out);
    EXPECT_EQ(j["outcome"], "upgraded");
    EXPECT_EQ(j["components_stopped"], nlohmann::json::array()) << j.dump(2);
    EXPECT_TRUE(j["downtime_seconds"].is_null()) << j.dump(2);
    EXPECT_EQ(installed(), k_new + "\n");
    // Still stopped: no pid file, nothing listens, no heartbeat.
    expect_components_stopped({});
    EXPECT_FALSE(stdfs::exists(root / "home/leo/run/queue.heartbeat"));
    EXPECT_FALSE(stdfs::exists(marker()));
    auto status = run_installer(args({"service", "status"}));
    EXPECT_EQ(status.exit_code, 3) << status.out;
    EXPECT_TRUE(contains(status.out, "httpd  stopped")) << status.out;
    EXPECT_TRUE(contains(status.out, "queue  stopped")) << status.out;
}

// ---- 6. killed after the stop: recover starts them again --------------------------------

TEST_F(Maintenance, KilledAfterTheStopThenRecoverStartsTheComponents) {
    start_components();
    const pid_t httpd = pid_of("httpd");
    const pid_t queue = pid_of("queue");
    leo::subprocess::Options killed;
    killed.env["LEO_FAULT_INJECT"] = "upgrade.after_stop";
    auto up = run_installer(args({"upgrade", "-y"}), killed);
    ASSERT_EQ(up.signal, SIGKILL) << "the fault point was not reached: " << up.out << up.err;
    expect_components_stopped({httpd, queue});
    EXPECT_EQ(slurp(marker()), "httpd\nqueue\n");

    auto rec = run_installer(args({"recover", "-y"}));
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_TRUE(contains(rec.out, "stopped before its restore point was complete: nothing had changed")) << rec.out;
    EXPECT_TRUE(contains(rec.out, "started the web server (supervisor)")) << rec.out;
    EXPECT_TRUE(contains(rec.out, "started the work-queue worker (supervisor)")) << rec.out;
    EXPECT_EQ(installed(), k_old + "\n");
    expect_component_runs("httpd");
    expect_component_runs("queue");
    const auto h = health();
    ASSERT_EQ(h.status, 200) << h;
    EXPECT_EQ(h.version(), "9.0.7");
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());
    EXPECT_EQ(run_installer(args({"service", "status"})).exit_code, 0);
    auto again = run_installer(args({"recover", "-y"}));
    EXPECT_EQ(again.exit_code, 0);
    EXPECT_TRUE(contains(again.out, "nothing to recover")) << again.out;
}

// Killed later in the run: recover returns to the old version (or, after the spot-check,
// keeps the new one) and the components run afterwards, as processes started for the
// version recover left, never the new version's processes under the old version's files.
struct KillCase {
    std::string point;
    std::string expected; ///< the NEVRA after recover
    std::string version;  ///< what the health endpoint answers then
};
std::ostream& operator<<(std::ostream& os, const KillCase& c) { return os << c.point; }

class KilledThenRecovered : public Maintenance, public ::testing::WithParamInterface<KillCase> {};

TEST_P(KilledThenRecovered, TheComponentsRunTheVersionRecoverLeft) {
    const KillCase& c = GetParam();
    start_components();
    leo::subprocess::Options killed;
    killed.env["LEO_FAULT_INJECT"] = c.point;
    auto up = run_installer(args({"upgrade", "-y"}), killed);
    ASSERT_EQ(up.signal, SIGKILL) << "the fault point was not reached: " << up.out << up.err;
    // What ran when the run died (the new version's components after upgrade.after_start).
    const pid_t httpd_before = pid_of("httpd");
    const pid_t queue_before = pid_of("queue");
    const bool were_running = running(httpd_before) && running(queue_before);

    auto rec = run_installer(args({"recover", "-y"}));
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_EQ(installed(), c.expected + "\n") << rec.out;
    if (were_running && c.expected == k_old) {
        EXPECT_TRUE(contains(rec.out, "==> stopped the web server (supervisor)")) << rec.out;
        EXPECT_TRUE(contains(rec.out, "==> stopped the work-queue worker (supervisor)")) << rec.out;
    }
    if (c.expected == k_old) {
        EXPECT_TRUE(contains(rec.out, "==> started the web server (supervisor)")) << rec.out;
        EXPECT_TRUE(contains(rec.out, "==> started the work-queue worker (supervisor)")) << rec.out;
    }
    expect_component_runs("httpd");
    expect_component_runs("queue");
    const auto h = health();
    ASSERT_EQ(h.status, 200) << h;
    EXPECT_EQ(h.version(), c.version);
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());
    if (c.expected == k_old) {
        // Processes of the new version do not go on under the old version's files.
        if (httpd_before > 0) {
            EXPECT_NE(pid_of("httpd"), httpd_before)
                << "the web server started by the killed upgrade still runs: " << rec.out;
            EXPECT_TRUE(ended_within(httpd_before, 10s));
        }
        if (queue_before > 0) {
            EXPECT_NE(pid_of("queue"), queue_before)
                << "the worker started by the killed upgrade still runs: " << rec.out;
            EXPECT_TRUE(ended_within(queue_before, 10s));
        }
        EXPECT_EQ(h.json()["schema_version"], "9.0.0.2") << h;
    } else {
        EXPECT_EQ(h.json()["schema_version"], "9.1.0.2") << h;
    }
    EXPECT_EQ(run_installer(args({"service", "status"})).exit_code, 0);
}

INSTANTIATE_TEST_SUITE_P(AtSteps, KilledThenRecovered,
                         ::testing::Values(KillCase{"upgrade.after_restore_point", k_old, "9.0.7"},
                                           KillCase{"upgrade.after_transaction", k_old, "9.0.7"},
                                           KillCase{"upgrade.after_start", k_old, "9.0.7"},
                                           KillCase{"upgrade.after_spot_check", k_new, "9.2.0"}),
                         [](const ::testing::TestParamInfo<KillCase>& i) {
                             std::string n = i.param.point.substr(i.param.point.find('.') + 1);
                             return n;
                         });

// ---- 7. service with [services] commands, the stopped-for-change record, a start that
// times out, the pid file's identity, a broken [maintenance_window], a refused dry run ----

/// A process of the test (sleep 300) running with real and effective uid `uid` (and gid);
/// reaped by kill_child().
pid_t spawn_sleeper(uid_t uid) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::setpgid(0, 0);
        if (::setgid(uid) != 0 || ::setuid(uid) != 0)
            ::_exit(127);
        ::execl("/bin/sleep", "sleep", "300", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    // Until it has exec'd, its start time is already final; wait for the uid change.
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (uid_of(pid) != static_cast<long>(uid) && std::chrono::steady_clock::now() < end)
        std::this_thread::sleep_for(10ms);
    return pid;
}
void kill_child(pid_t pid) {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
}

TEST_F(Maintenance, ServiceStartStopRunTheConfiguredCommands) {
    // The supervisor's processes run first; with [services] commands configured, `service`
    // runs those commands and leaves the supervisor's processes alone.
    start_components();
    const pid_t httpd = pid_of("httpd");
    const pid_t queue = pid_of("queue");
    const std::string httpd_file = slurp(pid_file("httpd"));
    const auto evidence = tmp.path() / "evidence";
    write_installer_conf("[services]\nstop_command = echo \"stop $LEO_ROOT\" >> " + evidence.string() +
                         "\nstart_command = echo \"start $LEO_ROOT\" >> " + evidence.string() + "\ntimeout = 30\n");

    auto status = run_installer(args({"service", "status"}));
    EXPECT_TRUE(contains(status.out, "httpd  not managed here")) << status.out;
    EXPECT_TRUE(contains(status.out, "([services] commands)")) << status.out;
    EXPECT_FALSE(stdfs::exists(evidence)) << "status ran a command";

    auto stop = run_installer(args({"service", "stop"}));
    ASSERT_EQ(stop.exit_code, 0) << stop.out << stop.err;
    EXPECT_TRUE(contains(stop.out, "stopped the broker components (`echo \"stop $LEO_ROOT\" >> " +
                                       evidence.string() + "`)"))
        << stop.out;
    EXPECT_TRUE(contains(stop.out, "stopped the database")) << stop.out;
    EXPECT_EQ(slurp(evidence), "stop " + root.string() + "\n");
    // Nothing else: the supervisor's processes and their pid files are as they were, and
    // no stopped-for-change record is written for an administrator's stop.
    EXPECT_TRUE(running(httpd) && running(queue));
    EXPECT_EQ(slurp(pid_file("httpd")), httpd_file);
    EXPECT_FALSE(stdfs::exists(marker()));

    auto start = run_installer(args({"service", "start"}));
    ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
    EXPECT_TRUE(contains(start.out, "started the database")) << start.out;
    EXPECT_TRUE(contains(start.out, "started the broker components (`echo \"start $LEO_ROOT\" >> " +
                                        evidence.string() + "`)"))
        << start.out;
    EXPECT_EQ(slurp(evidence), "stop " + root.string() + "\nstart " + root.string() + "\n");

    auto restart = run_installer(args({"service", "restart"}));
    ASSERT_EQ(restart.exit_code, 0) << restart.out << restart.err;
    EXPECT_EQ(slurp(evidence), "stop " + root.string() + "\nstart " + root.string() + "\nstop " + root.string() +
                                   "\nstart " + root.string() + "\n");

    // One component alone: refused, nothing run.
    auto one = run_installer(args({"service", "stop", "httpd"}));
    EXPECT_EQ(one.exit_code, 1) << one.out << one.err;
    EXPECT_TRUE(contains(one.err, "stop httpd alone is not supported with installer.conf [services] commands"))
        << one.err;
    const std::string ran = slurp(evidence);
    EXPECT_EQ(std::count(ran.begin(), ran.end(), '\n'), 4) << ran;

    // A failing command: its exit and last line in the error, exit 1.
    write_installer_conf("[services]\nstop_command = echo no way >&2; exit 7\nstart_command = true\n");
    auto failing = run_installer(args({"service", "stop"}));
    EXPECT_EQ(failing.exit_code, 1) << failing.out << failing.err;
    EXPECT_TRUE(contains(failing.err, "`echo no way >&2; exit 7` failed (exit 7): no way")) << failing.err;

    write_installer_conf("");  // the supervisor again, for TearDown's stop
    EXPECT_EQ(pid_of("httpd"), httpd);
    EXPECT_TRUE(running(httpd) && running(queue));
}

TEST_F(Maintenance, AManualStartClearsTheStoppedForChangeRecord) {
    // What a change that could not start the components again leaves (its start failed).
    stdfs::create_directories(root / "run/leostream");
    std::ofstream(marker()) << "httpd\nqueue\n";
    ASSERT_EQ(run_installer(args({"service", "start", "db"})).exit_code, 0);
    EXPECT_EQ(slurp(marker()), "httpd\nqueue\n") << "the database is not in the record";
    auto one = run_installer(args({"service", "start", "httpd"}));
    ASSERT_EQ(one.exit_code, 0) << one.out << one.err;
    EXPECT_EQ(slurp(marker()), "queue\n") << "the web server runs: only the worker is left to start";
    auto all = run_installer(args({"service", "restart"}));
    ASSERT_EQ(all.exit_code, 0) << all.out << all.err;
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());

    // The administrator stops them; an upgrade killed after its stop step stopped nothing,
    // and recover must not start what the stale record named.
    auto stop = run_installer(args({"service", "stop"}));
    ASSERT_EQ(stop.exit_code, 0) << stop.out << stop.err;
    leo::subprocess::Options killed;
    killed.env["LEO_FAULT_INJECT"] = "upgrade.after_stop";
    auto up = run_installer(args({"upgrade", "-y"}), killed);
    ASSERT_EQ(up.signal, SIGKILL) << "the fault point was not reached: " << up.out << up.err;
    EXPECT_FALSE(stdfs::exists(marker())) << slurp(marker());
    auto rec = run_installer(args({"recover", "-y"}));
    ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
    EXPECT_FALSE(contains(rec.out, "started the web server")) << rec.out;
    EXPECT_FALSE(contains(rec.out, "started the work-queue worker")) << rec.out;
    expect_components_stopped({});
    EXPECT_EQ(installed(), k_old + "\n");
}

TEST_F(Maintenance, AStartThatIsNeverReadyStopsWhatItStarted) {
    // The web server answers 503 while its database is down: never ready.
    write_installer_conf("[services]\nready_timeout = 5\ntimeout = 10\n");
    ASSERT_EQ(run_installer(args({"service", "stop"})).exit_code, 0);
    ASSERT_FALSE(stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"));
    auto start = run_installer(args({"service", "start", "httpd"}));
    EXPECT_EQ(start.exit_code, 1) << start.out << start.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(start.err, m,
                                  std::regex("the web server \\(pid ([0-9]+)\\) was not ready within 5 s "
                                             "\\(\\[services\\] ready_timeout\\): the health endpoint .*HTTP 503.*; "
                                             "stopped it \\(SIGTERM\\)")))
        << start.err;
    const pid_t spawned = static_cast<pid_t>(std::stol(m[1]));
    EXPECT_TRUE(ended_within(spawned, 10s)) << "the half-started web server still runs: " << cmdline_of(spawned);
    // Nothing else changed: no pid file, nothing listens, the database and the worker stay
    // stopped, no stopped-for-change record.
    expect_components_stopped({spawned});
    EXPECT_FALSE(stdfs::exists(root / "home/leo/pgsql/data/postmaster.pid"));
    EXPECT_FALSE(stdfs::exists(marker()));
    EXPECT_TRUE(contains(slurp(root / "home/leo/logs/httpd.log"), "listening on")) << "it did start";
}

TEST_F(Maintenance, APidFileNamingAnotherProcessIsNeverSignalled) {
    stdfs::create_directories(root / "run/leostream");
    const auto plant = [&](pid_t pid, const std::string& start, long uid) {
        std::ofstream(pid_file("httpd"), std::ios::trunc) << pid << " " << start << " " << uid << "\n";
    };
    // A process of another user (nobody), with its true start time: even a file that
    // claims leo's uid for it does not make it the web server.
    const uid_t nobody = 65534;
    const pid_t other = spawn_sleeper(nobody);
    ASSERT_EQ(uid_of(other), static_cast<long>(nobody));
    for (long claimed : {leo_uid, static_cast<long>(nobody)}) {
        plant(other, start_time_of(other), claimed);
        auto status = run_installer(args({"service", "status", "httpd"}));
        EXPECT_EQ(status.exit_code, 3) << status.out;
        EXPECT_TRUE(contains(status.out, "httpd  stopped")) << status.out;
        auto stop = run_installer(args({"service", "stop", "httpd"}));
        EXPECT_EQ(stop.exit_code, 0) << stop.out << stop.err;
        EXPECT_TRUE(contains(stop.out, "not running: the web server")) << stop.out;
        EXPECT_TRUE(running(other)) << "a process of uid " << nobody << " was signalled (file claimed " << claimed << ")";
        EXPECT_FALSE(stdfs::exists(pid_file("httpd"))) << "the stale file stays";
    }
    kill_child(other);

    // leo's process, but not started when the file says: another process on that pid.
    const pid_t leos = spawn_sleeper(static_cast<uid_t>(leo_uid));
    plant(leos, std::to_string(std::stoll(start_time_of(leos)) - 100), leo_uid);
    auto stale = run_installer(args({"service", "stop", "httpd"}));
    EXPECT_EQ(stale.exit_code, 0) << stale.out << stale.err;
    EXPECT_TRUE(contains(stale.out, "not running: the web server")) << stale.out;
    EXPECT_TRUE(running(leos)) << "a process with another start time was signalled";
    // A file without its start time proves nothing either.
    plant(leos, "0", leo_uid);
    EXPECT_TRUE(contains(run_installer(args({"service", "stop", "httpd"})).out, "not running: the web server"));
    EXPECT_TRUE(running(leos));

    // The control: the same process with its true start time and uid is the one the file
    // means, and is stopped (SIGTERM through its pidfd).
    plant(leos, start_time_of(leos), leo_uid);
    auto status = run_installer(args({"service", "status", "httpd"}));
    EXPECT_TRUE(contains(status.out, "httpd  running (pid " + std::to_string(leos))) << status.out;
    auto stop = run_installer(args({"service", "stop", "httpd"}));
    EXPECT_EQ(stop.exit_code, 0) << stop.out << stop.err;
    EXPECT_TRUE(contains(stop.out, "stopped the web server")) << stop.out;
    int wstatus = 0;
    EXPECT_EQ(::waitpid(leos, &wstatus, 0), leos);
    EXPECT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGTERM) << wstatus;
}

} // namespace
