#!/usr/bin/env bash
# ONNX's own backend tests (Debian's libonnx-testdata: node/ and pytorch-converted/) through gos's
# import, its IR interpreter, libtorch, its TorchScript for PyTorch Mobile and its re-exported ONNX
# in ONNX Runtime, against ONNX's
# expected outputs (rtol 1e-3, atol 1e-7). Prints the table docs/onnx-import.md keeps and writes
# every test's outcome to bench-out/onnx-conformance.json. About 10 seconds. Exits 1 while any
# imported test fails on a backend: today one does, ONNX Runtime's own disagreement with ONNX's
# reference on an align-corners downsample (docs/onnx-import.md#onnxs-backend-tests).
#
#   bench/onnx-conformance.sh
#   BACKENDS=interpreter,torch,ort bench/onnx-conformance.sh      (the issue's three)
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory build >/dev/null
gos=${GOS:-build/gos}
data=/usr/include/onnx/backend/test/data
[[ -d $data/node ]] || { echo "no $data: install Debian's libonnx-testdata (make setup does)" >&2; exit 2; }
mkdir -p bench-out
backends=${BACKENDS:-interpreter,torch,mobile,ort}
status=0
"$gos" conformance "$data/node" "$data/pytorch-converted" --backends "$backends" --json >bench-out/onnx-conformance.json || status=$?
"$gos" conformance "$data/node" "$data/pytorch-converted" --backends "$backends" || true
echo "every test's outcome: bench-out/onnx-conformance.json"
exit "$status"
