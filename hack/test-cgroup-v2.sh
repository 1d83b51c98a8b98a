#!/bin/bash
# Runs the cgroup integration tests (tests/cgroups.rs) inside a cgroup-v2-only VM
# (hack/vm-test.sh), so the v2 code paths are tested on a v1/hybrid host too.
# Extra arguments go to the test binary (a test name filter, --nocapture...).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build
bin=$(cargo test --test cgroups --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\/cgroups-[^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "test-cgroup-v2.sh: could not find the cgroups test binary" >&2; exit 1; }
# The tests' busybox rootfs template is built on the host, where busybox is installed.
rootfs=target/tmp/busybox-rootfs
[ -x "$rootfs/bin/busybox" ] || sh hack/mkrootfs.sh "$rootfs"

# The guest runs binaries from the shared tree, which a concurrent `cargo build` on the host may
# replace mid-run; run private copies instead, the hull copy bound over the path the tests have
# compiled in.
mkdir -p target/vm
snap=$(mktemp -d "$PWD/target/vm/snap.XXXXXX")
trap 'rm -rf "$snap"' EXIT
cp target/debug/hull "$snap/hull"
cp "$bin" "$snap/cgroups-test"

hack/vm-test.sh sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh \
    "$snap/hull" "$PWD/target/debug/hull" \
    "$snap/cgroups-test" --color never --test-threads="${HULL_TEST_THREADS:-2}" "$@"
