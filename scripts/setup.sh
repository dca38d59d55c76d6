#!/usr/bin/env bash
# Installs what a fresh Debian bookworm machine lacks for building, testing and running gos.
# Idempotent and quiet when everything is present; run by `make setup` (and so by `make test`/`make demo`).
set -euo pipefail

packages=(
  cmake g++ ninja-build pkg-config
  libtorch-dev libopenblas0-pthread
  libonnx-dev libprotobuf-dev protobuf-compiler
  libonnx-testdata  # ONNX's own backend tests, which gos run is tested against
  libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev libsqlite3-dev libgtest-dev
  libcpp-httplib-dev libssl-dev  # gos agent and gos device (HTTPS)
  libgloo-dev  # the headers of the Gloo collectives libtorch ships (gos adapt --distributed)
  zlib1g-dev libzip-dev libeigen3-dev libstb-dev dataset-fashion-mnist
  python3-torch python3-torchvision python3-pil  # the test fixtures (scripts/make_onnx_fixtures.py, make_own_data_fixtures.py)
)

# ONNX Runtime comes from npm (Debian packages none), so npm is needed: Debian's nodejs and npm on
# a machine without Node.js; an installed Node.js is kept as it is.
if ! command -v npm >/dev/null; then
  if command -v node >/dev/null || command -v nodejs >/dev/null; then
    echo "setup: Node.js is installed without npm; install npm for it (gos installs onnxruntime-node with it)" >&2
    exit 1
  fi
  packages+=(nodejs npm)
fi

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo_cmd=(sudo)
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ONNX Runtime, the independent runner of the ONNX files gos writes (src/graph/ort_runner.h): the
# CPU build inside npm's onnxruntime-node, pinned by tools/ort/package-lock.json, installed into
# tools/ort/node_modules. --ignore-scripts skips the package's install script, which downloads GPU
# libraries.
ort_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tools/ort"
version_of() { node -p "$1" "$2" 2>/dev/null || true; }
wanted=$(version_of "require(process.argv[1]).packages['node_modules/onnxruntime-node'].version" "$ort_dir/package-lock.json")
installed=$(version_of "require(process.argv[1]).version" "$ort_dir/node_modules/onnxruntime-node/package.json")
if [[ -z "$wanted" ]]; then
  echo "setup: cannot read the onnxruntime-node version from $ort_dir/package-lock.json" >&2
  exit 1
fi
if [[ "$installed" != "$wanted" ]]; then
  echo "setup: installing onnxruntime-node $wanted into tools/ort"
  npm ci --prefix "$ort_dir" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
fi
