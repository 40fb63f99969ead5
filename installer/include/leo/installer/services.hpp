#pragma once
/// The broker's components, stopped and started around a change (DESIGN.md "Components and
/// the cluster"): `service start|stop|restart|status [httpd|db|queue]`, the upgrade, the
/// rollback and switch_database.pl ("after a switch the broker components restart").
///
/// One interface, ServiceManager, with the implementations service_manager() chooses:
/// - **commands**: installer.conf `[services] stop_command` / `start_command` (run with
///   /bin/sh -c, LEO_ROOT in the environment, `[services] timeout` each). They act on the
///   whole broker (`service start|stop|restart` without a component runs them, as every
///   change does: start_components() / stop_components()); one component alone is "not
///   supported" with them.
/// - **systemd**: on the real system (root "/") booted with systemd (/run/systemd/system)
///   where the broker package's units are installed (k_httpd_unit, k_queue_unit):
///   `systemctl start|stop UNIT`, `systemctl is-active UNIT`.
/// - **supervisor**: every other root (a sandbox root, a host without systemd): the
///   package's program `/home/leo/bin/leostream-broker httpd|queue` started as the root's
///   `leo` user in a new session, "PID START_TIME UID" in ROOT/run/leostream/NAME.pid
///   (root's, 0644), its output appended to ROOT/home/leo/logs/NAME.log (opened as leo),
///   stopped with SIGTERM then SIGKILL after `[services] timeout`; "ready" when the health
///   endpoint answers (httpd) or the worker's heartbeat file is written (queue) within
///   `[services] ready_timeout`, else what the start spawned is stopped (SIGTERM, then
///   SIGKILL) and the error says so. Only the process the pid file means is signalled: the
///   same start time, run by the recorded uid which is the root's leo, checked while a
///   pidfd on it is held (leo::proc::ProcessHandle), and signalled through that pidfd.
///   (supervisor.cpp)
/// - **none**: root "/" booted with systemd but without the broker's units: nothing here
///   can stop the components; `upgrade` refuses unless `--components-stopped`.
/// In every implementation the database component is the internal PostgreSQL instance
/// (leo::migrations::InternalDatabase), and "not managed here" with an external database.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace leo::installer {

inline constexpr const char* k_httpd_unit = "leostream-httpd.service";
inline constexpr const char* k_queue_unit = "leostream-queue.service";
/// The supervisor's pid files, root's (inside the root).
inline constexpr const char* k_supervisor_run_dir = "/run/leostream";
/// The broker program of the example package, and the directories it writes (leo's).
inline constexpr const char* k_broker_program = "/home/leo/bin/leostream-broker";
inline constexpr const char* k_broker_logs_dir = "/home/leo/logs";
inline constexpr const char* k_broker_run_dir = "/home/leo/run";

/// The broker's components, in the order they start (the database first).
enum class Component { db, httpd, queue };
inline constexpr Component k_all_components[] = {Component::db, Component::httpd, Component::queue};
/// The components that are clients of the database: what an upgrade stops.
inline constexpr Component k_broker_components[] = {Component::httpd, Component::queue};

/// "db", "httpd", "queue".
[[nodiscard]] std::string_view to_string(Component c);
/// "the database", "the web server", "the work-queue worker".
[[nodiscard]] std::string_view component_title(Component c);
/// The component named `name` (to_string's words; also "web" and "worker"), or nullopt.
[[nodiscard]] std::optional<Component> parse_component(std::string_view name);

struct ComponentStatus {
    Component component = Component::db;
    enum class State { running, stopped, not_managed } state = State::stopped;
    std::string detail;  ///< "pid 123 since 2026-12-01T06:00:00Z", "external database db.example.com", ...
};
[[nodiscard]] std::string_view to_string(ComponentStatus::State s);

/// How the components of one root are stopped and started. Every method throws
/// leo::SystemError naming the command or process and why when an action fails or does
/// not finish within its timeout; leo::Error ("not supported") for an action this
/// implementation cannot do.
class ServiceManager {
public:
    virtual ~ServiceManager() = default;
    /// "systemd", "supervisor", "[services] commands" or "none".
    [[nodiscard]] virtual std::string name() const = 0;
    /// Whether this implementation can stop and start the broker (false only for "none").
    [[nodiscard]] virtual bool can_act() const { return true; }
    /// Start `c` and wait until it is ready; false when it was running already.
    virtual bool start(Component c) = 0;
    /// Stop `c` and wait until it has ended; false when it was not running.
    virtual bool stop(Component c) = 0;
    [[nodiscard]] virtual ComponentStatus status(Component c) = 0;

    /// "start" or "stop" of the broker as a whole.
    enum class Whole { start, stop };
    /// The command that starts or stops the broker as a whole, for an implementation that
    /// acts on it only so ("[services] commands": start(c)/stop(c) of httpd or queue are
    /// then not supported): nullopt for one that acts on each component, "" when that
    /// command is not configured.
    [[nodiscard]] virtual std::optional<std::string> whole_broker_command(Whole) const { return std::nullopt; }
    /// Run whole_broker_command(w) (nothing when it is ""); leo::Error for an implementation
    /// without one. Throws leo::SystemError naming the command when it fails or times out.
    virtual void run_whole_broker(Whole w);
};

/// The implementation for `root` (see the file comment): the one choice every command makes
/// (`service`, upgrade, rollback, recover, switch_database.pl, the spot-check). Throws
/// leo::UsageError for a bad installer.conf, leo::RefusedError for one another user can change.
[[nodiscard]] std::unique_ptr<ServiceManager> service_manager(const std::filesystem::path& root);

/// One line said about a component (or the whole broker), for the caller to print.
using OnStep = std::function<void(const std::string&)>;

/// Whether a stop is recorded in ROOT/run/leostream/stopped-for-change: yes for a change
/// (upgrade, rollback, recover: what it stopped is started again after it, or by a
/// recover after a crash), no for the administrator's own `service stop`.
enum class RecordStop { no, yes };

/// Start the broker components `which` (of k_broker_components; started in their start
/// order) with `manager` and wait for each to be ready: the one way every command starts
/// them. With "[services] commands", start_command runs once for all of them (one
/// component alone: leo::Error "not supported"; no start_command: leo::Error saying so).
/// `on_step` gets one line per action ("started the web server (supervisor)", "started the
/// broker components (`CMD`)"); `on_unchanged` one per component that ran already
/// ("already running: the web server"). What runs afterwards is taken out of the
/// stopped-for-change record, so neither a later change nor `recover` acts on it again.
/// Returns the components started. Throws leo::SystemError when a start fails (the
/// record keeps what was not started).
std::vector<Component> start_components(const std::filesystem::path& root, ServiceManager& manager,
                                        const std::vector<Component>& which, const OnStep& on_step,
                                        const OnStep& on_unchanged = {});

/// Stop the broker components `which` (of k_broker_components; in the reverse of their
/// start order) with `manager` and wait for each to end; with "[services] commands",
/// stop_command once for all of them (as start_components()). `record`: whether each is
/// written to the stopped-for-change record before its stop. `on_step` / `on_unchanged`
/// as start_components() ("stopped the web server (supervisor)", "not running: the web
/// server"). Returns the components stopped, in start order. Throws leo::SystemError when
/// a stop fails.
std::vector<Component> stop_components(const std::filesystem::path& root, ServiceManager& manager,
                                       const std::vector<Component>& which, RecordStop record, const OnStep& on_step,
                                       const OnStep& on_unchanged = {});

/// The broker's health endpoint: http://127.0.0.1:PORT/health with PORT the `health_port`
/// of `[broker]` in ROOT/home/leo/etc/broker.conf (8080 when absent). Throws
/// leo::UsageError when the file holds a port that is not 1 to 65535.
[[nodiscard]] std::string health_url(const std::filesystem::path& root);

/// What the health endpoint answered (the example broker's JSON: version, database,
/// schema_version).
struct HealthReport {
    std::string version;
    std::string home;  ///< the answering broker's home directory (host path): which broker answered
    std::string database;
    std::optional<std::string> schema_version;
};
/// GET the health endpoint once, within `timeout`. Throws leo::SystemError naming the URL
/// and the reason (cannot connect, HTTP status, a body that is not the expected JSON).
[[nodiscard]] HealthReport probe_health(const std::filesystem::path& root, std::chrono::milliseconds timeout);

/// The worker's heartbeat file (ROOT/home/leo/run/queue.heartbeat): its age in seconds, or
/// nullopt when it does not exist.
[[nodiscard]] std::optional<double> queue_heartbeat_age(const std::filesystem::path& root);

/// What an upgrade or a rollback did to the components: which were running (those are
/// started again, as rpm's try-restart does; a stopped one stays stopped).
struct StoppedComponents {
    std::string manager;                  ///< ServiceManager::name()
    std::vector<Component> were_running;  ///< stopped by us, to start again
    bool stopped_by_administrator = false;///< --components-stopped: nothing was stopped here
};

/// Refuse (leo::RefusedError, exit 3, naming `--components-stopped`) when nothing here can
/// stop the broker's components ("none", or "[services] commands" without stop_command)
/// and the administrator did not say they are stopped. Changes nothing.
void require_stoppable(const std::filesystem::path& root, bool administrator_stopped);

/// Stop the broker's components (k_broker_components) that run, for a change of the
/// package or the database. `on_step` gets one line per component. With no way to stop
/// them ("none", or "[services] commands" whose stop is not configured): leo::RefusedError
/// saying so and naming `--components-stopped`, unless `administrator_stopped`.
/// Throws leo::SystemError when a stop fails.
StoppedComponents stop_for_change(const std::filesystem::path& root, bool administrator_stopped,
                                  const OnStep& on_step);

/// Start again what stop_for_change() stopped (waiting for each to be ready), and what an
/// interrupted run recorded as stopped (ROOT/run/leostream/stopped-for-change, written
/// before each stop and cleared after each start, so recover starts them too). Throws
/// leo::SystemError when a start fails.
void start_after_change(const std::filesystem::path& root, const StoppedComponents& stopped,
                        const OnStep& on_step);

/// Forget the stopped-for-change record (`remove`: the package is gone, nothing is to be
/// started again by a later run or `recover`).
void forget_stopped_for_change(const std::filesystem::path& root);

/// What stop/start will do, one sentence for a confirmation question.
[[nodiscard]] std::string services_plan(const std::filesystem::path& root);

/// For switch_database.pl: stop or start the whole broker. `ran` is false (and `message`
/// says why) when nothing here can.
struct ServiceOutcome {
    bool ran = false;
    std::string command;
    std::string message;
};
ServiceOutcome stop_broker(const std::filesystem::path& root);
ServiceOutcome start_broker(const std::filesystem::path& root);

} // namespace leo::installer
