#!/bin/bash
# Restore points kept inside PostgreSQL, side by side with what PostgreSQL itself can do, on
# broker databases of several sizes (work_queue rows of the broker schema), in one run:
#   peers, run by this script on the same database:
#     pg_dump -Fc, pg_restore into a fresh database, CREATE DATABASE ... TEMPLATE (the
#     strategy leo-installer uses: FILE_COPY on PostgreSQL 15+), ALTER DATABASE ... RENAME
#   leo-installer (times from its log, which records each part):
#     the restore point's database copy, the dump of that copy (off the critical path),
#     a rollback's database part (renames), and the whole commands (snapshot create,
#     rollback, upgrade, the upgrade's critical path = the command minus the dump after it)
# Prints one table per size and the ratios the targets are stated in. Needs a build
# (build/) and root. Timings are never asserted (not a test).
# usage: bench/restore_point.sh [SIZE_MB...]    (default: 50 500 2000)
set -euo pipefail
sizes=("$@")
((${#sizes[@]})) || sizes=(50 500 2000)
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/build/installer/leo-installer
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

bench_one() {
  local mb=$1 work root sock log
  work=$(mktemp -d /tmp/leo-bench-rp.XXXXXX); chmod 755 "$work"
  root=$work/root
  # Stopped and removed on every way out (an error under set -e too).
  trap 'if [[ -n ${work:-} ]]; then "$bin" db stop --root "$work/root" >/dev/null 2>&1 || true; rm -rf "$work"; fi' RETURN EXIT
  "$here"/scripts/make-sandbox-root.sh "$root"
  local old new
  old=$("$here"/scripts/build-broker-rpm.sh 9.0.7 "$work" 2>/dev/null)
  new=$("$here"/scripts/build-broker-rpm.sh 9.2.0 "$work" 2>/dev/null)
  "$bin" install --rpm "$old" --root "$root" --nogpgcheck -y >/dev/null 2>&1
  sock=$root/home/leo/pgsql
  log=$root/var/log/leo-installer/installer.log
  pg() { psql -X -q -h "$sock" -U leo "$@"; }
  # Rows of ~400 bytes in batches until the database has the size asked for.
  while (( $(pg -d leo -Atc "SELECT pg_database_size('leo')") < mb * 1000000 )); do
    pg -d leo -c "INSERT INTO work_queue (site_id, job_type, status, payload)
      SELECT 1, 'sync', 'pending', repeat(md5(g::text), 12) FROM generate_series(1, 200000) g"
  done
  pg -d leo -c "VACUUM ANALYZE work_queue" >/dev/null
  local size; size=$(pg -d leo -Atc "SELECT pg_database_size('leo')")
  local strategy=""; (( $(pg -d leo -Atc "SHOW server_version_num") >= 150000 )) && strategy=" STRATEGY FILE_COPY"

  # Peers.
  local t0 t1 t2 t3 t4 t5
  t0=$(now); "$bindir"/pg_dump -Fc -h "$sock" -U leo -f "$work/leo.dump" leo; t1=$(now)
  pg -d postgres -c "CREATE DATABASE bench_restore OWNER leo TEMPLATE template0"
  "$bindir"/pg_restore --exit-on-error --single-transaction -h "$sock" -U leo -d bench_restore "$work/leo.dump"
  local t_restored; t_restored=$(now)
  # The copy's checkpoint must not pay for the rows pg_restore just wrote (leo-installer's
  # copy comes after other work too): a checkpoint first, outside the measurement.
  pg -d postgres -c "CHECKPOINT"; t2=$(now)
  pg -d postgres -c "CREATE DATABASE bench_copy TEMPLATE leo$strategy"; t3=$(now)
  pg -d postgres -c "ALTER DATABASE bench_copy RENAME TO bench_renamed"; t4=$(now)
  pg -d postgres -c "DROP DATABASE bench_restore" -c "DROP DATABASE bench_renamed"
  local dump_s restore_s template_s rename_s
  dump_s=$(secs "$t0" "$t1"); restore_s=$(secs "$t1" "$t_restored"); template_s=$(secs "$t2" "$t3"); rename_s=$(secs "$t3" "$t4")

  # leo-installer: a restore point, a rollback to it, an upgrade.
  t0=$(now); "$bin" snapshot create --root "$root" -y >/dev/null; t1=$(now)
  t2=$(now); "$bin" rollback --root "$root" -y >/dev/null; t3=$(now)
  t4=$(now); "$bin" upgrade --rpm "$new" --nogpgcheck --root "$root" -y >/dev/null; t5=$(now)
  # From the log, in order: snapshot create (0), the rollback's before-rollback restore
  # point (1), the upgrade's restore point (2).
  local copies dumps checks rollback_db migrate_s
  copies=($(grep -o 'database copy leo_rp_[^ ]* ([^)]*) in [0-9.]* s' "$log" | awk '{print $(NF-1)}'))
  dumps=($(grep -o 'dump of its copy in [0-9.]* s' "$log" | awk '{print $(NF-1)}'))
  checks=($(grep -o 'checksums of its copy in [0-9.]* s' "$log" | awk '{print $(NF-1)}'))
  rollback_db=$(grep -o 'database part (renames) in [0-9.]* s' "$log" | tail -n1 | awk '{print $(NF-1)}')
  migrate_s=$(grep -o 'database migrations in [0-9.]* s' "$log" | tail -n1 | awk '{print $(NF-1)}')
  local create_s rollback_s upgrade_s critical_s rollback_critical_s
  create_s=$(secs "$t0" "$t1"); rollback_s=$(secs "$t2" "$t3"); upgrade_s=$(secs "$t4" "$t5")
  # Critical paths: the command minus what it does after its end (checksums and dump).
  critical_s=$(awk -v u="$upgrade_s" -v d="${dumps[2]}" -v c="${checks[2]}" 'BEGIN { printf "%.2f", u - d - c }')
  rollback_critical_s=$(awk -v u="$rollback_s" -v d="${dumps[1]}" -v c="${checks[1]}" 'BEGIN { printf "%.2f", u - d - c }')

  awk -v mb="$mb" -v size="$size" -v dump="$(stat -c %s "$work/leo.dump")" \
      -v dump_s="$dump_s" -v restore_s="$restore_s" -v template_s="$template_s" -v rename_s="$rename_s" \
      -v copy_s="${copies[0]}" -v rpdump_s="${dumps[0]}" -v create_s="$create_s" \
      -v rollback_db="$rollback_db" -v rollback_s="$rollback_s" -v upgrade_copy="${copies[-1]}" \
      -v upgrade_s="$upgrade_s" -v critical_s="$critical_s" -v migrate_s="$migrate_s" \
      -v check_s="${checks[0]}" -v rollback_critical_s="$rollback_critical_s" 'BEGIN {
    printf "\n== broker database %.0f MB (asked %d MB), dump file %.1f MB\n", size / 1e6, mb, dump / 1e6
    printf "%-58s %8s\n", "measurement", "seconds"
    printf "%-58s %8.2f\n", "pg_dump -Fc", dump_s
    printf "%-58s %8.2f\n", "pg_restore into a fresh database", restore_s
    printf "%-58s %8.2f\n", "CREATE DATABASE ... TEMPLATE leo", template_s
    printf "%-58s %8.2f\n", "ALTER DATABASE ... RENAME", rename_s
    printf "%-58s %8.2f\n", "leo-installer restore point: database copy", copy_s
    printf "%-58s %8.2f\n", "leo-installer restore point: checksums of the copy (after)", check_s
    printf "%-58s %8.2f\n", "leo-installer restore point: dump of the copy (after)", rpdump_s
    printf "%-58s %8.2f\n", "leo-installer snapshot create (whole command)", create_s
    printf "%-58s %8.2f\n", "leo-installer rollback: database part (renames)", rollback_db
    printf "%-58s %8.2f\n", "leo-installer rollback (whole command)", rollback_s
    printf "%-58s %8.2f\n", "leo-installer rollback: critical path (minus the after part)", rollback_critical_s
    printf "%-58s %8.2f\n", "leo-installer upgrade (whole command)", upgrade_s
    printf "%-58s %8.2f\n", "leo-installer upgrade: critical path (minus the after part)", critical_s
    printf "%-58s %8.2f\n", "leo-installer upgrade: its migrations", migrate_s
    printf "ratio restore point copy / TEMPLATE copy: %.2f (target <= 1.5)\n", copy_s / template_s
    printf "ratio restore point copy / pg_dump -Fc: %.2f\n", copy_s / dump_s
    printf "rollback database part: %.2f s (target <= 0.5 s at every size); / pg_restore: %.3f\n", rollback_db, rollback_db / restore_s
    printf "ratio (upgrade critical path - migrations) / TEMPLATE copy: %.2f (target <= 2)\n", (critical_s - migrate_s) / template_s
    printf "ratio rollback critical path / pg_restore: %.2f\n", rollback_critical_s / restore_s
  }'
}

echo "machine: $(nproc) vCPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $("$bindir"/postgres --version)"
for mb in "${sizes[@]}"; do bench_one "$mb"; done
