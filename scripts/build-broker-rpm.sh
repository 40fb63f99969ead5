#!/bin/bash
# Build the example broker package from rpm/specs/leostream-broker.spec.
#
# usage: scripts/build-broker-rpm.sh VERSION OUTDIR [RELEASE]
#   env SIGN_KEY=NAME GNUPGHOME=DIR   also sign it with rpmsign (key NAME in GNUPGHOME)
#   env EPOCH=N                       give the package epoch N
#   env EXTRA_MIGRATIONS=DIR          also ship the V*.sql files of DIR (tests: a failing migration)
#   env CONF_LINE=TEXT                append TEXT to the shipped broker.conf (tests: a changed
#                                     %config(noreplace) file, for rpm's .rpmnew)
#   env HEALTH_VERSION=V              a broken build whose health endpoint reports version V
#                                     (tests: a spot-check that fails and rolls back)
#   env INSTALLER_REQUIRES=1          keep the spec's Requires(pre,posttrans): leo-installer (the
#                                     shipped form); without it the package is built
#                                     --without installer_requires, for sandbox roots whose
#                                     rpmdb has no leo-installer package
#   env UPGRADE_REQUIRES=V            declare `Provides: leostream-broker(upgrade-requires) = V`:
#                                     the package can only be installed over V or later
#                                     (tests: the upgrade_path gate refuses an older broker)
# Prints the path of the built RPM on stdout (the only line it prints there).
set -euo pipefail
version=${1:?usage: build-broker-rpm.sh VERSION OUTDIR [RELEASE]}
outdir=${2:?usage: build-broker-rpm.sh VERSION OUTDIR [RELEASE]}
release=${3:-1}
here=$(cd "$(dirname "$0")/.." && pwd)

top=$(mktemp -d "${TMPDIR:-/tmp}/leo-rpmbuild.XXXXXX")
trap 'rm -rf "$top"' EXIT
mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS} "$outdir"
cp -r "$here"/migrations/sql "$top"/SOURCES/migrations
if [[ -n ${EXTRA_MIGRATIONS:-} ]]; then cp "$EXTRA_MIGRATIONS"/V*.sql "$top"/SOURCES/migrations/; fi
tar -C "$top"/SOURCES -cf "$top"/SOURCES/migrations.tar migrations  # the spec's Source0

rpmbuild -bb --quiet \
  --define "_topdir $top" \
  --define "_dbpath /var/lib/rpm" \
  --define "broker_version $version" \
  --define "broker_release $release" \
  --define "_build_id_links none" \
  ${EPOCH:+--define "broker_epoch $EPOCH"} \
  ${CONF_LINE:+--define "broker_conf_line $CONF_LINE"} \
  ${HEALTH_VERSION:+--define "broker_health_version $HEALTH_VERSION"} \
  ${UPGRADE_REQUIRES:+--define "broker_upgrade_requires $UPGRADE_REQUIRES"} \
  $([[ ${INSTALLER_REQUIRES:-0} == 1 ]] || echo --without=installer_requires) \
  "$here"/rpm/specs/leostream-broker.spec >&2

rpm_file=$(find "$top"/RPMS -name '*.rpm' | head -n1)
[[ -n $rpm_file ]] || { echo "build-broker-rpm.sh: rpmbuild produced no package" >&2; exit 1; }
if [[ -n ${SIGN_KEY:-} ]]; then
  rpmsign --define '__gpg /usr/bin/gpg' --define "_gpg_name $SIGN_KEY" --addsign "$rpm_file" >&2
fi
cp "$rpm_file" "$outdir"/
echo "$outdir/$(basename "$rpm_file")"
