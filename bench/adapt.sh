#!/usr/bin/env bash
# The adapt benchmark of issue 6: `gos adapt` on each Fashion-MNIST baseline (mobile backend,
# 1 thread, goal: 2.2x faster with at most 0.5 accuracy points lost; the points fine-tuned are
# timed whole first, 2% under the target, which absorbs timing noise), then one table: model,
# original accuracy / latency, adapted accuracy / latency, speedup measured side by side, accuracy
# drop, whether the goal was met, and the run's time. Each run writes bench-out/adapt/MODEL/
# (report.html, report.json, adapted.onnx, adapted.pt, run.sqlite); rerunning resumes interrupted
# runs and reuses their finished stages (--budget is a run's whole time across restarts: a run its
# budget stopped goes on with BUDGET set larger).
#
#   bench/adapt.sh [MODEL...]      (default: resnet20 vgg11s mobilenetv2s mixer-s)
#   BUDGET=30m bench/adapt.sh      (time per model; default 30m, vgg11s 45m)
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory build >/dev/null
gos=build/gos
models=("$@")
[[ ${#models[@]} -gt 0 ]] || models=(resnet20 vgg11s mobilenetv2s mixer-s)
budget_for() {
  case "$1" in
    vgg11s) echo "${BUDGET:-45m}" ;;
    *) echo "${BUDGET:-30m}" ;;
  esac
}

# Fine-tuning follows each baseline's own training recipe (models/README.md), at a lower rate:
# the CNNs with gos adapt's defaults (SGD), the mixer with AdamW. resnet20 fine-tunes 14 epochs,
# what 30 minutes fit (the 2.28x point: -0.36 after 14 epochs; 8 epochs, make demo's, left -0.54).
# vgg11s fine-tunes 16 epochs (its first point lost 0.57 after 8 epochs, 0.45 after 16; the run
# met the goal at its second, 2.53x -0.45), which takes more than 30 minutes for two attempts on
# a slow day.
# vgg11s and mixer-s distil the default 12 candidates per layer; the resnet20 and mobilenetv2s rows
# of the README's table were measured with 6 (the default then), and their runs keep it so that
# the table is what they give.
extra_options() {
  case "$1" in
    resnet20) echo "--finetune-epochs 14 --candidates-per-layer 6" ;;
    vgg11s) echo "--finetune-epochs 16" ;;
    mixer-s) echo "--optimizer adamw --finetune-lr 0.0002" ;;
    *) echo "--candidates-per-layer 6" ;;
  esac
}

echo "# gos adapt benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), budget ${BUDGET:-30m} per model (vgg11s ${BUDGET:-45m})"
echo
echo "| model | original acc | original ms | adapted acc | adapted ms | speedup | acc drop | goal met | run time |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"
for model in "${models[@]}"; do
  out=bench-out/adapt/$model
  # shellcheck disable=SC2046
  "$gos" adapt "models/$model.onnx" --data fashion-mnist --backend mobile --threads 1 --speedup 2.2 --budget "$(budget_for "$model")" \
    $(extra_options "$model") -o "$out" --quiet || true
  if [[ ! -f $out/report.json ]]; then
    echo "| $model | | | | | | | no report (see the command's error) | |"
    continue
  fi
  python3 - "$model" "$out/report.json" <<'PY'
import json, sys
model, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
o, a = r["original"], r["adapted"]
seconds = sum(s["seconds"] for s in r["stages"])
print(f"| {model} | {o['accuracy']:.2f}% | {o['median_ms']:.3f} | {a['accuracy']:.2f}% | {a['median_ms']:.3f} | "
      f"{r['speedup']:.2f}x | {r['acc_drop']:+.2f} | {'yes' if r['constraint_met'] else 'no'} | {seconds / 60:.1f} min |")
PY
done
