#!/usr/bin/env bash
# Measures what kzsim finds without being told: applies each mutant (a few
# changed lines re-creating a real bug class that is not a planted bug) to
# a scratch copy of the committed tree, builds it, and sweeps the shipped
# faithful scenarios of the mutant's system in four modes with the same
# budget: a plain sweep, event-triggered random faults (--events), BUGGIFY
# (--buggify), and the coverage-guided search (--explore). A mutant counts
# as found by a mode when some run fails (a scenario that passes without
# the mutant shows an anomaly, or panics).
#
#   tests/mutants/run.sh [PATCH...]     (default: every tests/mutants/*.patch)
#
# Environment: SEEDS (seeds per scenario and mode, default 20), JOBS
# (default 2), SCRATCH (default /tmp/kzsim-mutants; its target/ is kept
# between runs so rebuilds are incremental).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SEEDS=${SEEDS:-20}
JOBS=${JOBS:-2}
SCRATCH=${SCRATCH:-/tmp/kzsim-mutants}
export CARGO_TARGET_DIR="$SCRATCH/target"
patches=("$@")
if [ ${#patches[@]} -eq 0 ]; then
  patches=("$ROOT"/tests/mutants/*.patch)
fi

# The scenarios a mutant of a system is swept over (the kafka-* and group-*
# files run in both modes).
scenarios_for() {
  case "$1" in
    zk-*) echo scenarios/zk-*.toml ;;
    kafka-*) echo scenarios/kafka-*.toml ;;
    group-*) echo scenarios/group-*.toml ;;
    raft-*|kraft-*) echo scenarios/kraft-*.toml ;;
    *) echo "unknown system of mutant $1" >&2; exit 2 ;;
  esac
}

printf '%-48s %-9s %6s %6s %9s  %s\n' mutant mode runs fail seconds first
for patch in "${patches[@]}"; do
  patch="$(cd "$(dirname "$patch")" && pwd)/$(basename "$patch")"
  name=$(basename "$patch" .patch)
  name=${name#[0-9][0-9]-}
  work="$SCRATCH/src"
  rm -rf "$work"
  mkdir -p "$work"
  git -C "$ROOT" archive HEAD | tar -x -C "$work"
  (cd "$work" && patch -p1 --quiet < "$patch")
  (cd "$work" && cargo build --profile fast --quiet)
  bin="$CARGO_TARGET_DIR/fast/kzsim"
  files=$(cd "$work" && scenarios_for "$name")
  for mode in plain events buggify explore; do
    start=$(date +%s)
    case $mode in
      plain) args=(--seeds "0..$SEEDS") ;;
      events) args=(--seeds "0..$SEEDS" --events) ;;
      buggify) args=(--seeds "0..$SEEDS" --buggify) ;;
      explore) args=(--explore "$SEEDS") ;;
    esac
    out=$(cd "$work" && "$bin" run $files --jobs "$JOBS" "${args[@]}" 2>/dev/null || true)
    secs=$(( $(date +%s) - start ))
    if [ "$mode" = explore ]; then
      runs=$(echo "$out" | sed -n 's/^explore [^:]*: \([0-9]*\) runs.*/\1/p' | awk '{s += $1} END {print s + 0}')
      fails=$(echo "$out" | grep -c '^FAIL' || true)
      first=$(echo "$out" | grep -m1 '^FAIL' | cut -d: -f1 | sed 's/^FAIL //' || true)
    else
      runs=$(echo "$out" | grep -o '^[0-9]* seeds' | tail -1 | cut -d' ' -f1)
      fails=$(echo "$out" | grep -c '^FAIL ' || true)
      first=$(echo "$out" | grep -m1 '^FAIL ' | cut -d: -f1 | sed 's/^FAIL //' || true)
    fi
    printf '%-48s %-9s %6s %6s %9s  %s\n' "$name" "$mode" "${runs:-0}" "$fails" "$secs" "${first:--}"
  done
done
