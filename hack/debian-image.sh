#!/bin/bash
# Prints the path of a Debian bookworm root filesystem as a tar (the input of `berth import`),
# made once with mmdebstrap from Debian's archive and cached by its package list.
#   hack/debian-image.sh                      minbase
#   hack/debian-image.sh redis-server,curl    minbase plus those packages
# The tests import it as their real-world base image; CI builds it with the deps it installs.
set -euo pipefail
pkgs=${1:-}
cache=${HULL_TEST_CACHE:-/var/cache/hull-tests}
mkdir -p "$cache"
# Bumped whenever what goes into the tar changes, so it is made again.
recipe=1
key=$(printf '%s|%s' "$recipe" "$pkgs" | sha256sum | cut -c1-16)
out="$cache/debian-bookworm-$key.tar"
(
    flock 9
    if [ ! -f "$out" ]; then
        command -v mmdebstrap >/dev/null || { echo "debian-image: mmdebstrap not installed (hack/deps.sh)" >&2; exit 1; }
        include=()
        [ -z "$pkgs" ] || include=(--include="$pkgs")
        # apt's docs and caches only make the image bigger; a container needs none of them.
        mmdebstrap --quiet --variant=minbase "${include[@]}" \
            --dpkgopt='path-exclude=/usr/share/{doc,man,locale}/*' \
            --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
            bookworm "$cache/.tmp-$key.tar" http://deb.debian.org/debian
        mv "$cache/.tmp-$key.tar" "$out"
    fi
) 9>"$cache/.debian-image.lock"
echo "$out"
