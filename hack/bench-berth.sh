#!/bin/bash
# Compares berth with podman on this machine, everything on 127.0.0.1:
#  1. `run --rm busybox true` (default bridge network and --network none), hyperfine medians;
#  2. HTTP through a published port: ab against busybox httpd in a container.
# The same busybox image (hack/mkrootfs.sh) is imported into berth and moved into podman
# with `berth save` + `podman load`. Podman gets its own --root, so the host's podman
# storage is not touched. Usage: hack/bench-berth.sh [RUNS]
#   BERTH=path      use that berth (hull is taken from the same directory)
#   BENCH_RELEASE=1 build and use release binaries (what the numbers in docs/ use)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
hack/deps.sh
if [ -z "${BERTH:-}" ]; then
    if [ "${BENCH_RELEASE:-0}" = 1 ]; then
        cargo build -q --release --bin berth --bin hull; BERTH=$PWD/target/release/berth
    else
        cargo build -q --bin berth --bin hull; BERTH=$PWD/target/debug/berth
    fi
fi
echo "berth: $BERTH"
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
root=$work/berth
export BERTH_BRIDGE=bbench$$ BERTH_BRIDGE_SUBNET=10.213.251.0/24
P=(podman --root "$work/podman" --runroot "$work/podman-run" --runtime runc --cgroup-manager cgroupfs)
# Podman's default rlimits (nofile/nproc 1M) exceed this sandbox's hard limits.
PUL=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
b=("$BERTH" --root "$root")
berth_web="" podman_web=""
cleanup() {
    set +e
    [ -n "$berth_web" ] && "${b[@]}" rm -f "$berth_web" >/dev/null
    [ -n "$podman_web" ] && "${P[@]}" rm -f "$podman_web" >/dev/null
    "${b[@]}" network prune >/dev/null 2>&1
    "${P[@]}" system reset -f >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

hack/mkrootfs.sh "$work/rootfs"
echo '<html>hello</html>' > "$work/rootfs/var/www/index.html"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
"${b[@]}" import "$work/rootfs.tar" bench/busybox:latest >/dev/null
"${b[@]}" save -o "$work/busybox.tar" bench/busybox:latest
"${P[@]}" load -q -i "$work/busybox.tar" >/dev/null
pimg=$("${P[@]}" images --format '{{.Repository}}:{{.Tag}}' | grep busybox | head -1)

echo "== run --rm busybox true ($runs runs, medians) =="
hyperfine ${HF_OPTS:-} -N -w 2 -r "$runs" --export-json "$work/run.json" \
    -n berth "${b[*]} run --rm bench/busybox true" \
    -n berth-none "${b[*]} run --rm --network none bench/busybox true" \
    -n podman "${P[*]} run --rm ${PUL[*]} $pimg true" \
    -n podman-none "${P[*]} run --rm --network none ${PUL[*]} $pimg true" >/dev/null
python3 - "$work/run.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
for k, v in r.items():
    print(f"{k:12s} median {v*1000:8.1f} ms")
print(f"ratio berth/podman (bridge): {r['berth']/r['podman']:.2f}")
print(f"ratio berth/podman (none):   {r['berth-none']/r['podman-none']:.2f}")
PY

echo "== HTTP through a published port (ab -n 5000 -c 8, 127.0.0.1) =="
bp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
berth_web=$("${b[@]}" run -d -p "127.0.0.1:$bp:80" bench/busybox httpd -f -h /var/www)
podman_web=$("${P[@]}" run -d "${PUL[@]}" -p "127.0.0.1:$pp:80" "$pimg" httpd -f -h /var/www)
for port in $bp $pp; do
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
done
rb=$(ab -q -n 5000 -c 8 "http://127.0.0.1:$bp/" | awk '/Requests per second/ {print $4}')
rp=$(ab -q -n 5000 -c 8 "http://127.0.0.1:$pp/" | awk '/Requests per second/ {print $4}')
echo "berth  $rb req/s"
echo "podman $rp req/s"
python3 -c "print(f'ratio berth/podman throughput: {$rb/$rp:.2f}')"
