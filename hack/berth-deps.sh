#!/bin/sh
# Installs what berth's image tests and benchmark need (idempotent).
# Tests that need a missing tool print "SKIP: ..." instead of passing silently.
set -eu
pkgs="docker-registry skopeo podman umoci apache2-utils hyperfine busybox-static"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
# Another apt may hold the dpkg lock; wait for it rather than fail.
for i in $(seq 1 60); do
    if $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; then
        # Debian's package starts a registry on :5000; tests start their own.
        $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true
        exit 0
    fi
    echo "berth-deps: apt busy or failed, retrying ($i)" >&2
    sleep 5
done
exit 1
