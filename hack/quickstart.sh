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
