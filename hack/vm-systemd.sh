#!/bin/bash
# hack/vm-systemd.sh CMD...: runs CMD as root in a throw-away qemu VM whose PID 1 is systemd, on
# cgroup v2 only (or v1, HULL_VM_CGROUP=v1), and exits with CMD's status. The guest's root is a
# Debian bookworm tree made once by mmdebstrap (target/vm/systemd-root: systemd, dbus, and
# containerd, runc and the CNI plugins for tests/cri), shared over 9p, with the
# repo shared at its own path; CMD runs from a oneshot unit once basic.target and dbus are up.
# Prints the boot time (kernel start to the job) as "VM-BOOT: N s".
# Env: HULL_VM_MEM (MiB, default 2048), HULL_VM_CPUS (default 2), HULL_VM_TIMEOUT (s, default 1800),
# HULL_VM_CGROUP (v2, the default, or v1: systemd's legacy hierarchy).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache="$repo/target/vm"
[ $# -gt 0 ] || { echo "usage: $0 CMD..." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "vm-systemd.sh: needs root" >&2; exit 2; }
mkdir -p "$cache"
need=()
for p in qemu-system-x86 mmdebstrap busybox-static cpio kmod; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
"$repo/hack/vm-kernel.sh"

root="$cache/systemd-root"
# Bumped whenever what goes into the root below changes, so it is made again.
recipe=2
(
    flock 9
    if [ "$(cat "$root/.made" 2>/dev/null)" != "$recipe" ]; then
        rm -rf "$root" "$root.tmp"
        mmdebstrap --quiet --variant=minbase \
            --include=systemd-sysv,dbus,iproute2,procps,kmod,busybox-static,containerd,runc,containernetworking-plugins,iptables \
            bookworm "$root.tmp" http://deb.debian.org/debian
        mkdir -p "$root.tmp/etc/systemd/system" "$root.tmp/usr/local/sbin"
        echo hull-vm >"$root.tmp/etc/hostname"
        cat >"$root.tmp/usr/local/sbin/hull-vm-job" <<'EOF'
#!/bin/sh
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
repo=$(arg hull.repo)
echo "VM-BOOT: $(cut -d' ' -f1 /proc/uptime) s from kernel start to the job ($(systemctl --version | head -1))"
cd "$repo" && /bin/sh "$repo/target/vm/run/$(arg hull.job)/cmd.sh"
echo "VM-EXIT-CODE: $?"
sync
systemctl poweroff --force --force
EOF
        chmod +x "$root.tmp/usr/local/sbin/hull-vm-job"
        cat >"$root.tmp/etc/systemd/system/hull-job.service" <<'EOF'
[Unit]
Description=hull VM job
Wants=dbus.service
After=basic.target dbus.service

[Service]
Type=oneshot
StandardInput=null
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS0
ExecStart=/usr/local/sbin/hull-vm-job
EOF
        cat >"$root.tmp/etc/systemd/system/hull-job.target" <<'EOF'
[Unit]
Description=hull VM job
Requires=basic.target hull-job.service
After=basic.target
AllowIsolate=yes
EOF
        echo "$recipe" >"$root.tmp/.made"
        mv "$root.tmp" "$root"
    fi
) 9>"$cache/.systemd-lock"
# The kernel's modules (bridge, veth, nf_tables... for tests/cri) from the repo's own mount, which
# the guest sees at the same path; set each run, as the checkout may have moved.
# The package was unpacked, not installed: its modules.dep (what modprobe reads) is made here.
(
    flock 9
    for d in "$cache"/kernel/lib/modules/*; do
        [ -f "$d/modules.dep" ] || depmod -b "$cache/kernel" "$(basename "$d")"
    done
) 9>"$cache/.systemd-lock"
[ -L "$root/usr/lib/modules" ] || rm -rf "$root/usr/lib/modules"
ln -sfn "$cache/kernel/lib/modules" "$root/usr/lib/modules"

# --- initramfs: mount the 9p root and the repo, then hand over to systemd ---
initrd="$cache/initramfs-systemd.cpio"
if [ ! -f "$initrd" ] || [ "$0" -nt "$initrd" ]; then
    ird=$(mktemp -d)
    trap 'rm -rf "$ird"' EXIT
    mkdir -p "$ird"/{bin,proc,sys,dev,newroot,mods}
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
for pass in 1 2; do
    for m in virtio_ring virtio virtio_mmio netfs fscache 9pnet 9pnet_virtio 9p; do
        [ -f /mods/$m.ko ] && ! grep -q "^$m " /proc/modules && insmod /mods/$m.ko 2>/dev/null
    done
done
fail() { echo "VM-INIT: $*"; echo "VM-EXIT-CODE: 125"; poweroff -f; }
o=trans=virtio,version=9p2000.L,msize=524288
mount -t 9p -o $o,cache=loose root /newroot || fail "mount the systemd root"
# A tmpfs /tmp (9p cannot hold unix sockets), then the repo on top: a checkout under /tmp (as
# CI may use) must not be hidden by it.
mount -t tmpfs tmp /newroot/tmp || fail "mount /tmp"
repo=$(sed -n 's/.*hull.repo=\([^ ]*\).*/\1/p' /proc/cmdline)
mkdir -p "/newroot$repo"
mount -t 9p -o $o,cache=mmap repo "/newroot$repo" || fail "mount the repo"
umount /proc /sys
mount --move /dev /newroot/dev 2>/dev/null || umount /dev
exec switch_root /newroot /lib/systemd/systemd
EOF
    chmod +x "$ird/init"
    (cd "$ird" && find . | cpio -o -H newc --quiet) >"$initrd.tmp"
    mv "$initrd.tmp" "$initrd"
fi

mkdir -p "$cache/run"
job=$(mktemp -d "$cache/run/job.XXXXXX")
trap 'rm -rf "$job"' EXIT
{
    echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root"
    printf 'cd %q\n' "$PWD"
    printf '%q ' "$@"
    echo
} >"$job/cmd.sh"

if [ "${HULL_VM_CGROUP:-v2}" = v1 ]; then
    # systemd's legacy mode: every controller a v1 hierarchy, name=systemd included (systemd 252
    # boots it; from 256 on it also needs the variable, which the kernel hands to init).
    cgroups="systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=1 SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"
else
    cgroups="cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
fi
cmdline="console=ttyS0 ${HULL_VM_QUIET-quiet} panic=-1 reboot=t $cgroups"
cmdline+=" systemd.unit=hull-job.target systemd.show_status=${HULL_VM_SHOW_STATUS:-0} swapaccount=1"
cmdline+=" hull.repo=$repo hull.job=$(basename "$job")"
# A TSC calibration against emulated timers can stall the boot; tell the guest the host's rate.
if [ -r /sys/devices/system/cpu/cpu0/tsc_freq_khz ]; then
    cmdline+=" tsc_early_khz=$(cat /sys/devices/system/cpu/cpu0/tsc_freq_khz)"
else
    mhz=$(awk -F: '/cpu MHz/ {gsub(/ /, "", $2); print $2; exit}' /proc/cpuinfo)
    [ -n "$mhz" ] && cmdline+=" tsc_early_khz=$(awk -v m="$mhz" 'BEGIN { printf "%d", m * 1000 }')"
fi

log="$job/console.log"
started=$(date +%s.%N)
set +e
timeout "${HULL_VM_TIMEOUT:-1800}" qemu-system-x86_64 \
    -M microvm,x-option-roms=off,isa-serial=on,rtc=on -accel tcg,thread=multi \
    -cpu max -smp "${HULL_VM_CPUS:-2}" -m "${HULL_VM_MEM:-2048}" \
    -nodefaults -no-user-config -nographic -no-reboot \
    -serial stdio -display none \
    -kernel "$cache/vmlinux" -initrd "$initrd" -append "$cmdline" \
    -fsdev local,id=root,path="$root",security_model=passthrough,multidevs=remap \
    -device virtio-9p-device,fsdev=root,mount_tag=root \
    -fsdev local,id=repo,path="$repo",security_model=passthrough,multidevs=remap \
    -device virtio-9p-device,fsdev=repo,mount_tag=repo \
    </dev/null 2>&1 | tee "$log" | grep --line-buffered -v '^VM-EXIT-CODE: '
qemu_status=${PIPESTATUS[0]}
set -e
echo "vm-systemd.sh: the VM ran for $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
code=$(sed -n 's/^VM-EXIT-CODE: \([0-9]*\).*/\1/p' "$log" | tr -d '\r' | tail -1)
if [ -z "$code" ]; then
    echo "vm-systemd.sh: the VM ended (qemu status $qemu_status) without reporting an exit code" >&2
    exit 124
fi
exit "$code"
