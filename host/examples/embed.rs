//! Embedding one sprnn layer in an application: a random pruned LSTM, planned, run, timed.
//! Without a CUDA device it says so and runs the CPU reference instead.
//!
//! `cargo run --release -p sprnn --example embed`

use std::time::Instant;

use sprnn::layer::Input;
use sprnn::reference::{self, Precision};
use sprnn::{layout, Cell, LayerOptions, SparseRecurrentLayer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (cell, hidden, density, batch, steps) = (Cell::Lstm, 1152, 0.1, 4, 64);
    let w_hh = sprnn::sparse::random_recurrent(42, 4 * hidden, hidden, density, 0.9)?; // PyTorch's weight_hh, pruned
    let b_hh = vec![0.01f32; 4 * hidden];
    let u: Vec<f32> = (0..steps * batch * 4 * hidden).map(|i| ((i % 97) as f32 / 97.0 - 0.5) * 0.5).collect(); // W_ih x + b_ih
    let start = Instant::now();
    let (h, engine) = match sprnn::try_default_gpu()? {
        Some(gpu) => {
            let plan = layout::plan(&w_hh, cell, batch, gpu.info(), &Default::default())?;
            println!("{}: {} CTAs x {} threads, list length {}", gpu.info().name, plan.grid(), plan.threads_per_cta(), plan.list_len());
            let mut layer = SparseRecurrentLayer::from_plan(&gpu, &plan, &b_hh, LayerOptions::default().timeout)?;
            (layer.forward(Input::F32(&u), steps, None, None)?.h, "GPU")
        }
        None => {
            println!("no CUDA device: running the CPU reference");
            let out = reference::forward_u(cell, &w_hh, &b_hh, reference::Sequences::new(&u, steps, batch), Precision::DeviceFaithful)?;
            (out.h, "CPU reference")
        }
    };
    let checksum: f64 = h.iter().map(|&x| x as f64).sum();
    println!("{engine}: {steps} steps of LSTM H = {hidden}, B = {batch} in {:.2} ms; checksum {checksum:.6}", start.elapsed().as_secs_f64() * 1e3);
    Ok(())
}
