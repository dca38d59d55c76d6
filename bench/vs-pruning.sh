#!/usr/bin/env bash
# gos against plain channel pruning (issue 30). For each model, first the baseline the common
# pruning libraries give by default: every channel group keeps the fraction F of its channels by
# the L1 norm of its producers' weights, nothing refitted (`gos adapt --narrow l1:F`); then gos at
# the speedup the baseline measured (`gos adapt --narrow search --speedup S`: channels kept by what
# their consumers read of them, consumers refitted by least squares, then the per-operator search).
# Both are fine-tuned with the same knowledge distillation for the same epochs, and each is timed
# side by side with the original in its own verify stage. Prints one table; with INT8=1 both runs
# are repeated with --precision int8 and the table gains the int8 columns.
# Each run writes bench-out/vs-pruning/MODEL-BACKEND-{l1,gos}[-int8]/ and resumes when rerun.
#
#   bench/vs-pruning.sh                          (resnet20 vgg11s mobilenetv2s on mobile: about 2 hours)
#   MODELS=resnet20 BACKEND=ort bench/vs-pruning.sh
#   FRACTION=0.5 BUDGET=30m INT8=1 bench/vs-pruning.sh
#   TABLE_ONLY=1 bench/vs-pruning.sh             (the table of the runs already made)
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory build >/dev/null
gos=build/gos
read -r -a models <<<"${MODELS:-resnet20 vgg11s mobilenetv2s}"
backend=${BACKEND:-mobile}
fraction=${FRACTION:-0.5}
budget=${BUDGET:-40m}
work=bench-out/vs-pruning
mkdir -p "$work"

# Each model's own recipe, as bench/adapt.sh runs it.
adapt_arguments() {
  case "$1" in
    resnet20) echo "models/resnet20.onnx --data fashion-mnist --finetune-epochs 14 --candidates-per-layer 6" ;;
    vgg11s) echo "models/vgg11s.onnx --data fashion-mnist --finetune-epochs 16" ;;
    *) echo "models/$1.onnx --data fashion-mnist --candidates-per-layer 6" ;;
  esac
}

field() {  # field REPORT JQ-PATH: a number from a report, or - when the run has none
  python3 -c 'import json,sys
try:
    r = json.load(open(sys.argv[1]))
    v = eval("r" + sys.argv[2])
    print(v if isinstance(v, str) else f"{v:.4f}")
except Exception:
    print("-")' "$1" "$2"
}

run_pair() {  # run_pair MODEL SUFFIX [EXTRA ARGS...]
  local model=$1 suffix=$2
  shift 2
  local base="$work/$model-$backend"
  # shellcheck disable=SC2046
  "$gos" adapt $(adapt_arguments "$model") --narrow "l1:$fraction" --backend "$backend" --threads 1 --speedup 1.01 --max-acc-drop 100 \
    --budget "$budget" "$@" -o "$base-l1$suffix" --quiet 2>"$base-l1$suffix.log" || true
  local speedup
  speedup=$(field "$base-l1$suffix/report.json" '["speedup"]')
  [[ $speedup != - ]] || return 0
  # gos at the speed the baseline measured (rounded down to two decimals).
  speedup=$(python3 -c "import math,sys; print(math.floor(float(sys.argv[1]) * 100) / 100)" "$speedup")
  # shellcheck disable=SC2046
  "$gos" adapt $(adapt_arguments "$model") --narrow search --backend "$backend" --threads 1 --speedup "$speedup" \
    --budget "$budget" "$@" -o "$base-gos$suffix" --quiet 2>"$base-gos$suffix.log" || true
}

if [[ -z ${TABLE_ONLY:-} ]]; then
  for model in "${models[@]}"; do
    run_pair "$model" ""
    [[ -z ${INT8:-} ]] || run_pair "$model" "-int8" --precision int8
  done
fi

echo "| model | backend | original | L1 pruning ($fraction): speedup | accuracy | gos --narrow search: speedup | accuracy | gos - L1 (points) |$([[ -z ${INT8:-} ]] || echo ' int8 L1: speedup | accuracy | int8 gos: speedup | accuracy |')"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |$([[ -z ${INT8:-} ]] || echo ' ---: | ---: | ---: | ---: |')"
for model in "${models[@]}"; do
  base="$work/$model-$backend"
  row="| $model | $backend | $(field "$base-l1/report.json" '["original"]["accuracy"]')"
  row+=" | $(field "$base-l1/report.json" '["speedup"]')x | $(field "$base-l1/report.json" '["adapted"]["accuracy"]')"
  row+=" | $(field "$base-gos/report.json" '["speedup"]')x | $(field "$base-gos/report.json" '["adapted"]["accuracy"]')"
  row+=" | $(python3 -c 'import sys
try: print(f"{float(sys.argv[2]) - float(sys.argv[1]):+.2f}")
except ValueError: print("-")' "$(field "$base-l1/report.json" '["adapted"]["accuracy"]')" "$(field "$base-gos/report.json" '["adapted"]["accuracy"]')") |"
  if [[ -n ${INT8:-} ]]; then
    row+=" $(field "$base-l1-int8/report.json" '["speedup"]')x | $(field "$base-l1-int8/report.json" '["adapted"]["accuracy"]')"
    row+=" | $(field "$base-gos-int8/report.json" '["speedup"]')x | $(field "$base-gos-int8/report.json" '["adapted"]["accuracy"]') |"
  fi
  echo "$row"
done
