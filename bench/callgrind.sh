#!/usr/bin/env bash
# bench/callgrind.sh PHASE N TREE...: instructions per request of one in-process phase
# (python -m bench.callgrind) in each checkout TREE, with the Python of .venv.
# BENCH_ARGS adds options of python -m bench.inprocess, e.g. BENCH_ARGS="--concurrency 16".
set -euo pipefail
phase=$1; n=$2; shift 2
read -r -a extra <<< "${BENCH_ARGS:-}"
python="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python"
for tree in "$@"; do
  log=$(mktemp)
  out=$(cd "$tree" && PYTHONHASHSEED=0 PYTHONPATH="$tree" valgrind --tool=callgrind \
    --cache-sim=no --toggle-collect=_operator_call --callgrind-out-file=/dev/null \
    "$python" -m bench.callgrind "$phase" "$n" --logs "${extra[@]}" 2>"$log" | tail -1)
  ir=$(grep -o "Collected : [0-9]*" "$log" | awk '{print $3}')
  rm -f "$log"
  echo "$phase n=$n${BENCH_ARGS:+ $BENCH_ARGS} $(cd "$tree" && git rev-parse --short HEAD) instructions/request $((ir / out)) ($out requests)"
done
