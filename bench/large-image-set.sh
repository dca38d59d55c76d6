#!/usr/bin/env bash
# An image set larger than the memory gos is given (issue 31): COUNT JPEG files at 224x224 in
# DIR/test/<class>/ (the fixture classifier's classes) (2.0 GB as decoded bytes at the default 13,400, 8.1 GB as floats), scored by
# `gos eval` with the fixture RGB classifier (dynamic height and width, fixed with --input-shape)
# inside a memory cgroup of LIMIT bytes. The first run decodes the files into the cache and scores
# them; the second reads the cache. gos maps the decoded bytes and converts batch by batch, so both
# fit a limit far below the set's size. Without a writable cgroup (v1 or v2; needs root), the runs
# are not bounded and the table says so.
#
#   bench/large-image-set.sh                       (about 5 minutes on a quiet 2-core machine)
#   COUNT=2000 LIMIT=$((512 << 20)) bench/large-image-set.sh
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory build >/dev/null
gos=${GOS:-build/gos}
count=${COUNT:-13400}
limit=${LIMIT:-$((1 << 30))}
model=build/fixtures/own/rgb_classifier.onnx
work=bench-out/large-image-set
[[ -f $model ]] || { echo "no $model: the build makes it with python3-torch and python3-pil (make setup)" >&2; exit 2; }
mkdir -p "$work"

if [[ ! -f $work/data/written-$count ]]; then
  rm -rf "$work/data" "$work/cache"
  /usr/bin/python3 - "$work/data" "$count" <<'EOF'
# The fixture classifier's own three classes (scripts/make_own_data_fixtures.py), drawn at 224x224.
import sys
from pathlib import Path
import numpy as np

sys.path.insert(0, "scripts")
from make_own_data_fixtures import CLASSES, draw

root, count = Path(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(1)
for split, n in (("train", len(CLASSES)), ("test", count)):
    for i in range(n):
        kind = CLASSES[i % len(CLASSES)]
        folder = root / split / kind
        folder.mkdir(parents=True, exist_ok=True)
        draw(kind, (224, 224), rng).save(folder / f"{i:06d}.jpg", quality=90)
EOF
  touch "$work/data/written-$count"
fi

# A memory cgroup of `limit` bytes for the command, when this machine lets us make one.
cgroup=""
if [[ -w /sys/fs/cgroup/cgroup.subtree_control ]] && mkdir -p /sys/fs/cgroup/gos-large-set 2>/dev/null; then
  cgroup=/sys/fs/cgroup/gos-large-set
  echo "$limit" >"$cgroup/memory.max"
  echo 0 >"$cgroup/memory.swap.max" 2>/dev/null || true
elif [[ -d /sys/fs/cgroup/memory ]] && mkdir -p /sys/fs/cgroup/memory/gos-large-set 2>/dev/null; then
  cgroup=/sys/fs/cgroup/memory/gos-large-set
  echo "$limit" >"$cgroup/memory.limit_in_bytes"
fi

run() {  # run NAME: gos eval in the cgroup, timed
  local name=$1
  # shellcheck disable=SC2016
  GOS_CACHE=$work/cache/latency.sqlite /usr/bin/time -f '%e %M' -o "$work/$name.time" \
    sh -c '[ -z "$1" ] || echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$cgroup" \
    "$gos" eval "$model" --data "images:$work/data" --input-shape 1,3,224,224 --preprocess imagenet --json >"$work/$name.json"
}
rm -rf "$work/cache"
run decode
run cached

bytes=$((count * 3 * 224 * 224))
bound=$([[ -n $cgroup ]] && echo "$((limit >> 20)) MiB cgroup" || echo "none (no writable cgroup)")
printf '| run | images | as bytes | as floats | memory limit | accuracy | peak resident | wall time |\n'
printf '| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |\n'
for name in decode cached; do
  read -r seconds kilobytes <"$work/$name.time"
  accuracy=$(/usr/bin/python3 -c "import json,sys; print(f\"{json.load(open(sys.argv[1]))['accuracy']:.2f}%\")" "$work/$name.json")
  awk -v name="$name" -v count="$count" -v bytes="$bytes" -v bound="$bound" -v accuracy="$accuracy" -v kb="$kilobytes" -v s="$seconds" \
    'BEGIN { printf "| %s | %d | %.2f GB | %.2f GB | %s | %s | %d MB | %.0f s |\n", name, count, bytes / 1e9, 4 * bytes / 1e9, bound, accuracy, kb / 1024, s }'
done
[[ -z $cgroup ]] || rmdir "$cgroup" 2>/dev/null || true
