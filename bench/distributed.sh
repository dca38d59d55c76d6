#!/usr/bin/env bash
# gos adapt on one rank against two ranks of this machine (docs/distributed.md), one after the
# other: one rank with one thread, one rank with two threads, and two ranks with one thread each
# (the same two cores as the second), launched as torchrun launches a job (MASTER_ADDR,
# MASTER_PORT, RANK, WORLD_SIZE). All share one latency cache, filled by the first run, so all
# search the same candidates: the timing stages of the others are read from the cache and are not
# compared. Prints each stage's seconds and two speedups: two ranks against one rank of one thread
# (what adding a rank on another machine gives) and against one rank of two threads (the same
# cores used either way); and whether the runs found the same fidelity and sensitivity figures
# (bit for bit where the threads per rank are the same) and chose the same configuration. Real
# data: Fashion-MNIST.
#
#   bench/distributed.sh
#   MODEL=models/vgg11s.onnx LAYERS=6 bench/distributed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory build >/dev/null
gos=$PWD/${GOS:-build/gos}
model=${MODEL:-models/resnet20.onnx}  # trained on Fashion-MNIST
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
args=(adapt "$model" --data fashion-mnist --max-layers "${LAYERS:-12}" --candidates-per-layer "${CANDIDATES:-6}"
      --distill-steps "${STEPS:-300}" --sensitivity-images "${SENSITIVITY:-2000}" --finetune-epochs "${EPOCHS:-1}"
      --speedup 1.3 --max-acc-drop 5 --seed 3 --cache "$work/cache.sqlite" --quiet)

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $model, ${LAYERS:-12} layers x ${CANDIDATES:-6} candidates"
for threads in 1 2; do
  start=$(date +%s)
  "$gos" "${args[@]}" --train-threads $threads -o "$work/one-$threads" || [[ $? == 1 ]]
  echo "1 rank x $threads thread(s): $(( $(date +%s) - start )) s"
done
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start=$(date +%s)
MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=1 "$gos" "${args[@]}" --train-threads 1 -o "$work/rank1" &
rank1=$!
MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=0 "$gos" "${args[@]}" --train-threads 1 -o "$work/two" || [[ $? == 1 ]]
wait $rank1 || [[ $? == 1 ]]
echo "2 ranks x 1 thread: $(( $(date +%s) - start )) s"

/usr/bin/python3 - "$work" <<'PY'
import json, sqlite3, sys
work = sys.argv[1]
runs = ("one-1", "one-2", "two")
reports = {name: json.load(open(f"{work}/{name}/report.json")) for name in runs}
def stages(report):
    times = {}
    for stage in report["stages"]:
        name = stage["stage"].split(" (attempt")[0]
        times[name] = times.get(name, 0) + stage["seconds"]
    return times
t = {name: stages(reports[name]) for name in runs}
cached = {"narrow", "profile", "candidates", "screen"}
print("\n| stage | 1 rank x 1 thread (s) | 1 rank x 2 threads (s) | 2 ranks x 1 thread (s) | 2 ranks vs 1 rank x 1 thread | 2 ranks vs 1 rank x 2 threads |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for name in t["one-1"]:
    a, b, c = (t[r].get(name, 0) for r in runs)
    if name in cached:
        print(f"| {name} | {a:.1f} | {b:.1f} (cache) | {c:.1f} (cache) | rank 0 alone | rank 0 alone |")
    else:
        print(f"| {name} | {a:.1f} | {b:.1f} | {c:.1f} | {a / max(c, 1e-9):.2f}x | {b / max(c, 1e-9):.2f}x |")
def entries(name, stage):
    db = sqlite3.connect(f"{work}/{name}/run.sqlite")
    return dict(db.execute("SELECT key, value FROM entries WHERE stage = ?", (stage,)).fetchall())
for other in ("one-1", "one-2"):
    for stage in ("distilled_error", "sensitivity"):
        a, b = entries(other, stage), entries("two", stage)
        same = sum(a[k] == b.get(k) for k in a)
        worst = max((abs(json.loads(a[k])["after"] - json.loads(b[k])["after"]) for k in a if k in b), default=0) if stage == "distilled_error" else 0
        print(f"{stage}, two ranks against {other}: {same} of {len(a)} identical" + (f" (largest difference {worst:.2g})" if worst else ""))
choice = lambda r: [layer["derivation"] for layer in r["layers"]]
for other in ("one-1", "one-2"):
    print(f"the same configuration chosen by two ranks and {other}:", choice(reports[other]) == choice(reports["two"]))
for name in runs:
    r = reports[name]
    print(f"{name}: {r['speedup']:.2f}x, accuracy {r['original']['accuracy']:.2f}% -> {r['adapted']['accuracy']:.2f}%")
PY
