#!/usr/bin/env bash
# The soak benchmark of gos adapt's run journal: one adapt run killed with SIGKILL at random
# moments (at least KILLS times, default 20) and restarted each time until it finishes, then the
# same run uninterrupted in another folder with the same seed and latency cache. Prints how many
# kills and starts it took, how many units of work the journal holds and how many of them were
# written more than once (a finished unit redone: there should be none), and whether the
# configuration and every figure of the two reports agree. Exits 1 when they do not.
#
#   bench/soak.sh                 (KILLS=20; SEED=1 seeds the kill moments)
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory build >/dev/null
gos=${GOS:-$PWD/build/gos}  # GOS: a copy of the binary, to go on building while it soaks
kills_wanted=${KILLS:-20}
RANDOM=${SEED:-1}
work=$(mktemp -d /tmp/gos-soak-XXXXXX)
trap 'rm -rf "$work"' EXIT

# A search of a minute or two: six layers, three candidates each, two epochs of fine-tuning.
adapt=("$gos" adapt resnet20 --data synthetic:600 --max-layers 6 --rules shrink --rules rank_split --rules group
       --candidates-per-layer 3 --calibration-images 64 --held-out-images 16 --distill-steps 200 --sensitivity-images 300
       --finetune-epochs 2 --train-threads 1 --speedup 1.2 --max-acc-drop 100 --seed 11 --cache "$work/latency.sqlite" --quiet)

echo "# gos adapt killed at random moments and resumed, $(date -u '+%Y-%m-%d %H:%M UTC')"
start=$(date +%s)
kills=0 starts=0
while :; do
  starts=$((starts + 1))
  "${adapt[@]}" -o "$work/killed" >/dev/null 2>"$work/err" &
  pid=$!
  if ((kills < kills_wanted)); then
    # 1 to 8 s: some kills land while it loads, most in the middle of a unit of work.
    sleep "$((1 + RANDOM % 7)).$((RANDOM % 10))"
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid"
      wait "$pid" 2>/dev/null || true
      kills=$((kills + 1))
      continue
    fi
  fi
  status=0
  wait "$pid" || status=$?
  if ((status != 0 && status != 1)); then
    echo "the resumed run failed (exit $status):" >&2
    cat "$work/err" >&2
    exit 1
  fi
  ((kills >= kills_wanted)) && break
done
killed_seconds=$(($(date +%s) - start))

start=$(date +%s)
status=0
"${adapt[@]}" -o "$work/whole" >/dev/null 2>"$work/err" || status=$?
((status == 0 || status == 1)) || { cat "$work/err" >&2; exit 1; }
whole_seconds=$(($(date +%s) - start))

python3 - "$work" "$kills" "$starts" "$killed_seconds" "$whole_seconds" <<'PY'
import json, sqlite3, sys
work, kills, starts, killed_s, whole_s = sys.argv[1], *map(int, sys.argv[2:])
db = sqlite3.connect(f"{work}/killed/run.sqlite")
# Bookkeeping entries are rewritten by design: the time spent, each stage's time, the settings.
bookkeeping = ("budget", "stage_seconds", "settings")
units = db.execute(f"SELECT COUNT(*) FROM entries WHERE stage NOT IN {bookkeeping}").fetchone()[0]
redone = db.execute(f"SELECT stage, key, times_written FROM entries WHERE times_written > 1 AND stage NOT IN {bookkeeping}").fetchall()
killed = json.load(open(f"{work}/killed/report.json"))
whole = json.load(open(f"{work}/whole/report.json"))
figures = ["layers", "front", "attempts", "original", "adapted", "speedup", "quality_drop", "constraint_met", "verdict"]
differ = [name for name in figures if killed.get(name) != whole.get(name)]
print(f"| kills | starts | killed run (s) | uninterrupted (s) | units of work journaled | written more than once | report figures that differ |")
print(f"| ---: | ---: | ---: | ---: | ---: | ---: | --- |")
print(f"| {kills} | {starts} | {killed_s} | {whole_s} | {units} | {len(redone)} | {', '.join(differ) or 'none'} |")
chosen = {layer["node"]: layer["derivation"] for layer in killed["layers"] if not layer["kept"]}
print(f"\nconfiguration: {chosen}; speedup {killed['speedup']:.2f}x, accuracy drop {killed['quality_drop']:+.2f}")
for stage, key, times in redone:
    print(f"redone: {stage}/{key} written {times} times")
sys.exit(1 if redone or differ else 0)
PY
