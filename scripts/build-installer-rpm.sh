#!/bin/bash
# Build the leo-installer package from rpm/specs/leo-installer.spec.
#
# usage: scripts/build-installer-rpm.sh BINARY OUTDIR [VERSION]
#   BINARY   the built leo-installer launcher (build/installer/leo-installer); the full
#            program it executes (build/libexec/leo-installer/leo-installer), the module of
#            its GET beside it (leo-installer-get.so) and the built
#            leo-menu beside it are packaged too, with the sudoers drop-in it prints
#            (leo-menu --print-sudoers: made from its action table, never edited by hand)
#   VERSION  the package version (default: the project's, from CMakeLists.txt)
# Prints the path of the built RPM on stdout (the only line it prints there).
set -euo pipefail
binary=${1:?usage: build-installer-rpm.sh BINARY OUTDIR [VERSION]}
outdir=${2:?usage: build-installer-rpm.sh BINARY OUTDIR [VERSION]}
here=$(cd "$(dirname "$0")/.." && pwd)
version=${3:-$(sed -n 's/^project(leo-installer VERSION \([0-9.]*\).*/\1/p' "$here"/CMakeLists.txt)}
[[ -n $version ]] || version=0.1.0
[[ -x $binary ]] || { echo "build-installer-rpm.sh: $binary is not an executable program" >&2; exit 1; }

top=$(mktemp -d "${TMPDIR:-/tmp}/leo-rpmbuild.XXXXXX")
trap 'rm -rf "$top"' EXIT
mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS} "$outdir"
cp "$binary" "$top"/SOURCES/leo-installer
program=$(dirname "$binary")/../libexec/leo-installer/leo-installer
[[ -x $program ]] || { echo "build-installer-rpm.sh: $program (the full program the launcher executes) is not built" >&2; exit 1; }
cp "$program" "$top"/SOURCES/leo-installer-program
module=$(dirname "$program")/leo-installer-get.so
[[ -f $module ]] || { echo "build-installer-rpm.sh: $module (the launcher's GET module) is not built" >&2; exit 1; }
cp "$module" "$top"/SOURCES/leo-installer-get.so
menu=$(dirname "$binary")/leo-menu
[[ -x $menu ]] || { echo "build-installer-rpm.sh: $menu (the Administration Menu) is not built beside $binary" >&2; exit 1; }
cp "$menu" "$top"/SOURCES/leo-menu
"$menu" --print-sudoers >"$top"/SOURCES/leo-menu.sudoers
cp "$here"/installer/dist/{leo-installer.1,leo-installer.bash-completion,leo-installer.logrotate,installer.conf,leo-installer-backup.service,leo-installer-backup.timer} \
  "$top"/SOURCES/

rpmbuild -bb --quiet \
  --define "_topdir $top" \
  --define "_dbpath /var/lib/rpm" \
  --define "installer_version $version" \
  --define "_build_id_links none" \
  "$here"/rpm/specs/leo-installer.spec >&2

rpm_file=$(find "$top"/RPMS -name '*.rpm' | head -n1)
[[ -n $rpm_file ]] || { echo "build-installer-rpm.sh: rpmbuild produced no package" >&2; exit 1; }
cp "$rpm_file" "$outdir"/
echo "$outdir/$(basename "$rpm_file")"
