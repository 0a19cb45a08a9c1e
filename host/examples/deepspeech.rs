//! A DeepSpeech2-like recurrent stack on the GPU: 3 bidirectional GRU layers of H = 1760, every
//! W_hh pruned to 10 %, batch 4, 256 steps. Builds random pruned weights, runs the whole model
//! (input projections, both directions, the joins), checks a short sequence against the CPU
//! reference, and times the recurrent layers (CUDA events, median of the repeats after a
//! warm-up): µs per step per layer and in total, also as one `MODEL …` line (see `common`),
//! which `bench/peers/models.py` prints for cuDNN too. Without a CUDA device it plans the
//! layers for the H200 preset and exits 0 (3 when a layer does not fit).
//!
//! `cargo run --release -p sprnn --example deepspeech -- [--layers 5] [--hidden 1760] [--help]`

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let c = common::Config { layers: 3, directions: 2, hidden: 1760, check_steps: 4, seed: 2, ..common::Config::new("deepspeech", sprnn::Cell::Gru) }
    .with_args("deepspeech: a DeepSpeech2-like stack of bidirectional GRU layers, pruned, on the GPU");
    common::run(c)
}
