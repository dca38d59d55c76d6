#!/usr/bin/env bash
# A user's own model and data (issue 31), as a PyTorch user brings them: models gos never saw,
# trained by scripts/own_model.py with Debian's python3-torch, then adapted by gos for `mobile`.
#
#   images: Fashion-MNIST written as an ImageFolder of RGB PNG files at 32x32, a VGG-style CNN
#           trained on them with ImageNet's mean and std applied outside the model; gos adapts it
#           with --data images:DIR --preprocess imagenet (goal: 2.2x within 0.5 points).
#   arrays: a two-tone signal regression as .npy arrays (two float targets per window), a 1-D CNN;
#           gos adapts it with --data arrays:DIR.
#
# Each gos run has one --budget (default 40m) and is timed side by side with the original in its
# verify stage. Prints one table. Outputs in bench-out/own-model/; every step resumes when rerun.
#
#   bench/own-model.sh                      (about 2 hours on a quiet 2-core machine)
#   KINDS=arrays BUDGET=20m bench/own-model.sh
#   TABLE_ONLY=1 bench/own-model.sh
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory build >/dev/null
gos=${GOS:-build/gos}  # GOS=/path/to/copy keeps a long run independent of rebuilds
read -r -a kinds <<<"${KINDS:-images arrays}"
budget=${BUDGET:-40m}
backend=${BACKEND:-mobile}
work=bench-out/own-model
mkdir -p "$work"

adapt_arguments() {
  case "$1" in
    images) echo "--data images:$work/images/data --preprocess imagenet --speedup 2.2 --max-acc-drop 0.5" ;;
    arrays) echo "--data arrays:$work/arrays/data --speedup 2.2 --max-mae-increase 0.05" ;;
  esac
}

if [[ -z ${TABLE_ONLY:-} ]]; then
  for kind in "${kinds[@]}"; do
    if [[ ! -f $work/$kind/model.onnx ]]; then
      /usr/bin/python3 scripts/own_model.py "$kind" "$work/$kind" >"$work/$kind-train.json"
    fi
    # shellcheck disable=SC2046
    "$gos" adapt "$work/$kind/model.onnx" $(adapt_arguments "$kind") --backend "$backend" --threads 1 --budget "$budget" \
      -o "$work/$kind/gos" --quiet 2>"$work/$kind-gos.log" || true
  done
fi

echo "| data | model | PyTorch: test, training time | gos: original | gos: adapted | speedup ($backend, side by side) |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
for kind in "${kinds[@]}"; do
  python3 - "$work" "$kind" <<'EOF'
import json, sys
work, kind = sys.argv[1], sys.argv[2]
def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None
trained = load(f"{work}/{kind}-train.json") or {}
report = load(f"{work}/{kind}/gos/report.json")
metric = "accuracy" if kind == "images" else "mae"
fmt = (lambda v: f"{v:.2f}%") if metric == "accuracy" else (lambda v: f"{v:.4f} MAE")
model = "VGG-style CNN, 3x32x32, ImageNet mean/std outside" if kind == "images" else "1-D CNN, 1x256 -> 2 targets"
pytorch_key = "test_accuracy" if kind == "images" else "test_mae"
pytorch = f"{fmt(trained[pytorch_key])}, {trained['train_seconds'] / 60:.1f} min" if "train_seconds" in trained else "-"
if report:
    print(f"| {kind} | {model} | {pytorch} | {fmt(report['original'][metric])} | {fmt(report['adapted'][metric])} | {report['speedup']:.2f}x |")
else:
    print(f"| {kind} | {model} | {pytorch} | - | - | - |")
EOF
done
