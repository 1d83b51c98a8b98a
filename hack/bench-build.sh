#!/bin/bash
# berth build vs buildah bud vs docker build (BuildKit), on the same Dockerfiles and the same
# busybox base: cold (--no-cache) and fully cached rebuilds, median of N runs each, and the
# ratios against berth, in one run. Every tool gets its own private state (berth --root,
# buildah --root/--runroot, a private dockerd with its own data-root, exec-root and socket);
# nothing of the host's is touched. RUN steps use --network none so the numbers are not the
# network's. Needs root.
#
#   hack/bench-build.sh            # N=5
#   N=9 BERTH=target/debug/berth hack/bench-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5}
BERTH=${BERTH:-target/release/berth}
[ -x "$BERTH" ] || cargo build --release --bin berth --bin hull
BERTH=$(realpath "$BERTH")
HULL=$(dirname "$BERTH")/hull
DOCKER=/usr/bin/docker   # Debian's docker.io CLI (builds with BuildKit when DOCKER_BUILDKIT=1)
# overlay for everyone, as berth uses; STORAGE=vfs where the host's /tmp can't take overlay.
DOCKER_STORAGE=${STORAGE:-overlay2}
BUILDAH_STORAGE=${STORAGE:-overlay}
[ "$BUILDAH_STORAGE" = overlay2 ] && BUILDAH_STORAGE=overlay

W=$(mktemp -d /tmp/bench-build.XXXXXX)
DOCKERD_PID=
cleanup() {
    if [ -n "$DOCKERD_PID" ]; then
        kill "$DOCKERD_PID" 2>/dev/null || true
        wait "$DOCKERD_PID" 2>/dev/null || true
    fi
    buildah --root "$W/buildah" --runroot "$W/buildah-run" --storage-driver "$BUILDAH_STORAGE" rmi -a -f >/dev/null 2>&1 || true
    for m in $(grep -o "$W[^ ]*" /proc/self/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

# The base image, once, as a docker archive every tool can load.
mkdir -p "$W/rootfs"
sh hack/mkrootfs.sh "$W/rootfs" >/dev/null
tar -C "$W/rootfs" -cf "$W/busybox.tar" .
"$BERTH" --root "$W/berth" import "$W/busybox.tar" busybox:latest >/dev/null
"$BERTH" --root "$W/berth" save -o "$W/busybox-docker.tar" busybox:latest

# Two contexts: a one-stage app and a multi-stage build.
mkdir -p "$W/ctx1/src" "$W/ctx2"
for i in $(seq 1 50); do head -c 20000 /dev/urandom | base64 > "$W/ctx1/src/f$i.txt"; done
cat > "$W/ctx1/Dockerfile" <<'EOF'
FROM busybox:latest
ENV APP=/srv/app MODE=prod
WORKDIR /srv/app
COPY src/ ./src/
RUN cat src/*.txt | wc -c > /size && mkdir -p /srv/app/data
RUN adduser -D -H app 2>/dev/null || true
LABEL org.example.bench=1
EXPOSE 8080
USER nobody
CMD ["cat", "/size"]
EOF
cat > "$W/ctx2/Dockerfile" <<'EOF'
FROM busybox:latest AS build
RUN mkdir /out && for i in 1 2 3 4 5 6 7 8; do seq 1 20000 > /out/part$i; done
RUN cat /out/part* | md5sum > /out/sum
FROM busybox:latest
COPY --from=build /out/sum /sum
CMD ["cat", "/sum"]
EOF

# A private dockerd (no host firewall changes), as tests/engines/dockerd.rs runs it.
BR=bbr$$
ip link add name "$BR" type bridge
ip addr add 10.213.254.1/24 dev "$BR"
ip link set "$BR" up
trap 'cleanup; ip link del "$BR" 2>/dev/null || true' EXIT
echo '{}' > "$W/daemon.json"
dockerd --config-file "$W/daemon.json" --data-root "$W/docker" --exec-root "$W/docker-exec" \
    --pidfile "$W/docker.pid" -H "unix://$W/docker.sock" --bridge "$BR" --storage-driver "$DOCKER_STORAGE" \
    --iptables=false --ip-forward=false --ip-masq=false \
    --exec-opt native.cgroupdriver=cgroupfs >"$W/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 60); do "$DOCKER" -H "unix://$W/docker.sock" version >/dev/null 2>&1 && break; sleep 0.5; done
D=("$DOCKER" -H "unix://$W/docker.sock")
"${D[@]}" load -i "$W/busybox-docker.tar" >/dev/null
# runc and cgroupfs: crun refuses hosts with hybrid cgroups.
BH=(buildah --root "$W/buildah" --runroot "$W/buildah-run" --storage-driver "$BUILDAH_STORAGE" --cgroup-manager cgroupfs)
"${BH[@]}" pull -q "docker-archive:$W/busybox-docker.tar" >/dev/null
"${BH[@]}" tag "$("${BH[@]}" images -q | head -1)" busybox:latest

# median SECONDS of N runs of "$@"
median() {
    local t=()
    for _ in $(seq 1 "$N"); do
        local s e
        s=$(date +%s.%N)
        "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; return 1; }
        e=$(date +%s.%N)
        t+=("$(echo "$e - $s" | bc)")
    done
    printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

berth_b() { "$BERTH" --root "$W/berth" build --runtime "$HULL" --network none "$@"; }
buildah_b() {
    "${BH[@]}" bud --layers --network none --runtime runc \
        --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$@"
}
docker_b() { DOCKER_BUILDKIT=1 "${D[@]}" build --network none "$@"; }

printf '%-10s %-7s %10s %10s %10s %14s %14s\n' context mode berth buildah docker buildah/berth docker/berth
for ctx in ctx1 ctx2; do
    C="$W/$ctx"
    # Warm every cache once, then time cold (--no-cache) and fully cached rebuilds.
    berth_b -t "b$ctx" "$C" >/dev/null
    buildah_b -t "b$ctx" "$C" >/dev/null 2>&1
    docker_b -t "b$ctx" "$C" >/dev/null 2>&1
    for mode in cold cached; do
        extra=()
        [ "$mode" = cold ] && extra=(--no-cache)
        b=$(median berth_b "${extra[@]}" -t "b$ctx" "$C")
        h=$(median buildah_b "${extra[@]}" -t "b$ctx" "$C")
        d=$(median docker_b "${extra[@]}" -t "b$ctx" "$C")
        printf '%-10s %-7s %10.3f %10.3f %10.3f %14.1f %14.1f\n' "$ctx" "$mode" "$b" "$h" "$d" \
            "$(echo "$h / $b" | bc -l)" "$(echo "$d / $b" | bc -l)"
    done
done
echo "(seconds, median of $N; berth: $BERTH with hull; buildah $(buildah --version | awk '{print $3}'); docker $("${D[@]}" version -f '{{.Server.Version}}') BuildKit; storage $BUILDAH_STORAGE/$DOCKER_STORAGE for buildah/docker)"
# The round trip: berth's image saved, loaded by docker and run there.
"$BERTH" --root "$W/berth" tag bctx2 berthbuilt:v1
"$BERTH" --root "$W/berth" save -o "$W/built.tar" berthbuilt:v1
"${D[@]}" load -i "$W/built.tar" >/dev/null
echo "berth's image run by docker: $("${D[@]}" run --rm --network none berthbuilt:v1)"
