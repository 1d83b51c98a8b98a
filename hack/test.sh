#!/bin/bash
# The whole test suite: installs what the tests need, builds, runs unit and integration tests
# (integration tests run real containers and need root).
set -euo pipefail
cd "$(dirname "$0")/.."

hack/deps.sh

cargo build --all-targets
cargo test --no-fail-fast -- --test-threads="${HULL_TEST_THREADS:-4}"

# The cgroup tests again in a throw-away VM whose only hierarchy is cgroup v2 (about 2 minutes;
# HULL_SKIP_VM=1 skips it).
if [ "${HULL_SKIP_VM:-}" = 1 ]; then
    echo "SKIP: cgroup v2 VM tests (HULL_SKIP_VM=1)"
elif [ "$(id -u)" != 0 ]; then
    echo "SKIP: cgroup v2 VM tests need root"
else
    hack/test-cgroup-v2.sh
fi
