#include "leo/rpm/transaction.hpp"

#include "leo/common/error.hpp"
#include "leo/common/fault.hpp"
#include "leo/common/log.hpp"
#include "leo/common/system_root.hpp"
#include "leo/rpm/handles.hpp"
#include "leo/rpm/rpmlib.hpp"

#include "lock_hold.hpp"

#include <cstdlib>
#include <string>

#include <unistd.h>

#include <fmt/format.h>

#include <rpm/rpmcallback.h>
#include <rpm/rpmdb.h>
#include <rpm/rpmlib.h>
#include <rpm/rpmprob.h>
#include <rpm/rpmps.h>
#include <rpm/rpmtag.h>
#include <rpm/rpmte.h>

namespace leo::rpm {
namespace stdfs = std::filesystem;

// Defined in package.cpp.
TsPtr make_ts_with_keys(const stdfs::path& root, const Keys& keys);
PackageInfo info_from_header(Header h);

namespace {

struct NotifyState {
    const TransactionOptions* options = nullptr;
    std::string file;
    FD_t fd = nullptr;
};

void* notify(const void* /*header*/, const rpmCallbackType what, const rpm_loff_t amount,
             const rpm_loff_t total, fnpyKey key, rpmCallbackData data) {
    auto* state = static_cast<NotifyState*>(data);
    switch (what) {
    case RPMCALLBACK_INST_OPEN_FILE: {
        const char* file = static_cast<const char*>(key);
        state->fd = Fopen(file, "r.ufdio");
        if (state->fd == nullptr || Ferror(state->fd)) {
            if (state->fd != nullptr) Fclose(state->fd);
            state->fd = nullptr;
            return nullptr;
        }
        return state->fd;
    }
    case RPMCALLBACK_INST_CLOSE_FILE:
        if (state->fd != nullptr) Fclose(state->fd);
        state->fd = nullptr;
        break;
    case RPMCALLBACK_INST_PROGRESS:
        fault::point("rpm.install");
        if (state->options->on_progress) state->options->on_progress(state->file, amount, total);
        break;
    default: break;
    }
    return nullptr;
}

std::string problems_text(rpmts ts) {
    PsPtr ps(rpmtsProblems(ts));
    std::string out;
    rpmpsi psi = rpmpsInitIterator(ps.get());
    while (rpmpsNextIterator(psi) >= 0) {
        char* msg = rpmProblemString(rpmpsGetProblem(psi));
        if (!out.empty()) out += "; ";
        out += msg != nullptr ? msg : "unknown problem";
        std::free(msg);
    }
    rpmpsFreeIterator(psi);
    return out;
}

HeaderRef read_header(rpmts ts, const stdfs::path& file) {
    FdPtr fd(Fopen(file.c_str(), "r.ufdio"));
    if (!fd || Ferror(fd.get())) throw RpmError(file.string() + ": cannot open: " + Fstrerror(fd.get()));
    LogCapture capture;
    Header h = nullptr;
    const rpmVSFlags saved = rpmtsSetVSFlags(ts, RPMVSF_MASK_NOSIGNATURES);
    const rpmRC rc = rpmReadPackageFile(ts, fd.get(), file.c_str(), &h);
    rpmtsSetVSFlags(ts, saved);
    HeaderRef header(h);
    if (rc == RPMRC_NOTFOUND) throw RpmError(file.string() + " is not an RPM package");
    if (!header) throw RpmError(file.string() + ": cannot read the package header: " + capture.joined());
    return header;
}

enum class Mode { test, real };

/// k_own_transaction_env set for the scope of one rpmtsRun (no other thread runs then:
/// PITFALLS.md), removed after it.
class OwnTransactionMark {
public:
    OwnTransactionMark() { ::setenv(k_own_transaction_env, std::to_string(::getpid()).c_str(), 1); }
    ~OwnTransactionMark() { ::unsetenv(k_own_transaction_env); }
    OwnTransactionMark(const OwnTransactionMark&) = delete;
    OwnTransactionMark& operator=(const OwnTransactionMark&) = delete;
};

stdfs::path absolute_root(const stdfs::path& root) { return stdfs::absolute(root.empty() ? stdfs::path("/") : root); }

/// Wait for rpm's transaction lock of `root` and take it (lock_hold.hpp), logging whom we
/// waited for: the returned descriptor holds it.
fs::UniqueFd take_lock(const stdfs::path& abs_root, const TransactionOptions& options) {
    const fs::SystemRoot sys(abs_root);
    auto held = detail::hold_transaction_lock(
        sys, options.lock_wait_limit, [&](const LockHolder& holder, std::chrono::milliseconds waited) {
            log::info("waiting up to {} s for pid {} ({}) to finish its rpm transaction in {} (waited {} ms)",
                      options.lock_wait_limit.count(), holder.pid, holder.command, abs_root.string(),
                      waited.count());
            if (options.on_lock_wait)
                options.on_lock_wait(holder);
        });
    return held;
}

/// One transaction; the caller holds rpm's transaction lock (take_lock).
void transact(const stdfs::path& root, const stdfs::path& file, const TransactionOptions& options, Mode mode) {
    const stdfs::path abs_root = absolute_root(root);
    Keys keys = options.keys;
    keys.root = abs_root;
    TsPtr ts = make_ts_with_keys(abs_root, keys);
    const stdfs::path abs_file = stdfs::absolute(file);
    HeaderRef header = read_header(ts.get(), abs_file);

    const int upgrade = options.kind == TransactionKind::install ? 0 : 1;
    LogCapture capture;
    if (rpmtsAddInstallElement(ts.get(), header.get(), abs_file.c_str(), upgrade, nullptr) != 0)
        throw RpmError(fmt::format("cannot add {} to the transaction: {}", abs_file.string(), capture.joined()));

    if (rpmtsCheck(ts.get()) != 0)
        throw RpmError(fmt::format("dependency check failed: {}", capture.joined()));
    if (std::string problems = problems_text(ts.get()); !problems.empty())
        throw RpmError(fmt::format("unresolved dependencies in {}: {}", abs_root.string(), problems));
    if (rpmtsOrder(ts.get()) != 0) throw RpmError("cannot order the transaction: " + capture.joined());

#ifdef LEO_HAVE_RPMTSSETVFYLEVEL
    rpmtsSetVfyLevel(ts.get(), options.require_signature ? (RPMSIG_DIGEST_TYPE | RPMSIG_SIGNATURE_TYPE)
                                                         : RPMSIG_DIGEST_TYPE);
#endif
    rpmtransFlags flags = RPMTRANS_FLAG_NONE;
    if (mode == Mode::test) flags |= RPMTRANS_FLAG_TEST;
    if (options.noscripts) flags |= RPMTRANS_FLAG_NOSCRIPTS;
    rpmtsSetFlags(ts.get(), flags);

    NotifyState state;
    state.options = &options;
    state.file = abs_file.string();
    rpmtsSetNotifyCallback(ts.get(), notify, &state);

    rpmprobFilterFlags filter = RPMPROB_FILTER_NONE;
    if (options.kind == TransactionKind::downgrade) filter |= RPMPROB_FILTER_OLDPACKAGE;
    if (options.replace) filter |= RPMPROB_FILTER_REPLACEPKG | RPMPROB_FILTER_OLDPACKAGE;

    log::info("rpm transaction ({}) of {} into {}", mode == Mode::test ? "test" : "real", abs_file.string(),
              abs_root.string());
    const OwnTransactionMark mark;  // the package's scriptlets see that this run does their steps
    const int rc = rpmtsRun(ts.get(), nullptr, filter);
    if (state.fd != nullptr) Fclose(state.fd);
    if (rc != 0) {
        std::string problems = problems_text(ts.get());
        if (problems.empty()) problems = capture.joined();
        if (problems.empty()) problems = "rpm reported an error without details";
        throw RpmError(fmt::format("rpm transaction{} of {} failed: {}", mode == Mode::test ? " test" : "",
                                   abs_file.filename().string(), problems));
    }
}

} // namespace

void test_transaction(const stdfs::path& root, const stdfs::path& package_file, const TransactionOptions& options) {
    const auto lock = take_lock(absolute_root(root), options);
    transact(root, package_file, options, Mode::test);
}

void run_transaction(const stdfs::path& root, const stdfs::path& package_file, const TransactionOptions& options) {
    // One wait for both runs: the test run's verdict holds for the real run.
    const auto lock = take_lock(absolute_root(root), options);
    transact(root, package_file, options, Mode::test);
    transact(root, package_file, options, Mode::real);
}

namespace {
void erase(const stdfs::path& root, const std::string& nevra, bool justdb, const TransactionOptions& options) {
    const stdfs::path abs_root = absolute_root(root);
    const auto lock = take_lock(abs_root, options);
    TsPtr ts = make_ts(abs_root.c_str());
    LogCapture capture;
    int added = 0;
    {
        MiPtr mi(rpmtsInitIterator(ts.get(), RPMDBI_LABEL, nevra.c_str(), 0));
        while (mi) {
            Header h = rpmdbNextIterator(mi.get());
            if (h == nullptr) break;
            if (rpmtsAddEraseElement(ts.get(), h, -1) == 0) ++added;
        }
    }
    if (added == 0) throw RpmError(fmt::format("{} is not in the rpmdb of {}", nevra, abs_root.string()));
    rpmtsSetFlags(ts.get(), (justdb ? RPMTRANS_FLAG_JUSTDB : RPMTRANS_FLAG_NONE) | RPMTRANS_FLAG_NOSCRIPTS |
                                RPMTRANS_FLAG_NOTRIGGERS);
    if (rpmtsRun(ts.get(), nullptr, RPMPROB_FILTER_NONE) != 0) {
        std::string problems = problems_text(ts.get());
        throw RpmError(fmt::format("removing the rpmdb entry of {} failed: {}", nevra,
                                   problems.empty() ? capture.joined() : problems));
    }
    log::info("{} {} in {}", justdb ? "removed the rpmdb entry of" : "erased", nevra, abs_root.string());
}
} // namespace

void remove_rpmdb_entry(const stdfs::path& root, const std::string& nevra, const TransactionOptions& options) {
    erase(root, nevra, true, options);
}

void erase_package(const stdfs::path& root, const std::string& nevra, const TransactionOptions& options) {
    erase(root, nevra, false, options);
}

namespace {

/// The installed packages the rpmdb index `tag` lists under `key` (none without an rpmdb).
std::vector<PackageInfo> query_index(const stdfs::path& root, rpmDbiTagVal tag, const std::string& key) {
    std::vector<PackageInfo> out;
    const stdfs::path abs_root = stdfs::absolute(root.empty() ? stdfs::path("/") : root);
    if (!has_rpmdb(abs_root)) return out;
    TsPtr ts = make_ts(abs_root.c_str());
    LogCapture capture;
    MiPtr mi(rpmtsInitIterator(ts.get(), tag, key.c_str(), 0));
    if (!mi && !capture.messages().empty())
        throw RpmError(fmt::format("cannot read the rpmdb in {}: {}", (abs_root / "var/lib/rpm").string(),
                                   capture.joined()));
    while (mi) {
        Header h = rpmdbNextIterator(mi.get());
        if (h == nullptr) break;
        out.push_back(info_from_header(h));
    }
    return out;
}

} // namespace

std::vector<PackageInfo> query_installed(const stdfs::path& root, const std::string& name) {
    return query_index(root, RPMDBI_NAME, name);
}

std::vector<PackageInfo> query_providers(const stdfs::path& root, const std::string& capability) {
    return query_index(root, RPMDBI_PROVIDENAME, capability);
}

} // namespace leo::rpm
