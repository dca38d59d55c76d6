#!/usr/bin/env bash
# gos adapt on one rank against two ranks of this machine (docs/distributed.md), side by side:
# one rank training with two threads, then two ranks with one thread each (the same two cores),
# launched as torchrun launches a job (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE). Both share one
# latency cache, filled by the first run, so both search the same candidates: the timing stages
# of the second are read from the cache and are not compared. Prints each stage's seconds and the
# speedup, and whether both runs found the same fidelity and sensitivity figures and chose the
# same configuration. Real data: Fashion-MNIST.
#
#   bench/distributed.sh
#   MODEL=vgg11s LAYERS=6 bench/distributed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory build >/dev/null
gos=$PWD/${GOS:-build/gos}
model=${MODEL:-resnet20}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
args=(adapt "$model" --data fashion-mnist --max-layers "${LAYERS:-8}" --candidates-per-layer "${CANDIDATES:-4}"
      --distill-steps "${STEPS:-300}" --sensitivity-images "${SENSITIVITY:-1000}" --finetune-epochs "${EPOCHS:-1}"
      --speedup 1.3 --max-acc-drop 5 --seed 3 --cache "$work/cache.sqlite" --quiet)

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $model, ${LAYERS:-8} layers x ${CANDIDATES:-4} candidates"
start=$(date +%s)
"$gos" "${args[@]}" --train-threads 2 -o "$work/one" || [[ $? == 1 ]]
echo "1 rank x 2 threads: $(( $(date +%s) - start )) s"
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
reports = {name: json.load(open(f"{work}/{name}/report.json")) for name in ("one", "two")}
def stages(report):
    times = {}
    for stage in report["stages"]:
        name = stage["stage"].split(" (attempt")[0]
        times[name] = times.get(name, 0) + stage["seconds"]
    return times
one, two = stages(reports["one"]), stages(reports["two"])
cached = {"narrow", "profile", "candidates", "screen"}
print(f"\n| stage | 1 rank x 2 threads (s) | 2 ranks x 1 thread (s) | speedup |")
print("| --- | ---: | ---: | ---: |")
for name in one:
    if name in cached:
        print(f"| {name} | {one[name]:.1f} | {two.get(name, 0):.1f} (latency cache) | rank 0 alone |")
    else:
        print(f"| {name} | {one[name]:.1f} | {two.get(name, 0):.1f} | {one[name] / max(two.get(name, 0), 1e-9):.2f}x |")
def entries(name, stage):
    db = sqlite3.connect(f"{work}/{name}/run.sqlite")
    return dict(db.execute("SELECT key, value FROM entries WHERE stage = ?", (stage,)).fetchall())
for stage in ("distilled_error", "sensitivity"):
    a, b = entries("one", stage), entries("two", stage)
    same = sum(a[k] == b.get(k) for k in a)
    print(f"{stage}: {same} of {len(a)} figures identical across the runs")
choice = lambda r: [layer["derivation"] for layer in r["layers"]]
print("same configuration chosen:", choice(reports["one"]) == choice(reports["two"]))
for name in ("one", "two"):
    r = reports[name]
    print(f"{name}: {r['speedup']:.2f}x, accuracy drop {r['quality_drop']:+.2f} points")
PY
