//! `sprnn-bench`: per-step time of sprnn layers and of their exchange floor over a sweep, as CSV
//! rows `cell,H,B,density,T,dtype,approach,us_per_step,gpu,driver,date,commit,note`.
//!
//! Peers (cuDNN, cuBLAS in a graph, cuSPARSE) are measured by `bench/peers/peers.py` in the same
//! session and appended to the same file.
//!
//! `--projection IxGHxN,...` times the input projection instead (sprnn's tensor-core GEMM
//! `U = W_ih x + b_ih`, fp16 inputs, f32 accumulation and output, for input size `I`, `G·H`
//! outputs and `N = T·B` input rows) and exits. Its rows use the same columns with
//! `cell = projection`, `H = G·H`, `B = N`, `density = 1`, `T = I`, `approach =
//! sprnn_projection` and `us_per_step` = microseconds per whole projection (median of the
//! repeats, CUDA events); `peers.py --projection` writes the cuBLAS (torch fp16 matmul) row of
//! the same shape as `approach = projection`.

use std::io::Write;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use sprnn::{Cell, Gpu, SparseRecurrentLayer};
use sprnn_bench::{median, random_input, random_layer, time_layer};

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
    /// Time the input projection for these shapes `IxGHxN` (input size, G·H outputs, T·B rows;
    /// e.g. `1024x4096x1024`) instead of the recurrent sweep.
    #[arg(long, value_delimiter = ',')]
    projection: Vec<String>,
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
    if !args.projection.is_empty() {
        let mut file = open_csv(&args.out);
        for shape in &args.projection {
            let (i, gh, n) = parse_shape(shape).unwrap_or_else(|e| {
                eprintln!("sprnn-bench: --projection {shape}: {e}");
                std::process::exit(2)
            });
            let (line, row) = match time_projection(&gpu, i, gh, n, args.repeats, args.warmup) {
                Ok((us, err)) => {
                    let tflops = 2.0 * (i * gh * n) as f64 / (us * 1e-6) / 1e12;
                    (
                        format!("projection I={i} GH={gh} N={n}: {us:.2} us ({tflops:.1} TFLOP/s, max error {err:.1e} of the bound)"),
                        format!("{us:.3},I={i}; GH={gh}; N={n}; {tflops:.1} TFLOP/s; checked rows within {err:.2} of the fp16 error bound"),
                    )
                }
                Err(e) => (format!("projection I={i} GH={gh} N={n}: not run: {e}"), format!(",not run: {}", e.to_string().replace(',', ";"))),
            };
            println!("{line}");
            if let Some(f) = file.as_mut() {
                writeln!(f, "projection,{gh},{n},1.0,{i},fp16,sprnn_projection,{row},{gpu_name},{},{},{}", args.driver, args.date, args.commit)
                    .unwrap();
            }
        }
        return;
    }
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
    let mut file = open_csv(&args.out);
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

/// The CSV file to append to, with the header when it is new.
fn open_csv(out: &Option<String>) -> Option<std::fs::File> {
    out.as_ref().map(|p| {
        let new = !std::path::Path::new(p).exists();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(p).expect("open --out");
        if new {
            writeln!(f, "cell,H,B,density,T,dtype,approach,us_per_step,gpu,driver,date,commit,note").unwrap();
        }
        f
    })
}

/// `IxGHxN` → `(I, GH, N)`.
fn parse_shape(s: &str) -> Result<(usize, usize, usize), String> {
    let v: Vec<usize> = s.split('x').map(|p| p.trim().parse::<usize>().map_err(|e| format!("{p:?}: {e}"))).collect::<Result<_, _>>()?;
    match v[..] {
        [i, gh, n] if i > 0 && gh > 0 && n > 0 => Ok((i, gh, n)),
        _ => Err("expected three positive sizes IxGHxN, e.g. 1024x4096x1024".into()),
    }
}

/// Median µs of the dense projection for `(I, G·H, N)` over `repeats` runs after `warmup`, and
/// the worst error of its first rows against an f64 product, as a fraction of the fp16 bound.
fn time_projection(gpu: &Gpu, i: usize, gh: usize, n: usize, repeats: usize, warmup: usize) -> sprnn::Result<(f64, f64)> {
    use sprnn::cust::memory::DeviceBuffer;
    use sprnn::layer::DeviceInput;
    use sprnn::sparse::{Dense, Matrix};
    let w = random_input(1, gh * i);
    let b = random_input(2, gh);
    let x = random_input(3, n * i);
    let proj = sprnn::InputProjection::new(gpu, &Matrix::Dense(Dense::new(gh, i, w.clone())?), &b)?;
    let d_x = DeviceBuffer::from_slice(&x).map_err(|e| sprnn::Error::Driver { call: "cuMemAlloc", code: e as u32, name: sprnn::driver::error_name(e as u32) })?;
    let mut out = DeviceInput::alloc_f32(gpu, n * gh)?;
    let mut times = Vec::new();
    for r in 0..warmup + repeats.max(1) {
        let ms = proj.project(&d_x, n, 1, false, &mut out, None)?;
        if r >= warmup {
            times.push(ms as f64 * 1e3);
        }
    }
    let u = out.to_host(gpu)?;
    let mut worst = 0.0f64;
    for row in 0..n.min(4) {
        for j in 0..gh {
            let (mut exact, mut mag) = (b[j] as f64, 0.0f64);
            for k in 0..i {
                let p = w[j * i + k] as f64 * x[row * i + k] as f64;
                exact += p;
                mag += p.abs();
            }
            let bound = (1.001 * 2f64.powi(-10) + (i + 2) as f64 * f32::EPSILON as f64) * mag + 1e-6;
            worst = worst.max((u[row * gh + j] as f64 - exact).abs() / bound);
        }
    }
    Ok((median(times), worst))
}

#[cfg(test)]
mod tests {
    use super::parse_shape;

    #[test]
    fn projection_shapes_parse() {
        assert_eq!(parse_shape("1024x4096x1024"), Ok((1024, 4096, 1024)));
        assert_eq!(parse_shape("3x5x7"), Ok((3, 5, 7)));
        for bad in ["1024x4096", "0x1x1", "axbxc", "1x2x3x4", ""] {
            assert!(parse_shape(bad).is_err(), "{bad}");
        }
    }
}
