#!/bin/sh
# Formats only berth's container/network code (cargo fmt would also touch the runtime's files).
set -eu
cd "$(dirname "$0")/.."
rustfmt --edition 2021 src/engine/*.rs src/network/*.rs src/bin/berth.rs tests/berth_containers.rs "$@"
