#!/bin/bash
# Benchmark the migration engine: validation of a long history, and applying many small
# migrations against `psql -f` of the same SQL (the floor). Needs a build (build/, or
# BUILD=dir) with the tests enabled, and root (the internal PostgreSQL of a sandbox root
# runs as its leo user). Prints the measurements and the ratios; asserts nothing.
# usage: bench/migrations.sh [N_VALIDATE=1000] [N_APPLY=500] [RUNS=3]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build}
bin=$build/migrations/leo-bench-migrations
if [ ! -x "$bin" ]; then
    cmake --build "$build" --target leo-bench-migrations -j2 >/dev/null
fi
exec "$bin" "${1:-1000}" "${2:-500}" "${3:-3}"
