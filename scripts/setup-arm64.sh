#!/usr/bin/env bash
# Prepares this amd64 Debian bookworm machine for cross-building gos for arm64 (aarch64) and running
# the result under qemu-user: the cross compiler and qemu-user-static, and an arm64 sysroot in
# build-arm64/sysroot made of Debian's arm64 packages of the libraries gos links and everything they
# need at run time. A sysroot, not `apt-get install libfoo-dev:arm64`, because Debian's libtorch-dev
# is not multiarch: its arm64 package cannot be installed beside the amd64 one that `make build` uses.
# The .debs are only unpacked (dpkg-deb -x): nothing is installed for arm64 and the host's packages
# are left as they are. docs/arm64-notes.md explains each step; cmake/aarch64-linux-gnu.cmake uses it.
# Idempotent and quiet when everything is present; rm -rf build-arm64/sysroot makes it again from
# the current package lists (the downloaded .debs are kept in build-arm64/debs).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${GOS_ARM64_DIR:-$root/build-arm64}"
sysroot="$out/sysroot"
debs="$out/debs"

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  sudo_cmd=(sudo)
fi
as_root() {
  if ((${#sudo_cmd[@]})) && ! command -v sudo >/dev/null; then
    echo "setup-arm64: need root (or sudo) for: $*" >&2
    exit 1
  fi
  "${sudo_cmd[@]}" "$@"
}

# The host's tools: the cross compiler and binutils, qemu-aarch64-static to run arm64 programs, and
# the build tools `make build` uses too.
host_packages=(crossbuild-essential-arm64 qemu-user-static cmake ninja-build pkg-config)
missing=()
for package in "${host_packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done

# arm64 package lists for apt (apt-get download and the dependency resolution below), which needs
# arm64 as a foreign architecture of dpkg; no arm64 package gets installed.
updated=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup-arm64: adding arm64 as a foreign architecture (for apt's arm64 package lists)"
  as_root dpkg --add-architecture arm64
  as_root apt-get update -qq
  updated=1
fi
if ((${#missing[@]})); then
  echo "setup-arm64: installing ${missing[*]}"
  ((updated)) || as_root apt-get update -qq
  updated=1
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The target's packages: the -dev packages scripts/setup.sh installs for the amd64 build, read from
# its packages=( ... ) list so that a library added there reaches the sysroot too, and the BLAS it
# installs (libtorch's libblas.so.3 and liblapack.so.3 are OpenBLAS's on amd64 too). Plus libc6-dev:
# with --sysroot the compiler takes libc's headers and startup files from the sysroot.
target_packages=(libc6-dev)
while read -r package; do
  case "$package" in
    *-dev|libopenblas0-pthread) target_packages+=("$package") ;;
  esac
done < <(sed -n '/^packages=(/,/^)/p' "$root/scripts/setup.sh" | sed 's/#.*//; s/packages=(//; s/)//' | tr -s ' \t' '\n' | sed '/^$/d')
mapfile -t target_packages < <(printf '%s\n' "${target_packages[@]}" | sort -u)

stamp="$sysroot/.gos-arm64-packages"
wanted="${target_packages[*]}"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  exit 0
fi

# Their closure, as apt would install it on an empty arm64 system: apt's resolver on the host's
# package lists with arm64 as the only architecture and an empty dpkg status, simulated (-s).
mkdir -p "$out"
empty_status="$out/.empty-dpkg-status"
: > "$empty_status"
apt_arm64=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Dir::State::status="$empty_status"
           -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
resolve() {
  apt-get -s "${apt_arm64[@]}" install --no-install-recommends "${target_packages[@]}" 2>&1 \
    | sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*\[\([a-z0-9]*\)\]).*$/\1:\2:\3/p'
}
mapfile -t closure < <(resolve)
if ((${#closure[@]} == 0)) && ((updated == 0)); then
  as_root apt-get update -qq
  updated=1
  mapfile -t closure < <(resolve)
fi
if ((${#closure[@]} == 0)); then
  echo "setup-arm64: apt cannot resolve the arm64 packages: ${target_packages[*]}" >&2
  apt-get -s "${apt_arm64[@]}" install --no-install-recommends "${target_packages[@]}" >&2 || true
  exit 1
fi

# Download what build-arm64/debs lacks (a name_version_arch.deb per package, as apt-get download
# names them), drop .debs that left the closure.
echo "setup-arm64: making the arm64 sysroot in $sysroot from ${#closure[@]} packages"
mkdir -p "$debs"
declare -A keep=()
fetch=()
for entry in "${closure[@]}"; do
  # name:version:arch, split on the first and last colons (a version may hold an epoch, "1:2.3").
  name="${entry%%:*}"; arch="${entry##*:}"; version="${entry#*:}"; version="${version%:*}"
  file="${name}_${version//:/%3a}_${arch}.deb"
  keep[$file]=1
  [[ -f "$debs/$file" ]] || fetch+=("$name:$arch=$version")
done
for file in "$debs"/*.deb; do
  [[ -e "$file" ]] || continue
  [[ -n "${keep[$(basename "$file")]:-}" ]] || rm -f "$file"
done
download() { (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "${fetch[@]}"); }
if ((${#fetch[@]})); then
  if ! download; then
    # Versions gone from the mirror (a point release): fresh package lists, then once more.
    if ((updated)) || [[ -n "${GOS_ARM64_RETRY:-}" ]]; then
      exit 1
    fi
    as_root apt-get update -qq
    GOS_ARM64_RETRY=1 exec bash "${BASH_SOURCE[0]}" "$@"
  fi
fi

# Unpack into a fresh folder, moved into place when complete.
rm -rf "$sysroot.new"
mkdir -p "$sysroot.new"
for file in "${!keep[@]}"; do
  dpkg-deb -x "$debs/$file" "$sysroot.new"
done

# What dpkg and the maintainer scripts would have done on an installed system:
# - absolute symlinks (usr/lib/aarch64-linux-gnu/libz.so -> /lib/aarch64-linux-gnu/libz.so.1.2.13,
#   and every libc6-dev .so) would point into the host: made relative, inside the sysroot;
# - libopenblas0-pthread's postinst makes libblas.so.3, liblapack.so.3 and libopenblas.so.0 in
#   usr/lib/aarch64-linux-gnu through update-alternatives, which libtorch_cpu.so needs.
while IFS= read -r -d '' link; do
  target=$(readlink "$link")
  ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$sysroot.new$target")" "$link"
done < <(find "$sysroot.new" -type l -lname '/*' -print0)
libdir="$sysroot.new/usr/lib/aarch64-linux-gnu"
for lib in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
  if [[ -e "$libdir/openblas-pthread/$lib" ]]; then
    ln -sfn "openblas-pthread/$lib" "$libdir/$lib"
  fi
done

if [[ ! -f "$libdir/cmake/Torch/TorchConfig.cmake" ]]; then
  echo "setup-arm64: the sysroot has no libtorch (usr/lib/aarch64-linux-gnu/cmake/Torch)" >&2
  exit 1
fi
echo "$wanted" > "$sysroot.new/.gos-arm64-packages"
rm -rf "$sysroot"
mv "$sysroot.new" "$sysroot"
echo "setup-arm64: sysroot ready ($(du -sh "$sysroot" | cut -f1))"
