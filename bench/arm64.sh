#!/usr/bin/env bash
# gos on arm64 (aarch64), without an arm64 machine: cross-built on this amd64 machine against a
# sysroot of Debian's arm64 packages (scripts/setup-arm64.sh, cmake/aarch64-linux-gnu.cmake) and run
# under qemu-user, its outputs compared with the amd64 build's (build/gos) on the same commands:
# expr, inspect, bench (all but the timings), run (every backend but ort, within float tolerance),
# data synth-ppg (byte for byte), conformance on ONNX's backend tests (the same tests pass), the
# arm64 `gos agent` measuring for the amd64 workstation (device add, device check, bench --device;
# with AGENT_ADAPT=1 a short adapt --device) and, with EVAL=1, eval (the same accuracy). ONNX Runtime is left out: its runner is Node.js, not part
# of the cross build. Timings under qemu say nothing about an arm64 board's speed.
# docs/arm64-notes.md records a run. Exits 1 on any mismatch.
#
#   bench/arm64.sh            (the first cross build of gos: 20 minutes with JOBS=1 on 2 busy cores)
#   JOBS=1 EVAL=1 bench/arm64.sh
#   NO_BUILD=1 bench/arm64.sh                 (compares the binaries as they are)
#   NO_BUILD=1 GOS_ARM64=/tmp/gos bench/arm64.sh   (another arm64 binary against build/gos)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${JOBS:-2}
python=/usr/bin/python3  # Debian's, with numpy (make setup)
gos_arm64=${GOS_ARM64:-build-arm64/gos}
if [[ -z ${NO_BUILD:-} ]]; then
  make --no-print-directory build JOBS="$jobs" >/dev/null  # the amd64 reference, build/gos
  scripts/setup-arm64.sh
  # The cross build: only the gos target (the tests are configured too, but not built).
  if [[ ! -f build-arm64/build.ninja ]]; then
    cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
          -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  start=$(date +%s)
  nice -n 19 ninja -C build-arm64 -j "$jobs" gos | { grep -v '^\[' || true; }
  echo "arm64: build-arm64/gos built or up to date in $(($(date +%s) - start)) s"
fi
file -b "$gos_arm64" | grep -q 'ARM aarch64' || { echo "arm64: $gos_arm64 is not an arm64 binary" >&2; exit 1; }

amd=(build/gos)
arm=(qemu-aarch64-static -L build-arm64/sysroot "$gos_arm64")
out=bench-out/arm64
rm -rf "$out"
mkdir -p "$out/amd64" "$out/arm64"
# bench's latency cache, one per side: emulated timings must not reach the real cache.
export GOS_CACHE_AMD64=$root/$out/amd64/latency.sqlite GOS_CACHE_ARM64=$root/$out/arm64/latency.sqlite
failures=0
fail() { echo "MISMATCH $*"; failures=$((failures + 1)); }

# run_both NAME ARGS...: gos ARGS on both sides, stdout, stderr (the binary's path in them made
# "gos") and exit status kept in $out/SIDE/NAME.{out,err,rc}.
run_both() {
  local name=$1 side
  shift
  for side in amd64 arm64; do
    local -a gos=("${amd[@]}")
    local cache=$GOS_CACHE_AMD64
    [[ $side == arm64 ]] && gos=("${arm[@]}") && cache=$GOS_CACHE_ARM64
    local rc=0
    GOS_CACHE=$cache "${gos[@]}" "$@" >"$out/$side/$name.out" 2>"$out/$side/$name.err" || rc=$?
    echo "$rc" >"$out/$side/$name.rc"
    sed -i "s#$gos_arm64#gos#g; s#build/gos#gos#g" "$out/$side/$name.out" "$out/$side/$name.err"
  done
}
# same NAME ARGS...: the two sides print the same and exit alike.
same() {
  local name=$1
  run_both "$@"
  local f
  for f in out err rc; do
    if ! cmp -s "$out/amd64/$name.$f" "$out/arm64/$name.$f"; then
      fail "$name: the $f differs"
      diff "$out/amd64/$name.$f" "$out/arm64/$name.$f" | head -20
      return
    fi
  done
  echo "same    $name (exit $(cat "$out/arm64/$name.rc"))"
}

same help --help
same expr-add expr 'C[i] = A[i] + B[i]' --extents 'i<16'
same expr-no-extent expr 'C[i] = A[i] + B[i]'
same expr-conv expr 'Y[n,k,h,w] = relu(sum{c,r,s} X[n,c,h+r-1,w+s-1] * W[k,c,r,s] + B[k])' \
  --extents 'n<1, k<16, h<28, w<28, c<16, r<3, s<3' --json
for model in resnet20 vgg11s mobilenetv2s mixer-s; do
  same "inspect-$model" inspect "models/$model.onnx"
  same "inspect-$model-groups" inspect "models/$model.onnx" --groups --json
done
same inspect-zoo-tcn-ppg inspect tcn-ppg

# bench: the same report but for the timings and the machine.
json_same_but() {  # NAME KEYS...: the JSON objects agree on every key but KEYS
  "$python" - "$out/amd64/$1.out" "$out/arm64/$1.out" "${@:2}" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for key in sys.argv[3:]:
    a.pop(key, None); b.pop(key, None)
if a != b:
    sys.exit(f"amd64 {a}\narm64 {b}")
EOF
}
timing_keys=(median_ms p10_ms p90_ms runs spread noisy machine machine_reference machine_unsteady)
for backend in mobile torch; do
  name=bench-resnet20-$backend
  run_both "$name" bench models/resnet20.onnx --backend "$backend" --budget 1 --json
  if [[ $(cat "$out/amd64/$name.rc") != 0 || $(cat "$out/arm64/$name.rc") != 0 ]]; then
    fail "$name: exit $(cat "$out/amd64/$name.rc") on amd64, $(cat "$out/arm64/$name.rc") on arm64"
    cat "$out/arm64/$name.err"
  elif json_same_but "$name" "${timing_keys[@]}"; then
    echo "same    $name but timings: amd64 $("$python" -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])' <"$out/amd64/$name.out") ms," \
         "arm64 under qemu $("$python" -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])' <"$out/arm64/$name.out") ms"
  else
    fail "$name"
  fi
done
GOS_CACHE=$GOS_CACHE_ARM64 "${arm[@]}" bench models/resnet20.onnx --backend mobile --budget 1 >"$out/arm64/bench-text.out" 2>&1 || true

# run: one input, every backend but ort, the outputs within float tolerance of amd64's.
"$python" -c '
import numpy as np, sys
np.save(sys.argv[1], np.random.default_rng(0).standard_normal((1, 1, 28, 28)).astype(np.float32))' "$out/input.npy"
for model in resnet20 mobilenetv2s; do
  for backend in interpreter torch mobile; do
    name=run-$model-$backend
    for side in amd64 arm64; do
      gos=("${amd[@]}")
      [[ $side == arm64 ]] && gos=("${arm[@]}")
      "${gos[@]}" run "models/$model.onnx" --input "$out/input.npy" --backend "$backend" -o "$out/$side/$name.npy" \
        >"$out/$side/$name.out" 2>&1 || fail "$name: gos run failed on $side: $(tail -1 "$out/$side/$name.out")"
    done
    "$python" - "$out/amd64/$name.npy" "$out/arm64/$name.npy" "$name" <<'EOF' || failures=$((failures + 1))
import numpy as np, sys
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
diff = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")
ok = a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-5) and a.argmax() == b.argmax()
print(f"{'close  ' if ok else 'MISMATCH'} {sys.argv[3]}: shape {list(b.shape)}, argmax {a.argmax()} / {b.argmax()}, max |amd64 - arm64| {diff:.2e}")
sys.exit(0 if ok else 1)
EOF
  done
done

# data synth-ppg promises the same bytes for a seed on every machine (src/data: no fused multiply-adds).
for side in amd64 arm64; do
  gos=("${amd[@]}")
  [[ $side == arm64 ]] && gos=("${arm[@]}")
  "${gos[@]}" data synth-ppg --subjects 3 --minutes 2 --seed 7 -o "$out/$side/synth-ppg" >/dev/null
done
if diff -r "$out/amd64/synth-ppg" "$out/arm64/synth-ppg" >/dev/null; then
  echo "same    data synth-ppg: byte for byte ($(find "$out/arm64/synth-ppg" -type f | wc -l) files)"
else
  fail "data synth-ppg: the files differ"
fi

# conformance: ONNX's backend tests (Debian's libonnx-testdata) pass and fail alike.
data=/usr/include/onnx/backend/test/data
if [[ -d $data/node ]]; then
  for side in amd64 arm64; do
    gos=("${amd[@]}")
    [[ $side == arm64 ]] && gos=("${arm[@]}")
    "${gos[@]}" conformance "$data/node" "$data/pytorch-converted" --backends interpreter,torch,mobile --json \
      >"$out/$side/conformance.json" 2>"$out/$side/conformance.err" || true
  done
  "$python" - "$out/amd64/conformance.json" "$out/arm64/conformance.json" <<'EOF' || failures=$((failures + 1))
import json, sys
def outcomes(path):
    report = json.load(open(path))
    return report["suites"], {
        (t["suite"], t["name"]): (t["status"], t.get("reason", ""),
                                  {backend: r["status"] for backend, r in t.get("backends", {}).items()})
        for t in report["tests"]}
(suites_a, a), (suites_b, b) = outcomes(sys.argv[1]), outcomes(sys.argv[2])
differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
for k in differ[:10]:
    print(f"  {k[0]}/{k[1]}: amd64 {a.get(k)}, arm64 {b.get(k)}")
summary = "; ".join(f"{suite} {s['imported']} imported, passed {s['passed']}" for suite, s in suites_b.items())
if differ or suites_a != suites_b:
    print(f"MISMATCH conformance: {len(differ)} tests differ (arm64: {summary})")
    sys.exit(1)
print(f"same    conformance: every test's outcome ({summary})")
EOF
fi

if [[ -n ${EVAL:-} ]]; then
  same eval-resnet20 eval models/resnet20.onnx --json
fi

# The arm64 agent under qemu, measuring for this amd64 workstation: paired, checked, a bench and,
# with AGENT_ADAPT=1, a short adapt whose every timing it takes (tens of minutes under emulation).
agent_dir=$out/agent
mkdir -p "$agent_dir"
XDG_CONFIG_HOME=$root/$agent_dir/workstation GOS_CACHE=$GOS_CACHE_ARM64 \
  "${arm[@]}" agent --listen 127.0.0.1:0 --config "$agent_dir/identity" >"$agent_dir/agent.out" 2>&1 &
agent_pid=$!
for _ in $(seq 300); do grep -q "gos device add" "$agent_dir/agent.out" 2>/dev/null && break; sleep 0.2; done
pairing=$(sed -n 's/.*gos device add NAME \(\S*\) --fingerprint \(\S*\) --token \(\S*\).*/\1 \2 \3/p' "$agent_dir/agent.out")
if [[ -z $pairing ]]; then
  fail "agent: the arm64 agent did not start: $(tail -1 "$agent_dir/agent.out")"
else
  read -r url fingerprint token <<<"$pairing"
  ws=(env XDG_CONFIG_HOME="$root/$agent_dir/workstation" GOS_CACHE="$root/$agent_dir/workstation.sqlite" "${amd[@]}")
  if "${ws[@]}" device add qemu "$url" --fingerprint "$fingerprint" --token "$token" >"$agent_dir/add.out" 2>&1 &&
     "${ws[@]}" device check qemu --json >"$agent_dir/check.json" 2>&1 &&
     "${ws[@]}" bench models/resnet20.onnx --device qemu --budget 1 --json >"$agent_dir/bench.json" 2>&1; then
    echo "agent   arm64 agent under qemu: paired, checked ($("$python" -c 'import json,sys; m=json.load(sys.stdin)["machine"]; print(m["architecture"], m["fingerprint"])' <"$agent_dir/check.json")), resnet20 timed on it: $("$python" -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])' <"$agent_dir/bench.json") ms"
  else
    fail "agent: $(cat "$agent_dir"/*.out "$agent_dir"/*.json 2>/dev/null | tail -2)"
  fi
  if [[ -n ${AGENT_ADAPT:-} ]]; then
    if "${ws[@]}" adapt resnet20 --data synthetic:300 --max-layers 2 --rules shrink --candidates-per-layer 2 \
         --calibration-images 48 --held-out-images 16 --distill-steps 100 --sensitivity-images 200 --finetune-epochs 1 \
         --speedup 1.05 --max-acc-drop 100 --device qemu -o "$agent_dir/adapt" --json >"$agent_dir/adapt.json" 2>"$agent_dir/adapt.err"; then
      echo "agent   gos adapt --device qemu: finished, report machine $("$python" -c 'import json,sys; print(json.load(sys.stdin)["machine"])' <"$agent_dir/adapt/report.json")"
    else
      fail "agent: gos adapt --device qemu: $(tail -1 "$agent_dir/adapt.err")"
    fi
  fi
fi
kill -KILL "$agent_pid" 2>/dev/null || true  # qemu-user does not pass SIGTERM to the agent's sigwait
wait "$agent_pid" 2>/dev/null || true


echo
cat "$out/arm64/bench-text.out"
if ((failures)); then
  echo "arm64: $failures mismatches (outputs in $out/)"
  exit 1
fi
echo "arm64: every output matches the amd64 build's (outputs in $out/)"
