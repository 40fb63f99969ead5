#!/bin/bash
# Both specs are rpmlint-clean (Debian's rpmlint 2.x checks a .spec file directly): no
# error, and every warning left is named in the spec by a comment "# rpmlint: NAME: why"
# (NAME as rpmlint prints it; %% in the comment stands for %). Exit 0 when clean, 1 with
# rpmlint's lines otherwise, 77 (skipped) when rpmlint is not installed.
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v rpmlint >/dev/null || { echo "rpmlint is not installed (apt-get install rpmlint)"; exit 77; }
status=0
for spec in "$src"/rpm/specs/leostream-broker.spec "$src"/rpm/specs/leo-installer.spec; do
  out=$(rpmlint "$spec" 2>&1 || true)
  explained=$(sed -n 's/^# rpmlint: \([^:]*\):.*/\1/p' "$spec" | sed 's/%%/%/g')
  while IFS= read -r line; do
    case $line in
      *": E: "*) echo "$line"; status=1 ;;
      *": W: "*)
        name=$(sed 's/.*: W: \([^ ]*\).*/\1/' <<<"$line")
        if ! grep -qxF -- "$name" <<<"$explained"; then
          echo "$line (not explained by a '# rpmlint: $name: why' comment in $(basename "$spec"))"
          status=1
        fi ;;
    esac
  done <<<"$out"
done
[[ $status -eq 0 ]] && echo "both specs rpmlint-clean (warnings explained in the specs)"
exit $status
