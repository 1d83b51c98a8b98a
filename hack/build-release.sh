#!/bin/bash
# Release build. hull is then relinked as a static, non-PIE executable: no dynamic loader, no
# libc.so mapping and no load-time relocations dirtying its pages, which cuts its start time and
# peak RSS (see hack/bench.sh). Only the final link changes; the dependencies are the same.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
cargo rustc --release --bin hull -- -C target-feature=+crt-static -C relocation-model=static
