#!/usr/bin/env bash
# Installs what a fresh Debian bookworm machine lacks for building, testing and running gos.
# Idempotent and quiet when everything is present; run by `make setup` (and so by `make test`/`make demo`).
set -euo pipefail

packages=(
  cmake g++ ninja-build pkg-config
  libtorch-dev libopenblas0-pthread
  libonnx-dev libprotobuf-dev protobuf-compiler
  libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev libsqlite3-dev libgtest-dev
  dataset-fashion-mnist
)

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
