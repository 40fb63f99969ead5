#!/bin/bash
# A cluster of N broker roots (default 16) on one PostgreSQL server (a sandbox "external"
# server on 127.0.0.1), each upgraded 9.0.7 -> 9.1.2 by its own concurrent `upgrade`
# process, side by side with the same N upgrades run back to back on a second cluster of
# the same shape (same server, another database). Checks what the lease promises and
# prints the times:
#   - one at a time: the lease's token ends at N, and the N runs hold N distinct tokens
#     (each run's "upgrade lease taken ... (token K" log line);
#   - the shared schema migrated exactly once (one history row per migration);
#   - every broker on 9.1.2; no pending job lost (pending jobs of a site that left are
#     moved to members, their count unchanged).
# Reports: total wall time concurrent vs back to back (ratio), and the lease's overhead
# per broker = (concurrent total - back-to-back total) / N (waiting is the point of the
# lease; the overhead is what coordination costs beyond the serial work). Timings are
# never asserted (not a test). Needs a build (build/) and root.
# usage: bench/cluster.sh [N]
set -euo pipefail
n=${1:-16}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/build/installer/leo-installer
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

work=$(mktemp -d /tmp/leo-bench-cluster.XXXXXX); chmod 755 "$work"
ext=$work/server
cleanup() {
  for d in "$work"/c-*; do [[ -d $d ]] && "$bin" db stop --root "$d" >/dev/null 2>&1 || true; done
  "$bin" db stop --root "$ext" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> packages, the server and 2 x $n broker roots (setup, not timed)"
"$here"/scripts/build-test-packages.sh "$work/packages" >/dev/null 2>&1
old=$work/packages/repo/leostream-broker-9.0.7-1.x86_64.rpm
new=$work/packages/repo/leostream-broker-9.1.2-1.x86_64.rpm
key=$work/packages/RPM-GPG-KEY-leo-test
"$here"/scripts/make-sandbox-root.sh "$ext" >/dev/null
groupadd --root "$ext" --system leo
useradd --root "$ext" --system -g leo -d /home/leo -M -s /bin/sh leo 2>/dev/null
mkdir -p "$ext/home/leo" && chmod 0755 "$ext/home/leo"
"$bin" db init --root "$ext" >/dev/null
port=55500; while (: </dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
printf "listen_addresses = '127.0.0.1'\nport = %s\nmax_connections = 300\n" "$port" >> "$ext/home/leo/pgsql/data/postgresql.conf"
echo "host all all 127.0.0.1/32 scram-sha-256" >> "$ext/home/leo/pgsql/data/pg_hba.conf"
"$bin" db start --root "$ext" >/dev/null
admin() { psql -X -q -h "$ext/home/leo/pgsql" -p "$port" -U leo "$@"; }
admin -d postgres -c "CREATE ROLE broker LOGIN CREATEDB PASSWORD 'bench-secret'"
echo bench-secret > "$work/password"; chmod 0600 "$work/password"

make_cluster() {  # name db
  local name=$1 db=$2 i r mode
  for i in $(seq 1 "$n"); do
    r=$work/c-$name-$i
    "$here"/scripts/make-sandbox-root.sh "$r" >/dev/null
    "$bin" install --rpm "$old" --root "$r" --gpgkey "$key" -y >/dev/null
    mode=existing; [[ $i == 1 ]] && mode=new
    "$r/usr/bin/switch_database.pl" --root "$r" --to_external $mode --db_vendor postgres --db_host 127.0.0.1 \
      --port "$port" --db_name "$db" --username broker --password_file "$work/password" --site_id "$i" \
      --skip_confirmation >/dev/null
    "$bin" db stop --root "$r" >/dev/null
  done
  # Sites 1..n are members; site 999 left the cluster with pending jobs.
  admin -d "$db" -c "INSERT INTO sites (site_id, name) SELECT g, 's' || g FROM generate_series(2, $n) g" \
    -c "INSERT INTO sites (site_id, name) VALUES (999, 'retired')" \
    -c "INSERT INTO work_queue (site_id, job_type, status) SELECT 1 + g % $n, 'sync', 'pending' FROM generate_series(1, 1000) g" \
    -c "INSERT INTO work_queue (site_id, job_type, status) SELECT 999, 'sync', 'pending' FROM generate_series(1, 100) g"
}
make_cluster con leo_con
make_cluster seq leo_seq

upgrade() {  # root [--allow-remote-upgrade]
  "$bin" upgrade --root "$1" --rpm "$new" --gpgkey "$key" -y --lease-wait 3600 "${@:2}" > "$1.out" 2>&1
}

check() {  # label prefix db
  local label=$1 prefix=$2 db=$3 i bad=0
  for i in $(seq 1 "$n"); do
    [[ $(rpm --root "$work/c-$prefix-$i" --dbpath /var/lib/rpm -q leostream-broker) == leostream-broker-9.1.2-1.x86_64 ]] || bad=1
  done
  local migrations token pending orphans tokens
  migrations=$(admin -d "$db" -Atc "SELECT string_agg(version || ' x' || c, ', ' ORDER BY version) FROM (SELECT version, count(*) c FROM leo_schema_history WHERE version LIKE '9.1%' GROUP BY version) v")
  token=$(admin -d "$db" -Atc "SELECT token FROM leo_installer.upgrade_lease")
  pending=$(admin -d "$db" -Atc "SELECT count(*) FROM work_queue WHERE status = 'pending'")
  orphans=$(admin -d "$db" -Atc "SELECT count(*) FROM work_queue WHERE site_id = 999")
  # Each run's lease token (its log): N acquisitions, none shared.
  tokens=$(for i in $(seq 1 "$n"); do
      grep -m1 -o 'upgrade lease taken by .* (token [0-9]*' "$work/c-$prefix-$i/var/log/leo-installer/installer.log" | grep -o '[0-9]*$'
    done | sort -u | wc -l)
  printf '  %-13s brokers on 9.1.2: %s; migrations: %s; lease token: %s; distinct tokens: %s of %s runs; pending jobs: %s (left on the retired site: %s)\n' \
    "$label" "$([[ $bad == 0 ]] && echo all || echo NOT ALL)" "$migrations" "$token" "$tokens" "$n" "$pending" "$orphans"
}

echo "==> $n concurrent upgrades (one process per broker, all with --allow-remote-upgrade)"
t0=$(now)
for i in $(seq 1 "$n"); do upgrade "$work/c-con-$i" --allow-remote-upgrade & done
fail=0; for job in $(jobs -p); do wait "$job" || fail=$((fail + 1)); done
t1=$(now)
echo "==> the same $n upgrades back to back (the first with --allow-remote-upgrade)"
t2=$(now)
for i in $(seq 1 "$n"); do
  if [[ $i == 1 ]]; then upgrade "$work/c-seq-$i" --allow-remote-upgrade || fail=$((fail + 1))
  else upgrade "$work/c-seq-$i" || fail=$((fail + 1)); fi
done
t3=$(now)
echo
echo "results ($n brokers, one PostgreSQL $(admin -d postgres -Atc 'SHOW server_version'), $(nproc) CPUs; failed runs: $fail)"
check concurrent con leo_con
check back-to-back seq leo_seq
con=$(secs "$t0" "$t1"); seq=$(secs "$t2" "$t3")
printf '  %-34s %8s s\n' "concurrent, total" "$con" "back to back, total" "$seq"
awk -v c="$con" -v s="$seq" -v n="$n" 'BEGIN {
  printf "  %-34s %8.2f\n", "ratio concurrent / back to back", c / s
  printf "  %-34s %8.3f s\n", "per broker, back to back", s / n
  printf "  %-34s %8.3f s\n", "lease overhead per broker", (c - s) / n }'
