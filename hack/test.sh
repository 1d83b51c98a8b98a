#!/bin/bash
# The whole test suite: installs what the tests need, checks formatting and lints, builds, runs
# unit and integration tests (integration tests run real containers and need root), then the
# cgroup tests again in a cgroup-v2-only VM. Every part runs even if an earlier one failed; the
# exit status says whether all passed. Every SKIP any part prints is listed at the end, and in
# CI a skip that is not a host limit fails the run (hack/check-skips.sh).
set -uo pipefail
cd "$(dirname "$0")/.."

hack/deps.sh || exit 1
mkdir -p target
log=target/test-output.log
: >"$log"
# Runs a command with its output shown and kept in the log; returns the command's status.
logged() {
    "$@" 2>&1 | tee -a "$log"
    return "${PIPESTATUS[0]}"
}

status=0
logged cargo fmt --check || status=1
logged cargo clippy --all-targets -- -D warnings || status=1
# The style guide's limit: no function over ~150 lines in src/.
logged python3 hack/long-functions.py src || status=1
logged cargo build --all-targets || exit 1

# --nocapture: a passing test's SKIP lines must reach the log too.
logged cargo test --no-fail-fast -- --test-threads="${HULL_TEST_THREADS:-4}" --nocapture || status=1

# A short bounded fuzzing run of config.json parsing and seccomp translation.
FUZZ_SECONDS=${FUZZ_SECONDS:-20} logged hack/fuzz.sh || status=1

# The VMs take a few minutes; HULL_SKIP_VM=1 skips them.
if [ "${HULL_SKIP_VM:-}" = 1 ]; then
    echo "SKIP: cgroup v2 VM tests (HULL_SKIP_VM=1)" | tee -a "$log"
elif [ "$(id -u)" != 0 ]; then
    echo "SKIP: cgroup v2 VM tests need root" | tee -a "$log"
else
    logged hack/test-cgroup-v2.sh --nocapture || status=1
    # The systemd cgroup driver, in a VM whose PID 1 is systemd.
    logged hack/test-systemd.sh --nocapture || status=1
fi

hack/check-skips.sh "$log" || status=1
exit $status
