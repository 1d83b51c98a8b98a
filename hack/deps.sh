#!/bin/bash
# Installs, once, the Debian packages that building, testing and benchmarking hull need.
set -euo pipefail
want=(busybox-static runc crun hyperfine jq docker-registry skopeo podman umoci apache2-utils)
missing=()
for p in "${want[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
