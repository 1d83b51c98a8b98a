#!/bin/bash
# hack/vm-test.sh CMD...: runs CMD as root in a throw-away qemu VM whose only cgroup hierarchy is
# cgroup v2 (cgroup_no_v1=all, every controller enabled in the root's subtree_control), and exits
# with CMD's status.
#
# The guest's root is the host's / shared read-only over 9p (so host-built binaries find their
# shared libraries), with the repo shared read-write at its own path and fresh proc, sys, dev,
# /tmp and /run on top. KVM is not usable here, so qemu emulates (TCG) a microvm machine booting
# Debian's kernel (vmlinux extracted from its vmlinuz) with a busybox initramfs.
#
# Everything it needs is unpacked once into target/vm: the kernel package with `apt-get
# download` + `dpkg-deb -x` (never installed on the host); qemu is installed with apt-get.
# Env: HULL_VM_MEM (MiB, default 2048), HULL_VM_CPUS (default 2), HULL_VM_TIMEOUT (s, default 1800).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache="$repo/target/vm"
[ $# -gt 0 ] || { echo "usage: $0 CMD..." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "vm-test.sh: needs root (apt-get, qemu's 9p export of /)" >&2; exit 2; }
mkdir -p "$cache"

need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v xz >/dev/null || need_pkgs+=(xz-utils)
command -v cpio >/dev/null || need_pkgs+=(cpio)
if ((${#need_pkgs[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- kernel: Debian's linux-image-amd64, unpacked once (hack/vm-kernel.sh) ---
"$repo/hack/vm-kernel.sh"

# --- initramfs: static busybox, the 9p/virtio modules, and /init ---
initrd="$cache/initramfs.cpio"
if [ ! -f "$initrd" ] || [ "$0" -nt "$initrd" ]; then
    (
        flock 9
        ird=$(mktemp -d)
        trap 'rm -rf "$ird"' EXIT
        mkdir -p "$ird"/{bin,proc,sys,dev,host,mods}
        cp "$(dpkg -L busybox-static | grep -m1 '/bin/busybox$')" "$ird/bin/busybox"
        moddir=$(ls -d "$cache"/kernel/lib/modules/* | head -1)
        for m in virtio virtio_ring virtio_mmio netfs fscache 9pnet 9pnet_virtio 9p; do
            f=$(find "$moddir" -name "$m.ko" | head -1)
            [ -n "$f" ] && cp "$f" "$ird/mods/"
        done
        cat >"$ird/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# Dependencies first; a second pass picks up any whose dependency came later in the list.
for pass in 1 2; do
    for m in virtio_ring virtio virtio_mmio netfs fscache 9pnet 9pnet_virtio 9p; do
        [ -f /mods/$m.ko ] && ! grep -q "^$m " /proc/modules && insmod /mods/$m.ko 2>/dev/null
    done
done
fail() { echo "VM-INIT: $*"; lsmod; dmesg | tail -20; cat /proc/cmdline; ls /sys/bus/virtio/devices; echo "VM-EXIT-CODE: 125"; poweroff -f; }
o=trans=virtio,version=9p2000.L,msize=524288
mount -t 9p -o $o,ro,cache=loose hostroot /host || fail "mount host root"
repo=$(cat /sys/firmware/qemu_fw_cfg/by_name/opt/hull/repo/raw 2>/dev/null)
[ -n "$repo" ] || repo=$(sed -n 's/.*hull.repo=\([^ ]*\).*/\1/p' /proc/cmdline)
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /host/dev/pts
mount -t tmpfs shm /host/dev/shm
mount -t tmpfs tmp /host/tmp
mount -t tmpfs run /host/run
# The repo goes on last: a checkout under /tmp or /run (as CI may use) must not be hidden by
# the fresh tmpfs there, whose mount point for it is made first.
mkdir -p "/host$repo" 2>/dev/null
mount -t 9p -o $o,cache=mmap repo "/host$repo" || fail "mount repo"
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup || fail "mount cgroup2"
for c in $(cat /host/sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" >/host/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
done
mount -t bpf bpf /host/sys/fs/bpf 2>/dev/null
ip link set lo up 2>/dev/null
echo "VM-INIT: cgroup2 controllers: $(cat /host/sys/fs/cgroup/cgroup.subtree_control)"
chroot /host /bin/sh -c "cd '$repo' && exec /bin/sh '$repo/target/vm/run/$(sed -n 's/.*hull.job=\([^ ]*\).*/\1/p' /proc/cmdline)/cmd.sh'" </dev/console >/dev/console 2>&1
echo "VM-EXIT-CODE: $?"
sync
poweroff -f
EOF
        chmod +x "$ird/init"
        (cd "$ird" && find . | cpio -o -H newc --quiet) >"$initrd.tmp"
        mv "$initrd.tmp" "$initrd"
    ) 9>"$cache/.lock"
fi

# --- the job: CMD in a script the guest runs from the shared repo ---
mkdir -p "$cache/run"
job=$(mktemp -d "$cache/run/job.XXXXXX")
trap 'rm -rf "$job"' EXIT
{
    echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root"
    [ -n "${RUST_BACKTRACE:-}" ] && echo "export RUST_BACKTRACE=$RUST_BACKTRACE"
    printf 'cd %q\n' "$PWD"
    printf '%q ' "$@"
    echo
} >"$job/cmd.sh"

# A TSC calibration against emulated timers can stall the boot; tell the guest the host's rate.
tsc_khz=""
if [ -r /sys/devices/system/cpu/cpu0/tsc_freq_khz ]; then
    tsc_khz=$(cat /sys/devices/system/cpu/cpu0/tsc_freq_khz)
else
    mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9.]*\) MHz.*/\1/p' | head -1)
    [ -n "$mhz" ] || mhz=$(awk -F: '/cpu MHz/ {gsub(/ /, "", $2); print $2; exit}' /proc/cpuinfo)
    [ -n "$mhz" ] && tsc_khz=$(awk -v m="$mhz" 'BEGIN { printf "%d", m * 1000 }')
fi

cmdline="console=ttyS0 quiet panic=-1 reboot=t cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
cmdline+=" swapaccount=1 hull.repo=$repo hull.job=$(basename "$job")"
[ -n "$tsc_khz" ] && cmdline+=" tsc_early_khz=$tsc_khz"

log="$job/console.log"
set +e
timeout "${HULL_VM_TIMEOUT:-1800}" qemu-system-x86_64 \
    -M microvm,x-option-roms=off,isa-serial=on,rtc=on -accel tcg,thread=multi \
    -cpu max -smp "${HULL_VM_CPUS:-2}" -m "${HULL_VM_MEM:-2048}" \
    -nodefaults -no-user-config -nographic -no-reboot \
    -serial stdio -display none \
    -kernel "$cache/vmlinux" -initrd "$initrd" -append "$cmdline" \
    -fsdev local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap \
    -device virtio-9p-device,fsdev=hostroot,mount_tag=hostroot \
    -fsdev local,id=repo,path="$repo",security_model=passthrough,multidevs=remap \
    -device virtio-9p-device,fsdev=repo,mount_tag=repo \
    </dev/null 2>&1 | tee "$log" | grep -v '^VM-EXIT-CODE: '
qemu_status=${PIPESTATUS[0]}
set -e
code=$(sed -n 's/^VM-EXIT-CODE: \([0-9]*\).*/\1/p' "$log" | tr -d '\r' | tail -1)
if [ -z "$code" ]; then
    echo "vm-test.sh: the VM ended (qemu status $qemu_status) without reporting an exit code" >&2
    exit 124
fi
exit "$code"
