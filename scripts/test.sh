#!/bin/bash
# Install what is missing, build, and run every test (unit and integration) with ctest,
# then a short pass of every fuzz target (scripts/fuzz.sh all 5: about a minute, plus the
# first build of build-fuzz/); a crash fails the script. LEO_SKIP_FUZZ=1 skips that pass.
# Run as root on Debian 12: the integration tests create users in sandbox roots and run
# a real PostgreSQL server as the sandbox's leo uid.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
leo_install_deps
leo_build build
echo "==> running the tests"
(cd build && ctest --output-on-failure -j2 --timeout 900)
if [[ ${LEO_SKIP_FUZZ:-0} != 1 ]]; then
    echo "==> a short fuzzing pass (5 s per target)"
    scripts/fuzz.sh all 5
fi
