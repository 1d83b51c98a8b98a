#!/bin/bash
# Start-latency and memory benchmark: hull against Debian's runc and crun, in one run.
#
# Times `run` of a busybox /bin/true container and the create/start/state/delete sequence with
# hyperfine, prints medians, ratios to each peer and peak RSS. crun 1.8 refuses this host's hybrid
# cgroup layout, so everything runs in a private mount namespace with the controller-less
# cgroup2 mount at /sys/fs/cgroup/unified hidden — for every runtime alike.
#
# Usage: hack/bench.sh [--runs N]     (set HULL_BENCH_INNER=1 only internally)
#   HULL_BENCH_BASE=PATH  also times another hull binary (e.g. a release build of an earlier
#                         commit) as "hull-base", for before/after ratios in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=50
if [[ "${1:-}" == "--runs" ]]; then runs=$2; fi

if [[ -z "${HULL_BENCH_INNER:-}" ]]; then
    hack/deps.sh
    command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
    hack/build-release.sh >&2
    exec unshare --mount --propagation private env HULL_BENCH_INNER=1 "$0" --runs "$runs"
fi

if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi

work=$(mktemp -d /tmp/hull-bench.XXXXXX)
trap 'for r in hull hull-base runc crun; do for id in $(ls "$work/state-$r" 2>/dev/null); do "$(bin_of $r)" --root "$work/state-$r" delete -f "$id" >/dev/null 2>&1 || true; done; done; rm -rf "$work"' EXIT
bin_of() {
    case $1 in
    hull) echo "$PWD/target/release/hull" ;;
    hull-base) echo "$HULL_BENCH_BASE" ;;
    *) command -v "$1" ;;
    esac
}

bundle=$work/bundle
mkdir -p "$bundle"
hack/mkrootfs.sh "$bundle/rootfs" >/dev/null
"$(bin_of hull)" spec --bundle "$bundle"
jq '.ociVersion = "1.0.2" | .process.terminal = false | .process.args = ["/bin/true"]' "$bundle/config.json" > "$bundle/c.json"
mv "$bundle/c.json" "$bundle/config.json"

runtimes=(hull runc crun)
[[ -n "${HULL_BENCH_BASE:-}" ]] && runtimes+=(hull-base)
declare -A run_median seq_median rss
for r in "${runtimes[@]}"; do
    b=$(bin_of "$r")
    root=$work/state-$r
    # One warm-up run also proves the runtime works here before timing it.
    if ! "$b" --root "$root" run --bundle "$bundle" warm-$r >/dev/null 2>"$work/$r.err"; then
        echo "$r cannot run on this host: $(head -c 300 "$work/$r.err")" >&2
        continue
    fi
    hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/$r-run.json" \
        "$b --root $root run --bundle $bundle bench-$r" >/dev/null
    run_median[$r]=$(jq '.results[0].median' "$work/$r-run.json")
    hyperfine --warmup 3 --runs "$runs" --export-json "$work/$r-seq.json" \
        "$b --root $root create --bundle $bundle seq-$r && $b --root $root start seq-$r && $b --root $root state seq-$r >/dev/null && $b --root $root delete -f seq-$r" >/dev/null
    seq_median[$r]=$(jq '.results[0].median' "$work/$r-seq.json")
    best=0
    for _ in 1 2 3 4 5; do
        kb=$( { /usr/bin/time -f %M "$b" --root "$root" run --bundle "$bundle" rss-$r >/dev/null; } 2>&1 | tail -1)
        (( kb > best )) && best=$kb
    done
    rss[$r]=$best
done

ms() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
printf '\n%-8s %14s %22s %14s\n' runtime "run (ms)" "create/start/state/delete (ms)" "peak RSS (KiB)"
for r in "${runtimes[@]}"; do
    [[ -n "${run_median[$r]:-}" ]] || { printf '%-9s %14s\n' "$r" "unavailable"; continue; }
    printf '%-9s %14s %22s %14s\n' "$r" "$(ms "${run_median[$r]}")" "$(ms "${seq_median[$r]}")" "${rss[$r]}"
done
echo
for peer in runc crun hull-base; do
    [[ -n "${run_median[$peer]:-}" && -n "${run_median[hull]:-}" ]] || continue
    echo "hull/$peer: run $(ratio "${run_median[hull]}" "${run_median[$peer]}"), sequence $(ratio "${seq_median[hull]}" "${seq_median[$peer]}"), peak RSS $(ratio "${rss[hull]}" "${rss[$peer]}")"
done
