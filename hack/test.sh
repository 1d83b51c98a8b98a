#!/bin/bash
# The whole test suite: installs what the tests need, builds, runs unit and integration tests
# (integration tests run real containers and need root).
set -euo pipefail
cd "$(dirname "$0")/.."

hack/deps.sh
hack/berth-containers-deps.sh

cargo build --all-targets
cargo test --no-fail-fast -- --test-threads="${HULL_TEST_THREADS:-4}"
