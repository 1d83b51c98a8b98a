#!/bin/bash
# The whole test suite: installs what the tests need, builds, runs unit and integration tests
# (integration tests run real containers and need root), then the cgroup tests again in a
# cgroup-v2-only VM. Every part runs even if an earlier one failed; the exit status says whether
# all passed.
set -uo pipefail
cd "$(dirname "$0")/.."

hack/deps.sh || exit 1
cargo build --all-targets || exit 1

status=0
cargo test --no-fail-fast -- --test-threads="${HULL_TEST_THREADS:-4}" || status=1

# A short bounded fuzzing run of config.json parsing and seccomp translation.
FUZZ_SECONDS=${FUZZ_SECONDS:-20} hack/fuzz.sh || status=1

# About 2 minutes; HULL_SKIP_VM=1 skips it.
if [ "${HULL_SKIP_VM:-}" = 1 ]; then
    echo "SKIP: cgroup v2 VM tests (HULL_SKIP_VM=1)"
elif [ "$(id -u)" != 0 ]; then
    echo "SKIP: cgroup v2 VM tests need root"
else
    hack/test-cgroup-v2.sh || status=1
fi
exit $status
