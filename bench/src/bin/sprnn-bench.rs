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
//! the same shape as `approach = projection`. The time covers both of the dense projection's
//! launches (`x` rounded to fp16, then the GEMM); the note names the GEMM variant `(C, S)` the
//! projection chose. `--projection-variants` adds one row per GEMM variant, pinned
//! (`approach = sprnn_projection_nC_sS`).
//!
//! Before generating a layer, each configuration is checked against the planner from its row
//! statistics alone ([`sprnn_bench::precheck`]), so a layer that cannot fit is refused in
//! microseconds with the planner's typed reason instead of after generating millions of random
//! weights. Rows are appended (and reach the file) one configuration at a time.
//!
//! `--capacity` finds, for each cell, density (`--capacity-density`) and batch
//! (`--capacity-batch`), the largest hidden size (a multiple of `--hidden-step`) the planner
//! accepts on this GPU, verifies it with a real random layer, and times it like the sweep: rows
//! `sprnn_capacity` and `floor`, and at density 1.0 also `dense_persistent` (sprnn's dense
//! persistent capacity). The note holds the dense-equivalent parameter count `G·H²`.
//! `--pairs-out FILE` lists the `cell:H:B:density` found, one a line, for `peers.py --pairs @FILE`.
//!
//! `--modes auto,grid,cluster` times the layer in each execution mode: `auto` is the planner's
//! choice (approach `sprnn`, floor `floor`), `grid` the grid-wide mode (`sprnn_grid`, floor
//! `floor_grid`), `cluster` the cluster-resident mode (`sprnn_cluster`, floor `floor_cluster`;
//! with `--cluster-sizes 2,4,8,16` one approach per size, `sprnn_cluster2` …). A forced mode the
//! layer cannot run is written as a row with an empty time and the planner's reason.
//! `--concurrent k` also runs k identical layers (of each mode) at once on k streams: approach
//! `<mode approach>_x<k>`, the median over the repeats of the slowest layer's per-step time
//! (CUDA events around each launch) — next to the same layer alone, for the "k layers side by
//! side within 10 % of one" target.
//!
//! `--plan-only` needs no GPU: it plans for `--preset` (h200 or a100) and prints what the sweep or
//! the capacity search would run, without timing anything.

use std::io::Write;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use sprnn::layout::DeviceInfo;
use sprnn::{Cell, Gpu, SparseRecurrentLayer};
use sprnn_bench::{csv_field, dense_params, Candidates, median, precheck, random_input, random_layer, time_layer, verified_capacity};
use sprnn::MAX_HIDDEN;

/// CSV header of every rows file.
const HEADER: &str = "cell,H,B,density,T,dtype,approach,us_per_step,gpu,driver,date,commit,note";

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
    /// Also time the kernel-structure variants as approaches `sprnn_separate_cell` (the cell in
    /// a separate phase after a barrier instead of in the row reduction: RNN, and GRU/LSTM on
    /// the gated kernel family), `sprnn_h16` and `sprnn_h32` (hidden state fp16 or f32
    /// in shared memory), `sprnn_sparse` and `sprnn_dense` (the sparse kernel or the dense
    /// tensor-core slab), `sprnn_f32_products` (the default plan with each product and sum in
    /// f32 instead of fp16 group sums) — each only where it differs from the default plan and
    /// fits.
    #[arg(long)]
    ab: bool,
    /// Time the input projection for these shapes `IxGHxN` (input size, G·H outputs, T·B rows;
    /// e.g. `1024x4096x1024`) instead of the recurrent sweep.
    #[arg(long, value_delimiter = ',')]
    projection: Vec<String>,
    /// With `--projection`: also time every dense GEMM variant, pinned, one row each.
    #[arg(long)]
    projection_variants: bool,
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
    /// Capacity mode: the largest hidden size that fits for each cell, capacity density and
    /// capacity batch, timed (`--hidden`, `--density` and `--batch` are not used).
    #[arg(long)]
    capacity: bool,
    /// Densities of the capacity search (1.0: sprnn's dense persistent capacity).
    #[arg(long, value_delimiter = ',', default_value = "0.01,0.02,0.05,0.1,0.2,0.3,0.5,1.0")]
    capacity_density: Vec<f64>,
    /// Batch sizes of the capacity search.
    #[arg(long, value_delimiter = ',', default_value = "4")]
    capacity_batch: Vec<usize>,
    /// The capacity search tries every multiple of this hidden size.
    #[arg(long, default_value_t = 32)]
    hidden_step: usize,
    /// Capacity mode: write the `cell:H:B:density` of every capacity found to this file (for
    /// `peers.py --pairs @FILE`).
    #[arg(long)]
    pairs_out: Option<String>,
    /// Plan only, no GPU: print what the sweep (or `--capacity`) would run for `--preset`.
    #[arg(long)]
    plan_only: bool,
    /// Device preset for `--plan-only`: h200 or a100.
    #[arg(long, default_value = "h200")]
    preset: String,
    /// Execution modes to time: auto (the planner's choice, approach `sprnn`), grid
    /// (`sprnn_grid`), cluster (`sprnn_cluster`).
    #[arg(long, value_delimiter = ',', default_value = "auto")]
    modes: Vec<String>,
    /// Cluster sizes for `--modes cluster` (default: the planner's choice of size).
    #[arg(long, value_delimiter = ',')]
    cluster_sizes: Vec<usize>,
    /// Also run this many identical layers at once, each on its own stream (approach
    /// `<approach>_x<k>`: the slowest layer's per-step time).
    #[arg(long)]
    concurrent: Option<usize>,
    /// Instead of timing, run the dense slab's phase-clock probe (`sprnn_dense_rnn_mt2h_kw8` only) on each
    /// configuration, forced onto the dense slab, `--repeats` launches, and print where CTA 0's
    /// step goes: per phase point the median over the recorded steps of the first and the last
    /// warp to reach it, in SM cycles from the step's first warp at the top.
    #[arg(long)]
    phase_clocks: bool,
    /// Threads per row for the `--modes` approaches (one approach per value, suffix `_tpr<t>`;
    /// default: the planner's choice).
    #[arg(long, value_delimiter = ',')]
    threads_per_row: Vec<usize>,
}

/// The approaches of `--modes` and `--cluster-sizes`: (approach, floor approach, plan options).
fn mode_variants(args: &Args) -> Vec<(String, String, sprnn::layout::PlanOptions)> {
    use sprnn::layout::{ExecMode, PlanOptions};
    let mut out = Vec::new();
    for m in &args.modes {
        match m.as_str() {
            "auto" => out.push(("sprnn".to_string(), "floor".to_string(), PlanOptions::default())),
            "grid" => out.push(("sprnn_grid".to_string(), "floor_grid".to_string(), PlanOptions { mode: Some(ExecMode::Grid), ..Default::default() })),
            "cluster" if args.cluster_sizes.is_empty() => {
                out.push(("sprnn_cluster".to_string(), "floor_cluster".to_string(), PlanOptions { mode: Some(ExecMode::Cluster), ..Default::default() }))
            }
            "cluster" => {
                for &c in &args.cluster_sizes {
                    let opts = PlanOptions { mode: Some(ExecMode::Cluster), ctas: Some(c), ..Default::default() };
                    out.push((format!("sprnn_cluster{c}"), format!("floor_cluster{c}"), opts));
                }
            }
            other => {
                eprintln!("sprnn-bench: unknown mode {other} (auto, grid, cluster)");
                std::process::exit(2)
            }
        }
    }
    if args.threads_per_row.is_empty() {
        return out;
    }
    out.into_iter()
        .flat_map(|(name, floor, opts)| {
            args.threads_per_row.iter().map(move |&t| (format!("{name}_tpr{t}"), format!("{floor}_tpr{t}"), PlanOptions { threads_per_row: Some(t), ..opts.clone() }))
        })
        .collect()
}

/// `k` copies of the layer of `plan` run at once, each on its own stream: the median over
/// `repeats` (after `warmup`) of the slowest copy's µs per step.
fn time_concurrent(gpu: &Gpu, plan: &sprnn::layout::Plan, bias: &[f32], k: usize, (steps, repeats, warmup): (usize, usize, usize), seed: u64) -> sprnn::Result<f64> {
    use sprnn::cust::stream::{Stream, StreamFlags};
    use sprnn::layer::{DeviceInput, Input};
    let mut layers = (0..k).map(|_| SparseRecurrentLayer::from_plan(gpu, plan, bias, std::time::Duration::from_secs(1))).collect::<sprnn::Result<Vec<_>>>()?;
    let inputs = (0..k).map(|i| DeviceInput::upload(gpu, Input::F32(&random_input(seed + i as u64, layers[i].input_len(steps))))).collect::<sprnn::Result<Vec<_>>>()?;
    let mut outs = layers.iter().map(|l| l.alloc_output(steps)).collect::<sprnn::Result<Vec<_>>>()?;
    gpu.make_current()?;
    let streams = (0..k)
        .map(|_| Stream::new(StreamFlags::NON_BLOCKING, None).map_err(|e| sprnn::Error::Driver { call: "cuStreamCreate", code: e as u32, name: sprnn::driver::error_name(e as u32) }))
        .collect::<sprnn::Result<Vec<_>>>()?;
    let mut per_step = Vec::new();
    for r in 0..warmup + repeats.max(1) {
        let pending = layers
            .iter_mut()
            .zip(&inputs)
            .zip(outs.iter_mut())
            .zip(&streams)
            .map(|(((l, u), o), s)| l.launch_on(u, None, None, o, s))
            .collect::<sprnn::Result<Vec<_>>>()?;
        let mut slowest = 0f64;
        for p in pending {
            slowest = slowest.max(p.finish()? as f64);
        }
        if r >= warmup {
            per_step.push(slowest * 1e3 / steps as f64);
        }
    }
    Ok(median(per_step))
}

fn parse_cells(names: &[String]) -> Vec<Cell> {
    names
        .iter()
        .map(|c| {
            Cell::from_name(c).unwrap_or_else(|| {
                eprintln!("sprnn-bench: unknown cell {c} (rnn_relu, rnn_tanh, gru, lstm)");
                std::process::exit(2)
            })
        })
        .collect()
}

fn open_out(path: &Option<String>) -> Option<std::fs::File> {
    path.as_ref().map(|p| sprnn_bench::open_rows("sprnn-bench", p, HEADER))
}

/// `--plan-only`: the planner's decisions for a preset, no GPU.
fn plan_only(args: &Args) {
    let device = match args.preset.as_str() {
        "h200" => DeviceInfo::h200(),
        "a100" => DeviceInfo::a100(),
        p => {
            eprintln!("sprnn-bench: unknown preset {p} (h200, a100)");
            std::process::exit(2)
        }
    };
    let cells = parse_cells(&args.cells);
    if args.capacity {
        println!("capacity on the {} preset (hidden sizes in steps of {}; verified with a random layer):", device.name, args.hidden_step);
        println!("{:<8} {:>5} {:>3} {:>6} {:>12} {:>10} {:>6} {:>7} {:>4} {:>4} {:>4} {:>5}", "cell", "d", "B", "H", "params G.H^2", "nonzeros", "grid", "threads", "tpr", "N", "M", "B max");
        for &cell in &cells {
            for &b in &args.capacity_batch {
                for &d in &args.capacity_density {
                    match verified_capacity(2000, cell, d, b, &device, Candidates { step: args.hidden_step, max_hidden: MAX_HIDDEN, attempts: 4 }) {
                        Ok(Some(c)) => {
                            let p = &c.plan;
                            println!(
                                "{:<8} {:>5} {:>3} {:>6} {:>12} {:>10} {:>6} {:>7} {:>4} {:>4} {:>4} {:>5}{}",
                                cell.name(),
                                d,
                                b,
                                c.hidden,
                                dense_params(cell, c.hidden),
                                p.nnz(),
                                p.grid(),
                                p.threads_per_cta(),
                                p.threads_per_row(),
                                p.list_len(),
                                p.shared_words(),
                                p.batch_limit(),
                                if c.refused.is_empty() { String::new() } else { format!("  (refused larger: {:?})", c.refused) }
                            );
                        }
                        Ok(None) => println!("{:<8} {:>5} {:>3}  no hidden size fits", cell.name(), d, b),
                        Err(e) => println!("{:<8} {:>5} {:>3}  error: {e}", cell.name(), d, b),
                    }
                }
            }
        }
        return;
    }
    println!("sweep on the {} preset (row statistics of the random layers; nothing generated):", device.name);
    for &cell in &cells {
        for &h in &args.hidden {
            for &b in &args.batch {
                for &d in &args.density {
                    match precheck(cell, h, d, b, &device) {
                        Ok(f) => println!(
                            "{:<8} {:>5} {:>3} {:>5}  fits: grid {} threads {} tpr {} N {} M {} BT {} ({} registers/SM, {} B shared/CTA, batch limit {})",
                            cell.name(),
                            h,
                            b,
                            d,
                            f.geometry.grid,
                            f.geometry.threads_per_cta,
                            f.geometry.threads_per_row,
                            f.geometry.list_len,
                            f.geometry.shared_words,
                            f.batch_tile,
                            f.registers_per_sm,
                            f.smem_bytes,
                            f.batch_limit
                        ),
                        Err(e) => println!("{:<8} {:>5} {:>3} {:>5}  does not fit: {e}", cell.name(), h, b, d),
                    }
                }
            }
        }
    }
}

/// Row metadata shared by every row of a run.
struct Meta<'a> {
    gpu: String,
    args: &'a Args,
}

impl Meta<'_> {
    /// Writes one row of the configuration `(cell, H, B, density, T)`.
    fn write(&self, f: &mut Option<std::fs::File>, (cell, h, b, d, t): (Cell, usize, usize, f64, usize), approach: &str, us: &str, note: &str) {
        if let Some(f) = f.as_mut() {
            let note = note.replace(',', ";");
            writeln!(f, "{},{h},{b},{d},{t},fp16,{approach},{us},{},{},{},{},{}", cell.name(), self.gpu, self.args.driver, self.args.date, self.args.commit, csv_field(&note)).unwrap();
        }
    }
}

/// `--capacity` on a GPU.
fn capacity(args: &Args, gpu: &Gpu, meta: &Meta, file: &mut Option<std::fs::File>) {
    let cells = parse_cells(&args.cells);
    let mut pairs = Vec::new();
    let mut table = Vec::new();
    let n = cells.len() * args.capacity_batch.len() * args.capacity_density.len() * args.steps.len();
    let bar = ProgressBar::new(n as u64);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {msg}").unwrap());
    let mut i = 0u64;
    for &cell in &cells {
        for &b in &args.capacity_batch {
            for &d in &args.capacity_density {
                bar.set_message(format!("capacity {} B={b} d={d}", cell.name()));
                let found = verified_capacity(3000 + i, cell, d, b, gpu.info(), Candidates { step: args.hidden_step, max_hidden: MAX_HIDDEN, attempts: 4 });
                for &t in &args.steps {
                    i += 1;
                    let c = match &found {
                        Ok(Some(c)) => c,
                        Ok(None) => {
                            meta.write(file, (cell, 0, b, d, t), "sprnn_capacity", "", "not run: no hidden size fits");
                            table.push(format!("{:<8} {:>5} {:>3} {:>5}  no hidden size fits", cell.name(), d, b, t));
                            bar.inc(1);
                            continue;
                        }
                        Err(e) => {
                            meta.write(file, (cell, 0, b, d, t), "sprnn_capacity", "", &format!("not run: {e}"));
                            table.push(format!("{:<8} {:>5} {:>3} {:>5}  error: {e}", cell.name(), d, b, t));
                            bar.inc(1);
                            continue;
                        }
                    };
                    let h = c.hidden;
                    let params = dense_params(cell, h);
                    let mut note = format!("capacity: dense-equivalent params {params} (G*H^2); nonzeros {}; hidden step {}", c.plan.nnz(), args.hidden_step);
                    if !c.refused.is_empty() {
                        let r: Vec<String> = c.refused.iter().map(|(h, e)| format!("H={h} refused by plan: {e}")).collect();
                        note.push_str(&format!("; {}", r.join(" / ")));
                    }
                    let timed = SparseRecurrentLayer::from_plan_variant(gpu, &c.plan, &c.layer.1, std::time::Duration::from_secs(1), sprnn::KernelVariant::default()).and_then(|mut layer| {
                        let shape = layer.shape();
                        let (us, floor) = time_layer(gpu, &mut layer, t, args.repeats, args.warmup, 3, 91 + i)?;
                        Ok((us, floor, format!("grid {} threads {} tpr {} smem {} kernel {}", shape.ctas, shape.threads_per_cta, shape.threads_per_row, shape.smem_bytes, shape.kernel)))
                    });
                    match timed {
                        Ok((us, floor, shape)) => {
                            let note = format!("{note}; {shape}");
                            meta.write(file, (cell, h, b, d, t), "sprnn_capacity", &format!("{us:.3}"), &note);
                            meta.write(file, (cell, h, b, d, t), "floor", &format!("{floor:.3}"), &note);
                            if d >= 1.0 {
                                meta.write(file, (cell, h, b, d, t), "dense_persistent", &format!("{us:.3}"), &note);
                            }
                            pairs.push(format!("{}:{h}:{b}:{d}", cell.name()));
                            table.push(format!("{:<8} {:>5} {:>3} {:>5} {:>6} {:>12} {:>9.3} {:>9.3}", cell.name(), d, b, t, h, params, us, floor));
                        }
                        Err(e) => {
                            meta.write(file, (cell, h, b, d, t), "sprnn_capacity", "", &format!("not run: {e}; {note}"));
                            table.push(format!("{:<8} {:>5} {:>3} {:>5} {:>6} not run: {e}", cell.name(), d, b, t, h));
                        }
                    }
                    bar.inc(1);
                }
            }
        }
    }
    bar.finish_and_clear();
    if let Some(p) = &args.pairs_out {
        pairs.dedup();
        std::fs::write(p, pairs.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap_or_else(|e| eprintln!("sprnn-bench: --pairs-out {p}: {e}"));
    }
    println!("{:<8} {:>5} {:>3} {:>5} {:>6} {:>12} {:>9} {:>9}", "cell", "d", "B", "T", "H", "params", "us/step", "floor");
    for l in table {
        println!("{l}");
    }
}

fn main() {
    let args = Args::parse();
    if args.plan_only {
        plan_only(&args);
        return;
    }
    let gpu = open_gpu();
    let gpu_name = args.gpu_name.clone().unwrap_or_else(|| gpu.info().name.clone());
    if !args.projection.is_empty() {
        projections(&args, &gpu, &gpu_name);
        return;
    }
    if args.phase_clocks {
        phase_clocks(&args, &gpu);
        return;
    }
    let mut file = open_out(&args.out);
    if args.capacity {
        capacity(&args, &gpu, &Meta { gpu: gpu_name, args: &args }, &mut file);
        return;
    }
    sweep(&args, &gpu, &gpu_name, &mut file);
}

/// Device 0, or the exit the sprnn CLI takes: status 4 without an NVIDIA driver, 5 without a
/// CUDA device, 1 on another failure.
fn open_gpu() -> sprnn::Gpu {
    // Exit status as the sprnn CLI's: 4 no NVIDIA driver, 5 no CUDA device.
    match sprnn::Gpu::new(0) {
        Ok(g) => g,
        Err(e @ sprnn::Error::NoDriver { .. }) => {
            eprintln!("sprnn-bench: {e}: nothing to measure");
            std::process::exit(4);
        }
        Err(e @ sprnn::Error::NoDevice { .. }) => {
            eprintln!("sprnn-bench: {e}: nothing to measure");
            std::process::exit(5);
        }
        Err(e) => {
            eprintln!("sprnn-bench: {e}");
            std::process::exit(1);
        }
    }
}

/// `--projection`: times each input projection shape and writes its row.
fn projections(args: &Args, gpu: &sprnn::Gpu, gpu_name: &str) {
    let mut file = open_out(&args.out);
    for shape in &args.projection {
        let (i, gh, n) = parse_shape(shape).unwrap_or_else(|e| {
            eprintln!("sprnn-bench: --projection {shape}: {e}");
            std::process::exit(2)
        });
        let pinned = std::iter::once(None).chain(args.projection_variants.then_some(sprnn_kernels::format::PROJECTION_VARIANTS.map(Some)).into_iter().flatten());
        for variant in pinned {
            let approach = match variant {
                None => "sprnn_projection".to_string(),
                Some((c, st)) => format!("sprnn_projection_n{c}_s{st}"),
            };
            let (line, row) = match time_projection(gpu, i, gh, n, variant, args.repeats, args.warmup) {
                Ok((us, err, (c, st))) => {
                    let tflops = 2.0 * (i * gh * n) as f64 / (us * 1e-6) / 1e12;
                    (
                        format!("{approach} I={i} GH={gh} N={n}: {us:.2} us ({tflops:.1} TFLOP/s, GEMM variant ({c}, {st}), max error {err:.1e} of the bound)"),
                        (format!("{us:.3}"), format!("I={i}; GH={gh}; N={n}; {tflops:.1} TFLOP/s; GEMM variant n{c} s{st}; checked rows within {err:.2} of the fp16 error bound")),
                    )
                }
                Err(e) => (format!("{approach} I={i} GH={gh} N={n}: not run: {e}"), (String::new(), format!("not run: {}", e.to_string().replace(',', ";")))),
            };
            println!("{line}");
            if let Some(f) = file.as_mut() {
                let (us, note) = &row;
                writeln!(f, "projection,{gh},{n},1.0,{i},fp16,{approach},{us},{gpu_name},{},{},{},{}", args.driver, args.date, args.commit, csv_field(note))
                    .unwrap();
            }
        }
    }
}

/// The timed variants of one configuration `(cell, H, B, density, T)`, the `i`-th of the sweep:
/// `(approach, µs per step, floor µs per step, launch note)`, the default plan first (when
/// `--modes` has `auto`), then the forced modes (their floors as rows of their own; NaN: not
/// measured or not run).
fn time_variants(args: &Args, gpu: &sprnn::Gpu, i: usize, (cell, h, b, d, t): (Cell, usize, usize, f64, usize)) -> sprnn::Result<Vec<(String, f64, f64, String)>> {
    use sprnn::layout::{KernelKind, PlanOptions};
    let sparse = |h32: Option<bool>| PlanOptions { hidden_f32: h32, kernel: Some(KernelKind::Sparse), ..Default::default() };
    let modes = mode_variants(args);
    let variants: Vec<(&'static str, Option<PlanOptions>, bool)> = if args.ab {
        vec![
            ("sprnn", None, true),
            ("sprnn_f32_products", None, true),
            ("sprnn_separate_cell", Some(sparse(None)), false),
            ("sprnn_h16", Some(sparse(Some(false))), true),
            ("sprnn_h32", Some(sparse(Some(true))), true),
            ("sprnn_sparse", Some(sparse(None)), true),
            ("sprnn_dense", Some(PlanOptions { kernel: Some(KernelKind::Dense), ..Default::default() }), true),
        ]
    } else if modes.iter().any(|m| m.0 == "sprnn") {
        vec![("sprnn", None, true)]
    } else {
        Vec::new()
    };
    // Refuse what cannot fit before generating it (the planner's decision from row statistics).
    precheck(cell, h, d, b, gpu.info()).map_err(sprnn::Error::from).and_then(|_| random_layer(1000 + i as u64, cell, h, d)).and_then(|(w, bias)| {
        let plan = sprnn::layout::plan(&w, cell, b, gpu.info(), &Default::default())?;
        let mut times = Vec::new();
        for (name, opts, fuse) in &variants {
            let (name, fuse) = (*name, *fuse);
            let plan = match opts {
                None if name == "sprnn_f32_products" => match plan.clone().with_products(sprnn::layout::Products::F32) {
                    Ok(p) if p.products() != plan.products() => p,
                    _ => continue,
                },
                None => plan.clone(),
                Some(o) => match sprnn::layout::plan(&w, cell, b, gpu.info(), o) {
                    // Only variants that differ from the default plan, and only where they fit.
                    Ok(p) if fuse && p.dense() == plan.dense() && p.hidden_f32() == plan.hidden_f32() && p.list_len() == plan.list_len() => continue,
                    Ok(p) => p,
                    Err(_) => continue,
                },
            };
            let mut layer = SparseRecurrentLayer::from_plan_variant(gpu, &plan, &bias, std::time::Duration::from_secs(1), sprnn::KernelVariant { fuse_cell: fuse })?;
            let shape = layer.shape();
            let (us, floor) = time_layer(gpu, &mut layer, t, args.repeats, args.warmup, 3, 77 + i as u64)?;
            let note = format!("grid {} threads {} tpr {} smem {} kernel {}", shape.ctas, shape.threads_per_cta, shape.threads_per_row, shape.smem_bytes, shape.kernel);
            times.push((name.to_string(), us, floor, note));
            if name == "sprnn" {
                if let Some(k) = args.concurrent {
                    let us = time_concurrent(gpu, &plan, &bias, k, (t, args.repeats, args.warmup), 177 + i as u64)?;
                    times.push((format!("sprnn_x{k}"), us, f64::NAN, format!("{k} layers on {k} streams; {}", plan.mode_reason())));
                }
            }
        }
        // The execution modes other than the planner's choice, each forced.
        for (name, floor_name, o) in modes.iter().filter(|m| m.0 != "sprnn") {
            let plan = match sprnn::layout::plan(&w, cell, b, gpu.info(), o) {
                Ok(p) => p,
                Err(e) => {
                    times.push((name.clone(), f64::NAN, f64::NAN, format!("not run: {e}")));
                    continue;
                }
            };
            let mut layer = SparseRecurrentLayer::from_plan(gpu, &plan, &bias, std::time::Duration::from_secs(1))?;
            let shape = layer.shape();
            let (us, floor) = time_layer(gpu, &mut layer, t, args.repeats, args.warmup, 3, 77 + i as u64)?;
            let note = format!(
                "mode {} cluster {:?} grid {} threads {} tpr {} smem {} kernel {}",
                plan.mode().name(),
                plan.cluster_size(),
                shape.ctas,
                shape.threads_per_cta,
                shape.threads_per_row,
                shape.smem_bytes,
                shape.kernel
            );
            times.push((name.clone(), us, f64::NAN, note.clone()));
            times.push((floor_name.clone(), floor, f64::NAN, note));
            if let Some(k) = args.concurrent {
                let us = time_concurrent(gpu, &plan, &bias, k, (t, args.repeats, args.warmup), 177 + i as u64)?;
                times.push((format!("{name}_x{k}"), us, f64::NAN, format!("{k} layers on {k} streams")));
            }
        }
        Ok(times)
    })
}

/// The sweep: every configuration of `--cells`, `--hidden`, `--batch`, `--density`, `--steps`
/// timed, its rows written and a table printed.
fn sweep(args: &Args, gpu: &sprnn::Gpu, gpu_name: &str, file: &mut Option<std::fs::File>) {
    let cells = parse_cells(&args.cells);
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
    let bar = ProgressBar::new(configs.len() as u64);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {msg}").unwrap());
    let mut table = Vec::new();
    for (i, &(cell, h, b, d, t)) in configs.iter().enumerate() {
        bar.set_message(format!("{} H={h} B={b} d={d} T={t}", cell.name()));
        let mut rows: Vec<(String, String, String)> = Vec::new();
        let result = time_variants(args, gpu, i, (cell, h, b, d, t));
        let us_text = |us: f64| if us.is_nan() { String::new() } else { format!("{us:.3}") };
        match result {
            Ok(times) if !times.is_empty() => {
                let (ref first, us, floor, ref note) = times[0];
                if first == "sprnn" {
                    rows.push(("floor".to_string(), format!("{floor:.3}"), note.clone()));
                }
                let mut line = format!("{:<8} {:>5} {:>3} {:>5} {:>5} {:>9.3} {:>9.3} {:>6.2}", cell.name(), h, b, d, t, us, floor, us / floor);
                for (name, us, _, note) in times {
                    rows.push((name.clone(), us_text(us), note));
                    if name != "sprnn" {
                        line.push_str(&format!(" {name}={}", if us.is_nan() { "-".to_string() } else { format!("{us:.3}") }));
                    }
                }
                table.push(line);
            }
            Ok(_) => table.push(format!("{:<8} {:>5} {:>3} {:>5} {:>5} nothing to time (--modes)", cell.name(), h, b, d, t)),
            Err(e) => {
                let note = format!("not run: {e}").replace(',', ";");
                rows.push(("sprnn".to_string(), String::new(), note));
                table.push(format!("{:<8} {:>5} {:>3} {:>5} {:>5} not run: {e}", cell.name(), h, b, d, t));
            }
        }
        if let Some(f) = file.as_mut() {
            for (approach, us, note) in rows {
                writeln!(f, "{},{h},{b},{d},{t},fp16,{approach},{us},{gpu_name},{},{},{},{}", cell.name(), args.driver, args.date, args.commit, csv_field(&note)).unwrap();
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

/// `--phase-clocks`: the phase-clock probe of every configuration, summarised.
fn phase_clocks(args: &Args, gpu: &Gpu) {
    use sprnn::layer::{DeviceInput, Input};
    use sprnn::layout::{KernelKind, PlanOptions};
    use sprnn_kernels::format::{phase, PHASE_CLOCK_POINTS};
    const NAMES: [&str; PHASE_CLOCK_POINTS as usize] = ["top", "gathered", "multiplied", "sums ready", "summed", "cell done", "staged", "published"];
    for (i, &cell) in parse_cells(&args.cells).iter().enumerate() {
        for &h in &args.hidden {
            for &b in &args.batch {
                for &d in &args.density {
                    let t = args.steps[0];
                    let run = || -> sprnn::Result<Vec<sprnn::PhaseClocks>> {
                        let (w, bias) = random_layer(1000 + i as u64, cell, h, d)?;
                        let plan = sprnn::layout::plan(&w, cell, b, gpu.info(), &PlanOptions { kernel: Some(KernelKind::Dense), ..Default::default() })?;
                        let mut layer = SparseRecurrentLayer::from_plan(gpu, &plan, &bias, std::time::Duration::from_secs(1))?;
                        let u = DeviceInput::upload(gpu, Input::F32(&random_input(77, layer.input_len(t))))?;
                        let mut out = layer.alloc_output(t)?;
                        for _ in 0..args.warmup {
                            layer.forward_device(&u, None, None, &mut out, None)?;
                        }
                        (0..args.repeats.max(1)).map(|_| layer.forward_phase_clocks(&u, &mut out)).collect()
                    };
                    println!("{} H={h} B={b} d={d} T={t}: CTA 0, SM cycles from the step's first warp at the top, median over steps (first warp / last warp / warp 0)", cell.name());
                    let runs = match run() {
                        Ok(r) => r,
                        Err(e) => {
                            println!("  not run: {e}");
                            continue;
                        }
                    };
                    // Per phase point: (first warp, last warp) offsets of every step but the
                    // newest (whose next top is not recorded), over every launch.
                    let mut first = vec![Vec::new(); PHASE_CLOCK_POINTS as usize + 1];
                    let mut last = vec![Vec::new(); PHASE_CLOCK_POINTS as usize + 1];
                    let mut per_warp = vec![vec![Vec::new(); runs[0].warps]; 2];
                    let mut warp0 = vec![Vec::new(); PHASE_CLOCK_POINTS as usize];
                    for c in &runs {
                        for s in 1..c.steps {
                            let top = (0..c.warps).map(|w| c.at(s, w, phase::TOP)).min_by_key(|&v| v.wrapping_sub(c.at(s, 0, phase::TOP)) as i32).unwrap();
                            let off = |s2: usize, w: usize, k: u32| c.at(s2, w, k).wrapping_sub(top) as i32 as f64;
                            for k in 0..PHASE_CLOCK_POINTS {
                                let v: Vec<f64> = (0..c.warps).map(|w| off(s, w, k)).collect();
                                first[k as usize].push(v.iter().cloned().fold(f64::INFINITY, f64::min));
                                last[k as usize].push(v.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
                            }
                            let next: Vec<f64> = (0..c.warps).map(|w| off(s - 1, w, phase::TOP)).collect();
                            first[PHASE_CLOCK_POINTS as usize].push(next.iter().cloned().fold(f64::INFINITY, f64::min));
                            last[PHASE_CLOCK_POINTS as usize].push(next.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
                            for (k, v) in warp0.iter_mut().enumerate() {
                                v.push(off(s, 0, k as u32));
                            }
                            for w in 0..c.warps {
                                per_warp[0][w].push(off(s, w, phase::GATHERED));
                                per_warp[1][w].push(off(s, w, phase::MULTIPLIED));
                            }
                        }
                    }
                    // `summed` is recorded by the cell's warps only: its first/last columns
                    // mix in stale words of the other warps; warp 0 (a cell warp) is exact.
                    for (k, name) in NAMES.iter().chain(["next top"].iter()).enumerate() {
                        let w0 = warp0.get(k).map_or(String::new(), |v| format!("{:>9.0}", median(v.clone())));
                        println!("  {name:<11} {:>7.0} {:>7.0} {w0}", median(first[k].clone()), median(last[k].clone()));
                    }
                    for (label, v) in ["gathered", "multiplied"].iter().zip(&per_warp) {
                        let cols: Vec<String> = v.iter().map(|x| format!("{:.0}", median(x.clone()))).collect();
                        println!("  {label} by warp: {}", cols.join(" "));
                    }
                }
            }
        }
    }
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
fn time_projection(gpu: &Gpu, i: usize, gh: usize, n: usize, variant: Option<(usize, usize)>, repeats: usize, warmup: usize) -> sprnn::Result<(f64, f64, (usize, usize))> {
    use sprnn::cust::memory::DeviceBuffer;
    use sprnn::layer::DeviceInput;
    use sprnn::sparse::{Dense, Matrix};
    let w = random_input(1, gh * i);
    let b = random_input(2, gh);
    let x = random_input(3, n * i);
    let mut proj = sprnn::InputProjection::new(gpu, &Matrix::Dense(Dense::new(gh, i, w.clone())?), &b)?;
    proj.pin_dense_variant(variant)?;
    let used = proj.dense_variant(n).unwrap_or((0, 0));
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
    Ok((median(times), worst, used))
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
