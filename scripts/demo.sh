#!/usr/bin/env bash
# The main job: set-up, then one sparse persistent RNN layer (H = 2304, density 0.3, batch 4,
# T = 256) planned, run on the GPU, checked against the CPU reference and timed against its
# exchange floor. Without a CUDA device it says so and runs the planner and the CPU reference.
# Arguments go to the demo (see `--help`), e.g. `scripts/demo.sh --cell lstm --hidden 1024`.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/setup.sh)"
cargo run --quiet --release -p sprnn-bench --bin sprnn-demo -- "$@"
