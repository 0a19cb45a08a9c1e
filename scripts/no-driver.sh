#!/usr/bin/env bash
# Proves that nothing built here needs the NVIDIA driver library to start (docs/DRIVER.md):
#  1. no release executable (the CLI, the bench and demo programs, the examples, the test
#     executables) names libcuda among its needed libraries;
#  2. with no libcuda anywhere the loader looks (LD_LIBRARY_PATH unset; on a machine with a
#     driver installed, SPRNN_LIBCUDA points at a file that does not exist), the release CLI
#     answers --help, info, plan and run --reference, and a GPU command fails with exit status 4
#     and "no NVIDIA driver";
#  3. a test executable runs its validation tests the same way.
# Run after `cargo test --workspace --release` (it uses what that built).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/sprnn
fail() { echo "no-driver: FAILED: $*" >&2; exit 1; }
[ -x "$bin" ] || fail "$bin is missing (run cargo test --workspace --release first)"

checked=0
# The executables cargo built (not whatever else lies in target/): bins, examples, tests.
exes=$({ cargo build --workspace --release --bins --message-format=json 2>/dev/null
         cargo test --workspace --release --no-run --message-format=json 2>/dev/null; } \
       | grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//' | sort -u)
[ -n "$exes" ] || fail "cargo reported no executables"
for f in $exes; do
  if readelf -d "$f" | grep -q 'NEEDED.*libcuda'; then
    fail "$f needs libcuda at start-up"
  fi
  checked=$((checked + 1))
done
echo "no-driver: $checked executables, none needs libcuda"

# No libcuda visible: the environment without LD_LIBRARY_PATH, and no system driver either.
run_bare=(env -u LD_LIBRARY_PATH)
if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so'; then
  run_bare+=(SPRNN_LIBCUDA=/nonexistent/libcuda.so.1)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect() { # expect CODE PATTERN ARGS...: exit status CODE and PATTERN in stdout+stderr
  local want=$1 pattern=$2; shift 2
  local rc=0
  "${run_bare[@]}" "$bin" "$@" >"$tmp/out" 2>&1 || rc=$?
  [ "$rc" = "$want" ] || { cat "$tmp/out" >&2; fail "sprnn $* exited $rc, expected $want"; }
  grep -q -- "$pattern" "$tmp/out" || { cat "$tmp/out" >&2; fail "sprnn $*: no \"$pattern\" in its output"; }
  echo "no-driver: sprnn $* -> $rc"
}
expect 0 "4  no NVIDIA driver" --help
expect 0 "no NVIDIA driver" info
expect 0 "grid" plan --random --cell lstm --hidden 256 --density 0.1 --batch 4 --device h200
fixture=tests/fixtures/lstm.safetensors   # PyTorch's LSTM, H = 4
# One layer's input U, [T, B, G*H] = [2, 1, 16] zeros, as a safetensors file written by hand:
# an 8-byte little-endian header length, the JSON header (padded to 8 bytes), the data.
header='{"u":{"dtype":"F32","shape":[2,1,16],"data_offsets":[0,128]}}'
while [ $(( ${#header} % 8 )) != 0 ]; do header="$header "; done
{
  printf "$(printf '\\x%02x' $(( ${#header} & 255 )) $(( ${#header} >> 8 )) 0 0 0 0 0 0)"
  printf '%s' "$header"
  head -c 128 /dev/zero
} >"$tmp/u.safetensors"
expect 0 "the CPU reference" run --reference --weights "$fixture" --cell lstm --input "$tmp/u.safetensors" --output "$tmp/out.safetensors"
[ -s "$tmp/out.safetensors" ] || fail "run --reference wrote no output"
expect 4 "no NVIDIA driver" run --weights "$fixture" --cell lstm --input "$tmp/u.safetensors" --output "$tmp/out2.safetensors"
expect 4 "no NVIDIA driver" plan --random --cell gru --hidden 64 --device gpu
[ ! -e "$tmp/out2.safetensors" ] || fail "a failed GPU run left an output file"

it=$(printf '%s\n' $exes | grep '/deps/it-' | head -n 1)
[ -n "$it" ] || fail "the integration test executable is missing"
"${run_bare[@]}" "$it" --quiet validation:: >"$tmp/it" 2>&1 || { tail -n 30 "$tmp/it" >&2; fail "$it validation:: without libcuda"; }
grep 'test result' "$tmp/it" | sed 's/^/no-driver: validation tests without libcuda: /'
