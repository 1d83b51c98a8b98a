#!/bin/bash
# Installs, once, the Debian packages that building, testing and benchmarking hull and berth
# need; each area's script lists its own.
set -euo pipefail
cd "$(dirname "$0")/.."
want=(busybox-static runc crun hyperfine jq time tmux golang-github-containers-common uidmap)
missing=()
for p in "${want[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
hack/engines-deps.sh
sh hack/berth-deps.sh
if [ -x hack/berth-containers-deps.sh ]; then hack/berth-containers-deps.sh; fi
