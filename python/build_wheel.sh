#!/usr/bin/env bash
# Builds the sprnn wheel (one abi3 wheel for CPython >= 3.9, manylinux_2_34 x86_64) into
# target/wheels/ and prints its path on stdout; everything else goes to stderr.
#
# The extension does not link libcuda.so.1: the `sprnn` crate loads the driver library at run
# time (docs/DRIVER.md), so `import sprnn` (planning, the CPU reference) works on a machine
# without an NVIDIA driver; checked below. The wheel must not bundle the driver library (it
# belongs to the machine), hence --auditwheel skip; the glibc symbols stay within 2.34 (checked
# below).
#
# Needs objdump and the environment of scripts/setup.sh. maturin comes from
# $MATURIN, else from a venv in .cache/py, made here when missing (maturin, pytest and numpy from
# PyPI: what scripts/test.sh then tests with).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ -z "${MATURIN:-}" ]; then
  venv=.cache/py
  if [ ! -x "$venv/bin/maturin" ] || [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c "import numpy" 2>/dev/null; then
    echo "build_wheel: setting up $venv (maturin, pytest, numpy)" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q "maturin>=1.5,<2" pytest numpy >&2
  fi
  MATURIN=$venv/bin/maturin
  PYTHON=${PYTHON:-$venv/bin/python}
fi
py=${PYTHON:-python3}
maturin=$MATURIN
out=target/wheels
build() {
  rm -f "$out"/sprnn-*.whl
  "$maturin" build --release --quiet -m python/Cargo.toml --out "$out" --auditwheel skip \
    --compatibility manylinux_2_34 >&2
  ls "$out"/sprnn-*-cp39-abi3-manylinux_2_34_x86_64.whl
}
wheel=$(build)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("sprnn/_native.abi3.so", sys.argv[2])' "$wheel" "$tmp"
so=$tmp/sprnn/_native.abi3.so
glibc=$(objdump -T "$so" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1)
case "$glibc" in
  GLIBC_2.[0-9]|GLIBC_2.[12][0-9]|GLIBC_2.3[0-4]) ;;
  *) echo "build_wheel: the extension needs $glibc, above manylinux_2_34" >&2; exit 1 ;;
esac
if objdump -p "$so" | grep -q 'NEEDED.*libcuda'; then
  echo "build_wheel: the extension needs libcuda at load time (it must load it at run time)" >&2
  exit 1
fi
echo "$wheel"
