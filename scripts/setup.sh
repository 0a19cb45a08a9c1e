#!/usr/bin/env bash
# Idempotent set-up for building and testing sprnn on a fresh Debian/Ubuntu machine.
#  1. the pinned nightly with rust-src and llvm-tools (kernel build);
#  2. ptxas for sm_90 from PyPI's nvidia-cuda-nvcc-cu12 (resource report; CPU only);
#  3. a linkable libcuda when the machine has no NVIDIA driver: Debian's non-free libcuda1,
#     unpacked into .cache/cuda-stub (nothing is installed system-wide). On such a machine
#     cuInit fails and the GPU tests report "skipped: no CUDA device".
# Prints the environment to use as `export` lines on stdout; everything else goes to stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { echo "setup: $*" >&2; }

toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1 \
   || ! rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^rust-src' \
   || ! rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^llvm-tools'; then
  log "installing $toolchain with rust-src and llvm-tools"
  rustup toolchain install "$toolchain" --profile minimal --component rust-src,llvm-tools >&2
fi
if ! rustup run stable rustc --version >/dev/null 2>&1; then
  log "installing stable (the sprnn crate must build on stable)"
  rustup toolchain install stable --profile minimal >&2
fi

# ptxas (optional for building, required for the resource report in CI).
ptxas=""
for p in "${PTXAS:-}" "$(command -v ptxas || true)"; do
  if [ -n "$p" ] && [ -x "$p" ]; then ptxas=$p; break; fi
done
py=$(command -v python3 || command -v python || true)
if [ -z "$ptxas" ] && [ -n "$py" ]; then
  find_ptxas() { "$py" - <<'PY' 2>/dev/null
import os, importlib.util
spec = importlib.util.find_spec("nvidia.cuda_nvcc")
if spec and spec.submodule_search_locations:
    for d in spec.submodule_search_locations:
        p = os.path.join(d, "bin", "ptxas")
        if os.path.exists(p): print(p); break
PY
  }
  ptxas=$(find_ptxas || true)
  if [ -z "$ptxas" ]; then
    log "installing ptxas from PyPI (nvidia-cuda-nvcc-cu12)"
    "$py" -m pip install -q "nvidia-cuda-nvcc-cu12==12.9.*" >&2 || log "pip install failed: no ptxas report"
    ptxas=$(find_ptxas || true)
  fi
fi
[ -n "$ptxas" ] && chmod +x "$ptxas" 2>/dev/null || true

# libcuda: needed to link the host crate (cust links -lcuda).
stub="$root/.cache/cuda-stub"
have_driver=0
if ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1 '; then have_driver=1; fi
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib64/stubs /opt/cuda/lib64; do
  [ -e "$d/libcuda.so" ] && have_driver=1
done
if [ "$have_driver" = 0 ] && [ ! -e "$stub/lib64/libcuda.so" ]; then
  log "no libcuda on this machine: unpacking Debian's libcuda1 into .cache/cuda-stub"
  sudo_cmd=""; [ "$(id -u)" != 0 ] && sudo_cmd="sudo"
  if ! apt-cache policy libcuda1 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    if [ -f /etc/os-release ] && . /etc/os-release && [ "${ID:-}" = debian ]; then
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$VERSION_CODENAME" | $sudo_cmd tee /etc/apt/sources.list.d/sprnn-nonfree.sources >/dev/null
    fi
    $sudo_cmd apt-get update -q >&2
  fi
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -q libcuda1 >&2)
  mkdir -p "$stub/lib64"
  dpkg -x "$tmp"/libcuda1_*.deb "$tmp/x"
  so=$(find "$tmp/x" -name 'libcuda.so.[0-9]*.*' | head -n1)
  cp "$so" "$stub/lib64/"
  ln -sf "$(basename "$so")" "$stub/lib64/libcuda.so.1"
  ln -sf libcuda.so.1 "$stub/lib64/libcuda.so"
  rm -rf "$tmp"
fi

if [ -e "$stub/lib64/libcuda.so" ] && [ "$have_driver" = 0 ]; then
  echo "export CUDA_LIBRARY_PATH=\"$stub\""
  echo "export LD_LIBRARY_PATH=\"$stub/lib64\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
fi
[ -n "$ptxas" ] && echo "export PTXAS=\"$ptxas\""
echo "export RUSTUP_TOOLCHAIN=\"$toolchain\""
