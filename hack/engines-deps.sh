#!/bin/bash
# Installs, once, the Debian packages the engine tests (tests/engines.rs) drive:
# containerd + ctr, podman, dockerd, criu, and tmux/script for pty scenarios.
set -euo pipefail
want=(containerd podman docker.io tmux bsdutils criu busybox-static runc)
missing=()
for p in "${want[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends keeps apt from pulling in services we don't start.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
