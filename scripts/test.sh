#!/bin/bash
# Install what is missing, build, and run every test (unit and integration) with ctest.
# Run as root on Debian 12: the integration tests create users in sandbox roots and run
# a real PostgreSQL server as the sandbox's leo uid.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
leo_install_deps
leo_build build
echo "==> running the tests"
cd build
ctest --output-on-failure -j2 --timeout 900
