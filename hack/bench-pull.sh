#!/bin/bash
# Pull + unpack benchmark of a multi-layer image from a local docker-registry:
#   berth pull   vs   skopeo copy + umoci unpack   vs   podman pull
# Prints hyperfine's medians and the ratios to berth. Needs root and the
# tools from hack/deps.sh. Env: BERTH (binary; default: release build),
# RUNS (default 5), BENCH_DIRS (host dirs, one layer each).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
BENCH_DIRS=${BENCH_DIRS:-"/usr/share/perl /usr/lib/python3 /usr/share/man /usr/share/locale"}
for t in docker-registry skopeo umoci podman hyperfine python3; do
    command -v "$t" >/dev/null || { echo "bench-pull: $t missing; run hack/deps.sh" >&2; exit 1; }
done
if [ -z "${BERTH:-}" ]; then
    cargo build --release --bin berth >&2
    BERTH=${CARGO_TARGET_DIR:-target}/release/berth
fi
BERTH=$(realpath "$BERTH")

W=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
REG_PID=""
cleanup() {
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
    # podman may leave mounts under its roots; unmount them (by path) first.
    findmnt -rno TARGET | grep "^$W/" | sort -r | while read -r m; do umount "$m" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$W/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
    sleep 0.1
done

# Build the image: one gzip layer per host directory (GNU tar), assembled
# into an OCI layout that skopeo pushes to the registry.
python3 - "$W/src" $BENCH_DIRS <<'PY'
import gzip, hashlib, json, os, subprocess, sys
out, dirs = sys.argv[1], [d for d in sys.argv[2:] if os.path.isdir(d)]
os.makedirs(f"{out}/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d, len(data)
layers, diffs = [], []
for d in dirs:
    tar = subprocess.run(["tar", "-C", "/", "-cf", "-", d.lstrip("/")], check=True, capture_output=True).stdout
    diffs.append("sha256:" + hashlib.sha256(tar).hexdigest())
    dg, size = blob(gzip.compress(tar, compresslevel=6, mtime=0))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dg, "size": size})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                  "config": {}, "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
cd, cs = blob(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                  "layers": layers}).encode()
md, ms = blob(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
          open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
REF=127.0.0.1:$PORT/bench/image:1
skopeo copy -q --dest-tls-verify=false "oci:$W/src:bench" "docker://$REF"
echo "image $REF: $(skopeo inspect --tls-verify=false "docker://$REF" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(len(m["Layers"]), "layers")'), $(du -sh "$W/registry" | cut -f1) in the registry" >&2

# Every run writes into a fresh directory and nothing is deleted until the
# end: on ext4, creating files right after deleting many others is several
# times slower (the inode allocator skips recently freed inodes), which would
# penalize whichever tool's prepare step deleted the previous run.
echo 0 > "$W/n"
NEXT="echo \$(( \$(cat $W/n) + 1 )) > $W/n"
cat > "$W/berth.sh" <<SH
n=\$(cat $W/n); exec $BERTH --root $W/berth-\$n pull -q --tls-verify=false $REF
SH
cat > "$W/skopeo-umoci.sh" <<SH
set -e; n=\$(cat $W/n)
skopeo copy -q --src-tls-verify=false docker://$REF oci:$W/oci-\$n:bench
umoci unpack --image $W/oci-\$n:bench $W/bundle-\$n >/dev/null
SH
cat > "$W/podman.sh" <<SH
n=\$(cat $W/n); exec podman --root $W/pod-\$n/root --runroot $W/pod-\$n/run --storage-driver overlay --events-backend file pull -q --tls-verify=false $REF
SH
hyperfine --runs "$RUNS" --warmup 1 --export-json "$W/bench.json" --prepare "$NEXT" \
    -n berth "sh $W/berth.sh" \
    -n skopeo+umoci "sh $W/skopeo-umoci.sh" \
    -n podman "sh $W/podman.sh" >&2

python3 - "$W/bench.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
b = r["berth"]["median"]
print(f"{'tool':<14}{'median s':>10}{'ratio to berth':>16}")
for name in ["berth", "skopeo+umoci", "podman"]:
    m = r[name]["median"]
    print(f"{name:<14}{m:>10.3f}{m / b:>15.2f}x")
PY
