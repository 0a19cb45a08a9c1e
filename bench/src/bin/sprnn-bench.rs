//! `sprnn-bench`: per-step time of sprnn layers and of their exchange floor over a sweep, as CSV
//! rows `cell,H,B,density,T,dtype,approach,us_per_step,gpu,driver,date,commit,note`.
//!
//! Peers (cuDNN, cuBLAS in a graph, cuSPARSE) are measured by `bench/peers/peers.py` in the same
//! session and appended to the same file.

use std::io::Write;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use sprnn::{Cell, SparseRecurrentLayer};
use sprnn_bench::{random_layer, time_layer};

#[derive(Parser, Debug)]
#[command(about = "Benchmark sprnn's sparse persistent recurrent kernel against its exchange floor")]
struct Args {
    /// Cells: rnn_relu, rnn_tanh, gru, lstm.
    #[arg(long, value_delimiter = ',', default_value = "rnn_tanh,gru,lstm")]
    cells: Vec<String>,
    /// Hidden sizes.
    #[arg(long, value_delimiter = ',', default_value = "1152,2304,4608,5760")]
    hidden: Vec<usize>,
    /// Batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    batch: Vec<usize>,
    /// Densities.
    #[arg(long, value_delimiter = ',', default_value = "0.01,0.05,0.1,0.2,0.3,0.5")]
    density: Vec<f64>,
    /// Sequence lengths.
    #[arg(long, value_delimiter = ',', default_value = "256")]
    steps: Vec<usize>,
    /// Timed runs per configuration (median reported).
    #[arg(long, default_value_t = 15)]
    repeats: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Also time the kernel-structure variants (two shared-memory hidden-state buffers; RNN cell
    /// in a separate phase) as approaches `sprnn_double_buffer`, `sprnn_separate_cell`,
    /// `sprnn_double_separate`.
    #[arg(long)]
    ab: bool,
    /// CSV file to append to (header written when new).
    #[arg(long)]
    out: Option<String>,
    /// GPU name for the rows (default: the device's).
    #[arg(long)]
    gpu_name: Option<String>,
    /// Driver version for the rows.
    #[arg(long, default_value = "")]
    driver: String,
    /// Date for the rows.
    #[arg(long, default_value = "")]
    date: String,
    /// Commit for the rows.
    #[arg(long, default_value = "")]
    commit: String,
}

fn main() {
    let args = Args::parse();
    let gpu = match sprnn::try_default_gpu() {
        Ok(Some(g)) => g,
        Ok(None) => {
            eprintln!("sprnn-bench: no CUDA device: nothing to measure");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("sprnn-bench: {e}");
            std::process::exit(1);
        }
    };
    let gpu_name = args.gpu_name.clone().unwrap_or_else(|| gpu.info().name.clone());
    let cells: Vec<Cell> = args.cells.iter().map(|c| Cell::from_name(c).unwrap_or_else(|| panic!("unknown cell {c}"))).collect();
    let mut configs = Vec::new();
    for &c in &cells {
        for &h in &args.hidden {
            for &b in &args.batch {
                for &d in &args.density {
                    for &t in &args.steps {
                        configs.push((c, h, b, d, t));
                    }
                }
            }
        }
    }
    let mut file = args.out.as_ref().map(|p| {
        let new = !std::path::Path::new(p).exists();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(p).expect("open --out");
        if new {
            writeln!(f, "cell,H,B,density,T,dtype,approach,us_per_step,gpu,driver,date,commit,note").unwrap();
        }
        f
    });
    let bar = ProgressBar::new(configs.len() as u64);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {msg}").unwrap());
    let mut table = Vec::new();
    for (i, &(cell, h, b, d, t)) in configs.iter().enumerate() {
        bar.set_message(format!("{} H={h} B={b} d={d} T={t}", cell.name()));
        let mut rows: Vec<(&str, String, String)> = Vec::new();
        let variants: &[(&str, bool, bool)] = if args.ab {
            &[("sprnn", false, true), ("sprnn_double_buffer", true, true), ("sprnn_separate_cell", false, false), ("sprnn_double_separate", true, false)]
        } else {
            &[("sprnn", false, true)]
        };
        let result = random_layer(1000 + i as u64, cell, h, d).and_then(|(w, bias)| {
            let plan = sprnn::layout::plan(&w, cell, b, gpu.info(), &Default::default())?;
            let mut times = Vec::new();
            for &(name, double, fuse) in variants {
                let mut layer = SparseRecurrentLayer::from_plan_with(&gpu, &plan, &bias, std::time::Duration::from_secs(1), double, fuse)?;
                let shape = layer.launch_shape();
                let (us, floor) = time_layer(&gpu, &mut layer, t, args.repeats, args.warmup, 3, 77 + i as u64)?;
                let note = format!("grid {} threads {} tpr {} smem {} kernel {}", shape.0, shape.1, shape.2, shape.3, shape.4);
                times.push((name, us, floor, note));
            }
            Ok(times)
        });
        match result {
            Ok(times) => {
                let (_, us, floor, ref note) = times[0];
                rows.push(("floor", format!("{floor:.3}"), note.clone()));
                let mut line = format!("{:<8} {:>5} {:>3} {:>5} {:>5} {:>9.3} {:>9.3} {:>6.2}", cell.name(), h, b, d, t, us, floor, us / floor);
                for (name, us, _, note) in times {
                    rows.push((name, format!("{us:.3}"), note));
                    if name != "sprnn" {
                        line.push_str(&format!(" {name}={us:.3}"));
                    }
                }
                table.push(line);
            }
            Err(e) => {
                let note = format!("not run: {e}").replace(',', ";");
                rows.push(("sprnn", String::new(), note));
                table.push(format!("{:<8} {:>5} {:>3} {:>5} {:>5} not run: {e}", cell.name(), h, b, d, t));
            }
        }
        if let Some(f) = file.as_mut() {
            for (approach, us, note) in rows {
                writeln!(f, "{},{h},{b},{d},{t},fp16,{approach},{us},{gpu_name},{},{},{},{note}", cell.name(), args.driver, args.date, args.commit).unwrap();
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("{:<8} {:>5} {:>3} {:>5} {:>5} {:>9} {:>9} {:>6}", "cell", "H", "B", "d", "T", "us/step", "floor", "x_floor");
    for l in table {
        println!("{l}");
    }
}
