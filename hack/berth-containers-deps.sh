#!/bin/sh
# Installs what berth's container tests and benchmark need (idempotent):
# nft for NAT/port publishing, iproute2 for inspection, runc for the
# second runtime, util-linux's script for -it tests, busybox for images,
# podman/hyperfine/ab for the comparison benchmark, tini for --init.
set -eu
pkgs="nftables iproute2 runc util-linux busybox-static podman hyperfine apache2-utils tini"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
# Another apt may hold the dpkg lock; wait for it rather than fail.
for i in $(seq 1 60); do
    if $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; then
        exit 0
    fi
    echo "berth-containers-deps: apt busy or failed, retrying ($i)" >&2
    sleep 5
done
exit 1
