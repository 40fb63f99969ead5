#!/bin/bash
# The main job end to end on real input: build leo-installer, build and sign the broker
# RPM 9.0.40 from rpm/specs/leostream-broker.spec, and install it into a sandbox root
# that looks like CentOS 7 (preflight, leo user, librpm transaction, internal PostgreSQL,
# migrations), then show the result. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
leo_install_deps
leo_build build
here=$(pwd)
bin=$here/build/installer/leo-installer
fixtures=$here/../shared/fixtures/public

work=$(mktemp -d /tmp/leo-demo.XXXXXX)
chmod 0755 "$work"
root=$work/root
cleanup() { "$bin" db stop --root "$root" >/dev/null 2>&1 || true; }
trap cleanup EXIT

say() { printf '\n\033[1m### %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "A sandbox root that looks like a CentOS 7 host"
scripts/make-sandbox-root.sh "$root" --os centos7
run cat "$root/etc/os-release"

say "Build the broker package 9.0.40 and sign it with a throwaway key"
pub=$work/RPM-GPG-KEY-demo
scripts/make-signing-key.sh "$work/gnupg" leo-demo "$pub"
rpm_file=$(SIGN_KEY=leo-demo GNUPGHOME=$work/gnupg scripts/build-broker-rpm.sh 9.0.40 "$work/rpms")
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
run psql -h "$root/home/leo/pgsql" -U leo -d leo -c '\dt' \
  -c 'SELECT version, description, broker_version, success FROM leo_schema_history ORDER BY installed_rank' \
  -c 'SELECT * FROM settings ORDER BY name'

say "Installing the same package again is nothing to do"
run "$bin" install --rpm "$rpm_file" --root "$root" --gpgkey "$pub" -y

say "Bad input changes nothing: a tampered copy of the package"
cp "$rpm_file" "$work/tampered.rpm"
printf '\x00' | dd of="$work/tampered.rpm" bs=1 seek=$(( $(stat -c %s "$work/tampered.rpm") - 64 )) conv=notrunc status=none
run "$bin" install --rpm "$work/tampered.rpm" --root "$root" --gpgkey "$pub" -y && exit 1 || echo "(refused, exit $?)"

say "A package built outside this project (unsigned), into another root, with --nogpgcheck"
other=$work/other-root
scripts/make-sandbox-root.sh "$other" --os centos7
run "$bin" install --rpm "$fixtures/rpm-org/RPMS/foo-1.0-1.noarch.rpm" --root "$other" --nogpgcheck -y
run rpm --root "$other" --dbpath /var/lib/rpm -q foo

say "Done"
echo "The sandbox root is kept in $root (its database is stopped on exit)."
echo "Log: $root/var/log/leo-installer/installer.log"
