#!/bin/bash
# A short, bounded fuzzing run (at most FUZZ_SECONDS, default 50, of fuzzing in all) of the two
# targets in fuzz/: config.json parsing and the linux.seccomp translation.
#
# With cargo-fuzz installed it runs libFuzzer (debug build, its own target dir under fuzz/),
# on the nightly toolchain when rustup has one, else on stable through RUSTC_BOOTSTRAP=1 with no
# sanitizer. Without cargo-fuzz it runs the same entry points as a deterministic random-input
# test (tests/fuzz_smoke.rs) with more iterations.
#
# Usage: hack/fuzz.sh            # FUZZ_SECONDS=50 split over both targets
#        FUZZ_SECONDS=20 hack/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
total=${FUZZ_SECONDS:-50}
per=$(( total / 2 ))
[ "$per" -ge 1 ] || per=1

if cargo fuzz --version >/dev/null 2>&1; then
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        fuzz=(cargo +nightly fuzz run --dev)
    else
        export RUSTC_BOOTSTRAP=1
        fuzz=(cargo fuzz run --dev --sanitizer none)
    fi
    for target in config seccomp; do
        # A scratch corpus seeded from the committed seeds, so runs do not grow the tree.
        corpus=$(mktemp -d)
        trap 'rm -rf "$corpus"' EXIT
        cp fuzz/seeds/"$target".json "$corpus"/
        echo "== fuzzing $target for ${per}s"
        (cd fuzz && "${fuzz[@]}" "$target" "$corpus" -- -max_total_time="$per" -max_len=65536 -print_final_stats=1)
        rm -rf "$corpus"
    done
else
    echo "cargo-fuzz not installed (cargo install cargo-fuzz): running the deterministic smoke fuzzer"
    # ~1 ms per input in a debug build: keep the run well under the time budget.
    FUZZ_SMOKE_ITERS=$(( total * 400 )) FUZZ_SMOKE_SEED=${FUZZ_SMOKE_SEED:-$RANDOM} \
        timeout "$(( total + 120 ))" cargo test --test fuzz_smoke -- --nocapture
fi
