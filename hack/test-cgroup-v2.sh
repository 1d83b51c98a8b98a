#!/bin/bash
# Runs the cgroup integration tests (tests/cgroups.rs) inside a cgroup-v2-only VM
# (hack/vm-test.sh), so the v2 code paths are tested on a v1/hybrid host too.
# Extra arguments go to the test binary (a test name filter, --nocapture...).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build
test_bin() {
    cargo test --test "$1" --no-run --message-format=json 2>/dev/null |
        sed -n "s/.*\"executable\":\"\([^\"]*\/$1-[^\"]*\)\".*/\1/p" | tail -1
}
bin=$(test_bin cgroups)
berth_bin=$(test_bin berth_containers)
exec_bin=$(test_bin exec)
[ -x "$bin" ] || { echo "test-cgroup-v2.sh: could not find the cgroups test binary" >&2; exit 1; }
[ -x "$berth_bin" ] || { echo "test-cgroup-v2.sh: could not find the berth_containers test binary" >&2; exit 1; }
[ -x "$exec_bin" ] || { echo "test-cgroup-v2.sh: could not find the exec test binary" >&2; exit 1; }
# The tests' busybox rootfs template is built on the host, where busybox is installed.
rootfs=target/tmp/busybox-rootfs
[ -x "$rootfs/bin/busybox" ] || sh hack/mkrootfs.sh "$rootfs"

# The guest runs binaries from the shared tree, which a concurrent `cargo build` on the host may
# replace mid-run; run private copies instead, bound over the paths the tests have compiled in.
mkdir -p target/vm
snap=$(mktemp -d "$PWD/target/vm/snap.XXXXXX")
trap 'rm -rf "$snap"' EXIT
cp target/debug/hull "$snap/hull"
cp target/debug/berth "$snap/berth"
cp "$bin" "$snap/cgroups-test"
cp "$berth_bin" "$snap/berth-test"
cp "$exec_bin" "$snap/exec-test"

# The cgroup suite, hull exec (--cgroup joins a sub-cgroup on v2), then berth's stats (CPU and
# memory through the runtime) on v2.
# One line: the job is quoted for the guest's /bin/sh (dash), which has no $'...' newlines.
hack/vm-test.sh sh -c 'mount --bind "$1/hull" "$2/hull" && mount --bind "$1/berth" "$2/berth" || exit 125; snap=$1; shift 2; "$snap/cgroups-test" --color never --test-threads=2 "$@" || exit; "$snap/exec-test" --color never --test-threads=2 "$@" || exit; "$snap/berth-test" --color never --test-threads=1 "$@" stats_show_usage' \
    sh "$snap" "$PWD/target/debug" "$@"
