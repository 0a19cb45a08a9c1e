//! `sprnn bench`: a small timing sweep on the GPU, through the library's timing protocol
//! ([`sprnn::timing::random_layer`], [`sprnn::timing::time_layer`]: median per-step time over
//! repeated runs, and the exchange floor of the same launch). `sprnn-bench` runs the full sweep
//! with CSV output.

use clap::Args;
use sprnn::{Cell, Gpu, SparseRecurrentLayer};
use sprnn::timing::{random_layer, time_layer};

use crate::layer::CellArg;
use crate::{progress, CliResult, Failure};

/// Arguments of `sprnn bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Cells.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "rnn_tanh,gru,lstm")]
    pub cells: Vec<CellArg>,
    /// Hidden sizes.
    #[arg(long, value_delimiter = ',', default_value = "1152,2304")]
    pub hidden: Vec<usize>,
    /// Batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    pub batch: Vec<usize>,
    /// Densities of W_hh.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.3")]
    pub density: Vec<f64>,
    /// Sequence length T.
    #[arg(long, default_value_t = 256)]
    pub steps: usize,
    /// Timed runs per configuration (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Seed of the random layers and inputs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs `sprnn bench`.
pub fn main(args: &BenchArgs) -> CliResult {
    if args.steps == 0 || args.repeats == 0 {
        return Err(Failure::new("--steps and --repeats must be at least 1"));
    }
    if let Some(d) = args.density.iter().find(|d| !(0.0..=1.0).contains(*d)) {
        return Err(Failure::new(format!("--density {d} is not in [0, 1]")));
    }
    if args.hidden.contains(&0) || args.batch.contains(&0) {
        return Err(Failure::new("--hidden and --batch values must be at least 1"));
    }
    let gpu = Gpu::new(0).map_err(|e| {
        let mut f = Failure::from(e);
        f.message.push_str("; bench measures the GPU and has nothing to do without one (`sprnn plan` works without)");
        f
    })?;
    let mut configs = Vec::new();
    for &c in &args.cells {
        for &h in &args.hidden {
            for &b in &args.batch {
                for &d in &args.density {
                    configs.push((Cell::from(c), h, b, d));
                }
            }
        }
    }
    println!("GPU: {}, T = {}, median of {} runs", gpu.info().name, args.steps, args.repeats);
    println!("{:<8} {:>5} {:>3} {:>5} {:>9} {:>9} {:>7}  launch", "cell", "H", "B", "d", "us/step", "floor", "x_floor");
    let bar = progress::bar(configs.len() as u64);
    for (i, &(cell, h, b, d)) in configs.iter().enumerate() {
        bar.set_message(format!("{} H={h} B={b} d={d}", cell.name()));
        let seed = args.seed.wrapping_add(1000 * i as u64);
        let result = random_layer(seed, cell, h, d).and_then(|(w, bias)| {
            let mut layer = SparseRecurrentLayer::new(&gpu, cell, &w, &bias, b, &Default::default())?;
            let sprnn::LaunchShape { ctas: grid, threads_per_cta: threads, threads_per_row: tpr, .. } = layer.shape();
            let (us, floor) = time_layer(&gpu, &mut layer, args.steps, args.repeats, args.warmup, 3, seed ^ 0x77)?;
            Ok((us, floor, format!("{grid} x {threads}, TPR {tpr}")))
        });
        let line = match result {
            Ok((us, floor, launch)) => {
                format!("{:<8} {h:>5} {b:>3} {d:>5} {us:>9.3} {floor:>9.3} {:>7.2}  {launch}", cell.name(), us / floor)
            }
            Err(e) => format!("{:<8} {h:>5} {b:>3} {d:>5} not run: {e}", cell.name()),
        };
        bar.suspend(|| println!("{line}"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}
