#!/bin/bash
# hack/check-skips.sh LOG: lists the SKIP lines of a test run and, in CI (CI=true) or with
# HULL_STRICT_SKIPS=1, fails when one of them is not a host limit listed in
# hack/allowed-skips.txt: CI installs every dependency, so any other skip hides a test that
# never ran.
set -uo pipefail
cd "$(dirname "$0")/.."
log=${1:?usage: check-skips.sh LOG}
allowed=$(grep -v '^#' hack/allowed-skips.txt | grep -v '^$' | paste -sd '|')
skips=$(grep -a 'SKIP' "$log" | sort | uniq -c | sort -rn)
[ -z "$skips" ] && { echo "skips: none"; exit 0; }
echo "skips (count, line):"
echo "$skips"
unexpected=$(grep -a 'SKIP' "$log" | grep -Ev "$allowed" | sort -u)
[ -z "$unexpected" ] && exit 0
echo "skips that are not host limits (hack/allowed-skips.txt):"
echo "$unexpected"
if [ "${CI:-}" = true ] || [ "${HULL_STRICT_SKIPS:-}" = 1 ]; then
    echo "check-skips: failing: a dependency CI installs is missing, or a test skipped for another reason" >&2
    exit 1
fi
exit 0
