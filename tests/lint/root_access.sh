#!/bin/bash
# Every file under --root is reached through leo::fs::SystemRoot (DESIGN.md "One owner for
# the root"). This walks the product's sources for any other way to open, create, rename,
# remove or re-own a file, and fails on each one that tests/lint/root_access.allow does not
# name with its reason (a host path the administrator gave, a librpm call that does its own
# root handling, ...), or that carries a trailing "// not-under-root: REASON" comment. Exit 0 when clean; 1 with the offending lines otherwise.
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
allow="$src/tests/lint/root_access.allow"
pattern='under_root\(|std::(o|i)?fstream|fopen\(|[^a-z_.]::open\(|::openat\(|stdfs::(create_directories|create_directory|remove_all|remove|rename|permissions|create_symlink|copy_file|resize_file)\(|std::filesystem::(create_directories|create_directory|remove_all|remove|rename|permissions|create_symlink|copy_file)\(|::(chown|chmod|lchown|mkdir|unlink|rename|symlink|truncate)\(|fs::(write_file_atomic|read_file|try_read_file|copy_file_durable)\('
status=0
declare -A allowed
while read -r file _; do
  [[ -z $file || $file == \#* ]] && continue
  allowed[$file]=1
  [[ -e $src/$file ]] || { echo "root_access.allow names $file, which does not exist"; status=1; }
done < "$allow"
cd "$src"
while IFS= read -r hit; do
  file=${hit%%:*}
  [[ -n ${allowed[$file]:-} ]] && continue
  [[ $hit == *'// not-under-root: '?* ]] && continue
  echo "direct file access outside SystemRoot: $hit"
  status=1
done < <(grep -rnE "$pattern" common preflight rpm repo migrations installer --include='*.cpp' --include='*.hpp' | grep -vE '^[^:]+:[0-9]+:\s*(//|///|\*)' || true)
# No shell: every child is an argument vector; the one shell is the administrator's own
# hook command line (installer/src/trust.cpp, run_hook).
while IFS= read -r hit; do
  [[ ${hit%%:*} == installer/src/trust.cpp ]] && continue
  echo "a shell outside run_hook: $hit"
  status=1
done < <(grep -rnE '"/bin/sh"|"sh", *"-c"|"bash", *"-c"|popen\(|system\(' common preflight rpm repo migrations installer --include='*.cpp' --include='*.hpp' | grep -vE '^[^:]+:[0-9]+:\s*(//|///|\*)' || true)
if ((status == 0)); then echo "root access: every file under the root goes through SystemRoot (allow list: ${#allowed[@]} files)"; fi
exit $status
