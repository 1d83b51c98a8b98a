#!/bin/bash
# Installs, once, every Debian package that building, testing and benchmarking hull and berth
# need (idempotent). CI relies on it: a test that skips because a package listed here is missing
# fails the run (hack/check-skips.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# package                        used by
PACKAGES=(
    busybox-static               # the test rootfs and images (hack/mkrootfs.sh)
    runc crun                    # peers in every hull/berth test matrix and bench
    uidmap                       # rootless tests: newuidmap/newgidmap
    golang-github-containers-common # podman's default seccomp profile (tests/seccomp.rs)
    containerd                   # tests/engines.rs: containerd + ctr + the runc shim
    containernetworking-plugins  # tests/cri: CNI bridge, host-local, portmap, loopback
    iptables                     # tests/cri: the portmap CNI plugin's hostPort rules
    protobuf-compiler            # tests/cri: protoc for the k8s-cri crate's generated client
    podman slirp4netns           # tests/engines.rs, berth image round trips, bench-berth
    buildah                      # hack/bench-build.sh: buildah bud
    docker.io                    # tests/engines.rs: dockerd
    docker-compose podman-compose # hack/bench-compose.sh: berth compose against both
    criu                         # hull checkpoint/restore
    tmux bsdutils util-linux     # pty scenarios (script, tmux)
    docker-registry              # berth pull/push tests against a loopback registry
    skopeo umoci                 # berth image interop tests and bench-pull
    apache2-utils                # htpasswd for registry auth tests; ab for bench-berth
    nftables iproute2            # berth networks: NAT and port publishing, inspection
    tini                         # berth run --init
    strace                       # finding a strict seccomp profile's syscalls
    hyperfine jq time            # benchmarks
    python3                      # hack/long-functions.py (hack/test.sh), bench helpers
    qemu-system-x86 qemu-utils   # cgroup v2 VM tests (hack/vm-test.sh)
    mmdebstrap                   # Debian root filesystems: real-world test images, the systemd VM
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
# Another apt may hold the dpkg lock; wait for it rather than fail.
for i in $(seq 1 60); do
    # --no-install-recommends keeps apt from pulling in services nothing starts.
    if "${SUDO[@]}" apt-get update -qq &&
        "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        # Debian's packages start services on fixed ports; the tests start their own.
        "${SUDO[@]}" systemctl disable --now docker-registry >/dev/null 2>&1 || true
        exit 0
    fi
    echo "deps: apt busy or failed, retrying ($i)" >&2
    sleep 5
done
exit 1
