#!/bin/bash
# The main job end to end on real input: build leo-installer, build and sign broker RPMs
# (9.0.7, 9.1.2, 9.1.10, 9.2.0~rc1, 9.2.0) from rpm/specs/leostream-broker.spec into a
# yum repository made by createrepo_c, install 9.0.7 into a sandbox root that looks like
# CentOS 7 (preflight, leo user, librpm transaction, internal PostgreSQL, migrations),
# then serve the repository on loopback: check-update, upgrade, rollback; then
# switch_database.pl to an external PostgreSQL on 127.0.0.1 (copy verified) and back; then
# a two-broker cluster on that server upgraded in one maintenance window (gates, lease,
# components stopped and started, spot-check, report, jobs of a retired site moved).
# Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
leo_install_deps
leo_build build
here=$(pwd)
bin=$here/build/installer/leo-installer

work=$(mktemp -d /tmp/leo-demo.XXXXXX)
chmod 0755 "$work"
root=$work/root
httpd_pid=
cleanup() {
  "$bin" db stop --root "$root" >/dev/null 2>&1 || true
  "$bin" db stop --root "$work/ext-root" >/dev/null 2>&1 || true
  "$bin" db stop --root "$work/root-from-repo" >/dev/null 2>&1 || true
  [[ -n $httpd_pid ]] && kill "$httpd_pid" 2>/dev/null || true
}
trap cleanup EXIT

say() { printf '\n\033[1m### %s\033[0m\n' "$*"; }
run() { printf '$'; printf ' %q' "$@"; printf '\n'; "$@"; }

say "A sandbox root that looks like a CentOS 7 host"
scripts/make-sandbox-root.sh "$root" --os centos7
run cat "$root/etc/os-release"

say "Build and sign the broker packages; make a yum repository of them with createrepo_c"
# (scripts/build-test-packages.sh also builds other/foo-1.0-1.noarch.rpm, a package that is not the broker)
scripts/build-test-packages.sh "$work/packages" >/dev/null 2>&1
pub=$work/packages/RPM-GPG-KEY-leo-test
rpm_file=$work/packages/repo/leostream-broker-9.0.7-1.x86_64.rpm
run ls "$work/packages/repo" "$work/packages/repo/repodata"
run rpm -qpil --dbpath /var/lib/rpm "$rpm_file" | sed -n '1,4p;/^\/home/p'

say "Verify it: NOKEY without its key, OK with it"
run "$bin" verify --rpm "$rpm_file" --root "$root" || true
run "$bin" verify --rpm "$rpm_file" --root "$root" --gpgkey "$pub"

say "Preflight (install profile) for the sandbox root"
run "$bin" preflight --root "$root"

say "Install: verify, preflight, leo user, rpm transaction, database, migrations"
run "$bin" install --rpm "$rpm_file" --root "$root" --gpgkey "$pub" -y

say "What rpm itself sees in the root's rpmdb"
run rpm --root "$root" --dbpath /var/lib/rpm -q leostream-broker
run rpm --root "$root" --dbpath /var/lib/rpm -V leostream-broker && echo "rpm -V: every file matches the package"
run grep '^leo:' "$root/etc/passwd"

say "Status"
run "$bin" status --root "$root"

say "The broker's tables in the internal database"
psql_root() { psql -h "$root/home/leo/pgsql" -U leo -d leo "$@"; }
run psql_root -c '\dt' \
  -c 'SELECT version, description, broker_version, success FROM leo_schema_history ORDER BY installed_rank' \
  -c 'SELECT * FROM settings ORDER BY name'
echo "Some work-queue rows written before any upgrade:"
run psql_root -c "INSERT INTO work_queue (site_id, job_type, status, payload) VALUES (1, 'sync', 'failed', 'attempts=3'), (1, 'sync', 'pending', NULL)" \
  -c 'SELECT job_id, job_type, status, payload FROM work_queue ORDER BY job_id'

say "Installing the same package again is nothing to do"
run "$bin" install --rpm "$rpm_file" --root "$root" --gpgkey "$pub" -y

say "Bad input changes nothing: a tampered copy of the package"
cp "$rpm_file" "$work/tampered.rpm"
printf '\x00' | dd of="$work/tampered.rpm" bs=1 seek=$(( $(stat -c %s "$work/tampered.rpm") - 64 )) conv=notrunc status=none
run "$bin" install --rpm "$work/tampered.rpm" --root "$root" --gpgkey "$pub" -y && exit 1 || echo "(refused, exit $?)"

say "Serve the repository on 127.0.0.1; the root gets CentOS 7.9's stock yum.conf and .repo files (mirrorlist, \$releasever, \$infra: unreachable here, so skipped with a warning) and the broker's .repo"
"$here/build/tests/leo-test-httpd" "$work/packages" > "$work/httpd.url" &
httpd_pid=$!
for _ in $(seq 50); do [[ -s $work/httpd.url ]] && break; sleep 0.1; done
url=$(head -n1 "$work/httpd.url")
mkdir -p "$root/etc/yum.repos.d" "$root/etc/pki/rpm-gpg"
cp -r tests/fixtures/centos7/etc/. "$root/etc/"
cp "$pub" "$root/etc/pki/rpm-gpg/RPM-GPG-KEY-leostream"   # gpgkey paths are read inside the root, as yum does
cat > "$root/etc/yum.repos.d/leostream.repo" <<REPO
[leostream]
name=Connection Broker
baseurl=$url/repo
enabled=1
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-leostream
REPO
run ls "$root/etc/yum.repos.d"
run cat "$root/etc/yum.repos.d/leostream.repo"

say "check-update: exit 100 means an update is available (dnf's convention)"
set +e; run "$bin" check-update --root "$root"; rc=$?; set -e
echo "(exit $rc)"; [[ $rc -eq 100 ]]

say "Upgrade to the newest: download and verify, restore point, rpm transaction, migrations, spot-check"
run "$bin" upgrade --root "$root" -y
run "$bin" status --root "$root"
echo "9.1 moved 'attempts=N' from the payload into a column; every row is still there:"
run psql_root -c 'SELECT job_id, job_type, status, payload, attempts FROM work_queue ORDER BY job_id'
run "$bin" snapshot list --root "$root"

say "A second root installed straight from the repositories: the newest, downloaded and verified as upgrade stages it"
root2=$work/root-from-repo
scripts/make-sandbox-root.sh "$root2" --os centos7
mkdir -p "$root2/etc/yum.repos.d" "$root2/etc/pki/rpm-gpg"
cp -r tests/fixtures/centos7/etc/. "$root2/etc/"
cp "$pub" "$root2/etc/pki/rpm-gpg/RPM-GPG-KEY-leostream"
cp "$root/etc/yum.repos.d/leostream.repo" "$root2/etc/yum.repos.d/"
run "$bin" install --root "$root2" --version 9.1.2 -y
run "$bin" status --root "$root2"
"$bin" db stop --root "$root2" >/dev/null

say "Roll back to the restore point: package, configuration and database as they were"
run "$bin" rollback --root "$root" -y
run "$bin" status --root "$root"
run psql_root -c 'SELECT job_id, job_type, status, payload FROM work_queue ORDER BY job_id'
run rpm --root "$root" --dbpath /var/lib/rpm -q leostream-broker

say "An 'external' PostgreSQL on 127.0.0.1 (another sandbox root), with a password-protected role"
ext=$work/ext-root
scripts/make-sandbox-root.sh "$ext" --os centos7
groupadd --root "$ext" --system leo
useradd --root "$ext" --system -g leo -d /home/leo -M -s /bin/bash leo
mkdir -p "$ext/home/leo" && chmod 0755 "$ext/home/leo"
"$bin" db init --root "$ext" >/dev/null
ext_port=54329
while (: </dev/tcp/127.0.0.1/$ext_port) 2>/dev/null; do ext_port=$((ext_port + 1)); done
printf "listen_addresses = '127.0.0.1'\nport = %s\n" "$ext_port" >> "$ext/home/leo/pgsql/data/postgresql.conf"
echo "host all all 127.0.0.1/32 scram-sha-256" >> "$ext/home/leo/pgsql/data/pg_hba.conf"
"$bin" db start --root "$ext" >/dev/null
psql -q -h "$ext/home/leo/pgsql" -p "$ext_port" -U leo -d postgres \
  -c "CREATE ROLE broker LOGIN CREATEDB PASSWORD 'demo-secret'"
echo demo-secret > "$work/db-password" && chmod 0600 "$work/db-password"

say "switch_database.pl: copy the broker database into a new external database, verified table by table"
"$bin" db start --root "$root" >/dev/null
switch_db=$root/usr/bin/switch_database.pl
run ls -l "$switch_db"
run "$switch_db" --root "$root" --to_external new --db_vendor postgres --db_host 127.0.0.1 --port "$ext_port" \
  --db_name leo_cluster --username broker --password_file "$work/db-password" --site_id 1 --skip_confirmation
run "$switch_db" --root "$root" --show_current
echo "The password is stored sealed (AES-256-GCM), the file readable by leo only:"
run ls -l "$root/etc/leostream"
run grep -E '^(mode|host|password)' "$root/etc/leostream/database.conf"
run "$bin" status --root "$root"
echo "A bad flag is one line, exit 2, nothing changed:"
run "$switch_db" --root "$root" --to_external new --db_host 127.0.0.1 --port 70000 --db_name x --username broker \
  && exit 1 || echo "(refused, exit $?)"
echo "An existing database that is not empty is refused for 'new' (exit 3):"
run "$switch_db" --root "$root" --to_external new --db_host 127.0.0.1 --port "$ext_port" --db_name leo_cluster \
  --username broker --password_file "$work/db-password" --skip_confirmation && exit 1 || echo "(refused, exit $?)"

say "switch_database.pl --to_internal: back to the internal database (nothing is copied back)"
run "$switch_db" --root "$root" --to_internal --skip_confirmation
run "$switch_db" --root "$root" --show_current

say "A two-broker cluster on one external database, upgraded in one maintenance window"
# Two brokers on 9.0.7 share the database leo_shared (sites 1 and 2); each runs its web
# server (health endpoint) and work-queue worker under the sandbox supervisor.
for i in 1 2; do
  c=$work/cluster-$i
  scripts/make-sandbox-root.sh "$c" --os centos7 >/dev/null
  "$bin" install --rpm "$rpm_file" --root "$c" --gpgkey "$pub" -y >/dev/null
  hp=18080; while (: </dev/tcp/127.0.0.1/$hp) 2>/dev/null; do hp=$((hp + 1)); done
  sed -i "s/^health_port = .*/health_port = $hp/" "$c/home/leo/etc/broker.conf"
  mode=existing; [[ $i == 1 ]] && mode=new
  "$c/usr/bin/switch_database.pl" --root "$c" --to_external $mode --db_vendor postgres --db_host 127.0.0.1 \
    --port "$ext_port" --db_name leo_shared --username broker --password_file "$work/db-password" --site_id $i \
    --skip_confirmation >/dev/null
  "$bin" db stop --root "$c" >/dev/null
  mkdir -p "$c/etc/leo-installer"
  # The window: every day 00:00-24:00 in UTC here, so the demo runs at any hour.
  printf '[maintenance_window]\ntime_zone = UTC\nwindows = Mon-Sun 00:00-24:00\n' > "$c/etc/leo-installer/installer.conf"
  run "$bin" service start --root "$c"
done
cleanup_cluster() { for i in 1 2; do "$bin" service stop --root "$work/cluster-$i" >/dev/null 2>&1 || true; done; }
trap 'cleanup_cluster; cleanup' EXIT
psql -q -h "$ext/home/leo/pgsql" -p "$ext_port" -U leo -d leo_shared \
  -c "INSERT INTO sites (site_id, name) VALUES (2, 'east'), (7, 'retired')" \
  -c "INSERT INTO work_queue (site_id, job_type, status) SELECT 7, 'sync', 'pending' FROM generate_series(1, 3)"
new_rpm=$work/packages/repo/leostream-broker-9.1.2-1.x86_64.rpm
echo "The second broker cannot migrate the shared schema without the flag (exit 3, nothing changed):"
run "$bin" upgrade --root "$work/cluster-2" --rpm "$new_rpm" --gpgkey "$pub" -y && exit 1 || echo "(refused, exit $?)"
echo "The dry run of the first: gates, components, migrations tried in a throw-away copy, the cluster:"
run "$bin" upgrade --root "$work/cluster-1" --rpm "$new_rpm" --gpgkey "$pub" --allow-remote-upgrade --dry-run
echo "Both brokers upgrade at once; the lease admits one at a time, the first migrates the shared schema:"
"$bin" upgrade --root "$work/cluster-1" --rpm "$new_rpm" --gpgkey "$pub" --allow-remote-upgrade -y \
  > "$work/cluster-1.out" 2>&1 & first=$!
sleep 0.3
"$bin" upgrade --root "$work/cluster-2" --rpm "$new_rpm" --gpgkey "$pub" -y > "$work/cluster-2.out" 2>&1 & second=$!
wait $first; wait $second
for i in 1 2; do echo "--- broker $i"; grep -v '    gate ' "$work/cluster-$i.out"; done
run "$bin" service status --root "$work/cluster-2"
psql -q -h "$ext/home/leo/pgsql" -p "$ext_port" -U leo -d leo_shared \
  -c 'SELECT member, site_id, broker_version, state FROM leo_installer.cluster_members ORDER BY member' \
  -c 'SELECT token, holder FROM leo_installer.upgrade_lease' \
  -c 'SELECT site_id, count(*) AS pending_jobs FROM work_queue WHERE status = $$pending$$ GROUP BY site_id ORDER BY 1'
echo "The cluster goes back: the first broker's restore point holds the shared database (put back only with"
echo "--allow-remote-upgrade; the other broker is named), then the second goes back to its own package:"
run "$bin" rollback --root "$work/cluster-1" -y --allow-remote-upgrade
run "$bin" rollback --root "$work/cluster-2" -y
run "$bin" status --root "$work/cluster-2"
cleanup_cluster
"$bin" db stop --root "$ext" >/dev/null

say "A package built outside this project (unsigned, and not the broker) is refused, even with --nogpgcheck"
other=$work/other-root
scripts/make-sandbox-root.sh "$other" --os centos7
run "$bin" install --rpm "$work/packages/other/foo-1.0-1.noarch.rpm" --root "$other" --nogpgcheck -y && exit 1 \
  || echo "(refused, exit $?)"
run rpm --root "$other" --dbpath /var/lib/rpm -q foo && exit 1 || echo "(not installed)"

say "Done"
echo "The sandbox root is kept in $root (its database is stopped on exit)."
echo "Log: $root/var/log/leo-installer/installer.log"
