#!/bin/bash
# Measure the two ways to take and restore the database part of a restore point, on the
# internal database with ROWS work-queue rows (default 200000, ~60 MB):
#   A. pg_dump -Fc to a file, then drop + create + pg_restore --single-transaction
#      (what leo-installer does)
#   B. CREATE DATABASE snap TEMPLATE leo, then drop leo + CREATE DATABASE leo TEMPLATE snap
# Prints seconds for each and the ratio B/A. Needs a build (build/) and root.
# usage: bench/db_snapshot.sh [ROWS]
set -euo pipefail
rows=${1:-200000}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/build/installer/leo-installer
work=$(mktemp -d /tmp/leo-bench.XXXXXX); chmod 755 "$work"
root=$work/root
trap '"$bin" db stop --root "$root" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
"$here"/scripts/make-sandbox-root.sh "$root"
rpm_file=$("$here"/scripts/build-broker-rpm.sh 9.0.7 "$work" 2>/dev/null)
"$bin" install --rpm "$rpm_file" --root "$root" --nogpgcheck -y >/dev/null 2>&1
pg() { psql -X -q -h "$root/home/leo/pgsql" -U leo "$@"; }
pg -d leo -c "INSERT INTO work_queue (site_id, job_type, status, payload)
  SELECT 1, 'sync', 'pending', repeat(md5(g::text), 6) FROM generate_series(1, $rows) g"
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
size=$(pg -d leo -Atc "SELECT pg_size_pretty(pg_database_size('leo'))")
now() { date +%s.%N; }

t0=$(now)
"$bindir"/pg_dump -Fc -h "$root/home/leo/pgsql" -U leo -f "$work/leo.dump" leo
t1=$(now)
pg -d postgres -c "DROP DATABASE leo" -c "CREATE DATABASE leo OWNER leo TEMPLATE template0"
"$bindir"/pg_restore --exit-on-error --single-transaction -h "$root/home/leo/pgsql" -U leo -d leo "$work/leo.dump"
t2=$(now)
pg -d postgres -c "CREATE DATABASE snap TEMPLATE leo"
t3=$(now)
pg -d postgres -c "DROP DATABASE leo" -c "CREATE DATABASE leo TEMPLATE snap"
t4=$(now)

awk -v rows="$rows" -v size="$size" -v dump="$(stat -c %s "$work/leo.dump")" \
    -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" -v t4="$t4" 'BEGIN {
  a1 = t1 - t0; a2 = t2 - t1; b1 = t3 - t2; b2 = t4 - t3
  printf "database: %d work_queue rows, %s; dump file %.1f MB\n", rows, size, dump / 1e6
  printf "A pg_dump -Fc: take %.2f s, restore %.2f s, total %.2f s\n", a1, a2, a1 + a2
  printf "B TEMPLATE copy: take %.2f s, restore %.2f s, total %.2f s\n", b1, b2, b1 + b2
  printf "ratio B/A (total): %.2f\n", (b1 + b2) / (a1 + a2)
}'
