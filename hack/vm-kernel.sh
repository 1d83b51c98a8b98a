#!/bin/bash
# hack/vm-kernel.sh: unpacks Debian's kernel once into target/vm (vmlinux and its modules under
# target/vm/kernel), for the test VMs (hack/vm-test.sh, hack/vm-systemd.sh). The package is
# fetched with `apt-get download` and never installed on the host.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache="$repo/target/vm"
mkdir -p "$cache"
command -v xz >/dev/null || { apt-get update -qq; apt-get install -y -qq xz-utils >/dev/null; }
# Debian's linux-image-amd64: the cloud flavour lacks 9p.
(
    flock 9
    if [ ! -f "$cache/vmlinux" ]; then
        rm -rf "$cache/debs" "$cache/kernel"
        mkdir -p "$cache/debs" "$cache/kernel"
        cd "$cache/debs"
        apt-get update -qq >/dev/null 2>&1 || true
        apt-get download linux-image-amd64 >/dev/null 2>&1
        meta=$(ls linux-image-amd64_*.deb | head -1)
        dep=$(dpkg-deb -f "$meta" Depends | grep -o 'linux-image-[0-9][^ ,]*' | head -1)
        apt-get download "$dep" >/dev/null 2>&1
        dpkg-deb -x "$(ls "$dep"_*.deb | head -1)" "$cache/kernel"
        vmlinuz=$(ls "$cache"/kernel/boot/vmlinuz-* | head -1)
        # extract-vmlinux: the payload is an xz stream after the bzImage setup code.
        off=$(grep -abo $'\xfd7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1)
        [ -n "$off" ] || { echo "vm-test.sh: no xz payload in $vmlinuz" >&2; exit 1; }
        tail -c +$((off + 1)) "$vmlinuz" | xz -dc >"$cache/vmlinux.tmp" 2>/dev/null || true
        file_magic=$(head -c 4 "$cache/vmlinux.tmp" | od -An -c | tr -d ' ')
        [ "$file_magic" = '177ELF' ] || { echo "vm-test.sh: extracted kernel is not ELF" >&2; exit 1; }
        mv "$cache/vmlinux.tmp" "$cache/vmlinux"
    fi
) 9>"$cache/.lock"

