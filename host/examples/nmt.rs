//! An NMT-like recurrent stack on the GPU: a 2-layer LSTM (H = 1024 by default, 1024–2048 in
//! the NMT models the sparse persistent RNN paper measures), every W_hh pruned to 10 %, batch 4,
//! 256 steps. Builds random pruned weights, runs the whole model (input projections included),
//! checks its first steps against the CPU reference, and times the recurrent layers (CUDA
//! events, median of the repeats after a warm-up): µs per step per layer and in total, also as
//! one `MODEL …` line (see `common`), which `bench/peers/models.py` prints for cuDNN too.
//! Without a CUDA device it plans the layers for the H200 preset and exits 0; a layer that
//! does not fit ends it with exit status 3.
//!
//! `cargo run --release -p sprnn --example nmt -- [--hidden 2048] [--density 0.1] [--help]`

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let c = common::Config { layers: 2, hidden: 1024, check_steps: 8, seed: 1, ..common::Config::new("nmt", sprnn::Cell::Lstm) }
    .with_args("nmt: an NMT-like 2-layer LSTM, pruned, on the GPU");
    common::run(c)
}
