#!/usr/bin/env bash
# gos agent under load and against local timing (docs/device.md), on this machine: an agent on
# localhost, paired like a board.
#  1. A bounded load test (bench/agent_load.py): CLIENTS clients (6) each send REQUESTS (50)
#     batches of 8 one-operator ONNX files in `operators` mode to an agent with a queue of 2, so
#     that some are told "busy" and retry: all answered, none lost, turns in arrival order and
#     never overlapping; requests per second and the round trip's overhead per batch.
#  2. The zoo's models timed by `gos bench` here and by `gos bench --device` through the agent,
#     alternating, ROUNDS (5) times each: the ratio of the medians' medians, which should be
#     within 10% of 1 (the same machine times the same graph either way).
# Exits 1 when the load test fails or a ratio is off by more than 10%.
#
#   bench/agent.sh
#   CLIENTS=8 REQUESTS=100 ROUNDS=5 bench/agent.sh
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory build >/dev/null
gos=$PWD/${GOS:-build/gos}
clients=${CLIENTS:-6}
requests=${REQUESTS:-50}
rounds=${ROUNDS:-5}
work=$(mktemp -d)
agent_pid=
cleanup() {
  [[ -n $agent_pid ]] && kill "$agent_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export XDG_CONFIG_HOME=$work/workstation

"$gos" agent --listen 127.0.0.1:0 --config "$work/agent" --queue 2 --quiet >"$work/agent.out" &
agent_pid=$!
for _ in $(seq 100); do grep -q "gos device add" "$work/agent.out" 2>/dev/null && break; sleep 0.1; done
read -r url fingerprint token < <(sed -n 's/.*gos device add NAME \(\S*\) --fingerprint \(\S*\) --token \(\S*\).*/\1 \2 \3/p' "$work/agent.out")
[[ -n $url ]] || { echo "the agent did not start:" >&2; cat "$work/agent.out" >&2; exit 1; }
"$gos" device add local "$url" --fingerprint "$fingerprint" --token "$token" >/dev/null
echo "agent: $(head -1 "$work/agent.out")"

# Eight one-operator files (convolutions of MobileNet-like shapes), exported by PyTorch.
/usr/bin/python3 - "$work" <<'PY'  # Debian's python3-torch
import sys, torch
shapes = [(16, 16, 3, 1), (16, 32, 1, 1), (32, 32, 3, 32), (32, 64, 1, 1), (64, 64, 3, 64), (64, 64, 1, 1), (24, 24, 3, 1), (8, 16, 3, 1)]
for i, (cin, cout, k, groups) in enumerate(shapes):
    conv = torch.nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups)
    torch.onnx.export(conv, torch.randn(1, cin, 14, 14), f"{sys.argv[1]}/op{i}.onnx", opset_version=13)
PY

echo
echo "== load: $clients clients x $requests requests, a queue of 2"
status=0
python3 bench/agent_load.py "$url" "$fingerprint" "$token" "$clients" "$requests" "$work"/op*.onnx || status=1

echo
echo "== the zoo's models: gos bench here against gos bench --device local, alternating, $rounds rounds (mobile, 1 thread, 1 s each)"
printf '%-14s %12s %12s %8s\n' model "here (ms)" "agent (ms)" ratio
for model in resnet20 vgg11s mobilenetv2s mixer-s; do
  here=() there=()
  for _ in $(seq "$rounds"); do
    here+=("$("$gos" bench "models/$model.onnx" --budget 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')")
    there+=("$("$gos" bench "models/$model.onnx" --budget 1 --json --device local | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')")
  done
  python3 - "$model" "${here[*]}" "${there[*]}" <<'PY' || status=1
import statistics, sys
model, here, there = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
a, b = statistics.median(here), statistics.median(there)
ratio = b / a
print(f"{model:<14} {a:12.3f} {b:12.3f} {ratio:8.3f}{'' if abs(ratio - 1) <= 0.10 else '  (off by more than 10%)'}")
sys.exit(0 if abs(ratio - 1) <= 0.10 else 1)
PY
done
exit "$status"
