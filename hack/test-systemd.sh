#!/bin/bash
# Runs the systemd cgroup driver tests (tests/systemd_cgroup.rs) in a VM whose PID 1 is systemd
# on a cgroup-v2-only kernel (hack/vm-systemd.sh). Extra arguments go to the test binary.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build
bin=$(cargo test --test systemd_cgroup --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\/systemd_cgroup-[^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "test-systemd.sh: could not find the test binary" >&2; exit 1; }
rootfs=target/tmp/busybox-rootfs
[ -x "$rootfs/bin/busybox" ] || sh hack/mkrootfs.sh "$rootfs"

# Private copies: a concurrent `cargo build` on the host must not replace them mid-run.
mkdir -p target/vm
snap=$(mktemp -d "$PWD/target/vm/snap.XXXXXX")
trap 'rm -rf "$snap"' EXIT
cp target/debug/hull "$snap/hull"
cp "$bin" "$snap/systemd-test"

hack/vm-systemd.sh sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh \
    "$snap/hull" "$PWD/target/debug/hull" \
    "$snap/systemd-test" --color never --test-threads=2 "$@"
