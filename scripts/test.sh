#!/usr/bin/env bash
# The test command: set-up, then every check that runs without a GPU, then every test.
#  1. scripts/setup.sh (pinned nightly + rust-src + llvm-tools, ptxas, a linkable libcuda);
#  2. cargo xtask build-ptx --check: the committed PTX equals a fresh build, and the ptxas
#     report (registers, stack frame, spills of every kernel; fails on any local memory);
#  3. the sprnn crate builds on stable Rust (what applications depend on);
#  4. cargo test --workspace: CPU tests everywhere; GPU tests run where there is a CUDA device
#     and print "skipped: no CUDA device" where there is none;
#  5. cargo doc for the library crates with warnings as errors;
#  6. the cargo-fuzz targets (docs/VALIDATION.md) for SPRNN_FUZZ_SECONDS each (default 30);
#  7. scripts/no-driver.sh: no executable needs libcuda to start, and the release CLI works
#     (and GPU commands fail with exit status 4) with no libcuda anywhere the loader looks.
#  8. the Python package: its wheel (maturin) and python/tests (pytest), at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/setup.sh)"
export SPRNN_REQUIRE_PTXAS=${SPRNN_REQUIRE_PTXAS:-1}
echo "== build-ptx --check"
cargo xtask build-ptx --check
echo "== sprnn on stable"
cargo +stable build --quiet -p sprnn
echo "== docs (every public item documented, no broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps -p sprnn -p sprnn-kernels
echo "== fuzz (weight-file loader and planner, bounded)"
bash scripts/fuzz.sh "${SPRNN_FUZZ_SECONDS:-30}"
echo "== tests"
log=$(mktemp)
set +e
cargo test --workspace --release "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
passed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed/) s += $i} END {print s + 0}' "$log")
failed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($(i+1) ~ /^failed/) s += $i} END {print s + 0}' "$log")
skipped=$(grep -o "skipped: no CUDA device" "$log" | wc -l)
rm -f "$log"
echo "GPU tests that found no CUDA device: $skipped"
echo "tests: $passed passed, $failed failed"
[ "$rc" = 0 ] || exit "$rc"
echo "== without the NVIDIA driver library"
bash scripts/no-driver.sh

# ---- Python package (python/): wheel and pytest --------------------------------------------
# Builds the abi3 wheel with maturin and runs python/tests against the installed wheel, in a
# venv under .cache/py (maturin, pytest, numpy from PyPI; no torch: its tests say
# "skipped: no torch", the GPU ones "skipped: no CUDA device").
echo "== python: wheel and pytest"
wheel=$(bash python/build_wheel.sh)   # sets up the venv .cache/py on first use
venv=$PWD/.cache/py
"$venv/bin/pip" install -q --force-reinstall --no-deps "$wheel"
# From outside the source tree, so `import sprnn` is the installed wheel; at least one test
# must run (exit 5, "no tests collected", fails here like any other).
(cd "$venv" && "$venv/bin/pytest" -q -rs -p no:cacheprovider "$OLDPWD/python/tests")
# ---- end of the Python package block --------------------------------------------------------
