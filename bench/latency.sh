#!/usr/bin/env bash
# Latency figures for docs/latency.md: for every zoo model and backend, the whole-model latency,
# where the time goes against where the MACs are (the operators that take the largest share of
# time next to their share of MACs), and the latency predictor's held-out accuracy and
# whole-model predictions. "machine spread" is the spread of a fixed arithmetic loop timed right
# after each model (`gos bench`'s machine reference): no model times steadier than that, so a
# spread goal can only be checked where it is a few percent. Measurements go to the latency cache ($GOS_CACHE, default
# ~/.cache/gos/latency.sqlite), so a second run takes only the whole-model timings again.
#
#   bench/latency.sh [BACKEND...]     (default: mobile torch ort)
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory build >/dev/null
gos=build/gos
backends=("$@")
[[ ${#backends[@]} -gt 0 ]] || backends=(mobile torch ort)
models=(resnet20 vgg11s mobilenetv2s mixer-s tcn-ppg)

echo "# gos latency benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
for backend in "${backends[@]}"; do
  echo
  echo "## backend $backend, 1 thread"
  echo
  echo "| model | MACs | median ms | p10-p90 spread | machine spread | top operators: time share vs MACs share |"
  echo "| --- | ---: | ---: | ---: | ---: | --- |"
  for model in "${models[@]}"; do
    "$gos" bench "$model" --backend "$backend" --per-op --json | python3 bench/per_op_row.py "$model"
  done
  echo
  "$gos" latency-model fit --backend "$backend" | sed 's/^/    /'
done
