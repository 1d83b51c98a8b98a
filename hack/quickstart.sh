#!/bin/bash
# The main job on a fresh Debian machine, as root: build hull, make the busybox rootfs of the
# example bundle, and run a container with it.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/deps.sh
hack/build-release.sh
bundle=oci-bundles/busybox
[[ -x $bundle/rootfs/bin/busybox ]] || hack/mkrootfs.sh "$bundle/rootfs"
hull=$PWD/target/release/hull
root=$(mktemp -d /tmp/hull-quickstart.XXXXXX)
trap 'rm -rf "$root"' EXIT

echo "== hull run (the example bundle's config.json)"
"$hull" --root "$root" run --bundle "$bundle" quickstart

echo "== hull create / start / state / delete"
"$hull" --root "$root" create --bundle "$bundle" qs2
"$hull" --root "$root" state qs2 | grep '"status"'
"$hull" --root "$root" start qs2
sleep 0.1
"$hull" --root "$root" state qs2 | grep '"status"'
"$hull" --root "$root" delete qs2

echo "== berth: the same busybox rootfs as an image, no registry needed"
berth=$PWD/target/release/berth
broot=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
cleanup() {
    "$berth" --root "$broot" rm -f qs-web >/dev/null 2>&1 || true
    "$berth" --root "$broot" network prune -f >/dev/null 2>&1 || true
    rm -rf "$root" "$broot"
}
trap cleanup EXIT
echo 'hello from a berth container' > "$bundle/rootfs/var/www/index.html"
tar -C "$bundle/rootfs" -cf "$broot/busybox.tar" .
"$berth" --root "$broot" import "$broot/busybox.tar" busybox:latest
"$berth" --root "$broot" images
"$berth" --root "$broot" run --rm busybox echo "hello from berth run --rm"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$berth" --root "$broot" run -d --name qs-web -p "127.0.0.1:$port:80" busybox httpd -f -h /var/www
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.1; done
"$berth" --root "$broot" ps
"$berth" --root "$broot" rm -f qs-web
