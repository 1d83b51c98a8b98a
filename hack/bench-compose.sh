#!/bin/bash
# `compose up -d` and `compose down` of a 3-service project (busybox; one published port; a
# project network; web depends on db and cache), timed with berth compose, Debian's
# docker-compose against a private dockerd (own data-root, exec-root and socket) and
# podman-compose against a private podman root. Medians of RUNS cycles and ratios, one run.
# Usage: hack/bench-compose.sh [RUNS]
#   BERTH=path      use that berth (hull is taken from the same directory)
#   BENCH_RELEASE=1 build and use release binaries
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
hack/deps.sh
if [ -z "${BERTH:-}" ]; then
    if [ "${BENCH_RELEASE:-0}" = 1 ]; then
        cargo build -q --release --bin berth --bin hull; BERTH=$PWD/target/release/berth
    else
        cargo build -q --bin berth --bin hull; BERTH=$PWD/target/debug/berth
    fi
fi
work=$(mktemp -d /tmp/berth-bench-compose.XXXXXX)
export BERTH_BRIDGE=bcbench$$ BERTH_BRIDGE_SUBNET=10.213.250.0/24
b=("$BERTH" --root "$work/berth")
P=(podman --root "$work/podman" --runroot "$work/podman-run" --runtime runc --cgroup-manager cgroupfs)
sock=$work/docker.sock
dockerd_pid=""
cleanup() {
    set +e
    (cd "$work/berth-p" && "${b[@]}" compose -p bench down -v >/dev/null 2>&1)
    if [ -n "$dockerd_pid" ]; then
        (cd "$work/docker-p" && DOCKER_HOST=unix://$sock docker-compose -p bench down -v >/dev/null 2>&1)
        kill "$dockerd_pid"; wait "$dockerd_pid" 2>/dev/null
    fi
    (cd "$work/podman-p" && podman-compose --podman-args "${P[*]:1}" -p bench down >/dev/null 2>&1)
    "${P[@]}" system reset -f >/dev/null 2>&1
    umount -R "$work/docker-exec" "$work/docker-data" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

hack/mkrootfs.sh "$work/rootfs" >/dev/null
echo '<html>hello</html>' > "$work/rootfs/var/www/index.html"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
"${b[@]}" import "$work/rootfs.tar" bench/busybox:latest >/dev/null
"${b[@]}" save -o "$work/busybox.tar" bench/busybox:latest

# Services stop on SIGTERM at once (a shell that traps it while waiting), so `down` measures
# the tools, not a 10 s kill timeout.
project() { # DIR PORT SUBNET IMAGE
    mkdir -p "$1"
    cat > "$1/docker-compose.yml" <<YAML
version: "3.7"
# podman's default rlimits (1M) exceed this sandbox's hard limits; every tool gets the same.
x-limits: &lim {nofile: 1024, nproc: 1024}
services:
  web:
    image: $4
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 80 -h /var/www & wait"]
    ports: ["127.0.0.1:$2:80"]
    depends_on: [db, cache]
    ulimits: *lim
  db:
    image: $4
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
    ulimits: *lim
  cache:
    image: $4
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
    ulimits: *lim
networks:
  default:
    ipam:
      config: [{subnet: $3}]
YAML
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

median() { python3 -c 'import sys,statistics; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.3f}")' "$@"; }
now() { date +%s.%N; }
# bench NAME DIR PORT CMD...: RUNS cycles of up -d (until the port answers) and down.
declare -A UP DOWN
bench() {
    local name=$1 dir=$2 port=$3; shift 3
    local ups=() downs=()
    for _ in $(seq "$runs"); do
        local t0; t0=$(now)
        (cd "$dir" && "$@" up -d >/dev/null 2>&1)
        for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.02; done
        curl -sf "http://127.0.0.1:$port/" >/dev/null || { echo "$name: web did not answer" >&2; exit 1; }
        local t1; t1=$(now)
        (cd "$dir" && "$@" down >/dev/null 2>&1)
        local t2; t2=$(now)
        ups+=("$(python3 -c "print($t1-$t0)")"); downs+=("$(python3 -c "print($t2-$t1)")")
    done
    UP[$name]=$(median "${ups[@]}"); DOWN[$name]=$(median "${downs[@]}")
    printf '%-15s up -d %7.3f s   down %7.3f s   (medians of %s)\n' "$name" "${UP[$name]}" "${DOWN[$name]}" "$runs"
}

project "$work/berth-p" "$(free_port)" 10.213.249.0/24 bench/busybox
bench berth "$work/berth-p" "$(grep -o '127.0.0.1:[0-9]*' "$work/berth-p/docker-compose.yml" | cut -d: -f2)" \
    "${b[@]}" compose -p bench

# A private dockerd: its own data-root, exec-root, socket; no host firewall changes.
mkdir -p "$work/docker-data" "$work/docker-exec"
echo '{}' > "$work/daemon.json"
dockerd --config-file "$work/daemon.json" --data-root "$work/docker-data" --exec-root "$work/docker-exec" \
    --pidfile "$work/docker.pid" -H "unix://$sock" --bridge none --storage-driver vfs \
    --iptables=false --ip-forward=false --ip-masq=false \
    --exec-opt native.cgroupdriver=cgroupfs >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 100); do DOCKER_HOST=unix://$sock docker info >/dev/null 2>&1 && break; sleep 0.1; done
DOCKER_HOST=unix://$sock docker load -q -i "$work/busybox.tar" >/dev/null
project "$work/docker-p" "$(free_port)" 10.213.248.0/24 bench/busybox:latest
DOCKER_HOST=unix://$sock bench docker-compose "$work/docker-p" \
    "$(grep -o '127.0.0.1:[0-9]*' "$work/docker-p/docker-compose.yml" | cut -d: -f2)" docker-compose -p bench

"${P[@]}" load -q -i "$work/busybox.tar" >/dev/null
project "$work/podman-p" "$(free_port)" 10.213.247.0/24 localhost/bench/busybox:latest
bench podman-compose "$work/podman-p" \
    "$(grep -o '127.0.0.1:[0-9]*' "$work/podman-p/docker-compose.yml" | cut -d: -f2)" \
    podman-compose --podman-args "${P[*]:1}" -p bench

for other in docker-compose podman-compose; do
    python3 -c "
u, d = ${UP[$other]} / ${UP[berth]}, ${DOWN[$other]} / ${DOWN[berth]}
print(f'berth vs $other: up -d {u:.1f}x faster, down {d:.1f}x faster')"
done
