#!/usr/bin/env bash
# Fuzzes sprnn's untrusted-input paths for a bounded time: the weight-file loader
# (fuzz/fuzz_targets/weights.rs) and the layout planner (fuzz/fuzz_targets/plan.rs).
#
#   scripts/fuzz.sh [SECONDS]     # SECONDS per target, default 60
#
# Uses the pinned nightly (scripts/setup.sh exports RUSTUP_TOOLCHAIN; cargo-fuzz needs nightly
# for the sanitizer), installs cargo-fuzz when missing (`cargo install cargo-fuzz --locked`),
# seeds the weights corpus with tests/fixtures/*.safetensors, and runs each target with
# libFuzzer's -max_total_time. Corpora grow in fuzz/corpus/<target>/, crashes land in
# fuzz/artifacts/<target>/ (both git-ignored); a crash fails the script with libFuzzer's report
# and the command that reproduces it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-60}
case "$secs" in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS per target]" >&2; exit 2;; esac
eval "$(bash scripts/setup.sh)"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

mkdir -p fuzz/corpus/weights fuzz/corpus/plan fuzz/artifacts
# Seeds: the fixtures as raw files, behind the mode byte of their cell (2 x cell index: raw mode).
for f in tests/fixtures/*.safetensors; do
  name=$(basename "$f" .safetensors)
  case "$name" in rnn_relu*) mode='\000';; rnn_tanh*) mode='\002';; gru*) mode='\004';; *) mode='\006';; esac
  { printf "$mode"; cat "$f"; } > "fuzz/corpus/weights/fixture-$name"
done

cd fuzz
for target in weights plan; do
  echo "== fuzz $target for ${secs}s"
  cargo fuzz build --release "$target"
  # libFuzzer's progress lines go to a log; its final statistics (or the crash) are printed.
  log="artifacts/$target.log"
  if cargo fuzz run --release "$target" "corpus/$target" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 > "$log" 2>&1; then
    grep -E '^(stat::|Done )' "$log" || tail -n 5 "$log"
  else
    tail -n 60 "$log"
    echo "fuzz $target FAILED (log: fuzz/$log)" >&2
    exit 1
  fi
done
