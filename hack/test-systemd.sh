#!/bin/bash
# Runs the CRI pods with containerd's `SystemdCgroup = true` (tests/cri,
# cri_pods_with_systemd_cgroup_driver) and the systemd cgroup driver tests
# (tests/systemd_cgroup.rs) in a VM whose PID 1 is systemd on cgroup v2 (hack/vm-systemd.sh),
# then in one booted with systemd's legacy cgroup v1 hierarchy. HULL_VM_CGROUPS="v2 v1" (the
# default) picks the VMs. Extra arguments go to the systemd_cgroup test binary.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build
# The path of test binary $1, built if needed.
test_bin() {
    cargo test --test "$1" --no-run --message-format=json 2>/dev/null |
        sed -n "s/.*\"executable\":\"\([^\"]*\/$1-[^\"]*\)\".*/\1/p" | tail -1
}
bin=$(test_bin systemd_cgroup)
cri=$(test_bin cri)
[ -x "$bin" ] && [ -x "$cri" ] || { echo "test-systemd.sh: could not find the test binaries" >&2; exit 1; }
rootfs=target/tmp/busybox-rootfs
[ -x "$rootfs/bin/busybox" ] || sh hack/mkrootfs.sh "$rootfs"

# Private copies: a concurrent `cargo build` on the host must not replace them mid-run.
mkdir -p target/vm
snap=$(mktemp -d "$PWD/target/vm/snap.XXXXXX")
trap 'rm -rf "$snap"' EXIT
cp target/debug/hull "$snap/hull"
cp "$bin" "$snap/systemd-test"
cp "$cri" "$snap/cri-test"

status=0
for cg in ${HULL_VM_CGROUPS:-v2 v1}; do
    echo "test-systemd.sh: cgroup $cg VM"
    # The CRI pods with SystemdCgroup = true, then the driver's tests whatever the first's
    # result (one guest command, run by dash). hull runs from a copy in the guest's tmpfs, as
    # runc from the root's page cache: executed off the repo's 9p share (cache=mmap) each
    # call faults the debug binary in over 9p, 1.5 s a call against 0.5 s from tmpfs under
    # TCG, and containerd's StopContainer is timing-sensitive (tests/cri/scenarios.rs).
    HULL_VM_CGROUP=$cg hack/vm-systemd.sh sh -c 'cp "$1" /tmp/hull-vm-bin && mount --bind /tmp/hull-vm-bin "$2" || exit 1; "$3" --color never --test-threads=1 --nocapture cri_pods_with_systemd_cgroup_driver; c=$?; shift 3; "$@" || exit 1; exit $c' sh \
        "$snap/hull" "$PWD/target/debug/hull" "$snap/cri-test" \
        "$snap/systemd-test" --color never --test-threads=2 "$@" || status=1
done
exit $status
