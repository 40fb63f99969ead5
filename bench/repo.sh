#!/bin/bash
# Repository metadata and downloads against peers, side by side in one run (issue 14):
#   cold check-update   vs  curl URL | zcat > /dev/null of the same primary (the floor)
#                       vs  dnf --installroot R repoquery --upgrades of the same question
#   warm check-update   vs  dnf's warm answer (metadata cached and unchanged, after
#                           metadata_expire: both fetch repomd.xml and nothing else)
#   peak memory of each (/usr/bin/time -v's maximum resident set size)
#   a 200 MB package    vs  curl -o (throughput ratio; the two run in turn)
# on a generated repository (bench/make_repo.py: N synthetic CentOS-shaped entries + the 5
# broker packages of the test build) served on loopback by BusyBox's httpd (one server
# for everyone). Each figure is the median of RUNS runs. Timings are printed, never
# asserted: this is a benchmark, not a test (scripts/test.sh does not run it).
#
# usage: bench/repo.sh [N=60000] [RUNS=3]      (as root, after a build in build/)
set -euo pipefail
count=${1:-60000}
runs=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${LEO_BUILD_DIR:-$src/build}
[ "$(id -u)" = 0 ] || { echo "bench/repo.sh: run as root" >&2; exit 4; }
command -v dnf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q dnf >/dev/null
command -v busybox >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null
cmake --build "$build" --target leo-installer leo-bench-repo -j2 >/dev/null
bin=$build/installer/leo-installer
[ -x "$bin" ] || bin=$(find "$build" -name leo-installer -type f -perm -u+x | head -n1)
bench_bin=$build/repo/leo-bench-repo

work=$(mktemp -d /tmp/leo-bench-repo.XXXXXX); chmod 755 "$work"
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

pkgs=${LEO_TEST_PACKAGES:-$build/test-packages}
[ -f "$pkgs/repo/repodata/repomd.xml" ] || "$src"/scripts/build-test-packages.sh "$pkgs" >/dev/null
echo "== generating the repository ($count synthetic packages + the broker's)"
python3 "$here"/make_repo.py "$pkgs/repo" "$work/www/bench" "$count"
primary=$(cd "$work/www/bench" && ls repodata/*-primary.xml.gz)
head -c 200M /dev/urandom > "$work/www/big.rpm"
big_sum=$(sha256sum "$work/www/big.rpm" | cut -d' ' -f1)
big_size=$(stat -c %s "$work/www/big.rpm")

# BusyBox's httpd (a C server, sendfile, a process per connection): its latency and CPU per
# byte stay small next to the clients', which Python's http.server's did not (5-12 ms per
# small GET, and a core busy serving the 200 MB package).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
busybox httpd -f -p "127.0.0.1:$port" -h "$work/www" &
server_pid=$!
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/big.rpm" -r 0-0 && break; sleep 0.1; done
echo "$port" > "$work/port"
url="http://127.0.0.1:$(cat "$work/port")"

# Two roots with broker 9.0.7 in their rpmdb (no files: check-update reads the rpmdb only).
# Ours at /var/lib/rpm; dnf's where dnf looks (the host's macro, PITFALLS.md).
broker=$pkgs/repo/leostream-broker-9.0.7-1.x86_64.rpm
for r in ours dnf; do
    mkdir -p "$work/$r/etc/yum.repos.d" "$work/$r/etc/yum/vars"
    echo 7 > "$work/$r/etc/yum/vars/releasever"  # as dnf's --releasever 7 below
    printf '[bench]\nname=bench\nbaseurl=%s/bench\nenabled=1\ngpgcheck=0\nmetadata_expire=0\n' "$url" \
        > "$work/$r/etc/yum.repos.d/bench.repo"
done
rpm --root "$work/ours" --dbpath /var/lib/rpm -i --justdb --nodeps --noscripts --nosignature "$broker"
rpm --root "$work/dnf" -i --justdb --nodeps --noscripts --nosignature "$broker"

# One run of COMMAND, timed from posix_spawn (vfork) to exit by a Python parent that is already running
# (no shell, date or /usr/bin/time in the measured span): prints SECONDS. Peak memory comes
# from one more run under /usr/bin/time (a vforked child's maximum RSS would start at the
# Python parent's, since the kernel keeps the maximum across exec).
# Every command runs in the same small environment, as a cron job's (leo-installer's kept
# answer is keyed by the environment, installer/warm_answer.hpp: the harness must not change it).
cat > "$work/timeit.py" <<'PY'
import os, sys, time
out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
err = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
actions = [(os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, err, 2)]
env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[3], sys.argv[3:], env, file_actions=actions)
os.waitpid(pid, 0)
print("%.4f" % (time.perf_counter() - start))
PY

# summarise NAME PREPARE COMMAND... -- SECONDS...: the median of SECONDS into $NAME_s, and
# the peak RSS (MB) of one more run of COMMAND (after PREPARE) into $NAME_mb.
summarise() {
    local name=$1 prepare=$2; shift 2
    local cmd=() mem
    while [ "$1" != "--" ]; do cmd+=("$1"); shift; done
    shift
    eval "$prepare"
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 /usr/bin/time -f '%M' -o "$work/time" "${cmd[@]}" > /dev/null 2>&1 || true
    mem=$(tail -n1 "$work/time")
    local mid=$(( ($# + 1) / 2 ))
    printf -v "${name}_s" '%s' "$(printf '%s\n' "$@" | sort -g | sed -n "${mid}p")"
    printf -v "${name}_mb" '%s' "$(awk '{printf "%.0f", $1/1024}' <<< "$mem")"
    echo "$name: $* s, $mem KB"
}

# measure NAME PREPARE COMMAND...: RUNS runs of COMMAND (after PREPARE each time), median
# seconds and peak RSS (MB) into $NAME_s and $NAME_mb. With n=K before it (n=45 measure ...),
# K runs: the answers of some 30 ms, where one scheduling hiccup is a tenth of the figure,
# take five times as many runs as the others (RUNS x 5).
measure() {
    local name=$1 prepare=$2; shift 2
    local times=()
    for _ in $(seq "${n:-$runs}"); do
        eval "$prepare"
        times+=("$(python3 "$work/timeit.py" "$work/out" "$work/err" "$@")")
    done
    summarise "$name" "$prepare" "$@" -- "${times[@]}"
    echo "  its last output: $(head -c 200 "$work/out" | tr '\n' ' ')"
}

# The floor of any answer from a process that links what leo-installer links: an empty
# main() linked against the same shared libraries as the full program (its DT_NEEDED list),
# and one linked against libcurl alone (what the launcher, /usr/bin/leo-installer, links
# besides libcrypto, libfmt and the C++ runtime: warm_answer.hpp).
program=$build/libexec/leo-installer/leo-installer
needed=$(readelf -d "$program" | sed -n 's/.*Shared library: \[lib\([^]]*\)\.so.*/-l\1/p' | grep -v -e '^-lc$' -e '^-lgcc_s$' | tr '\n' ' ')
printf 'int main(void) { return 0; }\n' > "$work/empty.c"
# shellcheck disable=SC2086
cc -O2 -o "$work/libs-floor" "$work/empty.c" -Wl,--no-as-needed $needed -lstdc++
cc -O2 -o "$work/curl-floor" "$work/empty.c" -Wl,--no-as-needed -lcurl

ours=("$bin" check-update --root "$work/ours")
full=("$program" check-update --root "$work/ours")
prime() { python3 "$work/timeit.py" /dev/null /dev/null "$@" > /dev/null || true; }
dnf_q=(dnf --installroot "$work/dnf" --setopt=reposdir="$work/dnf/etc/yum.repos.d" --releasever 7
       --disableplugin='*' -q repoquery --upgrades leostream-broker)
quick=$(( runs * 5 ))
# The repository, the 200 MB package and the roots were just written: their writeback (some
# 400 MB) would run beside the first measures, on a 2-vCPU machine a core's worth of the
# kernel's flusher threads. Measured after it.
sync
echo "== measuring (median of $runs; of $quick for the answers of some 30 ms)"
n=$quick measure start ":" "$bin" --version
n=$quick measure libs_floor ":" "$work/libs-floor"
n=$quick measure curl_floor ":" "$work/curl-floor"
measure floor ":" bash -c "curl -s $url/bench/$primary | zcat > /dev/null"
measure cold "rm -rf $work/ours/var/cache/leo-installer" "${ours[@]}"
prime "${ours[@]}"
n=$quick measure warm ":" "${ours[@]}"
n=$quick measure warm_full ":" "${full[@]}"
# What any client pays to ask the server whether repomd.xml changed: curl's own GET of it.
n=$quick measure curl_get ":" curl -s -o /dev/null "$url/bench/repodata/repomd.xml"
# Within metadata_expire (yum's default 6 h, the common case of a check every few minutes):
# no network at all. The same root with metadata_expire=6h, primed, then measured.
sed -i 's/^metadata_expire=0$/metadata_expire=6h/' "$work/ours/etc/yum.repos.d/bench.repo"
prime "${ours[@]}"
n=$quick measure warm_fresh ":" "${ours[@]}"
sed -i 's/^metadata_expire=6h$/metadata_expire=0/' "$work/ours/etc/yum.repos.d/bench.repo"
prime "${ours[@]}"
measure dnf_cold "rm -rf $work/dnf/var/cache/dnf" "${dnf_q[@]}"
prime "${dnf_q[@]}"
measure dnf_warm ":" "${dnf_q[@]}"
# dnf within metadata_expire too (the same root, 6 h, primed): no network for either.
sed -i 's/^metadata_expire=0$/metadata_expire=6h/' "$work/dnf/etc/yum.repos.d/bench.repo"
prime "${dnf_q[@]}"
measure dnf_warm_fresh ":" "${dnf_q[@]}"
sed -i 's/^metadata_expire=6h$/metadata_expire=0/' "$work/dnf/etc/yum.repos.d/bench.repo"
# The two downloads run in turn (curl, ours, curl, ours, ...): whatever drifts over the runs
# (the page cache, the writeback of earlier runs' files, the host) falls on both alike.
curl_big=(curl -s -o "$work/big.curl" "$url/big.rpm")
ours_big=("$bench_bin" download "$url" big.rpm "$big_sum" "$big_size" "$work/dl")
curl_times=(); ours_times=()
for _ in $(seq "$runs"); do
    rm -f "$work/big.curl"
    curl_times+=("$(python3 "$work/timeit.py" "$work/out" "$work/err" "${curl_big[@]}")")
    rm -rf "$work/dl"; mkdir -p "$work/dl"
    ours_times+=("$(python3 "$work/timeit.py" "$work/out" "$work/err" "${ours_big[@]}")")
done
summarise curl_big "rm -f $work/big.curl" "${curl_big[@]}" -- "${curl_times[@]}"
summarise ours_big "rm -rf $work/dl; mkdir -p $work/dl" "${ours_big[@]}" -- "${ours_times[@]}"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'; }
echo
echo "| measure | leo-installer | peer | ratio | target |"
echo "|---|---|---|---|---|"
echo "| cold check-update vs curl \| zcat (floor) | ${cold_s} s | ${floor_s} s | $(ratio "$cold_s" "$floor_s")× | ≤ 1.3× |"
echo "| cold check-update vs dnf repoquery | ${cold_s} s | ${dnf_cold_s} s | $(ratio "$dnf_cold_s" "$cold_s")× faster | ≥ 8× |"
echo "| warm check-update vs dnf (warm) | ${warm_s} s | ${dnf_warm_s} s | $(ratio "$dnf_warm_s" "$warm_s")× faster | ≤ 0.030 s, ≥ 10× |"
echo "| warm check-update vs curl's own GET of repomd.xml (what any revalidation pays) | ${warm_s} s | ${curl_get_s} s | $(ratio "$warm_s" "$curl_get_s")× | |"
echo "| warm check-update within metadata_expire vs dnf's (no network; yum's default 6 h) | ${warm_fresh_s} s (${warm_fresh_mb} MB) | ${dnf_warm_fresh_s} s (${dnf_warm_fresh_mb} MB) | $(ratio "$dnf_warm_fresh_s" "$warm_fresh_s")× faster | |"
echo "| warm check-update by the full program (what the launcher runs when an input changed) | ${warm_full_s} s (${warm_full_mb} MB) | | | |"
echo "| leo-installer --version (the launcher executing the full program) | ${start_s} s | | | |"
echo "| an empty main() linked against the full program's libraries / against libcurl alone | ${libs_floor_s} s / ${curl_floor_s} s | | | |"
echo "| peak memory cold / warm | ${cold_mb} / ${warm_mb} MB | dnf ${dnf_cold_mb} / ${dnf_warm_mb} MB | | < 64 MB |"
echo "| 200 MB package vs curl -o | ${ours_big_s} s (${ours_big_mb} MB) | ${curl_big_s} s | throughput $(ratio "$curl_big_s" "$ours_big_s") | ≥ 0.9 |"
echo "primary: $(stat -c %s "$work/www/bench/$primary") bytes compressed, $(zcat "$work/www/bench/$primary" | wc -c) decompressed"
